"""The walkthrough with Traefik, end to end on one sandbox: the local control plane with the Traefik CRDs, a real
Envoy programmed by the Traefik translator from the tutorial's IngressRoute (``app.example.com`` to the
TraefikService ``podinfo``) and the TraefikService canarist writes, demo-app pods exporting Traefik's
``traefik_service_request_duration_seconds`` for the requests it routed to each service, a real Prometheus,
the loadtester and the operator (``-mesh-provider=traefik``) as a subprocess.

User traffic enters through the gateway listener (Traefik's ``web`` entry point) as ``Host: app.example.com``.
Checked: a promotion whose canary share of those requests tracks every weight within 5 points; a rollback
when the canary answers errors to that traffic (Traefik's builtin success rate only counts requests that
went through Traefik to the canary's service); the TraefikService the operator wrote. Traefik routes by
weight only, so there is no A/B run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canarist.metrics.builtin import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    TRAEFIK,
    builtin_query,
    metrics_provider_name,
    observer_for,
)
from canarist.metrics.template import TemplateModel
from canarist.routers.traefik import TRAEFIK_SERVICE
from canarist.sandbox.dataplane.traefik import INGRESS_ROUTE
from tests.sandbox.stories import Run, assert_promotion_tracks_weights, assert_rolled_back, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "test"
#: Traefik's builtin selector for the canary's service (namespace test, target podinfo)
CANARY_SERVICE = 'service=~"test-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd"'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(tmp_path_factory.mktemp("traefik-demo"), provider="traefik", fault="errors") as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_traefik_service_the_operator_wrote(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    service = await client.get(TRAEFIK_SERVICE, "podinfo", namespace=NS)
    # After the rollback everything is on the primary, and the canary entry is gone (as Flagger writes it).
    assert service["spec"] == {
        "weighted": {"services": [{"name": "podinfo-primary", "namespace": NS, "port": 80, "weight": 100}]}
    }
    owners = service["metadata"].get("ownerReferences") or []
    assert [(o["kind"], o["name"]) for o in owners] == [("Canary", "podinfo")]
    route = await client.get(INGRESS_ROUTE, "podinfo", namespace=NS)
    assert route["spec"]["routes"][0]["services"] == [{"name": "podinfo", "kind": "TraefikService"}]


async def test_traefiks_series_answer_the_builtin_queries(run: Run) -> None:
    prometheus = run.sandbox.prometheus
    window = "[10m]"
    served = await prometheus.value(
        "sum(max_over_time(traefik_service_request_duration_seconds_bucket"
        f'{{{CANARY_SERVICE},le="+Inf"}}{window}))'
    )
    failed = await prometheus.value(
        "sum(max_over_time(traefik_service_request_duration_seconds_bucket"
        f'{{{CANARY_SERVICE},le="+Inf",code=~"5.."}}{window}))'
    )
    print("canary service requests (max over the story):", served, "of which 5xx:", failed)
    assert served is not None
    assert served > 50
    assert failed is not None
    assert failed > 0
    # The operator's analysis read them: its success rate checks halted run 2.
    result = run.story
    assert result is not None
    assert any("Halt podinfo.test advancement success rate" in e.message for e in result.events), run.output()


async def test_the_operators_builtin_queries_read_traefiks_series(run: Run) -> None:
    """The queries the operator sends for this Canary (Traefik's observer, not the Istio fallback), rendered
    over the whole story: the canary's service answered, some of it with the fault's 500s, fast."""
    assert observer_for(metrics_provider_name("traefik", "traefik", "Deployment", "apps/v1")) is TRAEFIK
    model = TemplateModel(name="podinfo", namespace=NS, target="podinfo", service="podinfo", interval="10m")
    prometheus = run.sandbox.prometheus
    success = await prometheus.value(builtin_query(TRAEFIK, REQUEST_SUCCESS_RATE, model).strip())
    duration_ms = await prometheus.value(builtin_query(TRAEFIK, REQUEST_DURATION, model).strip())
    print("Traefik's builtin success rate over the story:", success, "p99 (ms):", duration_ms)
    assert success is not None
    assert 0 < success < 100
    assert duration_ms is not None
    assert 0 < duration_ms <= 100  # Traefik's first bucket is 100 ms: every answer fell in it


async def test_rollback_on_canary_errors(run: Run) -> None:
    assert_rolled_back(run)
