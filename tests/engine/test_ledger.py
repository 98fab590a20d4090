"""The decision ledger (``status.ledger``): what each check was and what came back, per run, bounded,
durable in the status, and the evidence of the failing check in the rollback alert."""

from __future__ import annotations

import copy
from typing import Any

from canarist.api import Canary
from canarist.engine import ledger
from canarist.engine.model import Check, CheckResult, WriteStatus
from canarist.engine.simulate import World
from tests.engine.conftest import Script, assert_one_status_write_per_decision, canary, hook, initialized

QUERY = 'sum(rate(istio_requests_total{destination_workload="podinfo",response_code!~"5.*"}[30s]))'
PROMETHEUS = "prometheus http://prometheus.istio-system:9090"


def success_rate(value: float) -> CheckResult:
    """A request-success-rate answer as the runtime gives it (threshold 99 %)."""
    ok = value >= 99
    message = "" if ok else f"Halt podinfo.test advancement success rate {value:.2f}% < 99%"
    return CheckResult(
        ok=ok,
        message=message,
        value=value,
        query=QUERY,
        provider=PROMETHEUS,
        threshold_min=99.0,
        unit="%",
        duration_s=0.012,
    )


NO_DATA = CheckResult(
    ok=False,
    message="Halt advancement no values found for istio metric request-success-rate probably "
    "podinfo.test is not receiving traffic: running query failed: no values found",
    no_data=True,
    query=QUERY,
    provider=PROMETHEUS,
    threshold_min=99.0,
    unit="%",
)
ERROR = CheckResult(
    ok=False,
    message="Prometheus query failed: running query failed: request to http://prometheus:9090/api/v1/query "
    "failed: Cannot connect to host prometheus:9090",
    error=True,
    query=QUERY,
    provider=PROMETHEUS,
    threshold_min=99.0,
    unit="%",
)


def ledger_of(world: World) -> dict[str, Any]:
    return dict(world.status["ledger"])


def checks_of(entries: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["check"] == name]


def rolled_back(threshold: int = 3) -> World:
    """Two good steps, then the success rate drops to 71.2 % until the threshold rolls the canary back."""
    answers = Script({"request-success-rate": [success_rate(99.5), success_rate(99.9), success_rate(71.2)]})
    world = initialized(canary(stepWeight=10, threshold=threshold), answer=answers)
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Failed")
    return world


def test_every_check_of_a_run_is_recorded_with_its_step_and_evidence() -> None:
    world = rolled_back()
    book = ledger_of(world)
    assert book["revision"] == "rev-2"
    assert book["dropped"] == 0
    rates = checks_of(book["entries"], "request-success-rate")
    # the first analysis step runs at weight 10 (the first tick is the start, at weight 0, with no checks)
    assert [(e["weight"], e["verdict"], e.get("value")) for e in rates] == [
        (10, "pass", 99.5),
        (20, "pass", 99.9),
        (30, "fail", 71.2),
        (30, "fail", 71.2),
        (30, "fail", 71.2),
    ]
    last = rates[-1]
    assert last == {
        "at": last["at"],
        "check": "request-success-rate",
        "kind": "metric",
        "weight": 30,
        "iteration": 0,
        "result": "value",
        "verdict": "fail",
        "value": 71.2,
        "unit": "%",
        "min": 99.0,
        "query": QUERY,
        "provider": PROMETHEUS,
        "durationSeconds": 0.012,
        "message": "Halt podinfo.test advancement success rate 71.20% < 99%",
    }
    # a failed metric ends the analysis of its tick: request-duration is asked only on the good steps
    assert [e["weight"] for e in checks_of(book["entries"], "request-duration")] == [10, 20]
    hooks = checks_of(book["entries"], "load-test")
    assert {(e["kind"], e.get("type"), e["verdict"]) for e in hooks} == {("webhook", None, "pass")}
    summary = {s["check"]: s for s in book["summary"]}
    assert summary["request-success-rate"] == {
        "check": "request-success-rate",
        "kind": "metric",
        "count": 5,
        "failures": 3,
        "noData": 0,
        "errors": 0,
        "lastAt": last["at"],
        "lastResult": "value",
        "lastVerdict": "fail",
        "lastValue": 71.2,
        "unit": "%",
    }
    assert summary["load-test"]["count"] == 5
    # each entry is stamped with the time of its tick, in the order the ticks happened
    stamps = [e["at"] for e in book["entries"]]
    assert stamps == sorted(stamps)


