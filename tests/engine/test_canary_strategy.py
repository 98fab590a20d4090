"""Stories of the progressive (canary) strategy, driven through decide() in virtual time."""

from __future__ import annotations

import itertools
from datetime import timedelta

from canarist.engine.model import CheckResult, EngineSettings, Routes
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


def seconds_since(world: World, start: object) -> list[tuple[float, str]]:
    return [((at - start).total_seconds(), event.message) for at, event in world.events]  # type: ignore[operator]


def test_seed_walkthrough_init_new_revision_ten_steps_promotion() -> None:
    world = World(SEED)
    world.run_until(lambda w: w.phase == "Initialized")
    assert world.messages() == [
        "all the metrics providers are available!",
        "podinfo-primary.test not ready: waiting for rollout to finish: 0 out of 1 new replicas have been updated",
        "all the metrics providers are available!",
        "Initialization done! podinfo.test",
    ]
    assert world.alert_messages() == ["New Deployment detected, initialization completed."]
    assert world.target.replicas == 0
    assert world.status["lastAppliedSpec"] == world.status["lastPromotedSpec"] == "rev-1"

    world.run(20)
    start = world.now
    world.change_target("rev-2")
    world.events.clear()
    world.alerts.clear()
    world.run_until(lambda w: w.phase == "Succeeded")

    assert seconds_since(world, start) == [
        (0, "New revision detected! Scaling up podinfo.test"),
        # the canary took 5 s to roll out: the first step comes then, not one interval later
        (5, "Starting canary analysis for podinfo.test"),
        (5, "Advance podinfo.test canary weight 5"),
        *[(5 + 30 * i, f"Advance podinfo.test canary weight {5 * (i + 1)}") for i in range(1, 10)],
        (305, "Copying podinfo.test template spec to podinfo-primary.test"),  # 5 s + 10 steps x 30 s
        (310, "Routing all traffic to primary"),  # the primary took 5 s to roll out
        (310, "Promotion completed! Scaling down podinfo.test"),
    ]
    assert world.alert_messages() == [
        "New revision detected, progressing canary analysis.",
        "Canary analysis completed successfully, promotion finished.",
    ]
    assert world.phases() == [
        "Initializing",
        "Initialized",
        "Progressing",
        "Promoting",
        "Finalising",
        "Succeeded",
    ]
    assert world.routes == Routes(100, 0)
    assert world.target.replicas == 0
    assert world.primary is not None
    assert world.primary.revision == "rev-2"
    assert world.status["lastPromotedSpec"] == "rev-2"
    assert [o.outcome for o in world.outcomes] == ["success"]
    assert world.post_rollouts == ["Succeeded"]
    assert_one_status_write_per_decision(world)


def test_each_analysis_tick_asks_rollout_hooks_then_metrics_in_order() -> None:
    script = Script()
    world = initialized(SEED, answer=script)
    world.change_target("rev-2")
    world.run_until(lambda w: w.status.get("canaryWeight") == 10)
    analysis_tick = world.history[-1]
    assert [(c.kind, c.name, c.webhook_type, c.phase) for c in analysis_tick.asked] == [
        ("webhook", "load-test", "", "Progressing"),
        ("metric", "request-success-rate", "", ""),
        ("metric", "request-duration", "", ""),
    ]
    starting = next(
        t
        for t in world.history
        if any(getattr(a, "message", "").startswith("Starting canary analysis") for a in t.decision.actions)
    )
    assert starting.asked == []  # the first step runs pre-rollout hooks only (there are none), no metric


def test_failing_rollout_hook_stops_before_any_metric_query() -> None:
    script = Script({"load-test": [CheckResult(True), CheckResult(False, "connection refused")]})
    world = initialized(SEED, answer=script)
    world.change_target("rev-2")
    world.run_until(lambda w: w.status.get("failedChecks") == 1)
    assert [c.name for c in world.history[-1].asked] == ["load-test"]
    assert world.messages()[-1] == (
        "Halt podinfo.test advancement external check load-test failed connection refused"
    )


SUCCESS_RATES = ["69.17", "61.39", "55.06", "47.00", "37.00"]
DURATIONS = ["1.515s", "1.600s", "1.915s", "2.050s", "2.515s"]


