"""Dry-run metrics (issue 16, item 3), in virtual time: ``dryRun: true`` on an analysis metric.

A dry-run metric is asked and recorded like any other (the ledger entry says ``dryRun: true``), but it never
fails, holds nor ends a run: where a metric would halt the step, a Normal event says what it would have
done, and the step goes on. Without data or with its provider erring, it holds nothing either.

Interval 30 s; a new revision at t = 0, the canary ready at 5 s (first weight), then one step per interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from canarist.api import Canary
from canarist.cli.cmd_explain import explain_text
from canarist.cli.main import main
from canarist.engine.model import CheckResult
from canarist.engine.simulate import World
from tests.engine.conftest import Script, assert_one_status_write_per_decision, canary, initialized

RATE = "request-success-rate"
DURATION = "request-duration"
GOOD_RATE = CheckResult(ok=True, value=99.9, unit="%", threshold_min=99)
SLOW = CheckResult(
    ok=False,
    value=612,
    unit="ms",
    threshold_max=500,
    message="Halt podinfo.test advancement request duration 612ms > 500ms",
)
FAST = CheckResult(ok=True, value=120, unit="ms", threshold_max=500)
LOW_RATE = CheckResult(
    ok=False,
    value=71.2,
    unit="%",
    threshold_min=99,
    message="Halt podinfo.test advancement success rate 71.20% < 99%",
)
NO_DATA = CheckResult(
    ok=False,
    no_data=True,
    message="Halt advancement no values found for istio metric request-duration probably "
    "podinfo.test is not receiving traffic: running query failed: no values found",
)
ERROR = CheckResult(
    ok=False,
    error=True,
    message="Prometheus query failed: running query failed: request to http://prometheus:9090/api/v1/query "
    "failed: Cannot connect to host prometheus:9090",
)

WOULD_HALT = (
    "Dry-run metric request-duration would have halted podinfo.test advancement: "
    "request duration 612ms > 500ms"
)

#: a clean run of stepWeight 10 up to 30: the events of the steps, without any check's
STEPS = [
    (0.0, "New revision detected! Scaling up podinfo.test"),
    (5.0, "Starting canary analysis for podinfo.test"),
    (5.0, "Advance podinfo.test canary weight 10"),
    (35.0, "Advance podinfo.test canary weight 20"),
    (65.0, "Advance podinfo.test canary weight 30"),
    (95.0, "Copying podinfo.test template spec to podinfo-primary.test"),
]


def metrics(*, dry_run: bool = True, **policy: Any) -> list[dict[str, Any]]:
    """request-duration (dry-run unless told) first, then the success rate."""
    duration = {"name": DURATION, "thresholdRange": {"max": 500}, "interval": "30s", **policy}
    if dry_run:
        duration["dryRun"] = True
    return [duration, {"name": RATE, "thresholdRange": {"min": 99}, "interval": "30s"}]


def manifest(**overrides: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "stepWeight": 10,
        "maxWeight": 30,
        "threshold": 2,
        "webhooks": None,
        "metrics": metrics(),
        "progress_deadline_s": 100,
    }
    options.update(overrides)
    return canary(**options)


def new_run(document: dict[str, Any], answers: dict[str, list[CheckResult]]) -> World:
    w = initialized(document, answer=Script(answers))
    w.change_target("rev-2")
    w.events.clear()
    w.alerts.clear()
    return w


def timeline(world: World) -> list[tuple[float, str, str]]:
    start = world.events[0][0]
    return [((at - start).total_seconds(), event.type, event.message) for at, event in world.events]


def steps(world: World) -> list[tuple[float, str]]:
    """The run's events up to the promotion, without the dry-run ones."""
    return [
        (at, message) for at, _type, message in timeline(world) if not message.startswith("Dry-run metric")
    ][: len(STEPS)]


def dry_run_events(world: World) -> list[tuple[float, str, str]]:
    return [row for row in timeline(world) if row[2].startswith("Dry-run metric")]


def entries(world: World, check: str) -> list[dict[str, Any]]:
    return [e for e in world.status["ledger"]["entries"] if e["check"] == check]


def never_waited_on(world: World, check: str) -> None:
    """No status written during the run waited on ``check``, nor counted a failed check."""
    for status in world.status_history:
        wait = status.get("wait") or {}
        assert wait.get("check") != check, wait
        assert status.get("failedChecks", 0) == 0, status


# ---------------------------------------------------------------------------------------------- a failing dry-run metric


