"""The walkthrough with Linkerd (SMI TrafficSplit), end to end on one sandbox: the local control plane with the
SMI CRDs, a real Envoy standing in for the Linkerd proxies (the SMI translator puts the TrafficSplit on the
apex Service's listeners and on the gateway's host for ``podinfo.test``), demo-app pods exporting the Linkerd
proxies' ``response_total`` / ``response_latency_ms``, a real Prometheus, the loadtester and the operator
(``-mesh-provider=linkerd``) as a subprocess.

User traffic enters through the gateway listener as ``Host: podinfo.test`` (a meshed ingress: the split
applies to it). Checked: a promotion whose canary share of those requests tracks every weight within 5
points, and a rollback on the tutorial's fault (``curl http://podinfo-canary.test:9898/status/500``; the
canary pods' inbound series count those 500s). SMI has no header matches, so there is no A/B run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canarist.routers.smi import TRAFFIC_SPLIT_V1ALPHA1
from tests.sandbox.stories import Run, assert_promotion_tracks_weights, assert_rolled_back, played

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(
        tmp_path_factory.mktemp("linkerd-demo"), provider="linkerd", fault="status500"
    ) as state:
        yield state


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_the_traffic_split_the_operator_wrote(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    split = await client.get(TRAFFIC_SPLIT_V1ALPHA1, "podinfo", namespace="test")
    assert split["spec"]["service"] == "podinfo"
    # After the rollback everything is on the primary, as Linkerd's quantity strings.
    assert split["spec"]["backends"] == [
        {"service": "podinfo-canary", "weight": "0"},
        {"service": "podinfo-primary", "weight": "100"},
    ]


async def test_rollback_on_the_tutorials_fault(run: Run) -> None:
    assert_rolled_back(run)
    # Linkerd's builtin success rate (response_total of the canary's pods) saw the 500s.
    assert any(
        "Halt podinfo.test advancement success rate" in e.message
        for e in (run.story.events if run.story else [])
    ), run.output()
