"""`canarist explain` rendering: the statuses and events of runs played by the engine in virtual time
(the e2e suite runs the command as a subprocess against the local control plane)."""

from __future__ import annotations

import json
from typing import Any

from canarist.api import Canary
from canarist.cli.cmd_explain import RunEvent, events_of, explain_json, explain_text
from canarist.cli.main import build_parser
from canarist.engine.simulate import World
from tests.engine.conftest import Script, canary, initialized
from tests.engine.test_ledger import ERROR, NO_DATA, rolled_back, success_rate


def explained(world: World) -> list[str]:
    events = [RunEvent(at, at, 1, event.type, event.message) for at, event in world.events]
    return explain_text(
        Canary.model_validate({**world.manifest, "status": world.status}), events
    ).splitlines()


def test_a_rolled_back_run_names_the_failing_check_first() -> None:
    lines = explained(rolled_back(threshold=3))
    assert lines[0] == (
        "podinfo.test: Failed at weight 30 — request-success-rate 71.2% < 99% (3 of 3 failed checks)"
    )
    assert lines[1] == "  why      Failed checks threshold reached 3 [FailedChecks]"
    assert lines[2].startswith("  query    sum(rate(istio_requests_total")
    assert lines[3] == "  provider prometheus http://prometheus.istio-system:9090"
    assert lines[4].startswith("  run      revision rev-2, started 2024-01-01 ")
    assert lines[4].endswith("12 checks, 3 failed")
    timeline = lines[lines.index("timeline") + 1 : lines.index("checks") - 1]
    failing = [line for line in timeline if "✗" in line]
    assert len(failing) == 3
    assert all("weight 30" in line and "✗ request-success-rate 71.2% < 99%" in line for line in failing)
    # the Halt warnings are the check lines already; the other events are in the timeline
    assert not any("Halt" in line for line in timeline)
    assert any(line.endswith("! Canary failed! Scaling down podinfo.test") for line in timeline)
    assert lines[-2].split()[:5] == ["request-success-rate", "5", "checks,", "3", "failed;"]


def test_a_running_canary_shows_its_step_and_last_failure() -> None:
    answers = Script(
        {"request-success-rate": [success_rate(99.5), NO_DATA, NO_DATA, ERROR, success_rate(99.9)]}
    )
    world = initialized(canary(stepWeight=10, threshold=5), answer=answers)
    world.change_target("rev-2")
    # a provider error holds the step without a failed check (status.wait says so)
    world.run_until(lambda w: (w.status.get("wait") or {}).get("reason") == "ProviderErrors")
    lines = explained(world)
    assert lines[0] == (
        "podinfo.test: Progressing at weight 20 — last failure request-success-rate: error: "
        f"{ERROR.message} (2 of 5 failed checks)"
    )
    summary = next(line for line in lines if line.lstrip().startswith("request-success-rate "))
    assert "4 checks, 3 failed, 2 no data, 1 errors; last error fail" in summary
    # what the run waits on, and until when, from status.wait
    waiting = next(line for line in lines if line.startswith("  waiting  "))
    assert waiting.startswith("  waiting  ProviderErrors on request-success-rate since "), waiting
    assert ", deadline " in waiting, waiting


def test_a_promoted_run_and_a_canary_without_a_ledger() -> None:
    world = initialized(canary(stepWeight=50))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    lines = explained(world)
    assert lines[0] == "podinfo.test: Succeeded — Canary analysis completed successfully, promotion finished."

    flagger = Canary.model_validate({**world.manifest, "status": {"phase": "Succeeded", "canaryWeight": 0}})
    assert explain_text(flagger, []).splitlines() == [
        "podinfo.test: Succeeded",
        "  run      no decision ledger yet (no run under canarist since this canary was created)",
    ]


def test_a_long_run_says_how_many_entries_were_left_out() -> None:
    world = initialized(canary(stepWeight=1, maxWeight=40))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    lines = explained(world)
    dropped = world.status["ledger"]["dropped"]
    assert f"     …  {dropped} earlier checks not kept (counted in the summary)" in lines


def test_json_output_is_the_structured_ledger() -> None:
    world = rolled_back(threshold=3)
    manifest = {**world.manifest, "status": world.status}
    items: list[dict[str, Any]] = [
        {
            "involvedObject": {"kind": "Canary", "name": "podinfo", "namespace": "test"},
            "type": "Warning",
            "message": "Canary failed! Scaling down podinfo.test",
            "firstTimestamp": "2024-01-01T00:02:40Z",
            "lastTimestamp": "2024-01-01T00:02:40Z",
            "count": 1,
        },
        {"involvedObject": {"kind": "Deployment", "name": "podinfo"}, "message": "not about the canary"},
    ]
    out = explain_json(Canary.model_validate(manifest), events_of(items, "podinfo"))
    json.dumps(out)  # printable as is
    assert out["ledger"] == world.status["ledger"]
    assert (out["phase"], out["failedChecks"], out["threshold"]) == ("Failed", 3, 3)
    assert out["headline"].startswith("podinfo.test: Failed at weight 30")
    assert [e["message"] for e in out["events"]] == ["Canary failed! Scaling down podinfo.test"]


def test_the_command_is_registered() -> None:
    args = build_parser().parse_args(["explain", "podinfo", "-n", "test", "-o", "json"])
    assert (args.command, args.name, args.namespace, args.output) == ("explain", "podinfo", "test", "json")
