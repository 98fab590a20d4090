"""The walkthrough with the Gloo Edge provider, end to end on one sandbox: the local control plane (with the
Gloo CRDs), a real Envoy programmed by the Gloo translator from the user's VirtualService and the Upstreams
and RouteTable canarist writes, demo-app pods, a real Prometheus scraping Envoy's own stats (Gloo's builtin
queries read ``envoy_cluster_upstream_rq*`` of the canary Upstream's cluster), the loadtester and the operator
(``-mesh-provider=gloo``) as a subprocess.

User traffic enters through the gateway listener as ``Host: app.example.com`` (examples/gloo/routing.yaml).
Checked: a promotion whose canary share of those requests tracks every weight within 5 points, a rollback
when the canary answers errors to that traffic, the objects and statuses as Gloo would have them, and an
A/B release in which ``x-canary: insider`` always reaches the canary and no request without it does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canarist.routers.gloo import ROUTE_TABLE, UPSTREAM
from canarist.sandbox.dataplane.gloo import GLOO_NAMESPACE, GLOO_VIRTUAL_SERVICE
from tests.sandbox.stories import (
    Run,
    assert_ab_routes,
    assert_promotion_tracks_weights,
    assert_rolled_back,
    play_ab_with_header_load,
    played,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "test"
CANARY_CLUSTER = "test-podinfo-canaryupstream-9898_test"
ACCEPTED = {"statuses": {GLOO_NAMESPACE: {"reportedBy": "gateway", "state": "Accepted"}}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(tmp_path_factory.mktemp("gloo-demo"), provider="gloo", fault="errors") as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_gloo_objects_statuses_and_envoy_stats(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    table = await client.get(ROUTE_TABLE, "podinfo", namespace=NS)
    [route] = table["spec"]["routes"]
    assert route["inheritablePathMatchers"] is True
    assert [
        (d["destination"]["upstream"]["name"], d["weight"])
        for d in route["routeAction"]["multi"]["destinations"]
    ] == [("test-podinfo-primaryupstream-9898", 100), ("test-podinfo-canaryupstream-9898", 0)]
    for role in ("primary", "canary"):
        upstream = await client.get(UPSTREAM, f"test-podinfo-{role}upstream-9898", namespace=NS)
        assert upstream["spec"]["kube"] == {
            "serviceName": f"podinfo-{role}",
            "serviceNamespace": NS,
            "servicePort": 9898,
        }
    # Gloo's gateway reports both the VirtualService and the RouteTable it delegates to.
    vs = await client.get(GLOO_VIRTUAL_SERVICE, "podinfo", namespace=NS)
    assert vs.get("status") == ACCEPTED
    assert table.get("status") == ACCEPTED
    # The operator's builtin queries read Envoy's own series of the canary Upstream's cluster: they were
    # scraped, 5xx included (the fault of run 2). A range, not an instant: Envoy drops a cluster's
    # per-response-code counters when the cluster is replaced (the scale-down changed its endpoints), until
    # the next request reaches it.
    window = "[10m]"
    answered = await run.sandbox.prometheus.value(
        f'sum(max_over_time(envoy_cluster_upstream_rq{{envoy_cluster_name="{CANARY_CLUSTER}"}}{window}))'
    )
    failed = await run.sandbox.prometheus.value(
        f'sum(max_over_time(envoy_cluster_upstream_rq{{envoy_cluster_name="{CANARY_CLUSTER}",'
        f'envoy_response_code=~"5.."}}{window}))'
    )
    stats = [line for line in run.sandbox.envoy.admin_get("/stats").splitlines() if CANARY_CLUSTER in line]
    assert answered is not None, stats
    assert answered > 0
    assert failed is not None, stats
    assert failed > 0


async def test_rollback_on_canary_errors(run: Run) -> None:
    """Rolled back on the tick of the threshold-th failed check, read from Envoy's own
    ``envoy_cluster_upstream_rq{envoy_response_code="500"}`` of the canary Upstream's cluster (a summary
    check counted in ticks; the seconds are printed)."""
    assert_rolled_back(run)


async def test_ab_header_routing(run: Run) -> None:
    """As in Flagger's A/B tutorials, a load test with the header keeps running (Gloo's builtin queries read
    the canary Upstream's cluster, which only header traffic reaches); here a bounded loop of header requests
    under their own source, which the matched/unmatched counts do not include."""
    ab = await play_ab_with_header_load(run)
    assert_ab_routes(ab, run.stream.getvalue())