def test_the_rollback_carries_the_failing_evidence_and_keeps_flaggers_messages() -> None:
    world = rolled_back()
    end = ledger_of(world)["end"]
    assert end["phase"] == "Failed"
    assert end["reason"] == "Failed checks threshold reached 3"
    assert (end["failedChecks"], end["threshold"]) == (3, 3)
    assert end["evidence"]["check"] == "request-success-rate"
    assert end["evidence"]["value"] == 71.2
    # Flagger's texts are unchanged
    assert world.messages().count("Halt podinfo.test advancement success rate 71.20% < 99%") == 3
    assert "Rolling back podinfo.test failed checks threshold reached 3" in world.messages()
    [alert] = [a for _, a in world.alerts if a.message == "Failed checks threshold reached 3"]
    assert alert.severity == "error"
    fields = dict(alert.fields)
    assert fields["Failed check"] == "request-success-rate 71.2% < 99%"
    assert fields["Step"] == "weight 30"
    assert fields["Query"] == QUERY
    assert fields["Provider"] == PROMETHEUS
    assert_one_status_write_per_decision(world)


def test_the_pending_alert_keeps_its_evidence_through_a_crash() -> None:
    """The rollback decision is cut after its first status write (the record with everything pending):
    the restarted operator replays the alert with the same evidence fields."""
    answers = Script({"request-success-rate": [success_rate(99.5), success_rate(71.2)]})
    world = initialized(canary(stepWeight=10, threshold=2), answer=answers)
    world.change_target("rev-2")

    def after_pending_write(decision: Any) -> int | None:
        for index, action in enumerate(decision.actions):
            if isinstance(action, WriteStatus) and (action.status.get("decision") or {}).get("pending"):
                return index + 1
        return None

    world.interrupt(after_pending_write, crash=True)
    world.run_until(lambda w: w.phase == "Failed" and not (w.status.get("decision") or {}).get("pending"))
    [alert] = [a for _, a in world.alerts if a.message == "Failed checks threshold reached 2"]
    assert dict(alert.fields)["Failed check"] == "request-success-rate 71.2% < 99%"


def test_no_data_error_and_value_are_three_outcomes() -> None:
    answers = Script({"request-success-rate": [success_rate(99.5), NO_DATA, ERROR, success_rate(71.2)]})
    world = initialized(canary(stepWeight=10, threshold=3), answer=answers)
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Failed")
    rates = checks_of(ledger_of(world)["entries"], "request-success-rate")
    assert [(e["result"], e["verdict"], e.get("value")) for e in rates] == [
        ("value", "pass", 99.5),
        ("noData", "fail", None),
        ("error", "fail", None),
        ("value", "fail", 71.2),
        ("value", "fail", 71.2),
    ]
    assert rates[2]["message"].startswith("Prometheus query failed: running query failed")
    summary = {s["check"]: s for s in ledger_of(world)["summary"]}["request-success-rate"]
    assert (summary["count"], summary["failures"], summary["noData"], summary["errors"]) == (5, 4, 1, 1)
    # no data is a failed check (noData: fail, the default); a provider error is not: it holds the step
    # with its own message (test_waits.py), so three failed checks took the two bad values
    assert NO_DATA.message in world.messages()
    assert (
        "Halt podinfo.test advancement metric request-success-rate provider error (1 in a row, 4 "
        f"tolerated): {ERROR.message}"
    ) in world.messages()
    assert world.status["failedChecks"] == 3


def test_the_ledger_is_bounded() -> None:
    world = initialized(canary(stepWeight=1, maxWeight=40))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    book = ledger_of(world)
    # 40 analysis steps (weights 1 to 40), each asking the load test and two metrics: 120 answers
    total = sum(s["count"] for s in book["summary"])
    assert len(book["entries"]) == ledger.MAX_ENTRIES
    assert book["dropped"] == total - ledger.MAX_ENTRIES > 0
    assert book["end"]["phase"] == "Succeeded"
    assert book["end"]["reason"] == "Canary analysis completed successfully, promotion finished."
    assert "evidence" not in book["end"]
    # the newest entries are kept
    assert book["entries"][-1]["weight"] == 40


def test_a_new_run_starts_a_new_ledger() -> None:
    world = rolled_back()
    assert ledger_of(world)["revision"] == "rev-2"
    world.answer = Script()  # the fixed revision passes every check
    world.at(60, lambda w: w.change_target("rev-3"))
    world.run_until(lambda w: w.phase == "Progressing")
    book = ledger_of(world)
    assert book["revision"] == "rev-3"
    assert (book["entries"], book["summary"], book.get("end")) == ([], [], None)
    world.run_until(lambda w: w.phase == "Succeeded")
    assert all(e["verdict"] == "pass" for e in ledger_of(world)["entries"])


