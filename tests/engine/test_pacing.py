"""Pacing: progress that waits on the world happens at once, analysis steps once per interval, and a
restarted operator resumes from the status alone."""

from __future__ import annotations

import itertools
from datetime import datetime

from canarist.engine.model import Initialize
from canarist.engine.simulate import World
from tests.engine.conftest import SEED, Script, canary, fail, hook, initialized


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


def test_a_new_revision_is_detected_at_once_and_analysed_one_interval_later() -> None:
    world = initialized(SEED)
    world.run(7)
    changed_at = world.now
    world.change_target("rev-2")
    world.run(31)
    times = {message: (at - changed_at).total_seconds() for at, message in timeline(world)}
    assert times["New revision detected! Scaling up podinfo.test"] == 0
    assert times["Advance podinfo.test canary weight 5"] == 30


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
