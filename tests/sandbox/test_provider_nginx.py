"""The walkthrough with the NGINX ingress provider, end to end on one sandbox: the local control plane (with
the built-in Ingress), a real Envoy programmed by the NGINX translator from the user's Ingress and the
canary Ingress canarist writes, demo-app pods, a real Prometheus reading the ingress controller's series, the
loadtester and the operator (``-mesh-provider=nginx``) as a subprocess.

User traffic enters through the gateway listener as ``Host: app.example.com`` (examples/nginx/routing.yaml).
Checked: a promotion whose canary share of those requests tracks every weight within 5 points, a rollback
when the canary answers errors (NGINX's builtin success rate only counts requests that went through the
Ingress to the canary, so the fault is the canary pods answering 500s to that traffic), and an A/B release in
which ``x-canary: insider`` always reaches the canary and no request without it does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canarist.kube.resources import INGRESS, SERVICE
from tests.sandbox.stories import (
    Run,
    assert_ab_routes,
    assert_promotion_tracks_weights,
    assert_rolled_back,
    play_ab_with_header_load,
    played,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

P = "nginx.ingress.kubernetes.io"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(tmp_path_factory.mktemp("nginx-demo"), provider="nginx", fault="errors") as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_canary_ingress_and_statuses(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    canary = await client.get(INGRESS, "podinfo-canary", namespace="test")
    annotations = canary["metadata"]["annotations"]
    assert annotations[f"{P}/canary"] == "true"
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "podinfo-canary", "port": {"number": 9898}}
    # ingress-nginx publishes its controller Service's address (here its ClusterIP) on the Ingresses
    controller = await client.get(SERVICE, "ingress-nginx-controller", namespace="ingress-nginx")
    address = controller["spec"]["clusterIP"]
    for name in ("podinfo", "podinfo-canary"):
        ingress = await client.get(INGRESS, name, namespace="test")
        assert ingress.get("status") == {"loadBalancer": {"ingress": [{"ip": address}]}}, name


async def test_rollback_on_canary_errors(run: Run) -> None:
    assert_rolled_back(run)


async def test_ab_header_routing(run: Run) -> None:
    """Flagger's A/B tutorial keeps a load test with the header running (the analysis reads the requests
    that reached the canary through the Ingress, and only header traffic does); here a bounded loop of
    header requests under their own source, which the matched/unmatched counts do not include."""
    ab = await play_ab_with_header_load(run)
    assert_ab_routes(ab, run.stream.getvalue())
