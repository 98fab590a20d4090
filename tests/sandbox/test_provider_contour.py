"""The walkthrough with Contour, end to end on one sandbox: the local control plane with the Contour CRD, a real
Envoy programmed by the Contour translator from the tutorial's root HTTPProxy (``app.example.com``, including
``podinfo``) and the HTTPProxy canarist writes, demo-app pods, a real Prometheus scraping Envoy's own
``/stats/prometheus`` (Contour's builtin queries read ``envoy_cluster_upstream_rq*`` of the cluster
``test_podinfo-canary_80``), the loadtester and the operator (``-mesh-provider=contour``) as a subprocess.

User traffic enters through the gateway listener as ``Host: app.example.com``. Checked: a promotion whose
canary share of those requests tracks every weight within 5 points; a rollback on the tutorial's fault,
``/status/500`` requests as ``app.example.com`` through Contour's Envoy (Contour's success rate only sees
requests that went through it to the canary's cluster, and its retry policy retries 5xx, so the fault must
fail every attempt, as ``/status/500`` does); the HTTPProxy statuses; and an A/B release in which ``x-canary: insider`` always reaches the
canary and no request without it does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from canarist.routers.contour import HTTP_PROXY
from canarist.sandbox.demo import (
    play_ab,
)
from canarist.sandbox.liveview import LiveView
from tests.sandbox.stories import Run, assert_promotion_tracks_weights, assert_rolled_back, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

CANARY_CLUSTERS = 'envoy_cluster_name=~"test_podinfo-canary_[0-9a-zA-Z-]+"'  # Contour's builtin selector


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(
        tmp_path_factory.mktemp("contour-demo"), provider="contour", fault="status500"
    ) as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_envoys_stats_answer_contours_builtin_queries(run: Run) -> None:
    prometheus = run.sandbox.prometheus
    # Envoy's stats were scraped under Contour's cluster names: the canary's cluster served requests in run 1
    # and answered 500s in run 2 (over the whole story: the sandbox's Envoy rebuilds a cluster whose pods
    # change, which restarts its counters).
    served = await prometheus.value(
        f"sum(max_over_time(envoy_cluster_upstream_rq{{{CANARY_CLUSTERS}}}[10m]))"
    )
    errors = await prometheus.value(
        f'sum(max_over_time(envoy_cluster_upstream_rq{{{CANARY_CLUSTERS},envoy_response_code=~"5.*"}}[10m]))'
    )
    print("canary cluster requests (max over the story):", served, "of which 5xx:", errors)
    assert served is not None
    assert served > 100
    assert errors is not None
    assert errors > 0
    # The operator's analysis read them: its success rate checks halted run 2.
    result = run.story
    assert result is not None
    assert any("Halt podinfo.test advancement success rate" in e.message for e in result.events), run.output()


async def test_the_http_proxies_are_valid(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    for name in ("podinfo-ingress", "podinfo"):
        proxy = await client.get(HTTP_PROXY, name, namespace="test")
        status = proxy.get("status") or {}
        assert (status.get("currentStatus"), status.get("description")) == ("valid", "Valid HTTPProxy"), name
        assert status["conditions"][0]["type"] == "Valid"
        assert status["conditions"][0]["status"] == "True"
    generated = await client.get(HTTP_PROXY, "podinfo", namespace="test")
    services = generated["spec"]["routes"][0]["services"]
    assert [(s["name"], s["port"], s["weight"]) for s in services] == [
        ("podinfo-primary", 80, 100),
        ("podinfo-canary", 80, 0),
    ]


async def test_rollback_on_the_tutorials_fault(run: Run) -> None:
    assert_rolled_back(run)


async def _insider_load(gateway: str, stop: asyncio.Event) -> int:
    """The tutorial's A/B load test (``hey -H 'X-Canary: insider' -host app.example.com`` through Contour's
    Envoy), about 10 requests a second until ``stop``; its own source, so the A/B tallies do not count it."""
    sent = 0
    headers = {"Host": "app.example.com", "x-canary": "insider", "X-Source-Workload": "ab-load-test"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while not stop.is_set():
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{gateway}/", headers=headers) as response:
                    await response.read()
                    sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    return sent


async def test_ab_header_routing(run: Run) -> None:
    # Contour's builtin queries only see traffic through Contour's Envoy, so the A/B analysis needs the
    # tutorial's load test with the header (the Canary's load-test webhook goes to podinfo-canary directly).
    stop = asyncio.Event()
    load = asyncio.create_task(_insider_load(run.sandbox.gateway_url, stop))
    start = len(run.stream.getvalue())
    try:
        with LiveView(run.stream, live=False) as view:
            ab = await play_ab(
                run.sandbox, run.options, view, ("x-canary", "insider"), requests=50, iterations=4
            )
    finally:
        stop.set()
        sent = await load
    output = run.stream.getvalue()
    print(output[start:])
    assert sent > 0, output
    assert ab.error == "", output
    assert ab.matched is not None, output
    assert ab.unmatched is not None, output
    assert (ab.matched.canary, ab.matched.primary, ab.matched.errors) == (50, 0, 0), output
    assert (ab.unmatched.canary, ab.unmatched.primary, ab.unmatched.errors) == (0, 50, 0), output
    assert ab.routes_held, output
    # Contour's metrics of the insiders' requests were good: the A/B run was promoted.
    assert ab.promoted, output
    print(f"A/B: routed {ab.routed_s:.1f}s after the new image; phase {ab.phase}; {sent} load-test requests")
