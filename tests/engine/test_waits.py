"""Waits and the progress deadline (issue 14, items 3 and 4), in virtual time with exact event times.

A metric without data fails (``noData: fail``, Flagger's) or holds the step (``hold``); a metric provider
error holds the step, counted apart from failed checks, up to ``maxProviderErrors`` in a row; every wait
on the world (canary or primary rolling out, a closed gate, a failing pre-rollout hook, a held metric,
provider errors, a promotion) ends the run ``progressDeadlineSeconds`` after it started, with its typed
cause in the event, the ``Ended`` condition, the alert and the ledger. The wait's start is in the status.

Interval 30 s; a new revision at t = 0, the canary ready at 5 s (first weight), then one step per interval.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest

from canarist.engine.model import CheckResult, WriteStatus
from canarist.engine.simulate import World
from tests.engine.conftest import (
    Script,
    assert_one_status_write_per_decision,
    canary,
    fail,
    hook,
    initialized,
)

RATE = "request-success-rate"
NO_DATA = CheckResult(
    ok=False,
    no_data=True,
    message="Halt advancement no values found for istio metric request-success-rate probably "
    "podinfo.test is not receiving traffic: running query failed: no values found",
)
ERROR = CheckResult(
    ok=False,
    error=True,
    message="Prometheus query failed: running query failed: request to http://prometheus:9090/api/v1/query "
    "failed: Cannot connect to host prometheus:9090",
)
GOOD = CheckResult(ok=True, value=99.9)
CLOSED = fail("403 Forbidden")


def metric(**policy: Any) -> list[dict[str, Any]]:
    return [{"name": RATE, "threshold": 99, "interval": "30s", **policy}]


def manifest(deadline: int = 100, **overrides: Any) -> dict[str, Any]:
    """stepWeight 10 up to 30, one metric, no webhooks, progressDeadlineSeconds ``deadline``."""
    options: dict[str, Any] = {
        "stepWeight": 10,
        "maxWeight": 30,
        "threshold": 5,
        "webhooks": None,
        "metrics": metric(),
        "progress_deadline_s": deadline,
    }
    options.update(overrides)
    return canary(**options)


def new_run(
    document: dict[str, Any], answers: dict[str, list[CheckResult]] | None = None, **world: Any
) -> World:
    w = initialized(document, answer=Script(answers), **world)
    w.change_target("rev-2")
    w.events.clear()
    w.alerts.clear()
    return w


def times(world: World) -> list[tuple[float, str]]:
    start = world.events[0][0]
    return [((at - start).total_seconds(), event.message) for at, event in world.events]


def alerts(world: World) -> list[tuple[float, str, str]]:
    start = world.events[0][0]
    return [((at - start).total_seconds(), a.message, a.severity) for at, a in world.alerts]


def ended(world: World) -> dict[str, Any]:
    return next(c for c in world.status["conditions"] if c["type"] == "Ended")


def started(world: World) -> datetime:
    return world.events[0][0]


def stamp(world: World, seconds: float) -> str:
    return (started(world) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def failed(world: World) -> World:
    world.run_until(lambda w: w.phase == "Failed")
    return world


RUN_START = [
    (0.0, "New revision detected! Scaling up podinfo.test"),
    (5.0, "Starting canary analysis for podinfo.test"),
    (5.0, "Advance podinfo.test canary weight 10"),
    (35.0, "Advance podinfo.test canary weight 20"),
]


# ---------------------------------------------------------------------------------------------- no data


def test_a_hold_metric_without_data_holds_the_step_then_ends_the_run_with_no_data() -> None:
    world = failed(new_run(manifest(metrics=metric(noData="hold")), {RATE: [GOOD, NO_DATA]}))
    holding = "Halt podinfo.test advancement holding for data of metric request-success-rate (noData: hold)"
    expired = "NoData: no data for metric request-success-rate after 100s (noData: hold)"
    assert times(world) == [
        *RUN_START,
        (65.0, f"{holding}, progress deadline in 100s"),
        (95.0, f"{holding}, progress deadline in 70s"),
        (125.0, f"{holding}, progress deadline in 40s"),
        (155.0, f"{holding}, progress deadline in 10s"),
        # the wait's last retry comes at its deadline (65 + 100), not at the next interval
        (165.0, f"Rolling back podinfo.test progress deadline exceeded {expired}"),
        (165.0, "Canary failed! Scaling down podinfo.test"),
    ]
    # held, never failed: no failed check was counted, and the traffic went back to the primary
    assert world.status["failedChecks"] == 0
    assert world.routes is not None
    assert world.routes.canary == 0
    [(at, message, _severity)] = [a for a in alerts(world) if a[2] == "error"]
    assert (at, message) == (165.0, f"Progress deadline exceeded {expired}")
    [alert] = [a for _, a in world.alerts if a.severity == "error"]
    assert alert.with_metadata
    fields = dict(alert.fields)
    assert fields["Reason"] == "NoData"
    assert fields["Waiting since"] == stamp(world, 65)
    assert fields["Failed check"] == "request-success-rate: no data"
    condition = ended(world)
    assert (condition["status"], condition["reason"]) == ("True", "NoData")
    assert condition["message"] == f"Progress deadline exceeded {expired}"
    end = world.status["ledger"]["end"]
    assert (end["cause"], end["since"], end["at"]) == ("NoData", stamp(world, 65), stamp(world, 165))
    assert end["evidence"]["result"] == "noData"
    assert "wait" not in world.status


def test_a_held_step_goes_on_when_the_data_comes() -> None:
    answers = {RATE: [GOOD, NO_DATA, NO_DATA, GOOD]}
    world = new_run(manifest(metrics=metric(noData="hold")), answers)
    world.run_until(lambda w: w.phase == "Succeeded")
    assert [m for _, m in times(world)][4:7] == [
        "Halt podinfo.test advancement holding for data of metric request-success-rate (noData: hold), "
        "progress deadline in 100s",
        "Halt podinfo.test advancement holding for data of metric request-success-rate (noData: hold), "
        "progress deadline in 70s",
        "Advance podinfo.test canary weight 30",
    ]
    assert (times(world)[6][0], world.status["failedChecks"]) == (125.0, 0)
    assert ended(world)["reason"] == "Succeeded"


def test_while_held_the_status_says_what_the_run_waits_for_since_when_and_until_when() -> None:
    world = new_run(manifest(metrics=metric(noData="hold")), {RATE: [GOOD, NO_DATA]})
    world.run_until(lambda w: "wait" in w.status and w.status["wait"]["reason"] == "NoData")
    assert world.status["wait"] == {
        "reason": "NoData",
        "since": stamp(world, 65),
        "deadline": stamp(world, 165),
        "check": RATE,
        "message": "Halt advancement no values found for metric: request-success-rate",
    }
    condition = ended(world)
    assert (condition["status"], condition["reason"]) == ("False", "Running")


def test_without_no_data_policy_no_data_is_a_failed_check_as_in_flagger() -> None:
    world = failed(new_run(manifest(threshold=2), {RATE: [GOOD, NO_DATA]}))
    assert [m for _, m in times(world)][4:] == [
        NO_DATA.message,
        NO_DATA.message,
        "Rolling back podinfo.test failed checks threshold reached 2",
        "Canary failed! Scaling down podinfo.test",
    ]
    assert ended(world)["reason"] == "FailedChecks"
    assert world.status["ledger"]["end"]["cause"] == "FailedChecks"


# ---------------------------------------------------------------------------------------------- provider errors


def provider_error(count: int, limit: int = 4) -> str:
    return (
        f"Halt podinfo.test advancement metric request-success-rate provider error ({count} in a row, "
        f"{limit} tolerated): {ERROR.message}"
    )


def test_provider_errors_hold_the_step_apart_from_failed_checks_until_past_their_budget() -> None:
    world = failed(new_run(manifest(deadline=600), {RATE: [GOOD, ERROR]}))
    exhausted = (
        "ProviderErrors: 5 provider errors in a row for metric request-success-rate (4 tolerated): "
        f"{ERROR.message}"
    )
    assert times(world) == [
        *RUN_START,
        (65.0, provider_error(1)),
        (95.0, provider_error(2)),
        (125.0, provider_error(3)),
        (155.0, provider_error(4)),
        (185.0, f"Rolling back podinfo.test {exhausted}"),
        (185.0, "Canary failed! Scaling down podinfo.test"),
    ]
    assert world.status["failedChecks"] == 0  # an outage is not a bad release
    assert "Copying podinfo.test template spec to podinfo-primary.test" not in world.messages()
    assert [a for a in alerts(world) if a[2] == "error"] == [(185.0, exhausted, "error")]
    assert (ended(world)["reason"], world.status["ledger"]["end"]["cause"]) == ("ProviderErrors",) * 2


def test_the_error_budget_is_set_per_canary() -> None:
    world = failed(new_run(manifest(deadline=600, maxProviderErrors=1), {RATE: [GOOD, ERROR]}))
    assert [m for _, m in times(world)][4:6] == [
        provider_error(1, limit=1),
        "Rolling back podinfo.test ProviderErrors: 2 provider errors in a row for metric "
        f"request-success-rate (1 tolerated): {ERROR.message}",
    ]
    assert times(world)[5][0] == 95.0


def test_provider_errors_past_the_deadline_end_the_run_before_the_budget() -> None:
    world = failed(new_run(manifest(deadline=50, maxProviderErrors=100), {RATE: [GOOD, ERROR]}))
    assert times(world)[4:] == [
        (65.0, provider_error(1, limit=100)),
        (95.0, provider_error(2, limit=100)),
        (
            115.0,
            "Rolling back podinfo.test progress deadline exceeded ProviderErrors: the provider of metric "
            f"request-success-rate erred for 50s: {ERROR.message}",
        ),
        (115.0, "Canary failed! Scaling down podinfo.test"),
    ]
    assert ended(world)["reason"] == "ProviderErrors"


def test_a_provider_that_answers_again_resumes_the_run_and_resets_the_count() -> None:
    answers = {RATE: [GOOD, ERROR, ERROR, GOOD, ERROR, GOOD]}
    world = new_run(manifest(deadline=600, maxWeight=40), answers)
    world.run_until(lambda w: w.phase == "Succeeded")
    assert [m for _, m in times(world)][4:9] == [
        provider_error(1),
        provider_error(2),
        "Advance podinfo.test canary weight 30",
        provider_error(1),  # counted from one again: the errors in a row
        "Advance podinfo.test canary weight 40",
    ]
    assert world.status["failedChecks"] == 0
    rates = [e for e in world.status["ledger"]["entries"] if e["check"] == RATE]
    assert [e["result"] for e in rates] == ["value", "error", "error", "value", "error", "value", "value"]


# ---------------------------------------------------------------------------------------------- gates


@pytest.mark.parametrize(
    ("gate_type", "answers", "closed_at", "halt"),
    [
        (
            "confirm-traffic-increase",
            [CheckResult(True), CheckResult(True), CLOSED],
            65.0,
            "Halt podinfo.test advancement waiting for traffic increase approval gate",
        ),
        (
            "confirm-promotion",
            [CLOSED],
            65.0,
            "Halt podinfo.test advancement waiting for promotion approval gate",
        ),
    ],
    ids=["traffic-increase", "promotion"],
)
def test_a_closed_gate_ends_the_run_at_its_deadline_with_gate_closed(
    gate_type: str, answers: list[CheckResult], closed_at: float, halt: str
) -> None:
    document = manifest(webhooks=[hook("gate", gate_type)], maxWeight=20)
    world = failed(new_run(document, {"gate": answers}))
    expired = f"GateClosed: {gate_type} gate gate still closed after 100s"
    events = times(world)
    assert (closed_at, halt) in events
    assert events[-2:] == [
        (closed_at + 100, f"Rolling back podinfo.test progress deadline exceeded {expired}"),
        (closed_at + 100, "Canary failed! Scaling down podinfo.test"),
    ]
    [alert] = [a for _, a in world.alerts if a.severity == "error"]
    assert alert.message == f"Progress deadline exceeded {expired}"
    assert dict(alert.fields)["Reason"] == "GateClosed"
    assert dict(alert.fields)["Failed check"] == f"gate ({gate_type}): 403 Forbidden"
    assert (ended(world)["reason"], world.status["ledger"]["end"]["cause"]) == ("GateClosed", "GateClosed")
    assert world.status["ledger"]["end"]["since"] == stamp(world, closed_at)


def test_a_closed_confirm_rollout_gate_fails_the_revision_at_its_deadline() -> None:
    world = new_run(manifest(webhooks=[hook("gate", "confirm-rollout")]), {"gate": [CLOSED]})
    world.run_until(lambda w: w.phase == "Failed")
    expired = "GateClosed: confirm-rollout gate gate still closed after 100s"
    assert times(world) == [
        (0.0, "Halt podinfo.test advancement waiting for approval gate"),
        (100.0, f"Rolling back podinfo.test progress deadline exceeded {expired}"),
        (100.0, "Canary failed! Scaling down podinfo.test"),
    ]
    assert alerts(world) == [
        (0.0, "Canary is waiting for approval.", "warn"),
        (100.0, f"Progress deadline exceeded {expired}", "error"),
    ]
    # the revision that waited is the failed one: approving it later starts nothing, a new revision does
    assert world.status["lastAppliedSpec"] == "rev-2"
    assert ended(world)["reason"] == "GateClosed"


# ---------------------------------------------------------------------------------------------- webhooks


def test_a_pre_rollout_hook_that_keeps_failing_ends_the_run_at_the_deadline() -> None:
    document = manifest(webhooks=[hook("smoke", "pre-rollout")], threshold=20)
    world = failed(new_run(document, {"smoke": [CLOSED]}))
    halt = "Halt podinfo.test advancement pre-rollout check smoke failed 403 Forbidden"
    start = "Starting canary analysis for podinfo.test"
    expired = "progress deadline exceeded WebhookFailing: pre-rollout check smoke still failing after 100s: 403 Forbidden"
    assert times(world) == [
        (0.0, "New revision detected! Scaling up podinfo.test"),
        *[(at, text) for at in (5.0, 35.0, 65.0, 95.0, 105.0) for text in (start, halt)],
        (105.0, f"Rolling back podinfo.test {expired}"),
        (105.0, "Canary failed! Scaling down podinfo.test"),
    ]
    assert world.status["failedChecks"] == 5  # each failure is a failed check too
    assert ended(world)["reason"] == "WebhookFailing"


# ---------------------------------------------------------------------------------------------- workloads


def test_a_canary_that_does_not_roll_out_in_time_is_rolled_back_at_the_deadline_with_flaggers_words() -> None:
    world = failed(new_run(manifest(deadline=100), rollout_s=500))
    not_ready = (
        "canary deployment podinfo.test not ready: waiting for rollout to finish: "
        "0 out of 1 new replicas have been updated"
    )
    assert times(world) == [
        (0.0, "New revision detected! Scaling up podinfo.test"),
        (30.0, not_ready),
        (60.0, not_ready),
        (90.0, not_ready),
        (100.0, f"Rolling back podinfo.test progress deadline exceeded {not_ready}"),
        (100.0, "Canary failed! Scaling down podinfo.test"),
    ]
    assert alerts(world)[-1] == (100.0, f"Progress deadline exceeded {not_ready}", "error")
    assert ended(world)["reason"] == "CanaryNotReady"
    assert world.status["ledger"]["end"]["since"] == stamp(world, 0)


def test_a_primary_that_breaks_mid_run_ends_the_run_at_the_deadline() -> None:
    world = new_run(manifest(maxWeight=50))

    def break_primary(w: World) -> None:
        assert w.primary is not None
        w.primary.ready_at = w.now + timedelta(seconds=1000)

    world.at(50, break_primary)
    failed(world)
    not_ready = "podinfo-primary.test not ready: waiting for rollout to finish: 0 out of 1 new replicas have been updated"
    assert times(world)[4:] == [
        (65.0, not_ready),
        (95.0, not_ready),
        (125.0, not_ready),
        (150.0, f"Rolling back podinfo.test progress deadline exceeded {not_ready}"),
        (150.0, "Canary failed! Scaling down podinfo.test"),
    ]
    assert alerts(world)[-1] == (150.0, f"Progress deadline exceeded {not_ready}", "error")
    assert ended(world)["reason"] == "PrimaryNotReady"


def slow_promotion(world: World) -> None:
    world.rollout_s = 1000  # the primary takes this long for the promoted revision


def test_a_promotion_that_does_not_finish_fails_at_the_deadline_with_traffic_on_the_canary() -> None:
    world = new_run(manifest())
    world.at(50, slow_promotion)
    failed(world)
    not_ready = "podinfo-primary.test not ready: waiting for rollout to finish: 0 out of 1 new replicas have been updated"
    reason = f"{not_ready} (progress deadline of 100s exceeded)"
    assert times(world)[4:] == [
        (65.0, "Advance podinfo.test canary weight 30"),
        (95.0, "Copying podinfo.test template spec to podinfo-primary.test"),
        (125.0, not_ready),
        (155.0, not_ready),
        (185.0, not_ready),
        (195.0, f"Promotion of podinfo.test failed, primary not ready: {reason}"),
    ]
    assert alerts(world)[-1] == (195.0, f"Promotion failed, primary not ready: {reason}", "error")
    assert world.routes is not None
    assert (world.routes.primary, world.routes.canary) == (0, 100)
    assert (ended(world)["reason"], world.status["ledger"]["end"]["since"]) == (
        "PromotionStuck",
        stamp(world, 95),
    )


# ---------------------------------------------------------------------------------------------- restarts


def test_the_start_of_a_wait_survives_an_operator_restart_and_a_new_world() -> None:
    document = manifest(metrics=metric(noData="hold"))
    reference = failed(new_run(document, {RATE: [GOOD, NO_DATA]}))

    first = new_run(document, {RATE: [GOOD, NO_DATA]})
    first.run_until(lambda w: (w.status.get("wait") or {}).get("reason") == "NoData")
    first.run(40)  # one more held step
    second = World({**document, "status": copy.deepcopy(first.status)}, answer=Script({RATE: [NO_DATA]}))
    second.revision, second.now = "rev-2", first.now
    second.primary, second.routes, second.target = first.primary, first.routes, first.target
    second.run_until(lambda w: w.phase == "Failed")
    assert first.events[-1:] + second.events == reference.events[-len(second.events) - 1 :]
    assert second.events[-1][0] == reference.events[-1][0]  # the same deadline: 65 s + 100 s


def test_a_wait_is_written_once_and_does_not_move_the_pacing_marks() -> None:
    world = new_run(manifest(deadline=600), rollout_s=100)
    world.run_until(lambda w: w.status.get("canaryWeight") == 10, wake_every_s=1)
    assert_one_status_write_per_decision(world)
    writes = [s for s in world.status_history if s.get("phase") == "Progressing"]
    # "New revision detected" wrote the wait for the canary; the warnings that followed wrote nothing
    assert [s.get("wait", {}).get("reason") for s in writes][:2] == ["CanaryNotReady", None]
    assert world.history[-1].decision.actions  # the first step came as soon as the canary was ready
    assert times(world)[-1][0] == 100.0


def test_a_suspended_run_waits_for_the_user_not_the_world() -> None:
    world = new_run(manifest(metrics=metric(noData="hold")), {RATE: [GOOD, NO_DATA]})
    world.run_until(lambda w: (w.status.get("wait") or {}).get("reason") == "NoData")
    world.update_spec(lambda spec: spec.update(suspend=True))
    world.run(300)
    assert world.phase == "Progressing"
    assert "wait" not in world.status


# ---------------------------------------------------------------------------------------------- every end


ENDINGS: dict[str, tuple[dict[str, Any], dict[str, list[CheckResult]], dict[str, Any]]] = {
    "FailedChecks": (manifest(threshold=1), {RATE: [GOOD, fail("Halt podinfo.test advancement")]}, {}),
    "NoData": (manifest(metrics=metric(noData="hold")), {RATE: [GOOD, NO_DATA]}, {}),
    "ProviderErrors": (manifest(), {RATE: [GOOD, ERROR]}, {}),
    "GateClosed": (
        manifest(webhooks=[hook("gate", "confirm-promotion")], maxWeight=20),
        {"gate": [CLOSED]},
        {},
    ),
    "WebhookFailing": (
        manifest(webhooks=[hook("smoke", "pre-rollout")], threshold=20),
        {"smoke": [CLOSED]},
        {},
    ),
    "RollbackRequested": (
        manifest(webhooks=[hook("undo", "rollback")]),
        {"undo": [CLOSED, CLOSED, CheckResult(True)]},
        {},
    ),
    "CanaryNotReady": (manifest(), {}, {"rollout_s": 500}),
}


@pytest.mark.parametrize("cause", list(ENDINGS))
def test_every_end_alerts_and_a_failed_canary_takes_the_next_revision(cause: str) -> None:
    document, answers, world_options = ENDINGS[cause]
    world = failed(new_run(document, answers, **world_options))
    ended_at = world.events[-1][0]
    # an alert for the end (a manual rollback's is Flagger's warn alert, every other end's is an error)
    assert [a.severity for at, a in world.alerts if at == ended_at][-1] == (
        "warn" if cause == "RollbackRequested" else "error"
    )
    assert (ended(world)["status"], ended(world)["reason"]) == ("True", cause)
    assert world.status["ledger"]["end"]["cause"] == cause
    # no wedge: the next revision is a new run that can succeed
    world.answer = Script({"undo": [CLOSED]})  # everything passes (a rollback hook does not ask for one)
    world.rollout_s = 5
    world.events.clear()
    world.change_target("rev-3")
    world.run_until(lambda w: w.phase == "Succeeded")
    assert world.messages()[0] == "New revision detected! Scaling up podinfo.test"
    assert ended(world)["reason"] == "Succeeded"
    assert world.status["ledger"]["end"]["cause"] == "Succeeded"


def test_after_a_failed_promotion_the_next_revision_and_a_revert_reach_the_primary() -> None:
    world = new_run(manifest())
    world.at(50, slow_promotion)
    failed(world)
    assert world.status["canaryWeight"] == 100  # the traffic stays on the canary

    # a fixed revision: the primary (stuck with the failed one) gets no traffic, so it does not hold the
    # run back; the run starts at the split it holds and promotes
    world.rollout_s = 5
    world.change_target("rev-3")
    world.run_until(lambda w: w.phase == "Succeeded")
    assert world.primary is not None
    assert world.primary.revision == "rev-3"
    assert world.routes is not None
    assert world.routes.primary == 100

    # going back to the last promoted revision after a failed promotion is a new run too
    world.at(50, slow_promotion)
    world.change_target("rev-4")
    failed(world)
    world.rollout_s = 5
    world.change_target("rev-3")
    world.run_until(lambda w: w.phase == "Succeeded")
    assert world.primary.revision == "rev-3"


def test_a_flagger_manifest_without_the_new_fields_writes_the_same_status_shape_plus_canarists() -> None:
    world = new_run(manifest())
    world.run_until(lambda w: w.phase == "Succeeded")
    for tock in world.history:
        for action in tock.decision.actions:
            if isinstance(action, WriteStatus) and "wait" in action.status:
                assert set(action.status["wait"]) <= {"reason", "since", "deadline", "check", "message"}
    assert world.status["failedChecks"] == 0
    assert ended(world)["reason"] == "Succeeded"


def test_the_provider_error_count_survives_a_restart_from_the_status_alone() -> None:
    document = manifest(deadline=600)
    first = new_run(document, {RATE: [GOOD, ERROR]})
    first.run_until(lambda w: (w.status.get("wait") or {}).get("providerErrors") == 2)
    second = World({**document, "status": copy.deepcopy(first.status)}, answer=Script({RATE: [ERROR]}))
    second.revision, second.now = "rev-2", first.now
    second.primary, second.routes, second.target = first.primary, first.routes, first.target
    second.run_until(lambda w: w.phase == "Failed")
    assert [e.message for _, e in second.events][:2] == [provider_error(3), provider_error(4)]
    assert second.events[2][1].message.startswith(
        "Rolling back podinfo.test ProviderErrors: 5 provider errors"
    )
    assert (second.events[2][0] - started(first)).total_seconds() == 185.0
