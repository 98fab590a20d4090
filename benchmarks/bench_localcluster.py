"""Benchmark of the local control plane: GET req/s, PATCH req/s and watch events/s fanned out to 10 watchers.

    .venv/bin/python benchmarks/bench_localcluster.py [--seconds 5] [--concurrency 16] [--events 2000]

The server runs in its own process (`canarist localcluster`), the clients here on aiohttp, so the two do not
share a GIL. Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

CMS = "/api/v1/namespaces/default/configmaps"


def start_server(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "canarist",
            "localcluster",
            "--kubeconfig",
            str(workdir / "kubeconfig"),
            "--no-istio-crds",
            "--history-size",
            "100000",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "serving the Kubernetes API at " not in line:
        process.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1].strip()


async def hammer(
    session: aiohttp.ClientSession, seconds: float, concurrency: int, make_request: Callable[[], Any]
) -> float:
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            async with make_request() as response:
                await response.read()
                if response.status >= 300:
                    raise SystemExit(f"unexpected status {response.status}")
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def watch_fanout(
    session: aiohttp.ClientSession, url: str, watchers: int, events: int
) -> tuple[float, float]:
    """Create `events` objects while `watchers` watches read them; returns (delivered events/s, writes/s)."""
    _, body = await _get_json(session, url + CMS)
    rv = body["metadata"]["resourceVersion"]
    received = [0] * watchers
    ready = asyncio.Event()
    connected = 0

    async def watch(index: int) -> None:
        nonlocal connected
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with session.get(f"{url}{CMS}?watch=true&resourceVersion={rv}", timeout=timeout) as response:
            connected += 1
            if connected == watchers:
                ready.set()
            async for line in response.content:
                if line.strip():
                    received[index] += 1
                    if received[index] >= events:
                        return

    tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
    await asyncio.wait_for(ready.wait(), 30)
    started = time.perf_counter()
    payload = json.dumps({"metadata": {"generateName": "w-"}, "data": {"k": "v"}})
    semaphore = asyncio.Semaphore(16)

    async def create() -> None:
        async with (
            semaphore,
            session.post(url + CMS, data=payload, headers={"Content-Type": "application/json"}) as response,
        ):
            await response.read()

    await asyncio.gather(*(create() for _ in range(events)))
    writes = events / (time.perf_counter() - started)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    elapsed = time.perf_counter() - started
    return sum(received) / elapsed, writes


async def _get_json(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with session.get(url) as response:
        return response.status, await response.json()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_server(Path(tmp))
        try:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.post(
                    url + CMS, json={"metadata": {"name": "bench"}, "data": {"a": "0"}}
                ) as r:
                    assert r.status == 201, await r.text()
                get_rate = await hammer(
                    session, args.seconds, args.concurrency, lambda: session.get(f"{url}{CMS}/bench")
                )
                print(
                    f"GET   {get_rate:8.0f} req/s  ({args.concurrency} concurrent clients, {args.seconds}s)"
                )
                counter = iter(range(10**9))
                patch_rate = await hammer(
                    session,
                    args.seconds,
                    args.concurrency,
                    lambda: session.patch(
                        f"{url}{CMS}/bench",
                        data=json.dumps({"data": {"a": str(next(counter))}}),
                        headers={"Content-Type": "application/merge-patch+json"},
                    ),
                )
                print(f"PATCH {patch_rate:8.0f} req/s  ({args.concurrency} concurrent clients, merge patch)")
                delivered, writes = await watch_fanout(session, url, 10, args.events)
                print(
                    f"WATCH {delivered:8.0f} events/s delivered to 10 watchers "
                    f"({args.events} creates at {writes:.0f} writes/s)"
                )
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--events", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