def test_seed_rollback_after_ten_failed_checks() -> None:
    passing = CheckResult(ok=True, value=100)
    # the first step runs pre-rollout hooks only; the metrics pass at weights 5 and 10, then fail
    success_rate = [passing] * 2 + [
        CheckResult(False, f"Halt podinfo.test advancement success rate {r}% < 99%") for r in SUCCESS_RATES
    ]
    duration = [passing] * 2 + [
        CheckResult(False, f"Halt podinfo.test advancement request duration {d} > 500ms") for d in DURATIONS
    ]
    world = initialized(
        SEED, answer=Script({"request-success-rate": [*success_rate, passing], "request-duration": duration})
    )
    world.change_target("rev-2")
    world.events.clear()
    world.alerts.clear()
    world.run_until(lambda w: w.phase == "Failed")

    assert world.messages() == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary weight 5",
        "Advance podinfo.test canary weight 10",
        "Advance podinfo.test canary weight 15",
        *[f"Halt podinfo.test advancement success rate {r}% < 99%" for r in SUCCESS_RATES],
        *[f"Halt podinfo.test advancement request duration {d} > 500ms" for d in DURATIONS],
        "Rolling back podinfo.test failed checks threshold reached 10",
        "Canary failed! Scaling down podinfo.test",
    ]
    assert [(a.message, a.severity) for _, a in world.alerts] == [
        ("New revision detected, progressing canary analysis.", "info"),
        ("Failed checks threshold reached 10", "error"),
    ]
    # The check that reaches the threshold rolls back in the same tick (Flagger waits one more interval).
    times = {event.message: at for at, event in world.events}
    assert (
        times["Rolling back podinfo.test failed checks threshold reached 10"]
        == times[f"Halt podinfo.test advancement request duration {DURATIONS[-1]} > 500ms"]
    )
    assert world.events[-1][1].type == "Warning"
    assert world.events[-1][1].phase == "Failed"
    assert world.routes == Routes(100, 0)
    assert world.target.replicas == 0
    assert world.status["phase"] == "Failed"
    assert world.status["failedChecks"] == 10
    assert world.status["canaryWeight"] == 0
    assert world.status["lastAppliedSpec"] == "rev-2"
    assert world.status["lastPromotedSpec"] == "rev-1"
    condition = world.status["conditions"][0]
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "False",
        "Failed",
        "Canary analysis failed, Deployment scaled to zero.",
    )
    assert [o.outcome for o in world.outcomes] == ["failure"]
    assert world.post_rollouts == ["Failed"]
    assert_one_status_write_per_decision(world)


def test_failed_checks_count_the_whole_run_not_consecutive_failures() -> None:
    flaky = [fail("Halt podinfo.test advancement success rate 90.00% < 99%"), CheckResult(True)]
    world = initialized(
        canary(threshold=2), answer=Script({"request-success-rate": [CheckResult(True), *flaky, *flaky]})
    )
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Failed")
    assert "Rolling back podinfo.test failed checks threshold reached 2" in world.messages()


def test_metric_without_data_never_passes() -> None:
    no_data = CheckResult(
        ok=True,
        no_data=True,
        message="Halt advancement no values found for istio metric request-success-rate probably "
        "podinfo.test is not receiving traffic: running query failed: no values found",
    )
    world = initialized(canary(threshold=2), answer=Script({"request-success-rate": [no_data]}))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Failed")
    assert world.messages().count(no_data.message) == 2
    assert "Advance podinfo.test canary weight 10" not in world.messages()


def test_new_revision_mid_run_restarts_the_analysis() -> None:
    world = initialized(SEED)
    world.change_target("rev-2")
    world.run_until(lambda w: w.status.get("canaryWeight") == 20)
    world.events.clear()
    world.change_target("rev-3")
    restart_at = world.now
    world.run_until(lambda w: w.phase == "Succeeded")

    messages = world.messages()
    assert messages[0] == "New revision detected! Restarting analysis for podinfo.test"
    assert world.events[0][0] == restart_at  # at once, not on the next interval
    assert messages[1:3] == [
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary weight 5",
    ]
    assert world.events[1][0] == restart_at + timedelta(seconds=30)
    assert world.status["lastPromotedSpec"] == "rev-3"
    restarted = next(s for s in world.status_history if s["lastAppliedSpec"] == "rev-3")
    assert (restarted["phase"], restarted["canaryWeight"], restarted["failedChecks"]) == ("Progressing", 0, 0)


