"""The walkthrough with Kuma, end to end on one sandbox: the local control plane with the Kuma TrafficRoute CRD
(cluster-scoped), a real Envoy standing in for the Kuma dataplanes (the Kuma translator puts the TrafficRoute's
split on the apex Service's listeners and on the gateway's host for ``podinfo.test``), demo-app pods exporting
the dataplanes' ``envoy_cluster_upstream_rq`` / ``envoy_cluster_upstream_rq_time`` under their Kuma service
tags, a real Prometheus, the loadtester and the operator (``-mesh-provider=kuma``) as a subprocess.

User traffic enters through the gateway listener as ``Host: podinfo.test`` (a meshed client: the split applies
to it). Checked: a promotion whose canary share of those requests tracks every weight within 5 points; a
rollback on the tutorial's fault (``curl http://podinfo-canary.test:9898/status/500``: the canary's dataplane
counts those 500s under ``podinfo-canary_test_svc_9898``); the cluster-scoped TrafficRoute the operator wrote;
the builtin queries against the series. Kuma has no header matches, so there is no A/B run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canarist.metrics.builtin import (
    KUMA,
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    builtin_query,
    metrics_provider_name,
    observer_for,
)
from canarist.metrics.template import TemplateModel
from canarist.routers.kuma import TRAFFIC_ROUTE
from tests.sandbox.stories import Run, assert_promotion_tracks_weights, assert_rolled_back, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "test"
#: Kuma's builtin selector (target podinfo, namespace test)
CANARY_SERVICE = 'service=~"podinfo-canary_test_svc_[0-9a-zA-Z-]+"'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(tmp_path_factory.mktemp("kuma-demo"), provider="kuma", fault="status500") as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_traffic_route_the_operator_wrote(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    route = await client.get(TRAFFIC_ROUTE, "podinfo")
    assert route["mesh"] == "default"  # the example's kuma.io/mesh annotation
    assert "namespace" not in route["metadata"]
    assert "ownerReferences" not in route["metadata"]
    assert route["metadata"]["annotations"]["9898.service.kuma.io/protocol"] == "http"
    assert route["spec"]["sources"] == [{"match": {"kuma.io/service": "*"}}]
    assert route["spec"]["destinations"] == [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}]
    # After the rollback everything is on the primary.
    assert route["spec"]["conf"]["split"] == [
        {"weight": 100, "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"}},
        {"weight": 0, "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"}},
    ]


async def test_kumas_series_answer_the_builtin_queries(run: Run) -> None:
    prometheus = run.sandbox.prometheus
    window = "[10m]"
    served = await prometheus.value(
        f"sum(max_over_time(envoy_cluster_upstream_rq{{{CANARY_SERVICE}}}{window}))"
    )
    failed = await prometheus.value(
        f'sum(max_over_time(envoy_cluster_upstream_rq{{{CANARY_SERVICE},envoy_response_code=~"5.*"}}{window}))'
    )
    print("canary dataplane requests (max over the story):", served, "of which 5xx:", failed)
    assert served is not None
    assert served > 50
    assert failed is not None
    assert failed > 0


async def test_the_operators_builtin_queries_read_kumas_series(run: Run) -> None:
    """The queries the operator sends for this Canary (Kuma's observer), rendered over the whole story: the
    canary's dataplane answered, some of it with the fault's 500s, fast."""
    assert observer_for(metrics_provider_name("kuma", "kuma", "Deployment", "apps/v1")) is KUMA
    model = TemplateModel(name="podinfo", namespace=NS, target="podinfo", service="podinfo", interval="10m")
    prometheus = run.sandbox.prometheus
    success = await prometheus.value(builtin_query(KUMA, REQUEST_SUCCESS_RATE, model).strip())
    duration_ms = await prometheus.value(builtin_query(KUMA, REQUEST_DURATION, model).strip())
    print("Kuma's builtin success rate over the story:", success, "p99 (ms):", duration_ms)
    assert success is not None
    assert 0 < success < 100
    assert duration_ms is not None
    assert 0 < duration_ms <= 500


async def test_rollback_on_the_tutorials_fault(run: Run) -> None:
    assert_rolled_back(run)
    result = run.story
    assert result is not None
    # Kuma's builtin success rate (the canary dataplane's envoy_cluster_upstream_rq) saw the 500s.
    assert any("Halt podinfo.test advancement success rate" in e.message for e in result.events), run.output()
