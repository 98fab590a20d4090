"""`LeaderElection`: one active operator among replicas, over a coordination.k8s.io/v1 Lease.

The protocol is client-go's, so canarist and Flagger replicas agree on the lock:

* A candidate **acquires** the Lease when it does not exist (create), when ``spec.holderIdentity`` is empty
  (released), or when the holder has not renewed for ``leaseDurationSeconds``. Expiry is judged on the
  local monotonic clock from the moment this candidate last saw the record change, never by comparing
  clocks across machines. A standby polls every ``retry_period`` but, once it knows when the record it saw
  expires, it wakes at that moment rather than at its next tick: it takes over at most
  ``leaseDurationSeconds + retry_period`` (plus a request's latency) after the holder's last renewal, and
  never sooner than ``leaseDurationSeconds`` after it.
* The leader **renews** (``renewTime``) every ``retry_period``. If it cannot renew for ``renew_deadline``
  (API errors, or another holder took the Lease) it **steps down**: the leader's work is cancelled and
  ``on_stopped_leading`` runs.
* On a clean stop (`stop`, or cancelling `run`) the leader **releases** the Lease (empty holder, 1 s
  duration) so a standby takes over at its next retry instead of waiting for expiry.

Every write is a PUT with the resourceVersion just read, so two candidates never both win.

**Fencing.** `holds_lease` is true only while, on this process's own monotonic clock, the last successful
acquire/renew (timed from *before* its request was sent) is younger than ``lease_duration - margin``. A
standby cannot take over sooner than ``lease_duration`` after that instant, so a writer that checks
`holds_lease` before each request (``client.set_write_fence(election.holds_lease)``) never writes beside a
new leader, provided its request reaches the server within ``margin``. After a SIGSTOP/SIGCONT (or any
stall) the monotonic clock has moved on, so `holds_lease` is false at once, before any renewal; and a
leader that finds its last renewal older than ``lease_duration`` steps down (``on_stopped_leading``,
`lost`) without renewing, since another replica may have taken over and acted meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from .client import KubeClient, Obj
from .errors import AlreadyExists, Conflict, KubeError, NotFound
from .resources import LEASE

__all__ = ["Callback", "LeaderElection", "default_identity"]

log = logging.getLogger(__name__)

Callback = Callable[[], Awaitable[None] | None]


def default_identity() -> str:
    """``<hostname>_<uuid>``, Flagger's identity format."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


