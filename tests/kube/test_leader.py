"""LeaderElection over a real Lease on the local control plane, with durations in seconds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from canarist.kube import KubeClient, LeaderElection
from canarist.kube import resources as r

from .test_informer import eventually

FAST: dict[str, Any] = {"lease_duration": 1.5, "renew_deadline": 1.0, "retry_period": 0.1}


class Candidate:
    """One elector running in a task, with a log of what its callbacks saw."""

    def __init__(self, kube: KubeClient, ns: str, identity: str, **options: Any) -> None:
        self.election = LeaderElection(kube, ns, identity=identity, **{**FAST, **options})
        self.log: list[str] = []
        self.working = False
        self.task: asyncio.Task[None] | None = None

    async def _work(self) -> None:
        self.log.append("started")
        self.working = True
        try:
            await asyncio.Event().wait()  # the leader's work runs until leadership ends
        finally:
            self.working = False

    def _stopped(self) -> None:
        self.log.append("stopped")

    def start(self) -> None:
        self.task = asyncio.create_task(self.election.run(self._work, self._stopped))

    async def finish(self) -> None:
        self.election.stop()
        if self.task is not None:
            async with asyncio.timeout(10):
                await self.task


@pytest.fixture
async def candidates() -> AsyncIterator[list[Candidate]]:
    made: list[Candidate] = []
    yield made
    for c in made:
        if c.task is not None and not c.task.done():
            c.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await c.task


async def _lease(kube: KubeClient, ns: str) -> dict[str, Any]:
    return await kube.get(r.LEASE, "flagger-leader-election", namespace=ns)


async def test_one_of_two_leads_and_release_hands_over(
    kube: KubeClient, ns: str, candidates: list[Candidate]
) -> None:
    # A long lease: the standby can only take over this quickly because the leader releases it.
    a = Candidate(kube, ns, "a", lease_duration=30, renew_deadline=1.0)
    b = Candidate(kube, ns, "b", lease_duration=30, renew_deadline=1.0)
    candidates += [a, b]
    a.start()
    await eventually(lambda: a.election.is_leader)
    b.start()
    await eventually(lambda: b.election.observed_holder == "a")
    assert not b.election.is_leader
    assert a.working

    lease = await _lease(kube, ns)
    assert lease["spec"]["holderIdentity"] == "a"
    assert lease["spec"]["leaseDurationSeconds"] == 30
    assert lease["spec"]["leaseTransitions"] == 0
    assert lease["spec"]["renewTime"].endswith("Z")

    await a.finish()
    assert a.log == ["started", "stopped"]
    assert not a.working
    assert not a.election.lost
    await eventually(lambda: b.election.is_leader)
    lease = await _lease(kube, ns)
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1  # as client-go counts: a release is not a transition
    await b.finish()
    assert (await _lease(kube, ns))["spec"]["holderIdentity"] == ""


async def test_a_dead_leader_is_replaced_after_the_lease_expires(
    kube: KubeClient, ns: str, candidates: list[Candidate]
) -> None:
    a = Candidate(kube, ns, "a", release_on_stop=False)
    b = Candidate(kube, ns, "b")
    candidates += [a, b]
    a.start()
    await eventually(lambda: a.election.is_leader)
    b.start()
    await eventually(lambda: b.election.observed_holder == "a")
    # "a" dies: its task is cancelled, nothing is released, the lease just stops being renewed.
    assert a.task is not None
    a.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await a.task
    assert (await _lease(kube, ns))["spec"]["holderIdentity"] == "a"
    await eventually(lambda: b.election.is_leader)
    assert (await _lease(kube, ns))["spec"]["holderIdentity"] == "b"


async def test_the_leader_steps_down_when_it_loses_the_lease(
    kube: KubeClient, ns: str, candidates: list[Candidate]
) -> None:
    a = Candidate(kube, ns, "a")
    candidates.append(a)
    a.start()
    await eventually(lambda: a.election.is_leader)
    await eventually(lambda: a.working)

    # Someone else writes themselves in as holder with a fresh renewal: "a" can no longer renew.
    async def intruder_renews() -> None:
        while True:
            lease = await _lease(kube, ns)
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lease["spec"].update(holderIdentity="intruder", renewTime=now)
            with contextlib.suppress(Exception):
                await kube.replace(lease)
            await asyncio.sleep(0.05)

    intruder = asyncio.create_task(intruder_renews())
    try:
        assert a.task is not None
        async with asyncio.timeout(10):
            await a.task  # run() returns once leadership is lost
    finally:
        intruder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await intruder
    assert a.election.lost
    assert not a.election.is_leader
    assert a.log == ["started", "stopped"]
    assert not a.working
    # A lost lease is not "released": the intruder still holds it.
    assert (await _lease(kube, ns))["spec"]["holderIdentity"] == "intruder"


async def test_failing_leader_work_steps_down_and_releases(kube: KubeClient, ns: str) -> None:
    stopped: list[bool] = []

    async def crash() -> None:
        raise RuntimeError("controller crashed")

    election = LeaderElection(kube, ns, identity="crashy", **FAST)
    async with asyncio.timeout(10):
        await election.run(crash, lambda: stopped.append(True))
    assert stopped == [True]
    assert not election.lost
    assert (await _lease(kube, ns))["spec"]["holderIdentity"] == ""


async def test_stop_while_campaigning_returns(kube: KubeClient, ns: str, candidates: list[Candidate]) -> None:
    a = Candidate(kube, ns, "a", lease_duration=30, renew_deadline=1.0)
    b = Candidate(kube, ns, "b", lease_duration=30, renew_deadline=1.0)
    candidates += [a, b]
    a.start()
    await eventually(lambda: a.election.is_leader)
    b.start()
    await eventually(lambda: b.election.observed_holder == "a")
    await b.finish()
    assert b.log == []
    assert (await _lease(kube, ns))["spec"]["holderIdentity"] == "a"


def test_durations_are_checked() -> None:
    with pytest.raises(ValueError, match="lease_duration"):
        LeaderElection(None, "ns", lease_duration=5, renew_deadline=10)  # type: ignore[arg-type]
