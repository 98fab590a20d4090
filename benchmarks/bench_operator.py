"""Operator benchmarks (issue 4): a script, not a test. Prints a table; run it with

    .venv/bin/python benchmarks/bench_operator.py [--canaries 1000] [--progressing 20] [--changes 40]

P1  target change -> "New revision detected" event, p50/p99, at analysis interval 30 s (goal < 1 s)
P2  a full run, from "New revision detected" to "Promotion completed", against Flagger's interval x steps
    (steps = maxWeight/stepWeight), at the walkthrough's shape scaled down (stepWeight 5, maxWeight 50:
    10 steps) and at 3 steps (stepWeight 20, maxWeight 60); goal: run <= interval x steps + the canary's
    rollout time (detection -> canary ready, seen by a watch here) + 1 s
P4  1,000 steady-state canaries + 20 progressing: operator CPU share of one core, RSS
P5  API requests per tick (goal: 0 reads per tick, <= 3 writes per step)

`--only p2` runs P2 alone (a minute at the default `--p2-interval 2`). The machine's load average is
printed with the results: the figures are wall-clock times.

The local control plane runs as a separate process (`canarist localcluster`), so the operator's CPU and
memory are measured alone, in this process. Events reach the operator's `--event-webhook`, an aiohttp sink
here, which timestamps them on arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from canarist.api.crds import crds
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient, RequestRecord
from canarist.operator.runtime import Operator
from canarist.operator.settings import OperatorSettings
from canarist.workloads.deployment import readiness

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "podinfo"
NAMESPACE = "bench"
#: P2's (stepWeight, maxWeight): the walkthrough's 5/50 (10 steps) and a 3-step shape
P2_SHAPES = ((5, 50), (20, 60))


class EventSink:
    """The operator's event webhook: records (arrival time, canary, message)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str]] = []
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/"

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.events.append((time.monotonic(), body["name"], body["metadata"]["eventMessage"]))
        self.arrived.set()
        return web.Response(status=202)

    async def wait_for(self, name: str, prefix: str, since: float, timeout_s: float = 60) -> float:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for at, canary, message in self.events:
                if at >= since and canary == name and message.startswith(prefix):
                    return at
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - time.monotonic()))
        raise TimeoutError(f"no event {prefix!r} for {name} within {timeout_s}s")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def start_cluster(workdir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    kubeconfig = workdir / "kubeconfig"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "canarist",
            "localcluster",
            "--kubeconfig",
            str(kubeconfig),
            "--readiness-delay",
            "0.2",
            "--istio-crds",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if kubeconfig.exists():
            return process, kubeconfig
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the local control plane did not start")


def workload(name: str) -> list[dict[str, Any]]:
    deployment = yaml.safe_load((EXAMPLES / "deployment.yaml").read_text())
    deployment["metadata"].update(name=name, namespace=NAMESPACE, labels={"app": name})
    deployment["spec"]["selector"]["matchLabels"] = {"app": name}
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": name}
    deployment["spec"]["replicas"] = 1
    return [deployment]


def canary(name: str, interval: str, step_weight: int = 10, max_weight: int = 50) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {
                "interval": interval,
                "threshold": 5,
                "maxWeight": max_weight,
                "stepWeight": step_weight,
            },
        },
    }


async def create_canaries(client: KubeClient, names: list[str], interval: str) -> None:
    semaphore = asyncio.Semaphore(16)

    async def one(name: str) -> None:
        async with semaphore:
            for obj in workload(name):
                await client.create(copy.deepcopy(obj))
            await client.create(canary(name, interval))

    await asyncio.gather(*(one(name) for name in names))


async def wait_phase(client: KubeClient, names: list[str], phase: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = await client.list(kinds.CANARY, namespace=NAMESPACE)
        done = {c["metadata"]["name"] for c in listed.items if (c.get("status") or {}).get("phase") == phase}
        if set(names) <= done:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"canaries not {phase} within {timeout_s}s")


async def set_image(client: KubeClient, name: str, tag: str) -> None:
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": f"podinfo:{tag}"}]}}}
    }
    await client.patch(kinds.DEPLOYMENT, name, patch, namespace=NAMESPACE, patch_type="strategic")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench_p1(client: KubeClient, sink: EventSink, changes: int) -> dict[str, float]:
    """Latency from a target change to the "New revision detected" event, interval 30 s."""
    name = "p1"
    await create_canaries(client, [name], "30s")
    await wait_phase(client, [name], "Initialized", 60)
    latencies = []
    for i in range(changes):
        sent = time.monotonic()
        await set_image(client, name, f"1.0.{i}")
        arrived = await sink.wait_for(name, "New revision detected!", sent)
        latencies.append(arrived - sent)
        await asyncio.sleep(0.05)
    return {"p50_s": percentile(latencies, 0.5), "p99_s": percentile(latencies, 0.99), "n": len(latencies)}


