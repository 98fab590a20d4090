"""Sharded replicas (``canarist operator --shards 6``) as real processes sharing one control plane: the
canaries are shared out, a replica killed mid-run hands its shards over without a step decided twice, and
a replica that joins takes its share.

Who wrote what comes from the control plane's audit log: each replica sends its identity in its
User-Agent, so for every canary the status writes must come in blocks (one replica, then the next, never
back), and the event stream must hold every step exactly once."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from canarist.kube import resources as kinds
from canarist.kube.errors import NotFound
from canarist.operator.runtime import LEASE_NAME
from canarist.operator.shards import assign, shard_of
from tests.e2e.conftest import World
from tests.e2e.harness import NAMESPACE, apply, event_messages, load_example, operator_subprocess, wait_for
from tests.fixtures.canaries import canary_manifest

SHARDS = 6
APPS = [f"app{i}" for i in range(12)]
FLAGS = [
    f"--shards={SHARDS}",
    f"-leader-election-namespace={NAMESPACE}",
    "--leader-election-lease-duration=3s",
    "--leader-election-renew-deadline=2s",
    "--leader-election-retry-period=500ms",
]
STEPS = [20, 40, 60]  # stepWeight 20 up to maxWeight 60, then the promotion


def _deployment(name: str, version: str) -> dict[str, Any]:
    workload = load_example("deployment.yaml")
    workload["metadata"] = {"name": name, "namespace": NAMESPACE, "labels": {"app": name}}
    spec = workload["spec"]
    spec.pop("minReadySeconds", None)
    spec["selector"] = {"matchLabels": {"app": name}}
    spec["template"]["metadata"]["labels"] = {"app": name}
    spec["template"]["spec"]["containers"][0]["image"] = f"quay.io/stefanprodan/podinfo:{version}"
    return workload


def _canary(name: str) -> dict[str, Any]:
    return canary_manifest(
        name=name,
        target_name=name,
        autoscaler=None,
        service={"port": 9898},
        analysis={"interval": "1s", "threshold": 2, "maxWeight": STEPS[-1], "stepWeight": STEPS[0]},
        metrics=[],
        webhooks=None,
    )


async def _phases(world: World) -> dict[str, str]:
    found = await world.client.list(kinds.CANARY, namespace=NAMESPACE)
    return {c["metadata"]["name"]: str((c.get("status") or {}).get("phase") or "") for c in found.items}


async def _all_in(world: World, phase: str) -> bool:
    phases = await _phases(world)
    return len(phases) == len(APPS) and set(phases.values()) == {phase}


async def _shard_holders(world: World) -> dict[int, str]:
    held = {}
    for shard in range(SHARDS):
        try:
            lease = await world.client.get(kinds.LEASE, f"{LEASE_NAME}-shard-{shard}", namespace=NAMESPACE)
        except NotFound:
            continue
        spec = lease.get("spec") or {}
        held[shard] = str(spec.get("holderIdentity") or "")
    return held


async def _settled(world: World, members: list[str]) -> bool:
    """Every shard's Lease is held by the replica the assignment gives it to."""
    return await _shard_holders(world) == assign(members, SHARDS)


async def _release(world: World, version: str) -> None:
    for app in APPS:
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "podinfod", "image": f"quay.io/stefanprodan/podinfo:{version}"}
                        ]
                    }
                }
            }
        }
        await world.client.patch(kinds.DEPLOYMENT, app, patch, namespace=NAMESPACE, patch_type="strategic")


def _status_writers(world: World, since: int) -> dict[str, list[str]]:
    """Per canary, the replica of each status write after audit entry ``since``, in order."""
    writers: dict[str, list[str]] = {}
    pattern = re.compile(rf"/apis/flagger\.app/v1beta1/namespaces/{NAMESPACE}/canaries/([^/?]+)/status")
    for entry in world.cluster.cluster.audit.entries(since):
        found = pattern.search(entry.path)
        agent = re.search(r"\((r\d)\)", entry.user_agent)
        if found and agent and entry.code < 300:
            writers.setdefault(found.group(1), []).append(agent.group(1))
    return writers


def _blocks(sequence: list[str]) -> list[str]:
    """["r1", "r1", "r2"] → ["r1", "r2"]: who wrote, in turn."""
    return [who for i, who in enumerate(sequence) if i == 0 or sequence[i - 1] != who]


def _advances(messages: list[str], app: str) -> list[int]:
    prefix = f"Advance {app}.{NAMESPACE} canary weight "
    return [int(m[len(prefix) :]) for m in messages if m.startswith(prefix)]


def _run_messages(world: World, start: int) -> list[str]:
    return event_messages(world.events)[start:]


def _assert_each_step_once(messages: list[str], what: str) -> None:
    for app in APPS:
        assert _advances(messages, app) == STEPS, f"{what}: {app}: {_advances(messages, app)}"
        promoted = [
            m for m in messages if m.startswith(f"Promotion completed! Scaling down {app}.{NAMESPACE}")
        ]
        assert len(promoted) == 1, f"{what}: {app}: {promoted}"


