"""App Mesh end to end on the sandbox: the operator (``-mesh-provider appmesh:v1beta2``) writes the virtual
nodes, routers and services of examples/appmesh/canary.yaml into the mesh of examples/appmesh/routing.yaml;
the App Mesh translator programs the real Envoy from them; user traffic for ``podinfo.test`` (the meshed
gateway host) is split by the router's weights; the builtin App Mesh queries read the apps' sidecar series
from the real Prometheus.

One sandbox for the module: the walkthrough (a promotion whose canary share tracks every weight, then a
rollback on HTTP 500s), then an A/B release on the same sandbox (``x-canary: insider`` always reaches the
canary, no request without it does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from canarist.routers.appmesh import VIRTUAL_ROUTER_V1BETA2, VIRTUAL_SERVICE_V1BETA2
from canarist.sandbox.dataplane.appmesh import MESH, egress_cluster_name
from canarist.sandbox.demo import (
    DemoResult,
    play_ab,
    play_story,
)
from canarist.sandbox.liveview import LiveView
from tests.sandbox.stories import Run, assert_promotion_tracks_weights, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

PROVIDER = "appmesh:v1beta2"
CANARY_CLUSTER = egress_cluster_name("global", "podinfo-canary_test", "http", 9898)
PRIMARY_CLUSTER = egress_cluster_name("global", "podinfo-primary_test", "http", 9898)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    async with played(
        Path(tmp_path_factory.mktemp("appmesh")) / "demo", play=False, provider=PROVIDER
    ) as state:
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def story(run: Run) -> DemoResult:
    with LiveView(run.stream, live=False) as view:
        run.story = await play_story(run.sandbox, run.options, view)
    print(run.output())
    return run.story


async def test_the_promotion_splits_podinfo_test_by_each_weight(run: Run, story: DemoResult) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_routes_are_app_meshs_and_the_controller_statuses_are_written(
    run: Run, story: DemoResult
) -> None:
    mesh, client = run.sandbox.mesh, run.sandbox.client
    assert mesh is not None
    assert client is not None
    # The apex's listener and the gateway host route to the sidecar's egress clusters of the two nodes.
    last = mesh.writes[-1]
    assert last.cluster_services[CANARY_CLUSTER] == ("test", "podinfo-canary")
    assert last.cluster_services[PRIMARY_CLUSTER] == ("test", "podinfo-primary")
    after = last.service_weights("podinfo.test")  # after the rollback: all on the primary
    assert after is not None
    assert (after[("test", "podinfo-primary")], after.get(("test", "podinfo-canary"), 0)) == (100, 0)
    # The statuses the App Mesh controller would write.
    vs = await client.get(VIRTUAL_SERVICE_V1BETA2, "podinfo", namespace="test")
    assert vs["status"]["virtualServiceARN"].endswith(":mesh/global/virtualService/podinfo.test")
    assert [(c["type"], c["status"]) for c in vs["status"]["conditions"]] == [
        ("VirtualServiceActive", "True")
    ]
    router = await client.get(VIRTUAL_ROUTER_V1BETA2, "podinfo", namespace="test")
    assert router["status"]["observedGeneration"] == router["metadata"]["generation"]
    global_mesh = await client.get(MESH, "global")
    assert [c["type"] for c in global_mesh["status"]["conditions"]] == ["MeshActive"]


async def test_errors_on_the_canary_roll_it_back(run: Run, story: DemoResult) -> None:
    output = run.output()
    assert story.rolled_back, output
    halts = [e.message for e in story.events if e.message.startswith("Halt podinfo.test advancement")]
    assert halts, output  # the builtin App Mesh success-rate query saw the 500s
    # All traffic back on the primary within threshold x interval + one interval of the fault starting.
    assert story.rollback_s is not None
    assert [text for text, ok in story.checks if not ok] == [], output
    print(f"appmesh fault-to-rollback: {story.rollback_s:.1f}s (bound {story.rollback_bound_s:g}s)")


async def test_ab_header_routing(run: Run, story: DemoResult) -> None:
    with LiveView(run.stream, live=False) as view:
        ab = await play_ab(run.sandbox, run.options, view, ("x-canary", "insider"), requests=50, iterations=4)
    run.ab = ab
    output = run.stream.getvalue()
    assert ab.error == "", output
    assert ab.matched is not None, output
    assert ab.unmatched is not None, output
    assert (ab.matched.canary, ab.matched.primary, ab.matched.errors) == (50, 0, 0), output
    assert (ab.unmatched.canary, ab.unmatched.primary, ab.unmatched.errors) == (0, 50, 0), output
    assert ab.routes_held, output
    assert ab.promoted, output
    print(f"appmesh A/B: routes in Envoy {ab.routed_s:.1f}s after the new image")
