"""The per-canary worker: wakes at once on a change, never overlaps ticks, survives a failing tick."""

import asyncio
from datetime import UTC, datetime, timedelta

from canarist.operator.worker import CanaryWorker, TickOutcome


def now() -> datetime:
    return datetime.now(UTC)


async def test_wake_runs_a_tick_without_waiting_for_the_resync_period():
    ticked = asyncio.Queue[int]()
    count = 0

    async def tick() -> TickOutcome:
        nonlocal count
        count += 1
        ticked.put_nowait(count)
        return TickOutcome()

    worker = CanaryWorker("podinfo.test", tick, now, resync_s=3600)
    worker.start()
    assert await asyncio.wait_for(ticked.get(), 5) == 1  # the first tick runs on start
    worker.wake()
    assert await asyncio.wait_for(ticked.get(), 5) == 2  # a resync of an hour was not waited for
    await worker.stop()
    assert not worker.running


async def test_again_chains_ticks_and_next_due_at_shortens_the_wait():
    seen: list[str] = []
    done = asyncio.Event()

    async def tick() -> TickOutcome:
        seen.append("tick")
        if len(seen) == 1:
            return TickOutcome(again=True)
        if len(seen) == 2:
            return TickOutcome(next_due_at=now() + timedelta(milliseconds=10))
        done.set()
        return TickOutcome()

    worker = CanaryWorker("podinfo.test", tick, now, resync_s=3600)
    worker.start()
    await asyncio.wait_for(done.wait(), 5)
    await worker.stop()
    assert seen == ["tick", "tick", "tick"]


async def test_ticks_never_overlap_and_a_crashing_tick_does_not_kill_the_loop():
    active = 0
    overlaps = 0
    calls = 0
    done = asyncio.Event()

    async def tick() -> TickOutcome:
        nonlocal active, overlaps, calls
        calls += 1
        active += 1
        overlaps += active > 1
        await asyncio.sleep(0.01)
        active -= 1
        if calls == 2:
            raise RuntimeError("boom")
        if calls >= 4:
            done.set()
        return TickOutcome()

    worker = CanaryWorker("podinfo.test", tick, now, resync_s=3600)
    worker.start()
    for _ in range(20):
        worker.wake()
        await asyncio.sleep(0.002)
        if done.is_set():
            break
    while not done.is_set():
        worker.wake()
        await asyncio.wait_for(asyncio.sleep(0.01), 5)
    await worker.stop()
    assert overlaps == 0
    assert calls >= 4


async def test_stop_lets_the_tick_in_flight_finish():
    started = asyncio.Event()
    finished: list[bool] = []

    async def tick() -> TickOutcome:
        started.set()
        await asyncio.sleep(0.05)
        finished.append(True)
        return TickOutcome()

    worker = CanaryWorker("podinfo.test", tick, now, resync_s=3600)
    worker.start()
    await asyncio.wait_for(started.wait(), 5)
    await worker.stop()
    assert finished == [True]
