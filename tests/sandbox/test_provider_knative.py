"""The walkthrough with Knative, end to end on one sandbox: the local control plane with the Knative CRDs and
its Knative stand-in (a Revision, its Deployment ``<revision>-deployment`` and Service ``<revision>`` per
template), a real Envoy standing in for Kourier (the Knative translator splits ``podinfo.test.example.com``
by the Service's ``status.traffic`` over clusters named ``test/<revision>``), demo-app pods of the revisions'
Deployments, a real Prometheus scraping Envoy's own ``envoy_cluster_upstream_rq*`` series, the loadtester and
the operator (``-mesh-provider=knative``) as a subprocess.

User traffic enters through Kourier's Service ``kourier.kourier-system`` as ``Host: podinfo.test.example.com``.
Checked: a promotion of revision 2 whose share of those requests tracks every weight within 5 points; a
rollback of revision 3 on the fault through the gateway; the Knative Service the operator wrote (annotation,
``spec.traffic``) and what Knative resolved; the ``knative`` builtin queries against Envoy's series. Knative
has no header matches, so there is no A/B run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canarist.kube import resources as kinds
from canarist.metrics.builtin import (
    KNATIVE,
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    builtin_query,
    metrics_provider_name,
    observer_for,
)
from canarist.metrics.template import TemplateModel
from tests.sandbox.stories import Run, assert_promotion_tracks_weights, assert_rolled_back, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "test"


def story_model(revision: str) -> TemplateModel:
    """The template model of this Canary with ``revision`` as the route, over the whole story."""
    return TemplateModel(
        name="podinfo", namespace=NS, target="podinfo", service="podinfo", route=revision, interval="10m"
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(
        tmp_path_factory.mktemp("knative-demo"), provider="knative", fault="status500"
    ) as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_knative_service_the_operator_wrote(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    service = await client.get(kinds.KNATIVE_SERVICE, "podinfo", namespace=NS)
    # run 1 promoted revision 2; run 2's revision 3 was rolled back: all traffic on 2, 3 is the latest
    assert service["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00002"
    assert service["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00002", "percent": 100},
    ]
    status = service["status"]
    assert status["latestCreatedRevisionName"] == "podinfo-00003"
    assert status["traffic"] == [
        {"revisionName": "podinfo-00003", "latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00002", "latestRevision": False, "percent": 100},
    ]
    # each revision ran in its own Deployment, of the image it was made from
    for revision, tag in (("podinfo-00002", "3.1.1"), ("podinfo-00003", "3.1.2")):
        deployment = await client.get(kinds.DEPLOYMENT, f"{revision}-deployment", namespace=NS)
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{tag}")
        assert deployment["metadata"]["ownerReferences"][0]["kind"] == "Revision"
    # nothing of a Deployment target's: no -primary or -canary objects
    names = [d["metadata"]["name"] for d in (await client.list(kinds.DEPLOYMENT, namespace=NS)).items]
    assert not [n for n in names if n.endswith(("-primary", "-canary"))], names


async def test_kouriers_series_answer_the_builtin_queries(run: Run) -> None:
    """The queries the operator sends for this Canary (Knative's observer, route = the latest created
    revision), rendered over the whole story: revision 3 answered through the gateway, some of it with the
    fault's 500s."""
    assert (
        observer_for(metrics_provider_name("knative", "knative", "Service", "serving.knative.dev/v1"))
        is KNATIVE
    )
    model = story_model("podinfo-00003")
    prometheus = run.sandbox.prometheus
    success = await prometheus.value(builtin_query(KNATIVE, REQUEST_SUCCESS_RATE, model).strip())
    duration_ms = await prometheus.value(builtin_query(KNATIVE, REQUEST_DURATION, model).strip())
    print(
        "Knative's builtin success rate of podinfo-00003 over the story:", success, "p99 (ms):", duration_ms
    )
    assert success is not None
    assert 0 < success < 100
    assert duration_ms is not None
    assert 0 < duration_ms <= 500
    # revision 1, the primary of run 1 (before any fault), served without errors
    first = story_model("podinfo-00001")
    assert await prometheus.value(builtin_query(KNATIVE, REQUEST_SUCCESS_RATE, first).strip()) == 100


async def test_rollback_on_the_fault(run: Run) -> None:
    assert_rolled_back(run)
    result = run.story
    assert result is not None
    assert any("Halt podinfo.test advancement success rate" in e.message for e in result.events), run.output()
