"""The walkthrough with APISIX, end to end on one sandbox: the local control plane with the APISIX CRD, a real
Envoy programmed by the APISIX translator from the tutorial's ApisixRoute (``app.example.com`` to
``podinfo``) and the canary ApisixRoute canarist writes (priority 10000, weighted primary and canary
backends), demo-app pods exporting APISIX's ``apisix_http_status`` and ``apisix_http_latency`` under the
name of the route that served each request, a real Prometheus, the loadtester and the operator
(``-mesh-provider=apisix``) as a subprocess.

User traffic enters through the gateway listener as ``Host: app.example.com``. Checked: a promotion whose
canary share of those requests tracks every weight within 5 points; a rollback when the canary answers
errors to that traffic (APISIX's builtin success rate counts the requests of the canary route, to the
primary and the canary); the canary ApisixRoute the operator wrote, next to the untouched user route; the
builtin queries against the series. APISIX routes by weight only here, so there is no A/B run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canarist.metrics.builtin import (
    APISIX,
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    builtin_query,
    metrics_provider_name,
    observer_for,
)
from canarist.metrics.template import TemplateModel
from canarist.routers.apisix import APISIX_ROUTE
from tests.sandbox.stories import Run, assert_promotion_tracks_weights, assert_rolled_back, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "test"
#: APISIX's builtin selector for the canary route's rules (namespace test, routeRef podinfo, target podinfo)
CANARY_ROUTE = 'route=~"test_podinfo-podinfo-canary_.+"'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(tmp_path_factory.mktemp("apisix-demo"), provider="apisix", fault="errors") as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_canary_route_the_operator_wrote(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    canary = await client.get(APISIX_ROUTE, "podinfo-podinfo-canary", namespace=NS)
    (rule,) = canary["spec"]["http"]
    assert rule["name"] == "rule1"
    assert rule["priority"] == 10000
    assert rule["match"] == {"hosts": ["app.example.com"], "paths": ["/*"]}
    # After the rollback everything is on the primary.
    assert rule["backends"] == [
        {"serviceName": "podinfo-primary", "servicePort": 80, "weight": 100},
        {"serviceName": "podinfo-canary", "servicePort": 80, "weight": 0},
    ]
    owners = canary["metadata"].get("ownerReferences") or []
    assert [(o["kind"], o["name"]) for o in owners] == [("Canary", "podinfo")]
    user = await client.get(APISIX_ROUTE, "podinfo", namespace=NS)
    assert user["spec"]["http"][0]["backends"] == [{"serviceName": "podinfo", "servicePort": 80}]
    assert "priority" not in user["spec"]["http"][0]


async def test_apisixs_series_answer_the_builtin_queries(run: Run) -> None:
    prometheus = run.sandbox.prometheus
    window = "[10m]"
    served = await prometheus.value(f"sum(max_over_time(apisix_http_status{{{CANARY_ROUTE}}}{window}))")
    failed = await prometheus.value(
        f'sum(max_over_time(apisix_http_status{{{CANARY_ROUTE},code=~"5.."}}{window}))'
    )
    print("canary route requests (max over the story):", served, "of which 5xx:", failed)
    assert served is not None
    assert served > 50
    assert failed is not None
    assert failed > 0
    result = run.story
    assert result is not None
    assert any("Halt podinfo.test advancement success rate" in e.message for e in result.events), run.output()


async def test_the_operators_builtin_queries_read_apisixs_series(run: Run) -> None:
    """The queries the operator sends for this Canary (APISIX's observer), rendered over the whole story:
    the canary route answered, some of it with the fault's 500s, fast."""
    assert observer_for(metrics_provider_name("apisix", "apisix", "Deployment", "apps/v1")) is APISIX
    model = TemplateModel(
        name="podinfo", namespace=NS, target="podinfo", service="podinfo", route="podinfo", interval="10m"
    )
    prometheus = run.sandbox.prometheus
    success = await prometheus.value(builtin_query(APISIX, REQUEST_SUCCESS_RATE, model).strip())
    duration_ms = await prometheus.value(builtin_query(APISIX, REQUEST_DURATION, model).strip())
    print("APISIX's builtin success rate over the story:", success, "p99 (ms):", duration_ms)
    assert success is not None
    assert 0 < success < 100
    assert duration_ms is not None
    assert 0 < duration_ms <= 500


async def test_rollback_on_canary_errors(run: Run) -> None:
    assert_rolled_back(run)
