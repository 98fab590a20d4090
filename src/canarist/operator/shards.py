"""Shards: several operator replicas share the canaries, each acting only on the canaries of the shards it
holds (``canarist operator --shards N``; docs/architecture.md "Shards").

* A canary belongs to shard ``shard_of(namespace, name, N)``: a SHA-256 of ``namespace/name`` modulo N, the
  same in every process and every release.
* Each shard is a coordination.k8s.io/v1 Lease, ``<lease>-shard-<i>``, held with the single-leader protocol
  (`canarist.kube.leader.LeaderElection`): at most one replica holds it, and its writes for that shard's
  canaries are fenced by it (`ShardManager.fence`, reading the shard of the worker whose task is writing
  from the `SHARD` context variable).
* Who is alive is one more Lease, ``<lease>-members``: each replica keeps an annotation there with a beat
  that changes every retry period. A member is alive while this replica has seen its beat change within the
  lease duration (judged on the local monotonic clock, as the election does, never across clocks).
* Every replica computes the same assignment of shards to the live members (`assign`: rendezvous hashing
  with a bounded load, so shards spread evenly and a join or a death moves few of them), campaigns for its
  own, and gives up the ones assigned elsewhere: it stops their workers (the tick in flight finishes), then
  releases the Lease, and the new owner acquires it at its next retry. Two replicas never act on one canary:
  the Lease is exclusive and every write is fenced by it.
* A replica that dies stops beating and renewing: the others see its beat stale after the lease duration,
  reassign its shards, and acquire each when its Lease expires. A canary's run continues from its status,
  as after a restart.
* Replicas that disagree on N would split the canaries differently: a replica claims no new shard while a
  live member announces another shard count (it keeps what it holds), and says so in its log once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

from canarist.kube.client import KubeClient, Obj
from canarist.kube.errors import AlreadyExists, Conflict, KubeError, NotFound
from canarist.kube.leader import LeaderElection
from canarist.kube.resources import LEASE
from canarist.operator.settings import MAX_SHARDS

log = logging.getLogger("canarist.shards")

#: the annotation prefix of the members Lease: one ``<prefix><key>`` per replica.
MEMBER_PREFIX = "shards.canarist.dev/"

#: the shard of the canary whose worker is running (None outside any worker: such writes are refused).
SHARD: ContextVar[int | None] = ContextVar("canarist_shard", default=None)

ShardCallback = Callable[[int], Awaitable[None]]


def shard_of(namespace: str, name: str, count: int) -> int:
    """The shard of canary ``namespace/name`` among ``count``: stable across processes and releases."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def _score(member: str, shard: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{member}#{shard}".encode()).digest()[:8], "big")


def assign(members: Sequence[str], count: int) -> dict[int, str]:
    """Shard → member, the same in every replica that sees the same members.

    Rendezvous hashing with a bounded load: each shard, in order, goes to the member that ranks it highest
    among those still under their share. Shares are as even as they can be (``count // n`` each, one more
    for the first ``count % n`` members to reach it), and a member joining or leaving moves only a few
    shards besides its own (each shard keeps its owner unless that owner left or is over its new share)."""
    if not members:
        return {}
    unique = sorted(set(members))
    base, extra = divmod(count, len(unique))
    load: Counter[str] = Counter()
    above = 0  # members already holding base + 1
    owners: dict[int, str] = {}
    for shard in range(count):
        ranked = sorted(unique, key=lambda m: _score(m, shard), reverse=True)
        owner = next(m for m in ranked if load[m] < base or (load[m] == base and above < extra))
        if load[owner] == base:
            above += 1
        owners[shard] = owner
        load[owner] += 1
    return owners


def lease_names(lease: str, count: int) -> list[str]:
    """The Leases of ``count`` shards and their members record (what RBAC must grant)."""
    return [f"{lease}-members", *(f"{lease}-shard-{i}" for i in range(count))]


@dataclass(frozen=True)
class Member:
    identity: str
    shards: int
    beat: int


def _member_key(identity: str) -> str:
    return MEMBER_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:20]


def _parse_member(value: str) -> Member | None:
    try:
        data = json.loads(value)
        return Member(str(data["identity"]), int(data["shards"]), int(data["beat"]))
    except (ValueError, KeyError, TypeError):
        return None


