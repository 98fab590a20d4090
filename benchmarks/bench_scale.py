"""How the operator's cost grows with the number of canaries, and with replicas sharing them (issue 17).
A script, not a test:

    .venv/bin/python benchmarks/bench_scale.py growth   [--sizes 500,1000,2000,5000] [--progressing 50]
    .venv/bin/python benchmarks/bench_scale.py replicas [--canaries 4000] [--replicas 1,2,4] [--shards 8]

Both start the local control plane (`canarist localcluster`) and the operator replicas
(`canarist operator`) as processes of their own, and read each one's CPU time and resident memory from
/proc, so every figure is that process's alone.

``growth`` runs one operator (no shards, no leader election) and grows one namespace through the sizes: at
each size, ``--progressing`` canaries start a run (stepWeight 10 up to 50, interval 10 s, no metrics) and,
while they progress and the others sit at rest, the script changes one more canary's target ``--probes``
times, timing each change to the "New revision detected" event at the operator's event webhook (a sink in
this process; the probe canary's interval is 30 s, so each change restarts its analysis). Over the
``--window`` it reads the CPU share of one core and the RSS of the operator and of the control plane.

``replicas`` creates ``--canaries`` canaries under one replica started with ``--shards``, then adds
replicas up to each count in ``--replicas``, waits until every shard's Lease is held by the replica the
assignment gives it to, and measures the same figures per replica (and their sum) as ``growth`` does.

The machine's load average is printed with the results: detection latencies are wall-clock times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_operator import NAMESPACE, EventSink, canary, percentile, set_image, start_cluster, workload

from canarist.api.crds import crds
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import NotFound
from canarist.operator.runtime import LEASE_NAME
from canarist.operator.shards import assign

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return resident * PAGE / 2**20


class Replica:
    def __init__(self, identity: str, process: subprocess.Popen[bytes]) -> None:
        self.identity = identity
        self.process = process


def operator_process(
    kubeconfig: Path, sink: EventSink, workdir: Path, *extra: str
) -> subprocess.Popen[bytes]:
    name = next((a.split("=", 1)[1] for a in extra if a.startswith("--identity=")), "operator")
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "canarist",
            "operator",
            f"-kubeconfig={kubeconfig}",
            "-metrics-server=http://127.0.0.1:1",
            f"-event-webhook={sink.url}",
            "--min-analysis-interval=1s",
            "-port=0",
            "-log-level=error",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def create(client: KubeClient, names: list[str], interval: str) -> None:
    semaphore = asyncio.Semaphore(16)

    async def one(name: str) -> None:
        async with semaphore:
            for obj in workload(name):
                await client.create(obj)
            await client.create(canary(name, interval))

    await asyncio.gather(*(one(name) for name in names))


async def wait_initialized(client: KubeClient, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = await client.list(kinds.CANARY, namespace=NAMESPACE)
        phases = [(c.get("status") or {}).get("phase") for c in listed.items]
        if len(phases) >= count and all(p in ("Initialized", "Succeeded", "Progressing") for p in phases):
            return
        await asyncio.sleep(2)
    raise TimeoutError(f"{count} canaries not initialized within {timeout_s}s")


async def wait_progressing(client: KubeClient, names: set[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = await client.list(kinds.CANARY, namespace=NAMESPACE)
        moving = {
            c["metadata"]["name"]
            for c in listed.items
            if (c.get("status") or {}).get("phase") == "Progressing"
        }
        if names <= moving:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{len(names)} canaries not progressing within {timeout_s}s")


async def measure(
    client: KubeClient,
    sink: EventSink,
    pids: dict[str, int],
    moving: list[str],
    probe: str,
    probes: int,
    window_s: float,
    tag: str,
) -> dict[str, Any]:
    """Start ``moving`` runs; once each has started, probe detection and read CPU/RSS over ``window_s``."""
    for name in moving:
        await set_image(client, name, f"{tag}-run")
    await wait_progressing(client, set(moving), timeout_s=120)
    cpu_before = {who: cpu_seconds(pid) for who, pid in pids.items()}
    started = time.monotonic()
    latencies = []
    for i in range(probes):
        sent = time.monotonic()
        await set_image(client, probe, f"{tag}-probe-{i}")
        arrived = await sink.wait_for(probe, "New revision detected", sent, timeout_s=60)
        latencies.append(arrived - sent)
        await asyncio.sleep(0.5)
    remaining = window_s - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)
    wall = time.monotonic() - started
    return {
        "cpu": {who: (cpu_seconds(pid) - cpu_before[who]) / wall for who, pid in pids.items()},
        "rss": {who: rss_mib(pid) for who, pid in pids.items()},
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "slowest": sorted(latencies)[-3:],
        "window": wall,
    }


def report(title: str, result: dict[str, Any], operators: list[str]) -> str:
    cpu = result["cpu"]
    rss = result["rss"]
    per = ", ".join(f"{who} {100 * cpu[who]:.1f}% {rss[who]:.0f} MiB" for who in operators)
    total_cpu = sum(cpu[who] for who in operators)
    return (
        f"{title}: operator CPU {100 * total_cpu:.1f}% of one core ({per}); "
        f"control plane {100 * cpu['localcluster']:.1f}% {rss['localcluster']:.0f} MiB; "
        f"detection p50 {1000 * result['p50']:.0f} ms p99 {1000 * result['p99']:.0f} ms "
        f"(slowest {', '.join(f'{1000 * s:.0f}' for s in result['slowest'])} ms); "
        f"window {result['window']:.0f} s; load {os.getloadavg()[0]:.2f}"
    )


async def setup(workdir: Path) -> tuple[subprocess.Popen[bytes], KubeClient, EventSink]:
    cluster, kubeconfig = start_cluster(workdir)
    client = KubeClient.from_kubeconfig(kubeconfig)
    for crd in crds():
        await client.create(crd)
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    sink = EventSink()
    await sink.start()
    return cluster, client, sink


async def growth(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="canarist-scale-"))
    cluster, client, sink = await setup(workdir)
    operator = operator_process(workdir / "kubeconfig", sink, workdir)
    try:
        await create(client, ["probe"], "30s")
        have = 0
        for size in args.sizes:
            names = [f"app-{i:05d}" for i in range(have, size)]
            began = time.monotonic()
            await create(client, names, "10s")
            await wait_initialized(client, size + 1, timeout_s=60 + size)
            setup_s = time.monotonic() - began
            have = size
            moving = [f"app-{i:05d}" for i in range(args.progressing)]
            result = await measure(
                client,
                sink,
                {"operator": operator.pid, "localcluster": cluster.pid},
                moving,
                "probe",
                args.probes,
                args.window,
                f"g{size}",
            )
            print(
                report(f"{size} canaries ({args.progressing} progressing)", result, ["operator"])
                + f"; setup of {len(names)} more took {setup_s:.0f} s",
                flush=True,
            )
            # Let the runs end so the next size starts from canaries at rest.
            await asyncio.sleep(max(0.0, 70 - result["window"]))
    finally:
        await shutdown([operator], cluster, client, sink)


async def shard_holders(client: KubeClient, shards: int) -> dict[int, str]:
    held = {}
    for shard in range(shards):
        with contextlib.suppress(NotFound):
            lease = await client.get(kinds.LEASE, f"{LEASE_NAME}-shard-{shard}", namespace=NAMESPACE)
            held[shard] = str((lease.get("spec") or {}).get("holderIdentity") or "")
    return held


async def replicas(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="canarist-scale-"))
    cluster, client, sink = await setup(workdir)
    flags = [
        f"--shards={args.shards}",
        f"-leader-election-namespace={NAMESPACE}",
        "--leader-election-lease-duration=15s",
        "--leader-election-renew-deadline=10s",
        "--leader-election-retry-period=2s",
    ]
    running: list[Replica] = []

    def add(identity: str) -> None:
        process = operator_process(workdir / "kubeconfig", sink, workdir, *flags, f"--identity={identity}")
        running.append(Replica(identity, process))

    try:
        add("r1")
        await create(client, ["probe"], "30s")
        began = time.monotonic()
        await create(client, [f"app-{i:05d}" for i in range(args.canaries)], "10s")
        await wait_initialized(client, args.canaries + 1, timeout_s=120 + args.canaries)
        print(f"setup of {args.canaries} canaries under one replica took {time.monotonic() - began:.0f} s")
        for count in args.replicas:
            while len(running) < count:
                add(f"r{len(running) + 1}")
            members = [r.identity for r in running]
            deadline = time.monotonic() + 120
            while await shard_holders(client, args.shards) != assign(members, args.shards):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"shards not settled on {members}")
                await asyncio.sleep(1)
            await asyncio.sleep(15)  # the newcomers' first ticks of their canaries are behind them
            pids = {r.identity: r.process.pid for r in running} | {"localcluster": cluster.pid}
            moving = [f"app-{i:05d}" for i in range(args.progressing)]
            result = await measure(client, sink, pids, moving, "probe", args.probes, args.window, f"r{count}")
            print(
                report(f"{args.canaries} canaries, {count} replicas", result, members)
                + f"; shards {args.shards}",
                flush=True,
            )
            await asyncio.sleep(max(0.0, 70 - result["window"]))
    finally:
        await shutdown([r.process for r in running], cluster, client, sink)


async def shutdown(
    processes: list[subprocess.Popen[bytes]],
    cluster: subprocess.Popen[bytes],
    client: KubeClient,
    sink: EventSink,
) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    await client.close()
    await sink.stop()
    cluster.terminate()
    cluster.wait(10)


def _sizes(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    grow = sub.add_parser("growth")
    grow.add_argument("--sizes", type=_sizes, default=[500, 1000, 2000, 5000])
    share = sub.add_parser("replicas")
    share.add_argument("--canaries", type=int, default=4000)
    share.add_argument("--replicas", type=_sizes, default=[1, 2, 4])
    share.add_argument("--shards", type=int, default=8)
    for each in (grow, share):
        each.add_argument("--progressing", type=int, default=50)
        each.add_argument("--probes", type=int, default=20)
        each.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    load = os.getloadavg()
    print(
        f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    asyncio.run(growth(args) if args.mode == "growth" else replicas(args))


if __name__ == "__main__":
    main()
