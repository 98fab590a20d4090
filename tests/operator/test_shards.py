"""Shards (`canarist.operator.shards`): the canary → shard map, the shard → replica assignment, the members
record and the per-shard Leases, over a real local control plane."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canarist.kube import KubeClient
from canarist.kube import resources as r
from canarist.kube.cache import ObjectCache
from canarist.operator.settings import MAX_SHARDS, parse_shards
from canarist.operator.shards import (
    MEMBER_PREFIX,
    SHARD,
    ElectionTiming,
    Membership,
    ShardManager,
    assign,
    lease_names,
    shard_of,
)

FAST = ElectionTiming(lease_duration=1.5, renew_deadline=1.0, retry_period=0.1)
_counter = itertools.count()


async def eventually(predicate: Any, within: float = 30.0) -> None:
    """Wait until ``predicate()`` holds (a bound on waiting, not a timing assertion)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polling a plain predicate is the point
            await asyncio.sleep(0.02)


@pytest.fixture
async def kube(local_cluster: Any) -> AsyncIterator[KubeClient]:
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def ns(kube: KubeClient) -> str:
    name = f"shards-{os.getpid()}-{next(_counter)}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


# ---------------------------------------------------------------------------------------- pure functions


def test_a_canary_s_shard_never_changes_across_processes_and_releases() -> None:
    # Frozen values: a change here would move every canary to another replica during an upgrade.
    assert [shard_of("test", f"app{i}", 6) for i in range(6)] == [1, 1, 5, 3, 3, 4]
    assert shard_of("default", "podinfo", 32) == 1
    assert shard_of("default", "podinfo", 1) == 0


def test_the_assignment_is_even_and_the_same_whatever_order_members_are_seen_in() -> None:
    for count in range(1, MAX_SHARDS + 1):
        for size in range(1, 7):
            members = [f"replica-{i}" for i in range(size)]
            owners = assign(members, count)
            assert sorted(owners) == list(range(count))
            load = Counter(owners.values())
            held = [load.get(m, 0) for m in members]
            assert max(held) - min(held) <= 1, (count, size, held)
            assert assign(list(reversed(members)), count) == owners
            assert assign(members + members[:1], count) == owners  # a member seen twice counts once
    assert assign([], 4) == {}


def test_a_replica_joining_or_leaving_moves_few_shards_besides_its_own() -> None:
    # Ideal: a newcomer takes its share and nothing else moves; a leaver's shards move and nothing else.
    # Bounded-load rendezvous moves a few more (a member over its new share gives one up); measured worst
    # over 1..32 shards and 1..6 replicas: 4 extra on a join, 4 on a leave.
    for count in range(1, MAX_SHARDS + 1):
        for size in range(1, 7):
            before = [f"replica-{i}" for i in range(size)]
            old = assign(before, count)
            joined = assign([*before, "newcomer"], count)
            moved = sum(old[s] != joined[s] for s in range(count))
            share = sum(owner == "newcomer" for owner in joined.values())
            assert share >= count // (size + 1)
            assert moved - share <= 4, (count, size, moved, share)
            if size > 1:
                left = assign(before[1:], count)
                moved = sum(old[s] != left[s] for s in range(count))
                lost = sum(owner == before[0] for owner in old.values())
                assert moved - lost <= 4, (count, size, moved, lost)