def test_a_failing_dry_run_metric_beside_a_passing_one_lets_the_run_succeed() -> None:
    world = new_run(manifest(), {DURATION: [SLOW], RATE: [GOOD_RATE]})
    world.run_until(lambda w: w.phase == "Succeeded")
    # the steps come exactly as in a run without the dry-run metric
    assert steps(world) == STEPS
    # each analysis step after the first says what the dry-run metric would have done, as a Normal event
    assert dry_run_events(world) == [
        (35.0, "Normal", WOULD_HALT),
        (65.0, "Normal", WOULD_HALT),
        (95.0, "Normal", WOULD_HALT),
    ]
    assert not [row for row in timeline(world) if row[1] == "Warning"]
    assert world.status["failedChecks"] == 0
    never_waited_on(world, DURATION)
    assert [a.severity for _, a in world.alerts] == ["info", "info"]  # new revision, promotion completed
    assert_one_status_write_per_decision(world)


def test_the_ledger_records_a_dry_run_metric_like_any_other_and_says_it_was_dry_run() -> None:
    world = new_run(manifest(), {DURATION: [SLOW], RATE: [GOOD_RATE]})
    world.run_until(lambda w: w.phase == "Succeeded")
    durations = entries(world, DURATION)
    assert [(e["weight"], e["result"], e["verdict"], e["value"]) for e in durations] == [
        (10, "value", "fail", 612),
        (20, "value", "fail", 612),
        (30, "value", "fail", 612),
    ]
    assert all(e["dryRun"] is True for e in durations)
    assert durations[0]["max"] == 500
    assert durations[0]["message"] == "Halt podinfo.test advancement request duration 612ms > 500ms"
    # the real metric's entries carry no dryRun field
    rates = entries(world, RATE)
    assert [e["verdict"] for e in rates] == ["pass"] * 3
    assert not any("dryRun" in e for e in rates)
    # the ledger of a succeeded run has no evidence of failure: the dry-run failures were not the run's
    end = world.status["ledger"]["end"]
    assert (end["phase"], end["failedChecks"], end.get("evidence")) == ("Succeeded", 0, None)
    summary = {s["check"]: s for s in world.status["ledger"]["summary"]}
    assert (summary[DURATION]["count"], summary[DURATION]["failures"]) == (3, 3)


def test_a_passing_dry_run_metric_emits_nothing() -> None:
    world = new_run(manifest(), {DURATION: [FAST], RATE: [GOOD_RATE]})
    world.run_until(lambda w: w.phase == "Succeeded")
    assert steps(world) == STEPS
    assert dry_run_events(world) == []
    durations = entries(world, DURATION)
    assert [(e["verdict"], e["dryRun"]) for e in durations] == [("pass", True)] * 3


def test_explain_marks_the_dry_run_checks() -> None:
    world = new_run(manifest(), {DURATION: [SLOW], RATE: [GOOD_RATE]})
    world.run_until(lambda w: w.phase == "Succeeded")
    resource = Canary.model_validate({**world.manifest, "status": world.status})
    text = explain_text(resource, [])
    assert "✗ request-duration 612ms > 500ms (dry-run)" in text
    assert "✓ request-success-rate 99.9%" in text
    assert "request-success-rate 99.9% (dry-run)" not in text
    [line] = [line for line in text.splitlines() if line.lstrip().startswith(DURATION + " ")]
    assert line.split()[:2] == [DURATION, "(dry-run)"]
    # the run's line counts the checks that failed it, and the dry-run failures apart
    assert "6 checks, 0 failed, 3 failed dry-run" in text


# ---------------------------------------------------------------------------------------------- no data, provider errors


def test_a_dry_run_metric_without_data_neither_fails_nor_holds() -> None:
    world = new_run(manifest(), {DURATION: [NO_DATA], RATE: [GOOD_RATE]})
    world.run_until(lambda w: w.phase == "Succeeded")
    assert steps(world) == STEPS
    halted = (
        "Dry-run metric request-duration would have halted podinfo.test advancement: no values found for "
        "istio metric request-duration probably podinfo.test is not receiving traffic: running query "
        "failed: no values found"
    )
    assert dry_run_events(world) == [
        (35.0, "Normal", halted),
        (65.0, "Normal", halted),
        (95.0, "Normal", halted),
    ]
    never_waited_on(world, DURATION)
    assert [(e["result"], e["dryRun"]) for e in entries(world, DURATION)] == [("noData", True)] * 3


