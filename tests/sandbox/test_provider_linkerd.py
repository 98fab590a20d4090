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

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from canarist.routers.smi import TRAFFIC_SPLIT_V1ALPHA1
from canarist.sandbox.demo import (
    DemoOptions,
    DemoResult,
    Sandbox,
    missing_prerequisites,
    play_story,
    summary_lines,
)
from canarist.sandbox.liveview import LiveView

pytestmark = pytest.mark.asyncio(loop_scope="module")

INTERVAL_S = 2.0
#: fewer steps and checks than the walkthrough's 5 % and 10, to keep the suite short.
STEP_WEIGHT = 10
THRESHOLD = 5


@dataclass
class Run:
    sandbox: Sandbox
    options: DemoOptions
    stream: io.StringIO
    story: DemoResult | None = None

    def output(self) -> str:
        lines = summary_lines(self.story) if self.story is not None else []
        return self.stream.getvalue() + "\n".join(lines)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    assert missing_prerequisites() == []
    stream = io.StringIO()
    options = DemoOptions(
        step_weight=STEP_WEIGHT,
        threshold=THRESHOLD,
        provider="linkerd",
        interval_s=INTERVAL_S,
        fault="status500",
        workdir=Path(tmp_path_factory.mktemp("linkerd-demo")),
        live=False,
        stream=stream,
    )
    sandbox = Sandbox(options)
    try:
        await sandbox.start()
        state = Run(sandbox, options, stream)
        with LiveView(stream, live=False) as view:
            state.story = await play_story(sandbox, options, view)
        print(state.output())
        yield state
    finally:
        await sandbox.stop()


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    result, output = run.story, run.output()
    assert result is not None
    assert result.error == "", output
    assert result.promoted, output
    assert set(result.weights_seen) >= set(range(10, 55, 10)), output
    progressing = [s for s in result.steps if s.weight > 0]
    assert len({s.weight for s in progressing}) >= 4, output
    for step in progressing:
        assert abs(step.share - step.weight) <= 5.0, f"{step}: share {step.share:.1f}%\n{output}"
    print("weight -> canary share:", ", ".join(f"{s.weight}%->{s.share:.1f}%" for s in progressing))


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
    result, output = run.story, run.output()
    assert result is not None
    assert result.rolled_back, output
    assert [text for text, ok in result.checks if not ok] == [], output
    # Linkerd's builtin success rate (response_total of the canary's pods) saw the 500s.
    assert any("Halt podinfo.test advancement success rate" in e.message for e in result.events), output
    assert result.rollback_s is not None
    print(f"fault to rollback: {result.rollback_s:.1f}s (phase Failed after {result.failed_phase_s:.1f}s)")