def test_config_change_is_a_new_revision() -> None:
    world = initialized(SEED, configs={"configmap/podinfo-config": "aaaa"})
    world.configs["configmap/podinfo-config"] = "bbbb"
    world.run(1)
    assert world.messages()[-1] == "New revision detected! Scaling up podinfo.test"
    assert world.status["trackedConfigs"] == {"configmap/podinfo-config": "bbbb"}


def test_failed_canary_restarts_only_on_a_new_revision() -> None:
    world = initialized(SEED, answer=Script({"request-success-rate": [fail("Halt bad")]}))
    world.update_spec(lambda spec: spec["analysis"].update(threshold=1))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Failed")
    world.answer = Script()
    events = len(world.events)

    world.change_target("rev-1")  # back to the promoted spec: a manual rollback, nothing to analyse
    world.run(120)
    assert len(world.events) == events
    assert world.phase == "Failed"
    assert world.status["lastAppliedSpec"] == "rev-1"

    world.change_target("rev-2")  # the failed spec again: after the revert it is new once more
    world.run(1)
    assert world.messages()[-1] == "New revision detected! Scaling up podinfo.test"


def test_confirm_rollout_gate_holds_a_new_revision_until_approved() -> None:
    gate = hook("confirm-rollout-gate", "confirm-rollout")
    closed = fail("403 Forbidden")
    script = Script({"confirm-rollout-gate": [closed, closed, closed, CheckResult(True)]})
    # the seed's progressDeadlineSeconds is 60: a gate closed for 90 s would end the run (test_waits.py)
    world = initialized(canary(webhooks=[gate], progress_deadline_s=600), answer=script)
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Progressing")

    assert world.messages() == [
        "Halt podinfo.test advancement waiting for approval confirm-rollout-gate",
        "Confirm-rollout check confirm-rollout-gate passed",
        "New revision detected! Scaling up podinfo.test",
    ]
    assert world.alert_messages()[-2:] == [
        "Canary is waiting for approval.",
        "New revision detected, progressing canary analysis.",
    ]
    gate_checks = [c for c in script.asked if c.name == "confirm-rollout-gate"]
    assert [c.phase for c in gate_checks] == ["Initialized", "Waiting", "Waiting", "Waiting"]
    asked_at = [t.at for t in world.history if any(c.name == "confirm-rollout-gate" for c in t.asked)]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(asked_at)] == [30, 30, 30]
    assert "Waiting" in world.phases()


def test_confirm_rollout_alert_can_be_muted() -> None:
    gate = {**hook("gate", "confirm-rollout"), "muteAlert": True}
    world = initialized(canary(webhooks=[gate], progress_deadline_s=600), answer=Script({"gate": [fail()]}))
    world.change_target("rev-2")
    world.run(90)
    assert world.phase == "Waiting"
    assert "Canary is waiting for approval." not in world.alert_messages()


def test_confirm_traffic_increase_gate_before_every_weight_step() -> None:
    gate = hook("traffic-gate", "confirm-traffic-increase")
    script = Script({"traffic-gate": [fail(), fail(), CheckResult(True)]})
    world = initialized(canary(webhooks=[gate], maxWeight=10), answer=script)
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    assert world.messages() == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Halt podinfo.test advancement waiting for traffic increase approval traffic-gate",
        "Starting canary analysis for podinfo.test",
        "Halt podinfo.test advancement waiting for traffic increase approval traffic-gate",
        "Starting canary analysis for podinfo.test",
        "Confirm-traffic-increase check traffic-gate passed",
        "Advance podinfo.test canary weight 5",
        "Confirm-traffic-increase check traffic-gate passed",
        "Advance podinfo.test canary weight 10",
        "Confirm-traffic-increase check traffic-gate passed",  # also on the promoting tick, as Flagger
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Routing all traffic to primary",
        "Promotion completed! Scaling down podinfo.test",
    ]
    assert world.alert_messages().count("Canary traffic increase is waiting for approval.") == 2