class Membership:
    """The members Lease: this replica's beat, and who else is alive."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        shards: int,
        lease_duration: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.shards = shards
        self.lease_duration = lease_duration
        self._monotonic = monotonic
        self._key = _member_key(identity)
        self._beat = 0
        #: annotation key → (value last seen, monotonic time it was first seen with that value)
        self._seen: dict[str, tuple[str, float]] = {}
        self._joined = False

    def live(self) -> list[Member]:
        """The members whose beat changed within the lease duration, as this replica saw it (itself
        included once it has joined)."""
        now = self._monotonic()
        members = []
        for key, (value, since) in self._seen.items():
            if key != self._key and now - since >= self.lease_duration:
                continue
            member = _parse_member(value)
            if member is not None:
                members.append(member)
        return members

    def _observe(self, lease: Obj) -> None:
        now = self._monotonic()
        annotations = (lease.get("metadata") or {}).get("annotations") or {}
        current = {k: str(v) for k, v in annotations.items() if k.startswith(MEMBER_PREFIX)}
        for key, value in current.items():
            seen = self._seen.get(key)
            if seen is None or seen[0] != value:
                self._seen[key] = (value, now)
        for key in list(self._seen):
            if key not in current:
                del self._seen[key]

    def _stale(self, key: str) -> bool:
        """Long dead: pruned from the record by whoever writes next."""
        seen = self._seen.get(key)
        return seen is not None and self._monotonic() - seen[1] >= 3 * self.lease_duration

    async def beat(self) -> None:
        """One heartbeat: read the record, write this replica's next beat (pruning long-dead members).
        Retries a conflict with another member's write a few times; raises `KubeError` otherwise."""
        self._beat += 1
        value = json.dumps({"identity": self.identity, "shards": self.shards, "beat": self._beat})
        for _ in range(5):
            try:
                lease = await self.client.get(LEASE, self.name, namespace=self.namespace)
            except NotFound:
                body: Obj = {
                    "apiVersion": LEASE.api_version,
                    "kind": LEASE.kind,
                    "metadata": {
                        "name": self.name,
                        "namespace": self.namespace,
                        "annotations": {self._key: value},
                    },
                    "spec": {"leaseDurationSeconds": max(1, round(self.lease_duration))},
                }
                try:
                    created = await self.client.create(body, kind=LEASE, namespace=self.namespace)
                except (AlreadyExists, Conflict):
                    continue
                self._observe(created)
                self._joined = True
                return
            self._observe(lease)
            meta = dict(lease.get("metadata") or {})
            annotations = {
                k: v
                for k, v in (meta.get("annotations") or {}).items()
                if not (k.startswith(MEMBER_PREFIX) and k != self._key and self._stale(k))
            }
            annotations[self._key] = value
            meta["annotations"] = annotations
            try:
                written = await self.client.replace(
                    {**lease, "metadata": meta}, kind=LEASE, namespace=self.namespace
                )
            except Conflict:
                continue
            self._observe(written)
            self._joined = True
            return
        raise KubeError(f"lease {self.namespace}/{self.name}: five conflicting writes in a row")

    async def leave(self) -> None:
        """Remove this replica's entry (a clean stop): the others reassign its shards at once. Never raises."""
        if not self._joined:
            return
        for _ in range(5):
            try:
                lease = await self.client.get(LEASE, self.name, namespace=self.namespace)
                meta = dict(lease.get("metadata") or {})
                annotations = dict(meta.get("annotations") or {})
                if annotations.pop(self._key, None) is None:
                    return
                meta["annotations"] = annotations
                await self.client.replace({**lease, "metadata": meta}, kind=LEASE, namespace=self.namespace)
                return
            except Conflict:
                continue
            except KubeError as error:
                log.warning(
                    "could not leave the shard members record %s/%s: %s", self.namespace, self.name, error
                )
                return


@dataclass(frozen=True)
class ElectionTiming:
    lease_duration: float
    renew_deadline: float
    retry_period: float