def test_a_dry_run_hold_metric_without_data_does_not_hold_the_step() -> None:
    world = new_run(manifest(metrics=metrics(noData="hold")), {DURATION: [NO_DATA], RATE: [GOOD_RATE]})
    world.run_until(lambda w: w.phase == "Succeeded")
    assert steps(world) == STEPS
    held = (
        "Dry-run metric request-duration would have held podinfo.test advancement for data (noData: hold): "
        "no values found for istio metric request-duration probably podinfo.test is not receiving traffic: "
        "running query failed: no values found"
    )
    assert [message for _, _, message in dry_run_events(world)] == [held] * 3
    never_waited_on(world, DURATION)


def test_a_dry_run_metric_whose_provider_errs_holds_nothing_past_max_provider_errors() -> None:
    # maxProviderErrors 0: the first error of a real metric would end the run
    world = new_run(manifest(maxProviderErrors=0), {DURATION: [ERROR], RATE: [GOOD_RATE]})
    world.run_until(lambda w: w.phase == "Succeeded")
    assert steps(world) == STEPS
    erred = (
        "Dry-run metric request-duration would have held podinfo.test advancement on a provider error: "
        + ERROR.message
    )
    assert dry_run_events(world) == [
        (35.0, "Normal", erred),
        (65.0, "Normal", erred),
        (95.0, "Normal", erred),
    ]
    never_waited_on(world, DURATION)
    assert [(e["result"], e["dryRun"]) for e in entries(world, DURATION)] == [("error", True)] * 3
    assert world.status["ledger"]["end"]["phase"] == "Succeeded"


# ---------------------------------------------------------------------------------------------- real metrics


def test_a_failing_metric_that_is_not_dry_run_still_fails_the_run() -> None:
    world = new_run(manifest(metrics=metrics(dry_run=False)), {DURATION: [SLOW], RATE: [GOOD_RATE]})
    world.run_until(lambda w: w.phase == "Failed")
    halt = "Halt podinfo.test advancement request duration 612ms > 500ms"
    assert [(at, kind, message) for at, kind, message in timeline(world)] == [
        (0.0, "Normal", "New revision detected! Scaling up podinfo.test"),
        (5.0, "Normal", "Starting canary analysis for podinfo.test"),
        (5.0, "Normal", "Advance podinfo.test canary weight 10"),
        (35.0, "Warning", halt),
        (65.0, "Warning", halt),
        (65.0, "Warning", "Rolling back podinfo.test failed checks threshold reached 2"),
        (65.0, "Warning", "Canary failed! Scaling down podinfo.test"),
    ]
    assert world.status["failedChecks"] == 2
    assert not any("dryRun" in e for e in world.status["ledger"]["entries"])


def test_a_real_metric_fails_the_run_and_a_dry_run_failure_beside_it_is_not_its_evidence() -> None:
    document = manifest(
        metrics=[
            {"name": DURATION, "thresholdRange": {"max": 500}, "interval": "30s", "dryRun": True},
            {"name": RATE, "thresholdRange": {"min": 99}, "interval": "30s"},
        ]
    )
    world = new_run(document, {DURATION: [SLOW], RATE: [LOW_RATE]})
    world.run_until(lambda w: w.phase == "Failed")
    rows = timeline(world)
    low = "Halt podinfo.test advancement success rate 71.20% < 99%"
    # the dry-run metric comes first and says its part; the real one fails the step
    assert rows[3:5] == [(35.0, "Normal", WOULD_HALT), (35.0, "Warning", low)]
    assert world.status["failedChecks"] == 2
    end = world.status["ledger"]["end"]
    assert (end["cause"], end["evidence"]["check"]) == ("FailedChecks", RATE)
    [alert] = [a for _, a in world.alerts if a.severity == "error"]
    assert dict(alert.fields)["Failed check"] == "request-success-rate 71.2% < 99%"


# ---------------------------------------------------------------------------------------------- validation


def test_canarist_validate_accepts_dry_run_and_refuses_a_non_boolean(tmp_path: Path, capsys: Any) -> None:
    import yaml

    document = manifest()
    good = tmp_path / "dry-run.yaml"
    good.write_text(yaml.safe_dump(document))
    assert main(["validate", str(good)]) == 0
    capsys.readouterr()
    document["spec"]["analysis"]["metrics"][0]["dryRun"] = "yes"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr()
    assert "spec.analysis.metrics[0].dryRun: must be a boolean (true or false), got a string" in (
        out.out + out.err
    )
    assert Canary.model_validate(manifest()).analysis().metrics[0].dry_run is True  # type: ignore[union-attr]