def test_confirm_promotion_gate_keeps_analysing_while_waiting() -> None:
    gate = hook("promotion-gate", "confirm-promotion")
    script = Script({"promotion-gate": [fail(), fail(), fail(), CheckResult(True)]})
    world = initialized(canary(webhooks=[gate], maxWeight=10, progress_deadline_s=600), answer=script)
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    assert world.messages() == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary weight 5",
        "Advance podinfo.test canary weight 10",
        "Halt podinfo.test advancement waiting for promotion approval promotion-gate",
        "Confirm-promotion check promotion-gate passed",
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Routing all traffic to primary",
        "Promotion completed! Scaling down podinfo.test",
    ]
    assert world.alert_messages().count("Canary promotion is waiting for approval.") == 1
    assert world.phases()[-5:] == ["Progressing", "WaitingPromotion", "Promoting", "Finalising", "Succeeded"]
    waiting_ticks = [t for t in world.history if any(c.name == "promotion-gate" for c in t.asked)]
    assert len(waiting_ticks) == 4
    for tock in waiting_ticks:  # metrics keep running while promotion waits
        assert [c.name for c in tock.asked][:3] == [
            "request-success-rate",
            "request-duration",
            "promotion-gate",
        ]


def test_rollback_webhook_rolls_back_when_it_answers_success() -> None:
    rollback = hook("manual-rollback", "rollback", url="http://flagger-loadtester.test/rollback/check")
    script = Script({"manual-rollback": [fail("403"), fail("403"), CheckResult(True)]})
    world = initialized(canary(webhooks=[rollback]), answer=script)
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Failed")
    assert world.messages() == [
        "New revision detected! Scaling up podinfo.test",
        "Rollback hook manual-rollback not signaling a rollback",
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary weight 5",
        "Rollback hook manual-rollback not signaling a rollback",
        "Advance podinfo.test canary weight 10",
        "Rollback check manual-rollback passed",
        "Rolling back podinfo.test manual webhook invoked",
        "Canary failed! Scaling down podinfo.test",
    ]
    assert ("Rolling back manual webhook invoked", "warn") in [
        (a.message, a.severity) for _, a in world.alerts
    ]
    assert {c.phase for c in script.asked if c.name == "manual-rollback"} == {"Progressing"}
    assert world.routes == Routes(100, 0)


def test_pre_rollout_failure_counts_and_retries_next_interval() -> None:
    pre = hook("conformance", "pre-rollout")
    world = initialized(
        canary(webhooks=[pre]), answer=Script({"conformance": [fail("exit 1"), CheckResult(True)]})
    )
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.status.get("canaryWeight") == 5)
    assert world.messages() == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Halt podinfo.test advancement pre-rollout check conformance failed exit 1",
        "Starting canary analysis for podinfo.test",
        "Pre-rollout check conformance passed",
        "Advance podinfo.test canary weight 5",
    ]
    assert world.status["failedChecks"] == 1


def test_progress_deadline_rolls_back_with_a_reason_and_an_alert() -> None:
    world = initialized(SEED)
    world.change_target("rev-2")
    world.run_until(lambda w: w.status.get("canaryWeight") == 10)
    world.events.clear()
    world.target.deadline_exceeded = True
    world.run(1)
    reason = 'canary deployment podinfo.test not ready: deployment "podinfo" exceeded its progress deadline'
    assert world.messages() == [
        f"Rolling back podinfo.test progress deadline exceeded {reason}",
        "Canary failed! Scaling down podinfo.test",
    ]
    assert (f"Progress deadline exceeded {reason}", "error") in [
        (a.message, a.severity) for _, a in world.alerts
    ]
    assert world.phase == "Failed"


