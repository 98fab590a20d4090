"""The operator's HTTP endpoint over real HTTP on 127.0.0.1."""

import aiohttp

from canarist import __version__
from canarist.operator.http import OperatorHttp
from canarist.operator.telemetry import Telemetry, status_value


async def test_metrics_healthz_and_readyz_over_http():
    telemetry = Telemetry(mesh_provider="istio")
    telemetry.set_weights("podinfo", "test", primary=95, canary=5)
    telemetry.status.labels(name="podinfo", namespace="test").set(status_value("Progressing"))
    telemetry.successes.labels(
        name="podinfo", namespace="test", deployment_strategy="canary", analysis_status="completed"
    ).inc()
    ready = {"value": (False, "caches not synced")}
    server = OperatorHttp(telemetry, lambda: ready["value"])
    await server.start("127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as response:
                body = await response.text()
            async with http.get(f"{base}/healthz") as response:
                assert (response.status, await response.text()) == (200, "OK")
            async with http.get(f"{base}/readyz") as response:
                assert (response.status, await response.text()) == (503, "caches not synced")
            ready["value"] = (True, "")
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
    finally:
        await server.stop()
    assert f'flagger_info{{mesh_provider="istio",version="{__version__}"}} 1.0' in body
    assert 'flagger_canary_weight{namespace="test",workload="podinfo-primary"} 95.0' in body
    assert 'flagger_canary_weight{namespace="test",workload="podinfo"} 5.0' in body
    assert 'flagger_canary_status{name="podinfo",namespace="test"} 0.0' in body
    assert (
        'flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",'
        'name="podinfo",namespace="test"} 1.0' in body
    )
    assert "flagger_canary_successes_created" not in body
    assert "# TYPE flagger_canary_duration_seconds histogram" in body


def test_status_values_follow_flagger():
    assert [status_value(p) for p in ("Progressing", "Failed", "Succeeded", "Initialized", "")] == [
        0,
        2,
        1,
        1,
        1,
    ]
