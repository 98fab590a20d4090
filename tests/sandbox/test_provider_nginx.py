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

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from canarist.kube.resources import INGRESS
from canarist.sandbox.demo import (
    DemoOptions,
    DemoResult,
    Sandbox,
    missing_prerequisites,
    play_ab,
    play_story,
    send_requests,
    summary_lines,
)
from canarist.sandbox.liveview import LiveView

pytestmark = pytest.mark.asyncio(loop_scope="module")

INTERVAL_S = 2.0
#: fewer steps and checks than the walkthrough's 5 % and 10, to keep the suite short.
STEP_WEIGHT = 10
THRESHOLD = 5
P = "nginx.ingress.kubernetes.io"


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
        provider="nginx",
        interval_s=INTERVAL_S,
        fault="errors",
        workdir=Path(tmp_path_factory.mktemp("nginx-demo")),
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


async def test_the_canary_ingress_and_statuses(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    canary = await client.get(INGRESS, "podinfo-canary", namespace="test")
    annotations = canary["metadata"]["annotations"]
    assert annotations[f"{P}/canary"] == "true"
    backend = canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "podinfo-canary", "port": {"number": 9898}}
    for name in ("podinfo", "podinfo-canary"):
        ingress = await client.get(INGRESS, name, namespace="test")
        assert ingress.get("status") == {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}, name


async def test_rollback_on_canary_errors(run: Run) -> None:
    result, output = run.story, run.output()
    assert result is not None
    assert result.rolled_back, output
    assert [text for text, ok in result.checks if not ok] == [], output
    assert result.rollback_s is not None
    print(f"fault to rollback: {result.rollback_s:.1f}s (phase Failed after {result.failed_phase_s:.1f}s)")


async def test_ab_header_routing(run: Run) -> None:
    """Flagger's A/B tutorial keeps a load test with the header running (the analysis reads the requests
    that reached the canary through the Ingress, and only header traffic does); here a bounded loop of
    header requests under their own source, which the matched/unmatched counts do not include."""
    stop = asyncio.Event()

    async def header_load() -> int:
        sent = 0
        while not stop.is_set():
            answers = await send_requests(
                run.sandbox, 5, headers={"x-canary": "insider"}, source="ab-load", concurrency=1
            )
            sent += answers.total
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
        return sent

    load = asyncio.create_task(header_load())
    try:
        with LiveView(run.stream, live=False) as view:
            ab = await play_ab(
                run.sandbox, run.options, view, ("x-canary", "insider"), requests=50, iterations=4
            )
    finally:
        stop.set()
        load_sent = await load
    output = run.stream.getvalue()
    assert ab.error == "", output
    assert ab.matched is not None, output
    assert ab.unmatched is not None, output
    assert (ab.matched.canary, ab.matched.primary, ab.matched.errors) == (50, 0, 0), output
    assert (ab.unmatched.canary, ab.unmatched.primary, ab.unmatched.errors) == (0, 50, 0), output
    assert ab.routes_held, output
    assert ab.promoted, output
    print(
        f"A/B: routed {ab.routed_s:.1f}s after the new image; {load_sent} header requests of load; {ab.phase}"
    )
