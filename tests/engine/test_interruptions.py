"""Half-applied decisions: the operator dies, or one write fails, in the middle of a decision.

Every decision of a run is cut after each of its actions (``World.interrupt``: the first ``k`` actions are
applied; ``crash``: the operator then restarts without memory), and the next ticks must continue the same
decision (docs/engine.md, "The decision record"): no traffic to a failed revision again, no new analysis,
the outcome announced once. The only repeats allowed are those of the documented window: announcements
already sent when the clearing status write did not happen are sent once more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from canarist.engine.model import (
    Alert,
    CountOutcome,
    Decision,
    Event,
    Initialize,
    Promote,
    Routes,
    RunPostRollout,
    ScaleDownTarget,
    ScaleUpTarget,
    SetRoutes,
    WriteStatus,
)
from canarist.engine.simulate import World
from tests.engine.conftest import Script, canary, fail, initialized

FAILED = "Canary failed! Scaling down podinfo.test"
COMPLETED = "Promotion completed! Scaling down podinfo.test"
STARTING = "Starting canary analysis for podinfo.test"
HALT = "Halt podinfo.test advancement success rate 90.00% < 99%"


def pending_write(decision: Decision) -> int | None:
    """The index of the status write that records pending side effects, if the decision has one."""
    for index, action in enumerate(decision.actions):
        if isinstance(action, WriteStatus) and (action.status.get("decision") or {}).get("pending"):
            return index
    return None


def committed_to(phase: str) -> Callable[[Decision], bool]:
    def match(decision: Decision) -> bool:
        index = pending_write(decision)
        return index is not None and decision.actions[index].status.get("phase") == phase  # type: ignore[union-attr]

    return match


def cut_at(match: Callable[[Decision], bool], keep: int) -> Callable[[Decision], int | None]:
    return lambda decision: keep if match(decision) else None


def first_announcement(decision: Decision) -> int:
    """The index of the first action that announces (event, alert, counter, post-rollout hooks)."""
    kinds = Event | Alert | CountOutcome | RunPostRollout
    return next(i for i, a in enumerate(decision.actions) if isinstance(a, kinds))


def announcements(world: World) -> list[str]:
    return world.messages() + [f"alert: {m}" for m in world.alert_messages()]


def cut_decision(world: World, match: Callable[[Decision], bool]) -> Decision:
    """The decision ``match`` selects, from a baseline run of a copy of ``world``'s story."""
    for tock in world.history:
        if match(tock.decision):
            return tock.decision
    raise AssertionError("the baseline run has no such decision")


# ---------------------------------------------------------------------------------------------- rollback


def rollback_world() -> World:
    """A run whose metric fails twice (threshold 2) at weight 5: rolled back at the second analysis."""
    script = Script({"request-success-rate": [fail(HALT)]})
    world = initialized(canary(threshold=2), answer=script)
    world.change_target("rev-2")
    return world


def rollback_baseline() -> tuple[Decision, list[str]]:
    world = rollback_world()
    world.events.clear()
    world.run(600)
    assert world.phase == "Failed"
    return cut_decision(world, committed_to("Failed")), announcements(world)


ROLLBACK, ROLLBACK_STORY = rollback_baseline()


@pytest.mark.parametrize("crash", [False, True], ids=["write-fails", "operator-dies"])
@pytest.mark.parametrize("keep", range(len(ROLLBACK.actions)))
def test_an_interrupted_rollback_never_sends_traffic_back_to_the_canary(keep: int, crash: bool) -> None:
    world = rollback_world()
    world.events.clear()
    world.interrupt(cut_at(committed_to("Failed"), keep), crash=crash)
    world.run(900)
    cut = next(i for i, t in enumerate(world.history) if committed_to("Failed")(t.decision))

    later_routes = [
        a.routes for t in world.history[cut:] for a in t.decision.actions if isinstance(a, SetRoutes)
    ]
    assert all(r.canary == 0 for r in later_routes), later_routes
    assert (world.phase, world.routes, world.target.replicas) == ("Failed", Routes(100, 0), 0)
    assert "pending" not in world.status["decision"]
    messages = world.messages()
    assert messages.count(STARTING) == 1  # never a new analysis
    # Each announcement of the rollback: once, or twice when it was sent before the cut and the clearing
    # write did not follow (the documented window).
    durable = keep > (pending_write(ROLLBACK) or 0)
    sent_before_cut = Counter(
        m
        for a in ROLLBACK.actions[:keep]
        if isinstance(a, Event | Alert)
        for m in ([a.message] if isinstance(a, Event) else [f"alert: {a.message}"])
    )
    expected = Counter(ROLLBACK_STORY)
    for message, count in sent_before_cut.items():
        if durable:
            expected[message] += count
    assert Counter(announcements(world)) == expected
    assert messages.count(FAILED) == (2 if durable and sent_before_cut[FAILED] else 1)
    sent = ROLLBACK.actions[:keep] if durable else ()
    assert len(world.outcomes) == 1 + sum(isinstance(a, CountOutcome) for a in sent)
    assert len(world.post_rollouts) == 1 + sum(isinstance(a, RunPostRollout) for a in sent)


