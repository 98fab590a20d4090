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

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from canarist.routers.appmesh import VIRTUAL_ROUTER_V1BETA2, VIRTUAL_SERVICE_V1BETA2
from canarist.sandbox.dataplane.appmesh import MESH, egress_cluster_name
from canarist.sandbox.demo import (
    ABResult,
    DemoOptions,
    DemoResult,
    Sandbox,
    missing_prerequisites,
    play_ab,
    play_story,
    summary_lines,
)
from canarist.sandbox.liveview import LiveView

pytestmark = pytest.mark.asyncio(loop_scope="module")

PROVIDER = "appmesh:v1beta2"
INTERVAL_S = 2.0
#: fewer steps and checks than the walkthrough's 5 % and 10, to keep the suite short.
STEP_WEIGHT = 10
THRESHOLD = 5
CANARY_CLUSTER = egress_cluster_name("global", "podinfo-canary_test", "http", 9898)
PRIMARY_CLUSTER = egress_cluster_name("global", "podinfo-primary_test", "http", 9898)


class Run:
    """The module's sandbox and what was played on it."""

    def __init__(self, sandbox: Sandbox, options: DemoOptions, stream: io.StringIO) -> None:
        self.sandbox = sandbox
        self.options = options
        self.stream = stream
        self.story: DemoResult | None = None
        self.ab: ABResult | None = None

    def output(self) -> str:
        summary = "\n".join(summary_lines(self.story)) if self.story is not None else ""
        return f"{self.stream.getvalue()}\n{summary}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    assert missing_prerequisites() == []
    stream = io.StringIO()
    options = DemoOptions(
        step_weight=STEP_WEIGHT,
        threshold=THRESHOLD,
        interval_s=INTERVAL_S,
        workdir=Path(tmp_path_factory.mktemp("appmesh")) / "demo",
        live=False,
        stream=stream,
        provider=PROVIDER,
    )
    sandbox = Sandbox(options)
    try:
        await sandbox.start()
        yield Run(sandbox, options, stream)
    finally:
        await sandbox.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def story(run: Run) -> DemoResult:
    with LiveView(run.stream, live=False) as view:
        run.story = await play_story(run.sandbox, run.options, view)
    print(run.output())
    return run.story


async def test_the_promotion_splits_podinfo_test_by_each_weight(run: Run, story: DemoResult) -> None:
    output = run.output()
    assert story.error == "", output
    assert story.promoted, output
    # Envoy got every weight of run 1; at each step long enough to count (>= 20 user requests) the share of
    # requests the canary pods served is within 5 points of the weight.
    assert set(story.weights_seen) >= set(range(10, 55, 10)), output
    progressing = [s for s in story.steps if s.weight > 0]
    assert len({s.weight for s in progressing}) >= 4, output
    for step in progressing:
        assert abs(step.share - step.weight) <= 5.0, f"{step}: share {step.share:.1f}%\n{output}"
    for step in story.steps:
        print(f"appmesh weight {step.weight}: canary share {step.share:.1f}% of {step.canary + step.primary}")


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
