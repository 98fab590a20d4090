"""Deliver notifications off the caller's path: one bounded queue and one sender task per destination.

>>> outbox = Outbox(queue_size=100, max_attempts=3)
>>> outbox.submit("https://hooks.slack.com/services/T/B/secret", send)   # returns at once
True
>>> dropped = await outbox.close(timeout_s=5)                              # at shutdown

* **Destinations.** A destination is a key: a URL (event webhooks) or an AlertProvider identity
  (``alert/<namespace>/<name>``, ``alert/global``). Each has its own FIFO queue of at most ``queue_size``
  waiting items and its own sender task, so a hanging destination delays nothing but itself. A sender task
  exits when its queue is empty; the next :meth:`Outbox.submit` starts a new one.
* **Order.** Items for one destination are sent one at a time, in submission order; an item being retried
  holds back the ones behind it. There is no order across destinations.
* **Results.** ``send`` is called once per attempt and reports how it went: ``None`` or ``True`` is
  delivered; ``False`` is a transient failure; a :class:`SendResult` says ``ok``/``transient``/``error``
  itself (``transient=False`` is a permanent failure: not retried); an exception is a transient failure.
* **Retries.** A transient failure is tried again, up to ``max_attempts`` attempts in all, after
  ``backoff_s * 2**(n-1)`` seconds (capped at ``backoff_max_s``).
* **Drops.** :meth:`Outbox.submit` on a full queue (or after :meth:`Outbox.close`) drops the new item and
  returns ``False``; :meth:`Outbox.close` drops what it could not send in time. Drops are counted per
  ``(kind, destination label)`` in :attr:`Outbox.dropped` and reported to ``on_drop(kind, label)``.
* **Secrets.** Logs, counters and callbacks only ever see :func:`destination_label`: a URL becomes
  ``scheme://host[:port]/…`` (Slack, Teams and Discord webhook URLs carry their secret in the path).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from yarl import URL

log = logging.getLogger("canarist.notify.outbox")

DEFAULT_QUEUE_SIZE = 1000  # a release of 100 canaries at once emits a few hundred events
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BACKOFF_S = 1.0
DEFAULT_BACKOFF_MAX_S = 30.0
DEFAULT_CLOSE_TIMEOUT_S = 5.0

Outcome = Literal["ok", "failed", "dropped"]


@dataclass(frozen=True)
class SendResult:
    """What one attempt reports. ``transient`` matters only when ``ok`` is false."""

    ok: bool
    transient: bool = False
    error: str = ""


SendOutcome = SendResult | bool | None
Send = Callable[[], Awaitable[SendOutcome]]


@dataclass(frozen=True)
class Delivery:
    """The final outcome of one submitted item, given to its ``on_done`` exactly once."""

    kind: str
    destination: str  # the label (redacted), never the raw key
    outcome: Outcome
    attempts: int
    error: str = ""


DoneCallback = Callable[[Delivery], None]
DropCallback = Callable[[str, str], None]


def destination_label(destination: str) -> str:
    """What may be logged about a destination: an http(s) URL is cut to ``scheme://host[:port]/…``;
    anything else (an AlertProvider identity) is kept as it is."""
    try:
        url = URL(destination)
    except (ValueError, TypeError):
        return destination
    if url.scheme not in ("http", "https") or not url.host:
        return destination
    host = url.host if url.explicit_port is None else f"{url.host}:{url.explicit_port}"
    if ":" in url.host:  # IPv6
        host = f"[{url.host}]" if url.explicit_port is None else f"[{url.host}]:{url.explicit_port}"
    return f"{url.scheme}://{host}/…"


@dataclass
class _Item:
    kind: str
    send: Send
    max_attempts: int
    on_done: DoneCallback | None


@dataclass
class _Lane:
    label: str
    queue: asyncio.Queue[_Item]
    task: asyncio.Task[None] | None = None
    current: _Item | None = None


@dataclass(kw_only=True)
class Outbox:
    """Per-destination queues and sender tasks; see the module docstring.

    ``on_drop(kind, label)`` is called for every dropped item (wire a Prometheus counter to it).
    Callbacks must not raise (an exception is logged and ignored).
    """

    queue_size: int = DEFAULT_QUEUE_SIZE
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff_s: float = DEFAULT_BACKOFF_S
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    on_drop: DropCallback | None = None
    dropped: dict[tuple[str, str], int] = field(default_factory=dict, init=False)
    """Dropped items by ``(kind, destination label)``."""
    _lanes: dict[str, _Lane] = field(default_factory=dict, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    # ------------------------------------------------------------------ public

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(
        self,
        destination: str,
        send: Send,
        *,
        kind: str = "notification",
        max_attempts: int | None = None,
        on_done: DoneCallback | None = None,
    ) -> bool:
        """Queue ``send`` for ``destination`` and return at once: ``True`` if queued, ``False`` if dropped
        (queue full, or the outbox is closed). Must be called from the event loop's thread."""
        label = destination_label(destination)
        item = _Item(kind, send, max(1, max_attempts or self.max_attempts), on_done)
        if self._closed:
            self._drop(label, item, "the outbox is closed")
            return False
        lane = self._lanes.get(destination)
        if lane is None:
            lane = _Lane(label, asyncio.Queue(self.queue_size))
            self._lanes[destination] = lane
        try:
            lane.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._drop(label, item, f"its queue is full ({self.queue_size} waiting)")
            return False
        if lane.task is None:
            lane.task = asyncio.get_running_loop().create_task(
                self._run(destination, lane), name=f"outbox {label}"
            )
        return True

    def pending(self, destination: str | None = None) -> int:
        """Items queued or being sent (for ``destination``, or in all)."""
        if destination is None:
            lanes = list(self._lanes.values())
        else:
            lanes = [self._lanes[destination]] if destination in self._lanes else []
        return sum(lane.queue.qsize() + (lane.current is not None) for lane in lanes)

    def dropped_for(self, destination: str, kind: str | None = None) -> int:
        """Drops counted for ``destination`` (a raw key or a label), of one kind or of all."""
        label = destination_label(destination)
        return sum(n for (k, d), n in self.dropped.items() if d == label and kind in (None, k))

    async def wait_idle(self) -> None:
        """Wait until every queue is empty and nothing is being sent (tests, shutdown)."""
        while self._lanes:
            tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
            if not tasks:
                return
            await asyncio.wait(tasks)

    async def close(self, timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S) -> int:
        """Refuse new items, let what is queued go out for up to ``timeout_s``, then cancel the rest.

        Returns how many items this call dropped (each is also counted and given to ``on_drop``).
        Calling it again is harmless.
        """
        self._closed = True
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, timeout_s))
        dropped = 0
        for lane in list(self._lanes.values()):
            if lane.task is not None and not lane.task.done():
                lane.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.task
            leftovers = [lane.current] if lane.current is not None else []
            lane.current = None
            while not lane.queue.empty():
                leftovers.append(lane.queue.get_nowait())
            for item in leftovers:
                self._drop(lane.label, item, f"not sent within the {timeout_s:g}s shutdown drain")
            dropped += len(leftovers)
        self._lanes.clear()
        if dropped:
            log.warning("notifications: %d dropped at shutdown", dropped)
        return dropped

    # ------------------------------------------------------------------ internals

    def _drop(self, label: str, item: _Item, why: str) -> None:
        key = (item.kind, label)
        count = self.dropped.get(key, 0) + 1
        self.dropped[key] = count
        if count == 1 or count % 100 == 0:
            log.warning("%s to %s dropped: %s (%d dropped so far)", item.kind, label, why, count)
        if self.on_drop is not None:
            _call_safely(self.on_drop, item.kind, label)
        self._done(item, Delivery(item.kind, label, "dropped", 0, why))

    def _done(self, item: _Item, delivery: Delivery) -> None:
        if item.on_done is not None:
            _call_safely(item.on_done, delivery)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_s * (2.0 ** (attempt - 1))))

    async def _run(self, destination: str, lane: _Lane) -> None:
        """Send the lane's items in order; exit (and forget the lane) when its queue is empty."""
        try:
            while True:
                try:
                    item = lane.queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                lane.current = item
                delivery = await self._deliver(lane.label, item)
                lane.current = None
                self._done(item, delivery)
        finally:
            # No await between the empty check above and this: a submit() cannot slip in between.
            if self._lanes.get(destination) is lane and lane.queue.empty() and lane.current is None:
                del self._lanes[destination]
            lane.task = None

    async def _deliver(self, label: str, item: _Item) -> Delivery:
        error = ""
        for attempt in range(1, item.max_attempts + 1):
            result = await self._attempt(label, item)
            if result.ok:
                return Delivery(item.kind, label, "ok", attempt)
            error = result.error or "failed"
            if not result.transient:
                return Delivery(item.kind, label, "failed", attempt, error)
            if attempt < item.max_attempts:
                wait = self._backoff(attempt)
                log.info(
                    "%s to %s failed (attempt %d of %d), retrying in %gs: %s",
                    item.kind, label, attempt, item.max_attempts, wait, error,
                )  # fmt: skip
                await asyncio.sleep(wait)
        return Delivery(item.kind, label, "failed", item.max_attempts, error)

    async def _attempt(self, label: str, item: _Item) -> SendResult:
        try:
            outcome = await item.send()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.warning("%s to %s raised: %s", item.kind, label, err, exc_info=True)
            return SendResult(False, transient=True, error=str(err) or type(err).__name__)
        if outcome is None or outcome is True:
            return SendResult(True)
        if outcome is False:
            return SendResult(False, transient=True)
        return outcome


def _call_safely(callback: Callable[..., None], *args: object) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("notification callback failed")
