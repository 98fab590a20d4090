"""The walkthrough with Skipper, end to end on one sandbox: the local control plane (with the built-in
Ingress), a real Envoy programmed by the Skipper translator from the tutorial's Ingress (class ``skipper``,
``app.example.com`` to ``podinfo``) and the canary Ingress canarist writes (``backend-weights`` and
``skipper-predicate``), demo-app pods exporting Skipper's ``skipper_response_duration_seconds`` and
``skipper_serve_route_duration_seconds`` under the id of the route that served each request, a real
Prometheus, the loadtester and the operator (``-mesh-provider=skipper``) as a subprocess.

User traffic enters through the gateway listener as ``Host: app.example.com``. Checked: a promotion whose
canary share of those requests tracks every weight within 5 points; a rollback when the canary answers
errors to that traffic (Skipper's builtin success rate only counts requests that went through the canary
Ingress's routes to the canary Service); the canary Ingress the operator wrote; the builtin queries against
the series. Skipper routes by weight only, so there is no A/B run.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canarist.kube.resources import INGRESS
from canarist.metrics.builtin import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    SKIPPER,
    builtin_query,
    metrics_provider_name,
    observer_for,
)
from canarist.metrics.template import TemplateModel
from tests.sandbox.stories import Run, assert_promotion_tracks_weights, assert_rolled_back, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "test"
#: Skipper's builtin route selector for the canary Ingress's routes to the canary Service
CANARY_ROUTE = 'route=~"kube(ew)?_test__podinfo_canary__.*__podinfo_canary(_[0-9]+)?"'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(tmp_path_factory.mktemp("skipper-demo"), provider="skipper", fault="errors") as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_canary_ingress_the_operator_wrote(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    canary = await client.get(INGRESS, "podinfo-canary", namespace=NS)
    annotations = canary["metadata"]["annotations"]
    # After the rollback everything is on the primary and the canary Ingress's routes are disabled.
    assert json.loads(annotations["zalando.org/backend-weights"]) == {
        "podinfo-primary": 100,
        "podinfo-canary": 0,
    }
    assert annotations["zalando.org/skipper-predicate"] == "False()"
    paths = canary["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"] for p in paths] == [
        {"name": "podinfo-primary", "port": {"number": 80}},
        {"name": "podinfo-canary", "port": {"number": 80}},
    ]
    assert canary["spec"]["ingressClassName"] == "skipper"
    owners = canary["metadata"].get("ownerReferences") or []
    assert [(o["kind"], o["name"]) for o in owners] == [("Canary", "podinfo")]
    user = await client.get(INGRESS, "podinfo", namespace=NS)
    assert user["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "podinfo"
    assert "zalando.org/backend-weights" not in (user["metadata"].get("annotations") or {})


async def test_skippers_series_answer_the_builtin_queries(run: Run) -> None:
    prometheus = run.sandbox.prometheus
    window = "[10m]"
    served = await prometheus.value(
        f'sum(max_over_time(skipper_response_duration_seconds_bucket{{{CANARY_ROUTE},le="+Inf"}}{window}))'
    )
    failed = await prometheus.value(
        "sum(max_over_time(skipper_response_duration_seconds_bucket"
        f'{{{CANARY_ROUTE},le="+Inf",code=~"5.."}}{window}))'
    )
    print("canary route requests (max over the story):", served, "of which 5xx:", failed)
    assert served is not None
    assert served > 50
    assert failed is not None
    assert failed > 0
    result = run.story
    assert result is not None
    assert any("Halt podinfo.test advancement success rate" in e.message for e in result.events), run.output()


async def test_the_operators_builtin_queries_read_skippers_series(run: Run) -> None:
    """The queries the operator sends for this Canary (Skipper's observer), rendered over the whole story:
    the canary's routes answered, some of it with the fault's 500s, fast."""
    assert observer_for(metrics_provider_name("skipper", "skipper", "Deployment", "apps/v1")) is SKIPPER
    model = TemplateModel(
        name="podinfo", namespace=NS, target="podinfo", service="podinfo", ingress="podinfo", interval="10m"
    )
    prometheus = run.sandbox.prometheus
    success = await prometheus.value(builtin_query(SKIPPER, REQUEST_SUCCESS_RATE, model).strip())
    duration_ms = await prometheus.value(builtin_query(SKIPPER, REQUEST_DURATION, model).strip())
    print("Skipper's builtin success rate over the story:", success, "mean (ms):", duration_ms)
    assert success is not None
    assert 0 < success < 100
    assert duration_ms is not None
    assert 0 < duration_ms <= 500


async def test_rollback_on_canary_errors(run: Run) -> None:
    assert_rolled_back(run)