def test_canary_not_ready_warns_once_per_interval() -> None:
    world = initialized(canary(progress_deadline_s=600), rollout_s=100)
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.status.get("canaryWeight") == 5)
    not_ready = (
        "canary deployment podinfo.test not ready: waiting for rollout to finish: "
        "0 out of 1 new replicas have been updated"
    )
    assert world.messages() == [
        "New revision detected! Scaling up podinfo.test",
        not_ready,  # 30 s
        not_ready,  # 60 s
        not_ready,  # 90 s
        "Starting canary analysis for podinfo.test",  # 100 s, when it is ready (exact times: test_pacing)
        "Advance podinfo.test canary weight 5",
    ]


def test_failed_promotion_keeps_traffic_on_the_canary() -> None:
    world = initialized(SEED)
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Promoting")
    assert world.primary is not None
    world.primary.deadline_exceeded = True
    world.events.clear()
    world.run(1)
    reason = 'podinfo-primary.test not ready: deployment "podinfo-primary" exceeded its progress deadline'
    assert world.messages() == [f"Promotion of podinfo.test failed, primary not ready: {reason}"]
    assert world.alert_messages()[-1] == f"Promotion failed, primary not ready: {reason}"
    assert world.routes == Routes(0, 100)
    assert (world.phase, world.status["canaryWeight"]) == ("Failed", 100)
    assert world.post_rollouts == ["Failed"]


def test_step_weight_promotion_shifts_traffic_back_one_step_per_interval() -> None:
    world = initialized(canary(stepWeight=25, stepWeightPromotion=20))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Promoting")
    promoted_at = world.now
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    assert seconds_since(world, promoted_at) == [
        (30, "Advance podinfo.test primary weight 70"),
        (60, "Advance podinfo.test primary weight 90"),
        (90, "Advance podinfo.test primary weight 100"),
        (90, "Promotion completed! Scaling down podinfo.test"),
    ]


def test_mirror_step_before_the_first_weight_shift() -> None:
    world = initialized(canary(mirror=True, maxWeight=10))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    routes = [a.routes for t in world.history for a in t.decision.actions if hasattr(a, "routes")]
    assert routes[:3] == [Routes(100, 0, mirrored=True), Routes(95, 5), Routes(90, 10)]
    advances = [m for m in world.messages() if m.startswith("Advance")]
    assert advances == [
        "Advance podinfo.test canary weight 0",
        "Advance podinfo.test canary weight 5",
        "Advance podinfo.test canary weight 10",
    ]


def test_suspended_canary_only_says_so_once_per_interval() -> None:
    manifest = canary(spec={"suspend": True})
    world = World(manifest)
    world.run(95)
    assert world.messages() == ["skipping canary run as object is suspended"] * 4
    assert world.primary is None
    assert world.status == {}


def test_suspend_pauses_an_analysis_and_resume_continues_it() -> None:
    world = initialized(SEED)
    world.change_target("rev-2")
    world.run_until(lambda w: w.status.get("canaryWeight") == 15)
    world.update_spec(lambda spec: spec.update(suspend=True))
    world.run(120)
    assert world.status["canaryWeight"] == 15
    world.update_spec(lambda spec: spec.update(suspend=False))
    world.events.clear()
    world.run_until(lambda w: w.status.get("canaryWeight") == 20)
    assert world.messages() == ["Advance podinfo.test canary weight 20"]


def test_target_missing_and_config_errors_are_reported_each_interval() -> None:
    world = World(SEED)
    world.target_missing = True
    world.run(40)
    assert (
        world.messages()
        == ['deployment podinfo.test get query error: deployments.apps "podinfo" not found'] * 2
    )
    world.target_missing = False
    world.config_error = "configmap test/podinfo-config not found"
    world.events.clear()
    world.run(60)
    assert world.messages() == ["configmap test/podinfo-config not found"] * 2


def test_overshoot_setting_reproduces_flaggers_ladder() -> None:
    capped = initialized(canary(stepWeight=20))
    flagger = initialized(canary(stepWeight=20), settings=EngineSettings(overshoot_max_weight=True))
    for world in (capped, flagger):
        world.change_target("rev-2")
        world.run_until(lambda w: w.phase == "Succeeded")
    assert [m for m in capped.messages() if "canary weight" in m][
        -1
    ] == "Advance podinfo.test canary weight 50"
    assert [m for m in flagger.messages() if "canary weight" in m][
        -1
    ] == "Advance podinfo.test canary weight 60"