def test_a_restart_on_a_new_revision_starts_a_new_ledger() -> None:
    world = initialized(canary(stepWeight=10))
    world.change_target("rev-2")
    world.run_until(lambda w: w.status.get("canaryWeight") == 30)
    assert ledger_of(world)["entries"]
    world.change_target("rev-3")
    world.run_until(lambda w: any("Restarting analysis" in m for m in w.messages()))
    book = ledger_of(world)
    assert (book["revision"], book["entries"]) == ("rev-3", [])


def test_the_ledger_survives_a_restart_from_the_status_alone() -> None:
    reference = rolled_back()

    answers = Script({"request-success-rate": [success_rate(99.5), success_rate(99.9), success_rate(71.2)]})
    first = initialized(canary(stepWeight=10, threshold=3), answer=answers)
    first.change_target("rev-2")
    first.run_until(lambda w: w.status.get("canaryWeight") == 20)
    # the status goes through the API model (what the API server and a new operator read back)
    status = Canary.model_validate({**first.manifest, "status": first.status}).status.to_dict()
    assert status["ledger"] == first.status["ledger"]
    rest = Script({"request-success-rate": [success_rate(99.9), success_rate(71.2)]})
    second = World(
        {**first.manifest, "status": copy.deepcopy(status)}, revision="rev-2", now=first.now, answer=rest
    )
    second.primary, second.routes, second.target = first.primary, first.routes, first.target
    second.run_until(lambda w: w.phase == "Failed")
    assert ledger_of(second) == ledger_of(reference)


def test_a_closed_gate_is_recorded_once_and_writes_nothing_while_it_stays_closed() -> None:
    gate = hook("approve", "confirm-rollout")
    closed = CheckResult(ok=False, message="Forbidden", url=gate["url"], http_status=403, body="Forbidden")
    opened = CheckResult(ok=True, message="status 200", url=gate["url"], http_status=200, body="Approved")
    answers = Script({"approve": [closed, closed, closed, closed, opened]})
    world = initialized(canary(stepWeight=25, webhooks=[gate], progress_deadline_s=600), answer=answers)
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Progressing")
    assert world.phases()[-2:] == ["Waiting", "Progressing"]
    gates = checks_of(ledger_of(world)["entries"], "approve")
    assert [(e["verdict"], e["httpStatus"], e["body"]) for e in gates] == [
        ("fail", 403, "Forbidden"),
        ("pass", 200, "Approved"),
    ]
    assert gates[0]["type"] == "confirm-rollout"
    assert gates[0]["url"] == gate["url"]
    # the retries while Waiting wrote no status (the gate was asked five times)
    waiting = [t for t in world.history if any(c.name == "approve" for c in t.asked)]
    assert len(waiting) == 5
    writes = [t for t in waiting if any(isinstance(a, WriteStatus) for a in t.decision.actions)]
    assert len(writes) == 2  # the tick that closed (Waiting) and the one that opened (Progressing)


def test_entries_never_carry_credentials_nan_or_unbounded_text() -> None:
    check = Check("webhook", "load-test", "", "Progressing")
    result = CheckResult(
        ok=False,
        message="x" * 5000,
        url="http://user:secret@loadtester.test:8080/hook?x=1",
        http_status=500,
        body="é" * 1000,
        duration_s=0.1234567,
    )
    entry = ledger.entry_of(check, result, at="2024-01-01T00:00:00Z", weight=5, iteration=0)
    assert entry.url == "http://loadtester.test:8080/hook?x=1"
    assert len(entry.message) == ledger.MAX_MESSAGE
    assert len(entry.body.encode()) <= ledger.MAX_BODY_BYTES
    assert entry.duration_seconds == 0.123
    assert ledger.evidence_line(entry).startswith("load-test (rollout) HTTP 500: éé")
    metric = Check("metric", "request-duration")
    infinite = CheckResult(ok=False, message="Halt ... is not a finite duration", value=float("inf"))
    assert ledger.entry_of(metric, infinite, at="", weight=0, iteration=0).value is None
    provider = CheckResult(ok=True, value=1.0, provider="prometheus https://admin:pw@prom.example/")
    assert ledger.entry_of(metric, provider, at="", weight=0, iteration=0).provider == (
        "prometheus https://prom.example/"
    )


def test_the_providers_probe_is_not_part_of_a_run() -> None:
    world = initialized(canary())
    assert "ledger" not in world.status