class ShardManager:
    """Campaigns for this replica's shards and hands the others over.

    ``claim(shard)`` runs when this replica starts holding a shard's Lease (start its canaries' workers);
    ``drop(shard)`` when it stops, before the Lease is released (stop them, letting the tick in flight
    finish). `fence` is the client's write fence."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        lease: str,
        identity: str,
        count: int,
        timing: ElectionTiming,
        claim: ShardCallback,
        drop: ShardCallback,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= count <= MAX_SHARDS:
            raise ValueError(f"--shards must be between 1 and {MAX_SHARDS}, not {count}")
        self.client = client
        self.namespace = namespace
        self.lease = lease
        self.identity = identity
        self.count = count
        self.timing = timing
        self._claim = claim
        self._drop = drop
        self._monotonic = monotonic
        self.membership = Membership(
            client, namespace, f"{lease}-members", identity, count, timing.lease_duration, monotonic
        )
        self._elections: dict[int, LeaderElection] = {}
        self._campaigns: dict[int, asyncio.Task[None]] = {}
        self.held: set[int] = set()
        self._mismatch_reported: frozenset[str] = frozenset()

    # ------------------------------------------------------------------ fencing

    def holds(self, shard: int) -> bool:
        election = self._elections.get(shard)
        return election is not None and election.holds_lease()

    def fence(self) -> bool:
        """True only for a write from a worker of a shard whose Lease this replica holds."""
        shard = SHARD.get()
        return shard is not None and self.holds(shard)

    # ------------------------------------------------------------------ the loop

    def wanted(self) -> set[int]:
        """The shards this replica should hold, from the members it sees alive."""
        live = self.membership.live()
        others = sorted({f"{m.identity} ({m.shards})" for m in live if m.shards != self.count})
        same = [m.identity for m in live if m.shards == self.count]
        if self.identity not in same:
            same.append(self.identity)
        mine = {shard for shard, owner in assign(same, self.count).items() if owner == self.identity}
        if others:
            key = frozenset(others)
            if key != self._mismatch_reported:
                self._mismatch_reported = key
                log.error(
                    "replicas with another --shards are alive (%s; this one has %d): claiming no new shard "
                    "until they are gone",
                    ", ".join(others),
                    self.count,
                )
            return mine & set(self._campaigns)
        self._mismatch_reported = frozenset()
        return mine

    async def run(self, stop: asyncio.Event) -> None:
        """Beat, rebalance, repeat every retry period until ``stop``; then hand every shard back."""
        try:
            while not stop.is_set():
                try:
                    await self.membership.beat()
                except KubeError as error:
                    log.warning("shard members record %s/%s: %s", self.namespace, self.lease, error)
                await self._rebalance(self.wanted())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.timing.retry_period):
                        await stop.wait()
        finally:
            await self._rebalance(set())
            await asyncio.shield(self.membership.leave())

    async def _rebalance(self, wanted: set[int]) -> None:
        for shard, task in list(self._campaigns.items()):
            if task.done():  # lost (or never won before a stop): campaign again below if still wanted
                del self._campaigns[shard]
                self._elections.pop(shard, None)
        for shard in sorted(wanted - set(self._campaigns)):
            election = LeaderElection(
                self.client,
                self.namespace,
                name=f"{self.lease}-shard-{shard}",
                identity=self.identity,
                lease_duration=self.timing.lease_duration,
                renew_deadline=self.timing.renew_deadline,
                retry_period=self.timing.retry_period,
                monotonic=self._monotonic,
            )
            self._elections[shard] = election
            self._campaigns[shard] = asyncio.create_task(
                self._campaign(shard, election), name=f"shard {shard}"
            )
        leaving = [shard for shard in self._campaigns if shard not in wanted]
        for shard in leaving:
            self._elections[shard].stop()
        if leaving:
            await asyncio.gather(*(self._campaigns[s] for s in leaving), return_exceptions=True)
            for shard in leaving:
                del self._campaigns[shard]
                self._elections.pop(shard, None)

    async def _campaign(self, shard: int, election: LeaderElection) -> None:
        async def hold() -> None:
            self.held.add(shard)
            log.info("%s holds shard %d of %d", self.identity, shard, self.count)
            try:
                await self._claim(shard)
                await asyncio.Event().wait()  # until the term ends (cancelled)
            finally:
                # Stop acting before the Lease is released (LeaderElection.run releases after this).
                self.held.discard(shard)
                await self._drop(shard)
                log.info("%s no longer holds shard %d of %d", self.identity, shard, self.count)

        await election.run(hold)


__all__ = [
    "MAX_SHARDS",
    "SHARD",
    "ElectionTiming",
    "Member",
    "Membership",
    "ShardManager",
    "assign",
    "lease_names",
    "shard_of",
]
