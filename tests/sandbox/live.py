"""Helpers of the tests that run translated configurations in a real Envoy with demo apps as endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

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