class ReadyWatch:
    """When a Deployment reads ready with at least one replica (the operator's readiness rule), as seen by
    a watch from this process: the canary's rollout ends then."""

    def __init__(self, client: KubeClient, name: str) -> None:
        self.client = client
        self.name = name
        self.ready_at: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.client.list(kinds.DEPLOYMENT, namespace=NAMESPACE)
        self._task = asyncio.create_task(self._watch(listed.resource_version))

    async def _watch(self, resource_version: str) -> None:
        async for event in self.client.watch(
            kinds.DEPLOYMENT, namespace=NAMESPACE, resource_version=resource_version
        ):
            obj = event.object
            if (obj.get("metadata") or {}).get("name") != self.name:
                continue
            replicas = int((obj.get("spec") or {}).get("replicas") or 0)
            state = readiness(obj, ready_threshold_pct=100, progress_deadline_s=600, now=datetime.now(UTC))
            if replicas > 0 and state.ready:
                self.ready_at.append(time.monotonic())

    def first_ready_after(self, since: float) -> float:
        return next(at for at in self.ready_at if at >= since)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def bench_p2(
    client: KubeClient, sink: EventSink, interval_s: float, step_weight: int, max_weight: int
) -> dict[str, float | bool]:
    """A full run at ``interval_s``: detection -> "Promotion completed!" against interval x steps."""
    steps = max_weight // step_weight
    name = f"p2-{steps}-steps"
    await client.create(workload(name)[0])
    await client.create(canary(name, f"{interval_s:g}s", step_weight, max_weight))
    await wait_phase(client, [name], "Initialized", 60)
    watch = ReadyWatch(client, name)
    await watch.start()
    try:
        sent = time.monotonic()
        await set_image(client, name, "2.0.0")
        detected = await sink.wait_for(name, "New revision detected! Scaling up", sent)
        first_step = await sink.wait_for(name, "Advance ", detected)
        done = await sink.wait_for(
            name, "Promotion completed!", detected, timeout_s=60 + 3 * interval_s * steps
        )
        ready = watch.first_ready_after(detected)
    finally:
        await watch.stop()
    run, formula, rollout = done - detected, interval_s * steps, ready - detected
    return {
        "steps": steps,
        "run_s": run,
        "interval_x_steps_s": formula,
        "canary_rollout_s": rollout,
        "first_step_after_ready_s": first_step - ready,
        "ratio": run / formula,
        "goal_met": run <= formula + rollout + 1.0,
    }


async def bench_p4_p5(
    client: KubeClient, operator: Operator, requests: list[RequestRecord], steady: int, progressing: int
) -> dict[str, float]:
    names = [f"app-{i:04d}" for i in range(steady)]
    started = time.monotonic()
    await create_canaries(client, names, "10s")
    await wait_phase(client, names, "Initialized", 600)
    setup_s = time.monotonic() - started
    moving = names[:progressing]
    ticks_before = sum(s.worker.ticks for s in operator.controller._canaries.values())
    requests.clear()
    cpu_before = time.process_time()
    wall_before = time.monotonic()
    for name in moving:
        await set_image(client, name, "3.0.0")
    window = 30.0
    await asyncio.sleep(window)
    cpu = time.process_time() - cpu_before
    wall = time.monotonic() - wall_before
    ticks = sum(s.worker.ticks for s in operator.controller._canaries.values()) - ticks_before
    verbs = Counter(r.verb for r in requests if r.resource != "events")
    reads = sum(n for verb, n in verbs.items() if verb in ("get", "list"))
    writes = sum(n for verb, n in verbs.items() if verb in ("create", "update", "patch", "delete"))
    status = await client.list(kinds.CANARY, namespace=NAMESPACE)
    weights = sum((c.get("status") or {}).get("canaryWeight", 0) // 10 for c in status.items)
    return {
        "setup_s": setup_s,
        "cpu_share": cpu / wall,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ticks": ticks,
        "reads_per_tick": reads / max(1, ticks),
        "writes": writes,
        "weight_steps_seen": weights,
        "writes_per_step": writes / max(1, weights),
    }


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="canarist-bench-"))
    cluster, kubeconfig = start_cluster(workdir)
    sink = EventSink()
    await sink.start()
    client = KubeClient.from_kubeconfig(kubeconfig)
    operator_client = KubeClient.from_kubeconfig(kubeconfig)
    requests: list[RequestRecord] = []
    operator_client.add_request_hook(requests.append)
    try:
        for crd in crds():
            await client.create(crd)
        await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        settings = OperatorSettings(
            metrics_server="http://127.0.0.1:1",
            min_analysis_interval_s=1.0,
            event_webhook=sink.url,
            mesh_provider="kubernetes" if args.provider == "kubernetes" else "istio",
            port=0,
            log_level="error",
        )
        stop = asyncio.Event()
        operator = Operator(settings, operator_client, http_host="127.0.0.1")
        task = asyncio.create_task(operator.run(stop))
        while not (operator.controller.synced and operator.leading):  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.05)
        results: dict[str, dict[str, float | bool]] = {}
        load_before = os.getloadavg()
        if args.only in ("all", "p1"):
            results["P1 change -> event"] = dict(await bench_p1(client, sink, args.changes))
        if args.only in ("all", "p2"):
            for step_weight, max_weight in P2_SHAPES:
                shape = f"P2 run {step_weight}/{max_weight} at {args.p2_interval:g}s"
                results[shape] = await bench_p2(client, sink, args.p2_interval, step_weight, max_weight)
        if args.canaries and args.only in ("all", "p4"):
            results["P4/P5 scale"] = dict(
                await bench_p4_p5(client, operator, requests, args.canaries, args.progressing)
            )
        stop.set()
        await task
        load = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(load_before, os.getloadavg(), strict=True))
        print(f"load average (1, 5, 15 min) before/after: {load} on {os.cpu_count()} cores")
        for title, values in results.items():
            print(
                f"{title}: "
                + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
            )
    finally:
        await client.close()
        await operator_client.close()
        await sink.stop()
        cluster.terminate()
        cluster.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--progressing", type=int, default=20)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--provider", default="istio")
    parser.add_argument("--p2-interval", type=float, default=2.0, help="analysis interval of P2, seconds")
    parser.add_argument("--only", choices=("all", "p1", "p2", "p4"), default="all")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main(parser.parse_args()))
