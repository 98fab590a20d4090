"""Benchmark: latency from a write (a merge patch) to the informer handler seeing it.

Runs the local control plane in a background thread (as the tests do), one `KubeClient` and one
`Informer` on ConfigMaps, and patches one ConfigMap N times. For each write it measures

* write→handler: from just before the PATCH is sent to the handler call carrying that resourceVersion;
* response→handler: from the PATCH response to the handler call (negative when the watch event won the race).

Sequential mode waits for the handler before the next write; burst mode fires all writes back-to-back and
measures each one's write→handler latency under load.

    .venv/bin/python benchmarks/bench_informer.py [--writes 300] [--burst 300] [--server URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from canarist.kube import Informer, KubeClient
from canarist.kube import resources as r


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(name: str, ms: list[float]) -> str:
    return (
        f"{name:<28} n={len(ms):<4} p50={pct(ms, 50):7.2f} ms  p90={pct(ms, 90):7.2f} ms  "
        f"p99={pct(ms, 99):7.2f} ms  max={max(ms):7.2f} ms  mean={statistics.fmean(ms):7.2f} ms"
    )


async def run(client: KubeClient, writes: int, burst: int) -> None:
    ns = "default"
    name = f"bench-{int(time.time())}"
    await client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns},
            "data": {"i": "0"},
        }
    )
    seen: dict[str, float] = {}
    waiters: dict[str, asyncio.Future[None]] = {}

    def handler(event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if obj["metadata"]["name"] != name:
            return
        i = (obj.get("data") or {}).get("i", "")
        seen[i] = time.perf_counter()
        fut = waiters.pop(i, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    informer = Informer(client, r.CONFIG_MAP, namespace=ns)
    informer.add_handler(handler)
    await informer.start()
    await informer.wait_synced()
    loop = asyncio.get_running_loop()
    try:
        # Warm-up: connections, code paths.
        for i in range(1, 21):
            fut = loop.create_future()
            waiters[f"w{i}"] = fut
            await client.patch(r.CONFIG_MAP, name, {"data": {"i": f"w{i}"}}, namespace=ns)
            await fut

        write_to_handler: list[float] = []
        response_to_handler: list[float] = []
        for i in range(1, writes + 1):
            key = str(i)
            fut = loop.create_future()
            waiters[key] = fut
            t0 = time.perf_counter()
            await client.patch(r.CONFIG_MAP, name, {"data": {"i": key}}, namespace=ns)
            t1 = time.perf_counter()
            await fut
            write_to_handler.append((seen[key] - t0) * 1000)
            response_to_handler.append((seen[key] - t1) * 1000)

        burst_latency: list[float] = []
        if burst:
            starts: dict[str, float] = {}
            done = loop.create_future()
            last = f"b{burst}"
            waiters[last] = done
            for i in range(1, burst + 1):
                key = f"b{i}"
                starts[key] = time.perf_counter()
                await client.patch(r.CONFIG_MAP, name, {"data": {"i": key}}, namespace=ns)
            await done
            burst_latency = [(seen[k] - t) * 1000 for k, t in starts.items() if k in seen]
    finally:
        await informer.stop()
        await client.delete(r.CONFIG_MAP, name, namespace=ns, missing_ok=True)

    print(summary("sequential write->handler", write_to_handler))
    print(summary("sequential response->handler", response_to_handler))
    if burst_latency:
        print(summary("burst write->handler", burst_latency))
        print(
            f"burst: {len(burst_latency)}/{burst} intermediate versions delivered (the watch sends every change)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--server", help="an existing API server URL (default: start a local control plane)")
    args = parser.parse_args()

    if args.server:
        asyncio.run(_with_client(KubeClient.from_url(args.server), args.writes, args.burst))
        return
    from canarist.localcluster import LocalClusterThread

    with tempfile.TemporaryDirectory() as tmp, LocalClusterThread(readiness_delay=0.05) as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        print(f"local control plane at {cluster.url} (server on its own thread and loop)")
        asyncio.run(_with_client(KubeClient.from_kubeconfig(kubeconfig), args.writes, args.burst))


async def _with_client(client: KubeClient, writes: int, burst: int) -> None:
    async with client:
        await run(client, writes, burst)


if __name__ == "__main__":
    main()
