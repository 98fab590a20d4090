"""One asyncio task per Canary: it ticks when something the canary depends on changed, when the next
paced step is due, and at least once per control-loop interval (a safety net, like Flagger's resync).

Ticks of one canary never overlap, so the engine always sees the result of the previous tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from canarist.operator.shards import SHARD

log = logging.getLogger("canarist.worker")


@dataclass(frozen=True)
class TickOutcome:
    """What a tick tells the worker about the next one."""

    again: bool = False
    next_due_at: datetime | None = None


Tick = Callable[[], Awaitable[TickOutcome]]
Clock = Callable[[], datetime]


class CanaryWorker:
    def __init__(self, key: str, tick: Tick, clock: Clock, resync_s: float, shard: int | None = None) -> None:
        self.key = key
        self.shard = shard
        self._tick = tick
        self._clock = clock
        self._resync_s = resync_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current_tick: asyncio.Task[TickOutcome] | None = None
        self.ticks = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"canary {self.key}")

    def wake(self) -> None:
        """Ask for a tick as soon as the current one (if any) ends."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop after the tick in flight finishes, so no status is half written."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._current_tick is not None:
            # The tick was shielded from the cancel: let its writes finish.
            with contextlib.suppress(asyncio.CancelledError):
                await self._current_tick

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        # Everything this task starts (its ticks, their event writes) inherits the shard: the write fence
        # of a sharded operator reads it.
        SHARD.set(self.shard)
        while True:
            self._wake.clear()
            self._current_tick = asyncio.ensure_future(self._safe_tick())
            outcome = await asyncio.shield(self._current_tick)
            self._current_tick = None
            self.ticks += 1
            if outcome.again:
                continue
            await self._sleep_until_needed(outcome.next_due_at)

    async def _safe_tick(self) -> TickOutcome:
        try:
            return await self._tick()
        except Exception:
            # A bug or an unexpected API answer must not kill the canary's loop; the next tick retries.
            log.exception("tick failed", extra={"canary": self.key})
            return TickOutcome()

    async def _sleep_until_needed(self, next_due_at: datetime | None) -> None:
        timeout = self._resync_s
        if next_due_at is not None:
            timeout = min(timeout, max(0.0, (next_due_at - self._clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