def test_a_rollback_cut_before_its_announcements_announces_exactly_once() -> None:
    """The effects (routes, scale-down) come first: a cut among them repeats nothing."""
    for keep in range(first_announcement(ROLLBACK) + 1):
        world = rollback_world()
        world.events.clear()
        world.interrupt(cut_at(committed_to("Failed"), keep), crash=True)
        world.run(900)
        assert Counter(announcements(world)) == Counter(ROLLBACK_STORY), keep
        assert [o.outcome for o in world.outcomes] == ["failure"]
        assert world.post_rollouts == ["Failed"]


def test_rollback_writes_the_decision_before_any_side_effect() -> None:
    index = pending_write(ROLLBACK)
    assert index == 1  # right after Initialize
    write = ROLLBACK.actions[index]
    assert isinstance(write, WriteStatus)
    record = write.status["decision"]
    assert write.status["phase"] == "Failed"
    assert record["revision"] == "rev-2"
    assert record["routes"] == {"primary": 100, "canary": 0, "mirrored": False}
    assert [p["action"] for p in record["pending"]] == [
        "SetRoutes",
        "ScaleDownTarget",
        "Event",
        "Event",
        "Alert",
        "Event",
        "CountOutcome",
        "RunPostRollout",
    ]
    last = ROLLBACK.actions[-1]
    assert isinstance(last, WriteStatus)
    assert "pending" not in last.status["decision"]


# ---------------------------------------------------------------------------------------------- promotion


def promotion_world(**analysis: object) -> World:
    world = initialized(canary(**{"stepWeight": 25, **analysis}))
    world.change_target("rev-2")
    return world


def promotion_baseline(**analysis: object) -> tuple[list[Decision], list[str]]:
    world = promotion_world(**analysis)
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded" and not w.history[-1].decision.again)
    run = [t.decision for t in world.history if t.decision.actions[1:]]
    return run, announcements(world)


WRITES = (Initialize, WriteStatus, SetRoutes, ScaleDownTarget, ScaleUpTarget, Promote)


def _sweep(run: list[Decision]) -> list[tuple[int, int, bool]]:
    """Every cut of every decision: after each action (the operator dies), and at each write (it fails)."""
    cuts = []
    for i, decision in enumerate(run):
        for keep in range(len(decision.actions)):
            cuts.append((i, keep, True))
            if isinstance(decision.actions[keep], WRITES):
                cuts.append((i, keep, False))
    return cuts


def may_be_lost(decision: Decision, keep: int, crash: bool) -> set[str]:
    """The documented window of a plain (uncommitted) step: the operator dies after its status write and
    before its events, which the next tick does not re-emit (the step is recorded as done)."""
    if not crash or pending_write(decision) is not None:
        return set()
    if not any(isinstance(a, WriteStatus) for a in decision.actions[:keep]):
        return set()
    return {
        a.message if isinstance(a, Event) else f"alert: {a.message}"
        for a in decision.actions[keep:]
        if isinstance(a, Event | Alert)
    }


def assert_same_story(story: Counter[str], baseline: Counter[str], lost: set[str], cut: object) -> None:
    assert set(baseline) - set(story) <= lost, (cut, set(baseline) - set(story))
    assert set(story) <= set(baseline), (cut, set(story) - set(baseline))  # nothing new: no rollback...
    assert all(story[m] <= baseline[m] + 1 for m in story), (cut, story - baseline)
    assert story[STARTING] <= 1, cut  # ...and never a second analysis


