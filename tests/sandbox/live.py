"""Helpers of the tests that run translated configurations in a real Envoy with demo apps as endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import aiohttp

from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess
from canarist.sandbox.envoy_config import Endpoint


def endpoint(app: DemoApp, labels: Mapping[str, str] | None = None) -> Endpoint:
    """The Endpoint of a running demo app (with the labels of its pod template)."""
    host, port = app.metrics_target.rsplit(":", 1)
    return Endpoint(host, int(port), dict(labels or {}))


async def wait_for_listeners(envoy: EnvoyProcess, ports: Mapping[str, int], within_s: float = 2.0) -> None:
    """Wait until Envoy has opened a listener on every port (it reads LDS after a file move)."""
    for _ in range(int(within_s / 0.01)):
        listeners = envoy.admin_get("/listeners")
        if all(str(port) in listeners for port in ports.values()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"Envoy did not open its listeners within {within_s:g} s")


async def versions_until(
    http: aiohttp.ClientSession,
    url: str,
    expected: dict[str, int],
    headers: Mapping[str, str],
    *,
    host: str = "app.example.com",
    rounds: int = 100,
) -> int:
    """Send 100 requests as ``host`` (weight-header sequence ``x-seq`` 0..99) until the versions that answer
    are ``expected``, at most ``rounds`` times (new files are picked up within a bound); returns how many
    answers came from the canary (version 2.0.0) over all rounds."""
    canary = 0
    seen: dict[str, int] = {}
    for _ in range(rounds):
        seen = {}
        for n in range(100):
            async with http.get(url, headers={"Host": host, "x-seq": str(n), **headers}) as r:
                version = (await r.json(content_type=None))["version"] if r.status == 200 else str(r.status)
                seen[version] = seen.get(version, 0) + 1
        canary += seen.get("2.0.0", 0)
        if seen == expected:
            return canary
        await asyncio.sleep(0.05)
    raise AssertionError(f"{dict(headers)}: {seen} != {expected}")
