"""What every provider's end-to-end module shares: one sandbox for the module with the walkthrough's story
played on it (`played`, on the sandbox's cluster networking: each sandbox leases its own address range, so
the modules pytest-xdist runs at once do not meet), and the checks of a promotion that tracks each weight.

The provider modules run half the walkthrough's ticks (stepWeight 10, threshold 5) to keep the suite short;
`tests/sandbox/test_demo.py` plays the walkthrough's own shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canarist.sandbox.demo import (
    ABResult,
    DemoOptions,
    DemoResult,
    Sandbox,
    StepShare,
    missing_prerequisites,
    play_ab,
    play_story,
    send_requests,
    summary_lines,
)
from canarist.sandbox.liveview import LiveView

INTERVAL_S = 2.0
#: fewer steps and checks than the walkthrough's 5 % and 10, to keep the suite short.
STEP_WEIGHT = 10
THRESHOLD = 5


@dataclass
class Run:
    """The module's sandbox and what was played on it."""

    sandbox: Sandbox
    options: DemoOptions
    stream: io.StringIO
    story: DemoResult | None = None
    ab: ABResult | None = None

    def output(self) -> str:
        lines = summary_lines(self.story) if self.story is not None else []
        return self.stream.getvalue() + "\n".join(lines)

    def log(self, text: str) -> None:
        self.stream.write(text + "\n")


@contextlib.asynccontextmanager
async def played(workdir: Path, *, play: bool = True, **options: Any) -> AsyncIterator[Run]:
    """A started sandbox for ``DemoOptions(**options)`` (provider, fault, …) with the story played (unless
    ``play`` is False), stopped on exit."""
    missing = missing_prerequisites(options.get("provider", "istio"))
    assert missing == [], f"the sandbox cannot run on this machine: {missing}"
    stream = io.StringIO()
    settings: dict[str, Any] = {
        "interval_s": INTERVAL_S,
        "step_weight": STEP_WEIGHT,
        "threshold": THRESHOLD,
        "workdir": workdir,
        "live": False,
        "stream": stream,
        **options,
    }
    demo = DemoOptions(**settings)
    sandbox = Sandbox(demo)
    try:
        await sandbox.start()
        run = Run(sandbox, demo, stream)
        if play:
            with LiveView(stream, live=False) as view:
                run.story = await play_story(sandbox, demo, view)
            print(run.output())
        yield run
    finally:
        await sandbox.stop()


def loadtester_log(run: Run) -> list[tuple[str, str]]:
    """``(level, msg)`` of each line of ``kubectl -n test logs deployment/flagger-loadtester``: the log of the
    loadtester pod the story applied (examples/podinfo/loadtester.yaml; it logs JSON, as Flagger's does)."""
    env = {**os.environ, "KUBECONFIG": str(run.sandbox.kubeconfig)}
    done = subprocess.run(
        ["kubectl", "-n", "test", "logs", "deployment/flagger-loadtester"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json_log(done.stdout)


def json_log(text: str) -> list[tuple[str, str]]:
    """``(level, msg)`` of each JSON line of a log (other lines as ``("", line)``)."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            out.append(("", line))
            continue
        if isinstance(entry, dict):
            out.append((str(entry.get("level") or ""), str(entry.get("msg") or "")))
        else:
            out.append(("", line))
    return out


def assert_promotion_tracks_weights(run: Run) -> list[StepShare]:
    """Run 1 was promoted, Envoy got every weight, and at each weight the canary's share of user requests
    was within 5 points of it; returns the steps (printed for the notes)."""
    result, output = run.story, run.output()
    assert result is not None
    assert result.error == "", output
    assert result.promoted, output
    step = run.options.step_weight or 5
    assert set(result.weights_seen) >= set(range(step, 55, step)), output
    progressing = [s for s in result.steps if s.weight > 0]
    assert len({s.weight for s in progressing}) >= 4, output
    for share in progressing:
        assert abs(share.share - share.weight) <= 5.0, f"{share}: share {share.share:.1f}%\n{output}"
    print("weight -> canary share:", ", ".join(f"{s.weight}%->{s.share:.1f}%" for s in progressing))
    return progressing


def assert_rolled_back(run: Run) -> None:
    """Run 2 was rolled back on its threshold-th failed check and every check of the summary passed."""
    result, output = run.story, run.output()
    assert result is not None
    assert result.rolled_back, output
    assert [text for text, ok in result.checks if not ok] == [], output
    assert result.rollback_s is not None
    print(f"fault to rollback: {result.rollback_s:.1f}s (phase Failed after {result.failed_phase_s:.1f}s)")


async def play_ab_with_header_load(run: Run, header: tuple[str, str] = ("x-canary", "insider")) -> ABResult:
    """An A/B release while a bounded loop of header requests keeps running under its own source (as Flagger's
    A/B tutorials keep a header load test running: ingress providers' queries only see traffic that went
    through their proxy to the canary, and only header traffic does); the matched/unmatched counts of the
    result do not include that load."""
    stop = asyncio.Event()

    async def header_load() -> int:
        sent = 0
        while not stop.is_set():
            answers = await send_requests(
                run.sandbox, 5, headers={header[0]: header[1]}, source="ab-load", concurrency=1
            )
            sent += answers.total
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
        return sent

    load = asyncio.create_task(header_load())
    try:
        with LiveView(run.stream, live=False) as view:
            ab = await play_ab(run.sandbox, run.options, view, header, requests=50, iterations=4)
    finally:
        stop.set()
        load_sent = await load
    print(
        f"A/B: routed {ab.routed_s:.1f}s after the new image; {load_sent} header requests of load; {ab.phase}"
    )
    return ab


def assert_ab_routes(ab: ABResult, output: str) -> None:
    """Every request with the header reached the canary, none without it did, and the release promoted."""
    assert ab.error == "", output
    assert ab.matched is not None, output
    assert ab.unmatched is not None, output
    assert (ab.matched.canary, ab.matched.primary, ab.matched.errors) == (50, 0, 0), output
    assert (ab.unmatched.canary, ab.unmatched.primary, ab.unmatched.errors) == (0, 50, 0), output
    assert ab.routes_held, output
    assert ab.promoted, output