def _micro_time(t: datetime | None = None) -> str:
    return (t or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElection:
    """Elect one holder of the Lease ``namespace/name``.

    ``await election.run(on_started_leading, on_stopped_leading)`` campaigns until it leads, calls
    ``on_started_leading`` (sync, or async: a long-running coroutine is the leader's work and is cancelled
    when leadership ends; if it raises, the leader steps down), keeps renewing, and returns after leadership
    ends: `stop` was called (the Lease is released), or it was lost (`lost` is then true; Flagger exits the
    process at that point). ``on_stopped_leading`` runs whenever a term that started ends.
    """

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str = "flagger-leader-election",
        identity: str | None = None,
        lease_duration: float = 60.0,
        renew_deadline: float = 15.0,
        retry_period: float = 5.0,
        *,
        release_on_stop: bool = True,
        on_new_leader: Callable[[str], None] | None = None,
        fence_margin: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lease_duration > renew_deadline > 0 or not retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > 0 and retry_period > 0")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.release_on_stop = release_on_stop
        self.on_new_leader = on_new_leader
        if fence_margin is None:
            fence_margin = min(max(1.0, 0.1 * lease_duration), 0.5 * lease_duration)
        if not 0 <= fence_margin < lease_duration:
            raise ValueError("need 0 <= fence_margin < lease_duration")
        self.fence_margin = fence_margin
        """The default `holds_lease` margin: max(1 s, 10 % of lease_duration), at most half of it."""
        self._monotonic = monotonic

        self.is_leader = False
        self.lost = False
        self.observed_holder = ""
        self._observed_record: tuple[str, str, str] | None = None
        self._observed_at = 0.0
        self._observed_duration = lease_duration
        self._renewed_at: float | None = None
        self._stop = asyncio.Event()

    # ------------------------------------------------------------------ public API

    @property
    def last_renewed_at(self) -> float | None:
        """The monotonic time just before the request of this holder's last successful acquire/renew was
        sent; ``None`` when it does not hold the Lease."""
        return self._renewed_at

    @property
    def observed_renew_time(self) -> str:
        """``spec.renewTime`` of the Lease record as this candidate last saw it (``""`` before any)."""
        return self._observed_record[1] if self._observed_record else ""

    def holds_lease(self, margin_s: float | None = None) -> bool:
        """True only while this replica's last successful acquire/renew is younger than
        ``lease_duration - margin_s`` on its own monotonic clock (``margin_s`` defaults to `fence_margin`).

        Pure and cheap (no request): use it as the client's write fence. It turns false by itself when
        renewals stop or the process was stalled (SIGSTOP, a long GC pause), before any renewal is tried."""
        renewed = self._renewed_at
        if renewed is None:
            return False
        margin = self.fence_margin if margin_s is None else margin_s
        return self._monotonic() - renewed < self.lease_duration - margin

    def lease_lapsed(self) -> bool:
        """True when this replica held the Lease but its last renewal is ``lease_duration`` old or older:
        another replica may have acquired it since."""
        renewed = self._renewed_at
        return renewed is not None and self._monotonic() - renewed >= self.lease_duration

    def stop(self) -> None:
        """Ask `run` to end: a leader releases the Lease, a candidate stops campaigning."""
        self._stop.set()

    async def run(self, on_started_leading: Callback, on_stopped_leading: Callback | None = None) -> None:
        self.lost = False
        if not await self._acquire():
            return
        self.is_leader = True
        log.info("%s became leader of lease %s/%s", self.identity, self.namespace, self.name)
        work = asyncio.ensure_future(self._invoke(on_started_leading))
        try:
            await self._renew_until_done(work)
        finally:
            self.is_leader = False
            self._renewed_at = None
            if not work.done():
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            if not self.lost and self.release_on_stop:
                await asyncio.shield(self.release())
            if on_stopped_leading is not None:
                try:
                    await self._invoke(on_stopped_leading)
                except Exception:
                    log.exception("on_stopped_leading failed")

    async def try_acquire_or_renew(self) -> bool:
        """One round of the protocol: True when this candidate holds the Lease afterwards.

        On success `last_renewed_at` is the monotonic time taken just before the write was sent; on a lost
        race (someone else's valid lease, a conflict) this replica no longer counts as holding it."""
        now = datetime.now(UTC)
        try:
            lease = await self.client.get(LEASE, self.name, namespace=self.namespace)
        except NotFound:
            body: Obj = {
                "apiVersion": LEASE.api_version,
                "kind": LEASE.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": self._duration_seconds(),
                    "acquireTime": _micro_time(now),
                    "renewTime": _micro_time(now),
                    "leaseTransitions": 0,
                },
            }
            sent_at = self._monotonic()
            try:
                created = await self.client.create(body, kind=LEASE, namespace=self.namespace)
            except (AlreadyExists, Conflict):
                self._renewed_at = None
                return False
            self._observe(created, self._monotonic())
            self._renewed_at = sent_at
            return True

        spec: dict[str, Any] = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        self._observe(lease, self._monotonic())
        if holder and holder != self.identity:
            self._renewed_at = None
            if self._observed_at + self._observed_duration > self._monotonic():
                return False  # someone else holds a valid lease
        new_spec = dict(spec)
        new_spec["holderIdentity"] = self.identity
        new_spec["leaseDurationSeconds"] = self._duration_seconds()
        new_spec["renewTime"] = _micro_time(now)
        if holder != self.identity:
            new_spec["acquireTime"] = _micro_time(now)
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        updated = dict(lease)
        updated["spec"] = new_spec
        sent_at = self._monotonic()
        try:
            written = await self.client.replace(updated, kind=LEASE, namespace=self.namespace)
        except Conflict:
            self._renewed_at = None
            return False
        self._observe(written, self._monotonic())
        self._renewed_at = sent_at
        return True

    async def release(self) -> bool:
        """Give the Lease up if this candidate holds it: empty holder, 1 s duration. Never raises."""
        try:
            lease = await self.client.get(LEASE, self.name, namespace=self.namespace)
            spec: dict[str, Any] = lease.get("spec") or {}
            if spec.get("holderIdentity") != self.identity:
                return False
            self._renewed_at = None  # stop writing before the Lease is given up
            now = _micro_time()
            lease["spec"] = {
                **spec,
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "renewTime": now,
                "acquireTime": now,
            }
            await self.client.replace(lease, kind=LEASE, namespace=self.namespace)
            log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
            return True
        except KubeError as e:
            log.warning("%s could not release lease %s/%s: %s", self.identity, self.namespace, self.name, e)
            return False

    # ------------------------------------------------------------------ internals

    def _duration_seconds(self) -> int:
        return max(1, math.ceil(self.lease_duration))

    def _observe(self, lease: Obj, at: float) -> None:
        spec = lease.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""), str(spec.get("leaseDurationSeconds") or ""))
        if record != self._observed_record:
            self._observed_record = record
            self._observed_at = at
            try:
                self._observed_duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
            except (TypeError, ValueError):
                self._observed_duration = self.lease_duration
        if holder != self.observed_holder:
            self.observed_holder = holder
            if holder and self.on_new_leader is not None:
                try:
                    self.on_new_leader(holder)
                except Exception:
                    log.exception("on_new_leader failed")

    async def _attempt(self, budget: float | None = None) -> bool:
        try:
            if budget is None:
                return await self.try_acquire_or_renew()
            async with asyncio.timeout(max(budget, 0.001)):
                return await self.try_acquire_or_renew()
        except TimeoutError:
            return False
        except KubeError as e:
            log.info("%s: lease %s/%s: %s", self.identity, self.namespace, self.name, e)
            return False

    async def _sleep_or_stop(self, seconds: float) -> bool:
        """Sleep; True when stop was requested meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        return self._stop.is_set()

    def _until_expiry(self) -> float | None:
        """Seconds until the other holder's record, as last seen, expires; None when there is none."""
        holder = self._observed_record[0] if self._observed_record else ""
        if not holder or holder == self.identity:
            return None
        return self._observed_at + self._observed_duration - self._monotonic()

    async def _acquire(self) -> bool:
        while not self._stop.is_set():
            if await self._attempt():
                return True
            # Poll every retry period, but try again the moment the record we saw expires: waiting for the
            # next tick after expiry made takeovers up to a retry period late.
            wait = self.retry_period
            remaining = self._until_expiry()
            if remaining is not None and 0 < remaining < wait:
                wait = remaining + 0.001
            if await self._sleep_or_stop(wait):
                break
        return False

    async def _renew_until_done(self, work: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Wait a retry period, waking early for stop or for the leader's work ending.
            stop_wait: asyncio.Future[Any] = asyncio.ensure_future(self._stop.wait())
            waiters: set[asyncio.Future[Any]] = {stop_wait, work}
            try:
                await asyncio.wait(waiters, timeout=self.retry_period, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_wait.cancel()
            if self._stop.is_set():
                return
            if work.done() and not work.cancelled() and work.exception() is not None:
                log.error("%s: leader work failed, stepping down: %r", self.identity, work.exception())
                return
            deadline = loop.time() + self.renew_deadline
            while True:
                if self._check_lapsed():
                    return
                if await self._attempt(deadline - loop.time()):
                    break
                if loop.time() + self.retry_period >= deadline:
                    self.lost = True
                    log.error("%s lost leadership of lease %s/%s", self.identity, self.namespace, self.name)
                    return
                if await self._sleep_or_stop(self.retry_period):
                    return

    def _check_lapsed(self) -> bool:
        """A renewal this late does not count even if the PUT would succeed: another replica may have
        taken the Lease over and acted in between. Step down instead."""
        if not self.lease_lapsed():
            return False
        age = self._monotonic() - (self._renewed_at or 0.0)
        self.lost = True
        self._renewed_at = None
        log.error(
            "%s lost leadership of lease %s/%s: last renewal %.1f s ago, lease duration %g s (process stalled?)",
            self.identity,
            self.namespace,
            self.name,
            age,
            self.lease_duration,
        )
        return True

    @staticmethod
    async def _invoke(callback: Callback) -> None:
        result = callback()
        if inspect.isawaitable(result):
            await result
