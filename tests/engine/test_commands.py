"""Runtime commands in the engine (issue 15, item 1; docs/control.md), in virtual time.

The seed canary: interval 30 s, stepWeight 5 up to 50. Each story starts a run of rev-2 and lets it reach a
weight before a person's command arrives; a command is consumed once (``status.commands``), applies only in
the phases it names, and says who asked and why in the event, the alert and the record.
"""

from __future__ import annotations

from datetime import timedelta

from canarist.engine.simulate import World
from tests.engine.conftest import (
    SEED,
    Script,
    assert_one_status_write_per_decision,
    canary,
    fail,
    hook,
    initialized,
)

ALICE = {"requested_by": "alice@example.com", "reason": "latency regression in the EU dashboards"}


def running(manifest: dict[str, object] = SEED, *, weight: int = 10, **world: object) -> World:
    w = initialized(manifest, **world)  # type: ignore[arg-type]
    w.change_target("rev-2")
    w.run_until(lambda w: w.status.get("canaryWeight") == weight)
    w.events.clear()
    w.alerts.clear()
    return w


def outcome(w: World, command: object) -> tuple[str, str]:
    record = w.command_record(command)  # type: ignore[arg-type]
    assert record is not None, "the command was not consumed"
    return record["outcome"], record["message"]


def test_abort_rolls_back_at_once_and_says_who_and_why() -> None:
    w = running()
    abort = w.command("abort", **ALICE)
    w.tick()
    assert w.phase == "Failed"
    assert outcome(w, abort) == ("Applied", "rolled back at weight 10")
    assert w.routes is not None
    assert (w.routes.primary, w.routes.canary) == (100, 0)
    assert w.target.replicas == 0
    end = w.status["ledger"]["end"]
    assert end["cause"] == "Aborted"
    assert "alice@example.com" in end["reason"]
    assert "latency regression" in end["reason"]
    ended = next(c for c in w.status["conditions"] if c["type"] == "Ended")
    assert (ended["status"], ended["reason"]) == ("True", "Aborted")
    assert w.messages()[0] == (
        "podinfo.test abort requested by alice@example.com (latency regression in the EU dashboards): rolling back"
    )
    assert "Canary failed! Scaling down podinfo.test" in w.messages()
    alert = w.alerts[0][1]
    assert alert.severity == "error"
    assert ("Requested by", "alice@example.com") in alert.fields
    assert ("Reason", "Aborted") in alert.fields
    assert_one_status_write_per_decision(w)


def test_a_command_that_does_not_apply_is_refused_once_with_a_reason() -> None:
    w = running()
    w.run_until(lambda w: w.phase == "Succeeded")
    w.events.clear()
    abort = w.command("abort", **ALICE)
    resume = w.command("resume")
    w.run(120)
    assert outcome(w, abort) == ("Refused", "abort: there is no run under way (phase Succeeded)")
    assert outcome(w, resume)[0] == "Refused"
    refusals = [m for m in w.messages() if "refused" in m]
    assert refusals == [
        "podinfo.test abort requested by alice@example.com (latency regression in the EU dashboards) refused: "
        "abort: there is no run under way (phase Succeeded)",
        "podinfo.test resume requested by an unknown user refused: resume: there is no run under way (phase Succeeded)",
    ]
    assert w.phase == "Succeeded"
    assert len(w.status["commands"]) == 2


def test_pause_holds_the_weight_past_the_progress_deadline_and_resume_continues() -> None:
    w = running()
    pause = w.command("pause", **ALICE)
    w.tick()
    assert outcome(w, pause) == ("Applied", "held at weight 10 until resumed")
    assert w.status["hold"]["action"] == "pause"
    assert w.status["hold"]["requestedBy"] == "alice@example.com"
    # an hour held: no step, no check asked, no deadline (600 s) running out
    asked_before = sum(len(t.asked) for t in w.history)
    w.run(3600)
    assert w.phase == "Progressing"
    assert w.status["canaryWeight"] == 10
    assert sum(len(t.asked) for t in w.history) == asked_before
    assert "wait" not in w.status
    held = len(w.weights())
    resume = w.command("resume")
    w.run_until(lambda w: w.phase == "Succeeded")
    assert outcome(w, resume) == ("Applied", "resumed at weight 10")
    assert "hold" not in w.status
    assert w.weights()[held : held + 8] == [15, 20, 25, 30, 35, 40, 45, 50]