PROMOTION_RUN, PROMOTION_STORY = promotion_baseline()


def assert_promoted(world: World) -> None:
    assert world.phase == "Succeeded"
    assert world.primary is not None
    assert world.primary.revision == "rev-2"
    assert world.status["lastPromotedSpec"] == "rev-2"
    assert (world.routes, world.target.replicas) == (Routes(100, 0), 0)
    assert "pending" not in (world.status.get("decision") or {})


@pytest.mark.parametrize(("index", "keep", "crash"), _sweep(PROMOTION_RUN))
def test_an_interrupted_run_ends_promoted_without_losing_or_inventing_events(
    index: int, keep: int, crash: bool
) -> None:
    target = PROMOTION_RUN[index]
    world = promotion_world()
    world.events.clear()
    world.interrupt(lambda d: keep if d == target else None, crash=crash)
    world.run_until(lambda w: w.phase == "Succeeded" and not w.history[-1].decision.again, limit_s=1800)
    assert_promoted(world)
    story = Counter(announcements(world))
    assert_same_story(story, Counter(PROMOTION_STORY), may_be_lost(target, keep, crash), (index, keep))
    assert 1 <= story[COMPLETED] <= 2
    assert 1 <= len(world.outcomes) <= 2
    assert {o.outcome for o in world.outcomes} == {"success"}
    weights = [a.routes.canary for t in world.history for a in t.decision.actions if isinstance(a, SetRoutes)]
    assert max(weights) == 50  # never beyond maxWeight, traffic ends on the primary


def test_a_promotion_cut_before_the_primary_is_touched_still_promotes() -> None:
    """Promoting is written first with the promotion pending: a tick that finds it replays the promotion
    instead of moving the traffic back to a primary that never got the new spec."""
    promote = next(d for d in PROMOTION_RUN if committed_to("Promoting")(d))
    world = promotion_world()
    world.events.clear()
    world.interrupt(lambda d: 2 if d == promote else None, crash=True)  # Initialize, the pending write
    world.run_until(lambda w: w.phase == "Promoting" and "pending" not in w.status["decision"])
    assert world.primary is not None
    assert world.primary.revision == "rev-2"
    world.run_until(lambda w: w.phase == "Succeeded")
    assert_promoted(world)
    assert Counter(announcements(world)) == Counter(PROMOTION_STORY)


def test_promotion_completed_is_announced_once_when_the_cut_precedes_it() -> None:
    finalise = next(d for d in PROMOTION_RUN if committed_to("Succeeded")(d))
    for keep in range(first_announcement(finalise) + 1):
        world = promotion_world()
        world.events.clear()
        world.interrupt(lambda d, keep=keep: keep if d == finalise else None, crash=True)  # type: ignore[misc]
        world.run_until(lambda w: w.phase == "Succeeded" and "pending" not in w.status["decision"])
        assert_promoted(world)
        assert Counter(announcements(world)) == Counter(PROMOTION_STORY), keep
        assert world.post_rollouts == ["Succeeded"]


# ---------------------------------------------------------------------------------------------- skipAnalysis


def skip_world() -> World:
    world = initialized(canary(spec={"skipAnalysis": True}))
    world.change_target("rev-2")
    return world


def skip_baseline() -> tuple[Decision, list[str]]:
    world = skip_world()
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    return cut_decision(world, committed_to("Succeeded")), announcements(world)


SKIP, SKIP_STORY = skip_baseline()


@pytest.mark.parametrize("crash", [False, True], ids=["write-fails", "operator-dies"])
@pytest.mark.parametrize("keep", range(len(SKIP.actions)))
def test_an_interrupted_skip_analysis_promotion_completes_once(keep: int, crash: bool) -> None:
    world = skip_world()
    world.events.clear()
    world.interrupt(cut_at(committed_to("Succeeded"), keep), crash=crash)
    world.run(600)
    assert_promoted(world)
    story, baseline = Counter(announcements(world)), Counter(SKIP_STORY)
    assert set(story) == set(baseline)
    if keep <= first_announcement(SKIP):
        assert story == baseline
        assert world.post_rollouts == ["Succeeded"]
    else:
        assert all(story[m] <= baseline[m] + 1 for m in story)


