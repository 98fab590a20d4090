"""The Prometheus provider against Prometheus-compatible servers behind a path prefix: a real
VictoriaMetrics single-node server (Debian package ``victoria-metrics``), which serves the Prometheus
querying API documented by Prometheus (``GET /api/v1/query``) also under ``/prometheus``, and a local
server standing in for a VictoriaMetrics cluster ``vmselect`` (documented URL format
``/select/<accountID>/prometheus/api/v1/query``)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from canarist.metrics.providers import NoValuesError, PrometheusProvider, ProviderSpec, QueryError
from tests.metrics.providers.conftest import VendorServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A VictoriaMetrics single-node server on 127.0.0.1; yields its base URL."""
    binary = shutil.which("victoria-metrics")
    if binary is None:
        pytest.fail(
            "victoria-metrics is required: apt-get install -y --no-install-recommends victoria-metrics"
        )
    data: Path = tmp_path_factory.mktemp("vmdata")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"-storageDataPath={data}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-search.latencyOffset=0s",  # make just-written samples visible to queries
            "-search.disableCache",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until it answers /health (bounded)
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"victoria-metrics did not start (exit code {proc.poll()})")
                time.sleep(0.05)  # polling a starting process, not timing a behaviour
        now_ms = int(time.time() * 1000)
        lines = (
            f'canarist_requests_total{{app="podinfo",code="200"}} 90 {now_ms}\n'
            f'canarist_requests_total{{app="podinfo",code="500"}} 10 {now_ms}\n'
        )
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/v1/import/prometheus", data=lines.encode()))
        urllib.request.urlopen(f"{url}/internal/force_flush")
        # Ingestion is asynchronous: wait (bounded) until both series are searchable.
        count_url = f"{url}/api/v1/query?query=count(canarist_requests_total)"
        while True:
            with urllib.request.urlopen(count_url, timeout=1) as response:
                result = json.load(response)["data"]["result"]
            if result and result[0]["value"][1] == "2":
                break
            if time.monotonic() > deadline:
                pytest.fail(f"victoria-metrics never returned the imported series: {result}")
            time.sleep(0.05)  # polling for a condition, not timing a behaviour
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_victoria_metrics_under_the_prometheus_prefix(victoria_metrics: str) -> None:
    client = PrometheusProvider(ProviderSpec(address=victoria_metrics + "/prometheus"))
    assert client.url_for("up").startswith(victoria_metrics + "/prometheus/api/v1/query?query=")
    assert await client.is_online() is True
    q = (
        'sum(canarist_requests_total{app="podinfo", code!~"5.*"})\n'
        '  / sum(canarist_requests_total{app="podinfo"}) * 100'
    )
    assert await client.query(q) == 90.0
    with pytest.raises(NoValuesError):
        await client.query('sum(canarist_requests_total{app="nobody"})')
    with pytest.raises(QueryError, match="error response 4"):
        await client.query("sum(rate(")


async def test_vmselect_style_tenant_prefix(vendor_server: VendorServer) -> None:
    seen: list[web.Request] = []

    async def query(request: web.Request) -> web.Response:
        seen.append(request)
        body = {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "4"]}]},
        }
        return web.Response(text=json.dumps(body), content_type="application/json")

    url = await vendor_server({("GET", "/select/0/prometheus/api/v1/query"): query})
    client = PrometheusProvider(ProviderSpec(address=url + "/select/0/prometheus/"))
    assert await client.query("sum(x)") == 4.0
    assert seen[0].path == "/select/0/prometheus/api/v1/query"
    assert dict(seen[0].query) == {"query": "sum(x)"}
