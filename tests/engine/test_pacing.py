"""Pacing: progress that waits on the world happens at once, the first step of a run as soon as the
canary is ready, every later step one interval after the one before, and a restarted operator resumes from
the status alone. Event times are exact (virtual time; interval 30 s unless a test says otherwise)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from canarist.engine.model import CheckResult, Initialize
from canarist.engine.simulate import World
from tests.engine.conftest import SEED, Script, canary, fail, hook, initialized
from tests.engine.test_other_strategies import AB_MATCH

INTERVAL = 30


def timeline(world: World) -> list[tuple[datetime, str]]:
    return [(at, event.message) for at, event in world.events]


def story(world: World) -> World:
    world.run_until(lambda w: w.phase == "Initialized")
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    return world


def test_wake_ups_between_due_times_do_nothing_paced() -> None:
    quiet = story(World(SEED))
    busy = World(SEED)
    busy.run_until(lambda w: w.phase == "Initialized", wake_every_s=1)
    busy.change_target("rev-2")
    busy.run_until(lambda w: w.phase == "Succeeded", wake_every_s=1)

    assert timeline(busy) == timeline(quiet)
    assert len(busy.history) > 300  # one wake-up per second for about six minutes
    paced = [t for t in busy.history if t.decision.paced]
    assert len(paced) == len([t for t in quiet.history if t.decision.paced])
    idle = [t for t in busy.history if not t.decision.paced and t.decision.actions == (Initialize(),)]
    assert len(idle) > 280
    assert all(t.asked == [] for t in idle)


def test_restarted_operator_neither_repeats_nor_skips_a_step() -> None:
    reference = story(World(SEED))
    restarted = World(SEED)
    for second in range(3, 420, 11):
        restarted.at(second, World.restart_operator)
    story(restarted)
    assert timeline(restarted) == timeline(reference)
    assert restarted.status["lastPromotedSpec"] == "rev-2"


def test_resume_from_status_alone_in_a_new_world() -> None:
    reference = story(World(SEED))

    first = initialized(SEED)
    first.change_target("rev-2")
    first.run_until(lambda w: w.status.get("canaryWeight") == 25)
    # a new operator process: same cluster state, no memory
    second = World({**SEED, "status": first.status}, revision="rev-2", now=first.now)
    second.primary, second.routes, second.target = first.primary, first.routes, first.target
    second.run_until(lambda w: w.phase == "Succeeded")

    combined = timeline(first) + timeline(second)
    assert combined == timeline(reference)


def seconds_since(world: World, start: datetime) -> list[tuple[float, str]]:
    return [((at - start).total_seconds(), message) for at, message in timeline(world)]


def new_run(manifest: dict[str, Any], **world: Any) -> tuple[World, datetime]:
    """An initialized world, 7 s later a new revision: returns the world and the moment of the change."""
    w = initialized(manifest, **world)
    w.run(7)
    changed_at = w.now
    w.change_target("rev-2")
    w.events.clear()
    return w, changed_at


def promotion(at: float, rollout: float) -> list[tuple[float, str]]:
    """The promotion step at ``at``; the primary rolls out in ``rollout`` s, then the run ends at once."""
    return [
        (at, "Copying podinfo.test template spec to podinfo-primary.test"),
        (at + rollout, "Routing all traffic to primary"),
        (at + rollout, "Promotion completed! Scaling down podinfo.test"),
    ]


@pytest.mark.parametrize(
    ("step_weight", "max_weight", "rollout"),
    [(10, 50, 5.0), (20, 60, 3.0)],
    ids=["5 steps, ready after 5 s", "3 steps, ready after 3 s"],
)
def test_a_run_takes_rollout_plus_interval_times_steps(
    step_weight: int, max_weight: int, rollout: float
) -> None:
    world, t0 = new_run(canary(stepWeight=step_weight, maxWeight=max_weight), rollout_s=rollout)
    world.run_until(lambda w: w.phase == "Succeeded")

    steps = max_weight // step_weight
    weights = [step_weight * (k + 1) for k in range(steps)]
    assert seconds_since(world, t0) == [
        (0, "New revision detected! Scaling up podinfo.test"),
        # the first step as soon as the canary is ready (woken by its rollout), not one interval later
        (rollout, "Starting canary analysis for podinfo.test"),
        *[(rollout + INTERVAL * k, f"Advance podinfo.test canary weight {w}") for k, w in enumerate(weights)],
        # the last weight is held one interval too: promotion at t0 + ready + interval x steps
        *promotion(rollout + INTERVAL * steps, rollout),
    ]
    # no tick is lost at the end: Promoting -> Finalising -> Succeeded in the wake-up of the primary's rollout
    end = world.now
    assert (end - t0).total_seconds() == rollout + INTERVAL * steps + rollout
    written = [s["phase"] for s in world.status_history[-3:]]
    assert written == ["Finalising", "Succeeded", "Succeeded"]  # the second write clears the committed record
    assert [t.at for t in world.history[-2:]] == [end, end]


def test_a_new_revision_is_detected_at_once_and_analysed_as_soon_as_the_canary_is_ready() -> None:
    world, t0 = new_run(SEED, rollout_s=12)
    world.run(12 + INTERVAL + 1)
    times = dict((message, at) for at, message in seconds_since(world, t0))
    assert times["New revision detected! Scaling up podinfo.test"] == 0
    assert times["Advance podinfo.test canary weight 5"] == 12
    assert times["Advance podinfo.test canary weight 10"] == 12 + INTERVAL


def test_ab_testing_iterations_start_when_the_canary_is_ready() -> None:
    world, t0 = new_run(canary(iterations=3, match=AB_MATCH, stepWeight=None, maxWeight=None))
    world.run_until(lambda w: w.phase == "Succeeded")
    assert seconds_since(world, t0) == [
        (0, "New revision detected! Scaling up podinfo.test"),
        (5, "Starting canary analysis for podinfo.test"),
        (5, "Advance podinfo.test canary iteration 1/3"),
        (35, "Advance podinfo.test canary iteration 2/3"),
        (65, "Advance podinfo.test canary iteration 3/3"),
        *promotion(95, 5),  # t0 + ready + interval x iterations
    ]


def test_blue_green_iterations_start_when_the_canary_is_ready() -> None:
    world, t0 = new_run(canary(iterations=2, stepWeight=None, maxWeight=None))
    world.run_until(lambda w: w.phase == "Succeeded")
    assert seconds_since(world, t0) == [
        (0, "New revision detected! Scaling up podinfo.test"),
        (5, "Starting canary analysis for podinfo.test"),
        (5, "Advance podinfo.test canary iteration 1/2"),
        (35, "Advance podinfo.test canary iteration 2/2"),
        (65, "Routing all traffic to canary"),  # blue/green's extra round with all traffic on the canary
        *promotion(95, 5),
    ]


def test_skip_analysis_promotes_as_soon_as_the_canary_is_ready() -> None:
    world, t0 = new_run(canary(spec={"skipAnalysis": True}))
    world.run_until(lambda w: w.phase == "Succeeded")
    assert seconds_since(world, t0) == [
        (0, "New revision detected! Scaling up podinfo.test"),
        (5, "Copying podinfo.test template spec to podinfo-primary.test"),
        (5, "Promotion completed! Canary analysis was skipped for podinfo.test"),
    ]


def test_a_slow_canary_is_warned_about_once_per_interval_and_analysed_once_ready() -> None:
    world, t0 = new_run(canary(progress_deadline_s=600), rollout_s=100)  # the seed's deadline is 60 s
    world.run_until(lambda w: w.status.get("canaryWeight") == 5, wake_every_s=1)
    not_ready = (
        "canary deployment podinfo.test not ready: waiting for rollout to finish: "
        "0 out of 1 new replicas have been updated"
    )
    assert seconds_since(world, t0) == [
        (0, "New revision detected! Scaling up podinfo.test"),
        (30, not_ready),
        (60, not_ready),
        (90, not_ready),
        (100, "Starting canary analysis for podinfo.test"),  # ready at 100 s, not at the next interval
        (100, "Advance podinfo.test canary weight 5"),
    ]


def test_a_failing_pre_rollout_hook_is_retried_once_per_interval() -> None:
    pre = hook("conformance", "pre-rollout")
    script = Script({"conformance": [fail("exit 1"), fail("exit 1"), CheckResult(True)]})
    world, t0 = new_run(canary(webhooks=[pre]), answer=script)
    world.run_until(lambda w: w.status.get("canaryWeight") == 5, wake_every_s=1)
    failed = "Halt podinfo.test advancement pre-rollout check conformance failed exit 1"
    assert seconds_since(world, t0) == [
        (0, "New revision detected! Scaling up podinfo.test"),
        (5, "Starting canary analysis for podinfo.test"),
        (5, failed),
        (35, "Starting canary analysis for podinfo.test"),
        (35, failed),
        (65, "Starting canary analysis for podinfo.test"),
        (65, "Pre-rollout check conformance passed"),
        (65, "Advance podinfo.test canary weight 5"),
    ]


def test_a_closed_traffic_gate_on_the_first_step_is_retried_once_per_interval() -> None:
    gate = hook("traffic-gate", "confirm-traffic-increase")
    script = Script({"traffic-gate": [fail(), fail(), CheckResult(True)]})
    world, t0 = new_run(canary(webhooks=[gate]), answer=script)
    world.run_until(lambda w: w.status.get("canaryWeight") == 5, wake_every_s=1)
    asked = [
        (t.at - t0).total_seconds() for t in world.history if any(c.name == "traffic-gate" for c in t.asked)
    ]
    assert asked == [5, 35, 65]
    assert seconds_since(world, t0)[-2:] == [
        (65, "Confirm-traffic-increase check traffic-gate passed"),
        (65, "Advance podinfo.test canary weight 5"),
    ]


def test_a_first_step_held_at_a_closed_gate_is_recorded_and_survives_an_operator_restart() -> None:
    gate = hook("traffic-gate", "confirm-traffic-increase")
    world, t0 = new_run(
        canary(webhooks=[gate], progress_deadline_s=600), answer=Script({"traffic-gate": [fail()]})
    )
    world.at(20, World.restart_operator)
    world.run(100, wake_every_s=1)
    # the held step is in the status: a new operator neither takes it for an untried first step (asked
    # on every wake-up) nor retries it early, it paces it from the status write
    assert world.status["decision"]["routes"] == {"primary": 100, "canary": 0, "mirrored": False}
    asked = [
        (t.at - t0).total_seconds() for t in world.history if any(c.name == "traffic-gate" for c in t.asked)
    ]
    assert asked == [5, 35, 65, 95]
    assert world.messages().count("Starting canary analysis for podinfo.test") == 4


def test_a_run_that_waited_for_approval_starts_when_the_canary_is_ready() -> None:
    gate = hook("rollout-gate", "confirm-rollout")
    script = Script({"rollout-gate": [fail(), fail(), CheckResult(True)]})
    world, t0 = new_run(canary(webhooks=[gate]), answer=script)
    world.run_until(lambda w: w.status.get("canaryWeight") == 5, wake_every_s=1)
    assert seconds_since(world, t0) == [
        (0, "Halt podinfo.test advancement waiting for approval rollout-gate"),
        (60, "Confirm-rollout check rollout-gate passed"),  # the closed gate is retried once per interval
        (60, "New revision detected! Scaling up podinfo.test"),
        (65, "Starting canary analysis for podinfo.test"),
        (65, "Advance podinfo.test canary weight 5"),
    ]


def test_a_restart_mid_run_keeps_the_interval_that_was_running() -> None:
    world, t0 = new_run(SEED)
    world.run_until(lambda w: w.status.get("canaryWeight") == 10)  # at 5 + 30 s
    world.run(10)
    world.change_target("rev-3")  # rolls out in 5 s
    world.run_until(lambda w: w.status.get("canaryWeight") == 5 and w.status["lastAppliedSpec"] == "rev-3")
    assert seconds_since(world, t0)[-3:] == [
        (45, "New revision detected! Restarting analysis for podinfo.test"),
        # ready at 50 s; the weight 10 set at 35 s had its interval until 65 s
        (65, "Starting canary analysis for podinfo.test"),
        (65, "Advance podinfo.test canary weight 5"),
    ]


def test_an_operator_restart_before_the_first_step_does_not_delay_it() -> None:
    world, t0 = new_run(SEED)
    world.at(2, World.restart_operator)
    world.run_until(lambda w: w.status.get("canaryWeight") == 5)
    assert (world.now - t0) == timedelta(seconds=5)


def test_closed_gates_are_retried_once_per_interval() -> None:
    gate = hook("gate", "confirm-promotion")
    script = Script({"gate": [fail()]})
    world = initialized(canary(webhooks=[gate], maxWeight=5), answer=script)
    world.change_target("rev-2")
    world.run(300, wake_every_s=2)
    asks = [t.at for t in world.history if any(c.name == "gate" for c in t.asked)]
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(asks)}
    assert gaps == {30.0}


def test_promotion_finishes_as_soon_as_the_primary_rolled_out() -> None:
    world = initialized(SEED, rollout_s=12)
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Promoting")
    promoted_at = world.now
    world.run_until(lambda w: w.phase == "Succeeded")
    assert (world.now - promoted_at).total_seconds() == 12
    finalising = [t for t in world.history if t.decision.again]
    assert finalising  # Finalising follows Promoting within the same wake-up