# ---------------------------------------------------------------------------------------------- advances


def test_an_advance_is_not_lost_when_its_status_write_fails() -> None:
    world = promotion_world()
    world.events.clear()

    def at_weight_50(decision: Decision) -> int | None:
        writes = [a for a in decision.actions if isinstance(a, WriteStatus)]
        return 1 if writes and writes[0].status.get("canaryWeight") == 50 else None  # the write fails

    world.interrupt(at_weight_50)
    world.run_until(lambda w: w.phase == "Succeeded")
    assert Counter(announcements(world)) == Counter(PROMOTION_STORY)


def test_a_failed_route_write_is_repaired_from_the_status_without_repeating_the_advance() -> None:
    world = promotion_world()
    world.events.clear()

    def routes_fail_at_25(decision: Decision) -> int | None:
        last = decision.actions[-1]
        return len(decision.actions) - 1 if last == SetRoutes(Routes(75, 25)) else None

    world.interrupt(routes_fail_at_25)
    world.run_until(lambda w: w.status.get("canaryWeight") == 25)
    assert world.routes == Routes(100, 0)  # the route write failed after the status recorded 25
    assert world.messages()[-1] == "Advance podinfo.test canary weight 25"
    world.run_until(lambda w: w.routes == Routes(75, 25))
    repair = world.history[-1].decision
    assert repair.actions[1] == SetRoutes(Routes(75, 25))
    assert not repair.paced
    world.run_until(lambda w: w.phase == "Succeeded")
    assert Counter(announcements(world)) == Counter(PROMOTION_STORY)


@pytest.mark.parametrize(
    "analysis",
    [
        {
            "iterations": 3,
            "stepWeight": None,
            "maxWeight": None,
            "match": [{"headers": {"x": {"exact": "1"}}}],
        },
        {"iterations": 3, "stepWeight": None, "maxWeight": None, "mirror": True},
        {"mirror": True, "mirrorWeight": 100},
        {"stepWeightPromotion": 20},
    ],
    ids=["ab-testing", "blue-green-mirror", "canary-mirror", "stepped-promotion"],
)
def test_every_strategy_survives_every_cut(analysis: dict[str, object]) -> None:
    run, baseline_story = promotion_baseline(**analysis)
    baseline = Counter(baseline_story)
    for index, keep, crash in _sweep(run):
        target = run[index]
        world = promotion_world(**analysis)
        world.events.clear()
        world.interrupt(lambda d, target=target, keep=keep: keep if d == target else None, crash=crash)  # type: ignore[misc]
        world.run_until(lambda w: w.phase == "Succeeded" and not w.history[-1].decision.again, limit_s=3600)
        assert_promoted(world)
        story = Counter(announcements(world))
        assert_same_story(story, baseline, may_be_lost(target, keep, crash), (index, keep, crash))


# ---------------------------------------------------------------------------------------------- target deleted


def test_a_target_deleted_mid_run_ends_the_run_with_traffic_on_the_primary() -> None:
    world = promotion_world()
    world.run_until(lambda w: w.status.get("canaryWeight") == 50)
    assert world.routes == Routes(50, 50)
    world.events.clear()
    world.alerts.clear()

    def delete(w: World) -> None:
        w.target_missing = True

    world.at(1, delete)
    world.run(1)
    assert (world.phase, world.routes) == ("Failed", Routes(100, 0))
    assert world.messages() == [
        "Rolling back podinfo.test target Deployment podinfo.test not found",
        FAILED,
    ]
    assert world.alert_messages() == ["Rolling back, target Deployment podinfo.test not found"]
    assert world.alerts[0][1].severity == "error"
    assert world.alerts[0][1].with_metadata
    assert [o.outcome for o in world.outcomes][-1:] == ["failure"]
    # at rest now: today's warning once per interval, no more alerts, no traffic
    world.events.clear()
    world.run(65)
    assert (
        world.messages()
        == ['deployment podinfo.test get query error: deployments.apps "podinfo" not found'] * 2
    )
    assert len(world.alert_messages()) == 1
    assert world.routes == Routes(100, 0)
