from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from canarist.sandbox.demo_app import DemoApp
from tests.fixtures.demo_app import load


async def test_endpoints_knobs_and_istio_metrics(demo_app_factory: Any) -> None:
    app = await demo_app_factory(workload="podinfo", namespace="test", version="3.1.0")
    async with aiohttp.ClientSession() as session:
        async with session.get(app.url + "/") as r:
            assert (r.status, (await r.json())["version"]) == (200, "3.1.0")
        async with session.get(app.url + "/status/418") as r:
            assert r.status == 418
        async with session.get(app.url + "/delay/0.01") as r:
            assert (await r.json()) == {"delay": 0.01}
        for probe in ("/healthz", "/readyz"):
            async with session.get(app.url + probe) as r:
                assert r.status == 200
        async with session.post(app.url + "/token") as r:
            assert len((await r.json())["token"]) > 10
        async with session.post(app.url + "/knobs", json={"error_rate": 0.5, "latency_ms": 1}) as r:
            assert await r.json() == {"error_rate": 0.5, "latency_ms": 1.0}
        async with session.post(app.url + "/knobs", json={"error_rate": 2}) as r:
            assert r.status == 400
        statuses = await load(app.url + "/", 40, concurrency=2)
        assert statuses == {200: 20, 500: 20}  # deterministic error injection
        async with session.get(app.url + "/metrics") as r:
            text = await r.text()
    counts: dict[str, float] = {}
    buckets = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "istio_requests_total":
                assert sample.labels["reporter"] == "destination"
                assert sample.labels["destination_workload"] == "podinfo"
                assert sample.labels["destination_workload_namespace"] == "test"
                counts[sample.labels["response_code"]] = (
                    counts.get(sample.labels["response_code"], 0) + sample.value
                )
            if sample.name == "istio_request_duration_milliseconds_bucket":
                buckets += 1
    # 1 index + 1 status(418) + 1 delay + 1 token, then 40 under a 50 % error rate; probes are not counted
    assert counts == {"200": 23.0, "418": 1.0, "500": 20.0}
    assert buckets > 0


async def test_each_instance_has_its_own_registry() -> None:
    a, b = DemoApp(workload="a"), DemoApp(workload="b")
    async with a, b:
        await load(a.url + "/", 3)
        assert a.served == 3
        assert b.served == 0
    with pytest.raises(RuntimeError, match="not started"):
        _ = DemoApp().url
    with pytest.raises(ValueError, match="error_rate"):
        DemoApp(error_rate=1.5)