def test_the_leases_rbac_must_grant() -> None:
    assert lease_names("flagger-leader-election", 3) == [
        "flagger-leader-election-members",
        "flagger-leader-election-shard-0",
        "flagger-leader-election-shard-1",
        "flagger-leader-election-shard-2",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("three", "--shards: 'three' is not a whole number"),
        ("-1", f"--shards: -1 is out of range (0 to {MAX_SHARDS}; 0 means none)"),
        (str(MAX_SHARDS + 1), f"--shards: {MAX_SHARDS + 1} is out of range"),
    ],
)
def test_a_bad_shard_count_is_refused_with_the_flag_named(value: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        parse_shards(value)
    assert str(raised.value).startswith(message)


def test_a_good_shard_count_is_taken() -> None:
    assert parse_shards("0") == 0
    assert parse_shards(str(MAX_SHARDS)) == MAX_SHARDS


async def test_a_write_outside_any_shard_s_worker_is_fenced() -> None:
    client = KubeClient.from_url("http://127.0.0.1:9")  # never contacted: fencing is pure
    manager = ShardManager(
        client,
        "test",
        "flagger-leader-election",
        "r1",
        4,
        FAST,
        claim=_nothing,
        drop=_nothing,
    )
    assert SHARD.get() is None
    assert not manager.fence()  # no shard in this context
    token = SHARD.set(2)
    try:
        assert not manager.fence()  # a shard this replica does not hold
    finally:
        SHARD.reset(token)
    with pytest.raises(ValueError, match="--shards must be between 1 and 32, not 0"):
        ShardManager(client, "t", "l", "r1", 0, FAST, _nothing, _nothing)
    await client.close()


async def _nothing(shard: int) -> None:
    return None


# ---------------------------------------------------------------------------------------- the members record


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _annotations(kube: KubeClient, ns: str, name: str) -> dict[str, str]:
    lease = await kube.get(r.LEASE, name, namespace=ns)
    found = (lease.get("metadata") or {}).get("annotations") or {}
    return {k: v for k, v in found.items() if k.startswith(MEMBER_PREFIX)}


async def test_members_are_alive_while_their_beat_changes_and_pruned_long_after_it_stops(
    kube: KubeClient, ns: str
) -> None:
    clock = FakeClock()
    a = Membership(kube, ns, "l-members", "replica-a", 4, lease_duration=10, monotonic=clock)
    b = Membership(kube, ns, "l-members", "replica-b", 4, lease_duration=10, monotonic=clock)
    await a.beat()  # creates the record
    await b.beat()
    await a.beat()
    assert sorted(m.identity for m in a.live()) == ["replica-a", "replica-b"]
    assert sorted(m.identity for m in b.live()) == ["replica-a", "replica-b"]
    assert {m.shards for m in a.live()} == {4}

    clock.now += 9  # b falls silent; within the lease duration a still counts it
    await a.beat()
    assert sorted(m.identity for m in a.live()) == ["replica-a", "replica-b"]
    clock.now += 2  # b's beat has not changed for 11 s > 10 s
    await a.beat()
    assert [m.identity for m in a.live()] == ["replica-a"]
    assert len(await _annotations(kube, ns, "l-members")) == 2  # dead, not yet pruned

    await b.beat()  # it comes back: alive again at a's next read
    await a.beat()
    assert sorted(m.identity for m in a.live()) == ["replica-a", "replica-b"]

    clock.now += 31  # b silent for more than three lease durations: a's next write prunes it
    await a.beat()
    await a.beat()
    assert [m.identity for m in a.live()] == ["replica-a"]
    assert list((await _annotations(kube, ns, "l-members")).values()) == [
        '{"identity": "replica-a", "shards": 4, "beat": 7}'
    ]

    await a.leave()
    assert await _annotations(kube, ns, "l-members") == {}
    await b.leave()  # already pruned: nothing to do, no error


# ---------------------------------------------------------------------------------------- shard Leases


class Replica:
    """One in-process ShardManager whose claims and drops go to a shared ledger of holders."""

    def __init__(
        self, kube: KubeClient, ns: str, identity: str, count: int, holders: dict[int, str], faults: list[str]
    ) -> None:
        self.identity = identity
        self.holders = holders
        self.faults = faults
        self.claims = 0
        self.manager = ShardManager(kube, ns, "l", identity, count, FAST, self._claim, self._drop)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def _claim(self, shard: int) -> None:
        other = self.holders.get(shard)
        if other is not None:
            self.faults.append(f"{self.identity} claimed shard {shard} while {other} held it")
        self.holders[shard] = self.identity
        self.claims += 1

    async def _drop(self, shard: int) -> None:
        if self.holders.get(shard) != self.identity:
            self.faults.append(f"{self.identity} dropped shard {shard} it did not hold")
        self.holders.pop(shard, None)

    def start(self) -> None:
        self.task = asyncio.create_task(self.manager.run(self.stop))

    async def finish(self) -> None:
        self.stop.set()
        if self.task is not None:
            async with asyncio.timeout(30):
                await self.task


@pytest.fixture
async def replicas() -> AsyncIterator[list[Replica]]:
    made: list[Replica] = []
    yield made
    for replica in made:
        if replica.task is not None and not replica.task.done():
            replica.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await replica.task


async def _lease_holders(kube: KubeClient, ns: str, count: int) -> dict[int, str]:
    found = {}
    for shard in range(count):
        lease = await kube.get(r.LEASE, f"l-shard-{shard}", namespace=ns)
        found[shard] = str((lease.get("spec") or {}).get("holderIdentity") or "")
    return found


async def test_shards_are_shared_out_handed_over_and_taken_back_one_holder_at_a_time(
    kube: KubeClient, ns: str, replicas: list[Replica]
) -> None:
    holders: dict[int, str] = {}
    faults: list[str] = []
    a = Replica(kube, ns, "replica-a", 4, holders, faults)
    b = Replica(kube, ns, "replica-b", 4, holders, faults)
    replicas.extend([a, b])

    a.start()
    await eventually(lambda: a.manager.held == {0, 1, 2, 3})
    assert await _lease_holders(kube, ns, 4) == dict.fromkeys(range(4), "replica-a")

    b.start()  # b joins: a hands over b's share (stop, release), b acquires each at its next retry
    mine = {s for s, owner in assign(["replica-a", "replica-b"], 4).items() if owner == "replica-b"}
    assert len(mine) == 2
    await eventually(lambda: b.manager.held == mine and a.manager.held == {0, 1, 2, 3} - mine)
    leases = await _lease_holders(kube, ns, 4)
    assert {s for s, who in leases.items() if who == "replica-b"} == mine
    assert holders == {s: ("replica-b" if s in mine else "replica-a") for s in range(4)}

    await b.finish()  # a clean stop: b drops its shards, releases them and leaves the members record
    assert b.manager.held == set()
    await eventually(lambda: a.manager.held == {0, 1, 2, 3})
    assert holders == dict.fromkeys(range(4), "replica-a")
    assert faults == []
    assert b.claims == 2
    assert a.claims == 6  # 4 at first, then b's 2 back


async def test_a_replica_with_another_shard_count_claims_nothing_and_says_so_once(
    kube: KubeClient, ns: str, replicas: list[Replica], caplog: pytest.LogCaptureFixture
) -> None:
    holders: dict[int, str] = {}
    faults: list[str] = []
    a = Replica(kube, ns, "replica-a", 4, holders, faults)
    c = Replica(kube, ns, "replica-c", 3, {}, faults)
    replicas.extend([a, c])
    a.start()
    await eventually(lambda: a.manager.held == {0, 1, 2, 3})
    caplog.set_level(logging.ERROR, logger="canarist.shards")
    c.start()
    said = "replicas with another --shards are alive (replica-a (4); this one has 3)"
    await eventually(lambda: any(said in rec.getMessage() for rec in caplog.records))
    # Several more rounds of c's loop (each beats): still nothing claimed, and the log said it once.
    beats = c.manager.membership._beat
    await eventually(lambda: c.manager.membership._beat >= beats + 5)
    assert c.manager.held == set()
    assert a.manager.held == {0, 1, 2, 3}  # a keeps what it holds
    assert sum(said in rec.getMessage() for rec in caplog.records) == 1
    assert faults == []


# ---------------------------------------------------------------------------------------- cache refresh


async def test_a_refresh_serves_what_the_api_server_has_now_for_the_kept_objects(
    kube: KubeClient, ns: str
) -> None:
    for name in ("one", "two"):
        await kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": ns},
                "data": {"v": "1"},
            }
        )
    cache = ObjectCache(kube, [r.CONFIG_MAP], namespace=ns)  # not started: its watch delivers nothing
    assert cache.get(r.CONFIG_MAP, ns, "one") is None
    assert await cache.refresh(r.CONFIG_MAP, keep=lambda obj: obj["metadata"]["name"] == "one") == 1
    assert (cache.get(r.CONFIG_MAP, ns, "one") or {})["data"] == {"v": "1"}
    assert cache.get(r.CONFIG_MAP, ns, "two") is None  # not kept
    assert await cache.refresh(r.CONFIG_MAP) == 1  # only "two" is newer now
    assert await cache.refresh(r.CONFIG_MAP) == 0

    one = await kube.get(r.CONFIG_MAP, "one", namespace=ns)
    await kube.replace({**one, "data": {"v": "2"}}, kind=r.CONFIG_MAP, namespace=ns)
    assert await cache.refresh(r.CONFIG_MAP) == 1
    assert (cache.get(r.CONFIG_MAP, ns, "one") or {})["data"] == {"v": "2"}
