"""`canarist simulate --prometheus`: replaying what a real Prometheus recorded during a real run gives the
decisions that run took (issue 16, item 2). The e2e world's operator runs a release against the real
Prometheus scraping the demo apps; then the simulator replays the same window with the same Canary."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from canarist.simulate import Replay, Scenario, run
from tests.e2e.conftest import World
from tests.e2e.harness import event_messages, fast_seed, initialize, reaches, set_image

STEPS = ("Advance ", "Halt ", "Rolling back ", "Canary failed!", "Promotion completed!", "Copying ")
VALUE = re.compile(r"(\d+(?:\.\d+)?)%")


def shape(message: str) -> str:
    """A decision without the measured values (the replay reads the same series a fraction of a second
    away from the operator's instants, so a rate differs in its decimals)."""
    return VALUE.sub("…%", message)


def values(messages: list[str]) -> list[float]:
    return [float(v) for m in messages if m.startswith("Halt ") for v in VALUE.findall(m)[:1]]


def decisions(messages: list[str]) -> list[str]:
    """The run's decisions in order (the step events), from its first "New revision detected"."""
    start = next(i for i, m in enumerate(messages) if m.startswith("New revision detected!"))
    return [m for m in messages[start:] if m.startswith(STEPS)]


async def test_replaying_a_recorded_rollback_takes_the_decisions_the_operator_took(world: World) -> None:
    world.canary_app.set_knobs(error_rate=0.5)  # the new version fails half its requests
    canary = fast_seed(stepWeight=20, maxWeight=60, threshold=2)
    await initialize(world, canary)
    released = datetime.now(UTC)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await reaches(world, "Failed")
    ended = datetime.now(UTC) + timedelta(seconds=2)
    took = decisions(event_messages(world.events))
    assert any(m.startswith("Halt ") for m in took), took

    prometheus = world.settings.metrics_server
    replay = Replay(prometheus, released, ended)
    floor = world.settings.min_analysis_interval_s
    result = await asyncio.to_thread(
        run, canary, Scenario(rollout_s=0.5), replay=replay, min_interval_s=floor
    )
    assert result.phase == "Failed", result.timeline()
    replayed = decisions(result.messages)
    assert [shape(m) for m in replayed] == [shape(m) for m in took], result.timeline()
    for seen, again in zip(values(took), values(replayed), strict=True):
        assert abs(seen - again) < 10, (took, replayed)
