"""A real leader process (tests/kube/_elector.py) against the local control plane, stopped and killed with
real signals, beside a standby in this process. Waits are on events (lines the process prints, Lease holder
changes), bounded by timeouts; timing figures use the system-wide monotonic clock both processes share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from canarist.kube import KubeClient, LeaderElection
from canarist.kube import resources as r

from .conftest import configmap
from .test_informer import eventually

SCRIPT = Path(__file__).with_name("_elector.py")
LEASE, RENEW, RETRY = 2.0, 1.5, 0.2
Line = dict[str, Any]


class LeaderProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[Line] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(json.loads(raw))
            self._changed.set()

    async def wait_for(self, predicate: Callable[[list[Line]], bool], within: float = 15.0) -> None:
        async with asyncio.timeout(within):
            while not predicate(self.lines):
                self._changed.clear()
                await self._changed.wait()

    def of(self, event: str) -> list[Line]:
        return [line for line in self.lines if line["e"] == event]

    async def finish(self, within: float = 15.0) -> int:
        async with asyncio.timeout(within):
            code = await self.proc.wait()
            await self._reader
        return code


@pytest.fixture
async def spawn(local_cluster: Any) -> AsyncIterator[Callable[[str, str, str], Any]]:
    started: list[LeaderProcess] = []

    async def start(ns: str, identity: str, cm: str) -> LeaderProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            local_cluster.url,
            ns,
            identity,
            cm,
            str(LEASE),
            str(RENEW),
            str(RETRY),
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        leader = LeaderProcess(proc)
        started.append(leader)
        return leader

    yield start
    for leader in started:
        if leader.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                leader.proc.send_signal(signal.SIGCONT)
                leader.proc.kill()
            await leader.proc.wait()
        leader._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await leader._reader


class Standby:
    """A LeaderElection in this process whose work writes the ConfigMap once as "b", through its fence."""

    def __init__(self, kube: KubeClient, ns: str, cm: str) -> None:
        self.election = LeaderElection(
            kube, ns, identity="b", lease_duration=LEASE, renew_deadline=RENEW, retry_period=RETRY
        )
        kube.set_write_fence(self.election.holds_lease)
        self.kube, self.ns, self.cm = kube, ns, cm
        self.wrote = False
        self.acquired_at: float | None = None
        self.task = asyncio.create_task(self.election.run(self._work))

    async def _work(self) -> None:
        self.acquired_at = self.election.last_renewed_at
        await self.kube.patch(r.CONFIG_MAP, self.cm, {"data": {"writer": "b"}}, namespace=self.ns)
        self.wrote = True
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.election.stop()
        async with asyncio.timeout(10):
            await self.task


async def test_a_stopped_leader_is_fenced_on_wake_up_and_steps_down(
    kube: KubeClient, ns: str, spawn: Any
) -> None:
    await kube.create(configmap("state", ns, {"writer": "", "seq": ""}))
    a = await spawn(ns, "a", "state")
    await a.wait_for(lambda lines: sum(x["e"] == "write" for x in lines) >= 3)
    b = Standby(kube, ns, "state")
    try:
        await eventually(lambda: b.election.observed_holder == "a")

        a.proc.send_signal(signal.SIGSTOP)
        # The standby takes over once "a"'s lease expires, and writes.
        await eventually(lambda: b.wrote, within=15)
        assert (await kube.get(r.LEASE, "flagger-leader-election", namespace=ns))["spec"][
            "holderIdentity"
        ] == "b"
        resumed = time.monotonic()
        a.proc.send_signal(signal.SIGCONT)
        assert await a.finish() == 3  # it exits as having lost leadership

        after = [line for line in a.lines if line["t"] >= resumed]
        stopped = [line for line in after if line["e"] == "stopped"]
        assert stopped == [stopped[0]]
        assert stopped[0]["lost"] is True
        assert stopped[0]["holds"] is False
        # From its wake-up on, it never believed it held the lease and no write of its got through.
        assert all(line.get("holds") is False for line in after if "holds" in line), after
        assert not [line for line in after if line["e"] == "write" and line["t0"] >= resumed], after
        assert not [line for line in after if line["e"] == "renewed"], after
        # Server side: the new leader's write stands, the Lease is the standby's.
        assert (await kube.get(r.CONFIG_MAP, "state", namespace=ns))["data"]["writer"] == "b"
        assert b.election.holds_lease()
        assert (await kube.get(r.LEASE, "flagger-leader-election", namespace=ns))["spec"][
            "holderIdentity"
        ] == "b"
    finally:
        await b.close()


async def test_a_killed_leader_is_replaced_within_lease_duration_plus_retry_period(
    kube: KubeClient, ns: str, spawn: Any
) -> None:
    await kube.create(configmap("state", ns, {"writer": ""}))
    a = await spawn(ns, "a", "state")
    await a.wait_for(lambda lines: sum(x["e"] == "renewed" for x in lines) >= 2)
    b = Standby(kube, ns, "state")
    try:
        await eventually(lambda: b.election.observed_holder == "a")
        # Kill it right after a renewal is reported, so that this renewal is its last one.
        seen = len(a.of("renewed"))
        await a.wait_for(lambda lines: sum(x["e"] == "renewed" for x in lines) > seen)
        a.proc.send_signal(signal.SIGKILL)
        await a.finish()
        last = a.of("renewed")[-1]
        lease = await kube.get(r.LEASE, "flagger-leader-election", namespace=ns)
        assert lease["spec"]["holderIdentity"] == "a"
        assert lease["spec"]["renewTime"] == last["renewTime"], "the reported renewal was not the last"

        await eventually(lambda: b.acquired_at is not None, within=15)
        assert b.acquired_at is not None
        takeover = b.acquired_at - last["at"]
        print(f"takeover {takeover:.3f} s after the last renewal (lease {LEASE} s, retry {RETRY} s)")
        # Never before the lease expired; at most a retry period (the standby's polling) later, plus a
        # little for two requests' latency on a busy machine.
        assert LEASE <= takeover <= LEASE + RETRY + 0.25, takeover
    finally:
        await b.close()