def test_set_weight_moves_traffic_now_and_holds_it() -> None:
    w = running()
    command = w.command("set-weight", weight=35)
    w.tick()
    assert outcome(w, command) == ("Applied", "canary weight set to 35 and held until resumed")
    assert w.routes is not None
    assert (w.routes.primary, w.routes.canary) == (65, 35)
    w.run(600)
    assert w.status["canaryWeight"] == 35
    assert w.phase == "Progressing"
    w.command("resume")
    w.run_until(lambda w: w.status.get("canaryWeight") == 40)
    assert w.phase == "Progressing"


def test_set_weight_is_refused_out_of_range_and_for_ab_tests() -> None:
    w = running()
    command = w.command("set-weight", weight=140)
    w.tick()
    assert outcome(w, command) == ("Refused", "set-weight: the weight must be 0-100 (got 140)")
    assert w.status["canaryWeight"] == 10


def test_promote_skips_the_remaining_steps() -> None:
    w = running()
    promote = w.command("promote", **ALICE)
    w.run_until(lambda w: w.phase == "Succeeded", limit_s=60)
    assert outcome(w, promote)[0] == "Applied"
    assert w.weights()[-1] == 0
    assert max(w.weights()) == 10
    assert "Copying podinfo.test template spec to podinfo-primary.test" in w.messages()
    assert w.status["lastPromotedSpec"] == "rev-2"


def test_promote_waits_for_confirm_promotion_unless_forced() -> None:
    gate = hook("approve", "confirm-promotion")
    manifest = canary(webhooks=[gate])
    answers = Script({"approve": [fail("closed")]})
    w = running(manifest, answer=answers)
    w.command("promote")
    w.run(30)  # less than the seed's progress deadline (60 s), which a closed gate runs out at
    assert w.phase == "WaitingPromotion"
    assert w.status["hold"]["action"] == "promote"
    forced = w.command("promote", force=True)
    w.run_until(lambda w: w.phase == "Succeeded", limit_s=60)
    assert outcome(w, forced)[0] == "Applied"


def test_retry_starts_the_failed_revision_again_without_a_template_change() -> None:
    w = running()
    w.command("abort")
    w.run_until(lambda w: w.phase == "Failed")
    w.run(120)
    assert w.phase == "Failed"  # nothing changed: a failed revision stays failed
    retry = w.command("retry", reason="the database was down")
    w.run_until(lambda w: w.phase == "Succeeded")
    assert outcome(w, retry) == ("Applied", "starting a new run of revision rev-2")
    assert w.status["lastPromotedSpec"] == "rev-2"
    assert "New revision detected! Scaling up podinfo.test" in w.messages()


def test_a_command_is_applied_once_across_operator_restarts() -> None:
    w = running()
    pause = w.command("pause")
    w.tick()
    for _ in range(3):
        w.restart_operator()
        w.run(90)
    resume = w.command("resume")
    w.tick()
    w.restart_operator()
    w.run(300)
    records = [c["uid"] for c in w.status["commands"]]
    assert records == [pause.uid, resume.uid]
    assert sum("pause requested" in m for m in w.messages()) == 1
    assert sum("resume requested" in m for m in w.messages()) == 1


def test_a_command_cut_before_its_status_write_is_applied_by_the_next_tick() -> None:
    """The operator dies before the status write that records the command: nothing of it happened, so the
    next tick applies it (once)."""
    w = running()
    abort = w.command("abort")
    w.interrupt(lambda decision: 0, crash=True)
    w.tick()
    assert w.phase == "Progressing"
    assert w.command_record(abort) is None
    w.restart_operator()
    w.tick()
    assert w.phase == "Failed"
    assert outcome(w, abort)[0] == "Applied"
    w.now += timedelta(seconds=60)
    w.tick()
    assert len(w.status["commands"]) == 1