class Replicas:
    def __init__(self, world: World, tmp_path: Path, stack: AsyncExitStack) -> None:
        self.world = world
        self.tmp_path = tmp_path
        self.stack = stack
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    async def start(self, identity: str) -> None:
        log = self.tmp_path / f"{identity}.log"
        process = await self.stack.enter_async_context(
            operator_subprocess(self.world, *FLAGS, f"--identity={identity}", log=log)
        )
        self.processes[identity] = process

    def logs(self) -> str:
        return "\n".join(
            f"--- {who}\n{(self.tmp_path / f'{who}.log').read_text()[-4000:]}" for who in self.processes
        )


async def test_sharded_replicas_share_the_canaries_survive_a_kill_and_take_in_a_newcomer(
    world: World, tmp_path: Path
) -> None:
    await apply(world.client, load_example("namespace.yaml"))
    async with AsyncExitStack() as stack:
        replicas = Replicas(world, tmp_path, stack)
        try:
            for identity in ("r1", "r2", "r3"):
                await replicas.start(identity)
            await wait_for(lambda: _settled(world, ["r1", "r2", "r3"]), what="shards settled", timeout_s=60)

            for app in APPS:
                await apply(world.client, _deployment(app, "3.1.0"))
                await apply(world.client, _canary(app))
            await wait_for(lambda: _all_in(world, "Initialized"), what="all Initialized", timeout_s=120)

            # Run 1: a new version everywhere; kill the holder of a progressing canary's shard mid-run.
            audit_start = world.cluster.cluster.audit.entries()[-1].seq
            events_start = len(event_messages(world.events))
            await _release(world, "3.1.1")

            async def progressing() -> str | None:
                phases = await _phases(world)
                return next((app for app, phase in sorted(phases.items()) if phase == "Progressing"), None)

            victim_app = await wait_for(progressing, what="a progressing canary", timeout_s=60)
            owners = assign(["r1", "r2", "r3"], SHARDS)
            victim = owners[shard_of(NAMESPACE, victim_app, SHARDS)]
            replicas.processes[victim].send_signal(signal.SIGKILL)  # no release, no leave
            await asyncio.get_running_loop().run_in_executor(None, replicas.processes[victim].wait, 10)
            survivors = sorted(set(owners.values()) - {victim})

            await wait_for(
                lambda: _all_in(world, "Succeeded"), what="all Succeeded after a kill", timeout_s=240
            )
            await wait_for(
                lambda: _promotions_delivered(world, events_start),
                what="every promotion event delivered",
                timeout_s=60,
            )
            messages = _run_messages(world, events_start)
            _assert_each_step_once(messages, "after the kill")
            writers = _status_writers(world, audit_start)
            assert sorted(writers) == sorted(APPS)
            for app, sequence in writers.items():
                blocks = _blocks(sequence)
                assert len(blocks) == len(set(blocks)), f"{app}: status written by {blocks} (back and forth)"
                assert blocks[-1] in survivors or blocks == [owners[shard_of(NAMESPACE, app, SHARDS)]], (
                    f"{app}: {blocks}"
                )
            moved = [app for app in APPS if owners[shard_of(NAMESPACE, app, SHARDS)] == victim]
            assert moved, "the victim held the victim canary's shard"
            for app in moved:
                assert writers[app][-1] in survivors, f"{app} finished by {writers[app][-1]}"
            await wait_for(
                lambda: _settled(world, survivors), what="the survivors hold every shard", timeout_s=60
            )

            # Run 2: r4 joins, takes its share, and runs those canaries; every step once again.
            await replicas.start("r4")
            members = [*survivors, "r4"]
            await wait_for(lambda: _settled(world, members), what="r4 takes its share", timeout_s=60)
            audit_start = world.cluster.cluster.audit.entries()[-1].seq
            events_start = len(event_messages(world.events))
            await _release(world, "3.1.2")
            await wait_for(lambda: _all_in(world, "Succeeded"), what="all Succeeded with r4", timeout_s=240)
            await wait_for(
                lambda: _promotions_delivered(world, events_start),
                what="every promotion event delivered",
                timeout_s=60,
            )
            _assert_each_step_once(_run_messages(world, events_start), "with r4")
            writers = _status_writers(world, audit_start)
            owners = assign(members, SHARDS)
            for app in APPS:
                assert set(writers[app]) == {owners[shard_of(NAMESPACE, app, SHARDS)]}, (app, writers[app])
            assert any("r4" in sequence for sequence in writers.values())
        except AssertionError as error:
            raise AssertionError(f"{error}\n{replicas.logs()}") from None
        for identity, process in replicas.processes.items():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                code = await asyncio.get_running_loop().run_in_executor(None, process.wait, 30)
                assert code == 0, f"{identity} exited {code}\n{replicas.logs()}"
        assert "Traceback" not in replicas.logs()


async def _promotions_delivered(world: World, start: int) -> bool:
    messages = _run_messages(world, start)
    return all(
        any(m.startswith(f"Promotion completed! Scaling down {app}.") for m in messages) for app in APPS
    )
