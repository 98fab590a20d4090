"""The demo itself, end to end: the sandbox (local control plane, a real Envoy, demo-app pods, a real
Prometheus, the loadtester with hey, the operator as a subprocess) plays the walkthrough at a 2 s interval.

Asserts the two outcomes (promotion, then rollback), that the share of user requests the apps counted for
the canary tracks the weight canarist set at every step, and that traffic went back to the primary within
threshold x interval + one interval of the fault starting.
"""

from __future__ import annotations

import io
import types
from pathlib import Path
from typing import Any

from canarist.cli.cmd_demo import unwritable
from canarist.sandbox.demo import (
    DemoOptions,
    Recorder,
    Sandbox,
    missing_prerequisites,
    play_ab,
    play_story,
    summary_lines,
)
from canarist.sandbox.liveview import LiveView

INTERVAL_S = 2.0


async def test_the_demo_promotes_then_rolls_back(tmp_path: Path) -> None:
    assert missing_prerequisites() == []
    stream = io.StringIO()
    options = DemoOptions(interval_s=INTERVAL_S, workdir=tmp_path / "demo", live=False, stream=stream)
    sandbox = Sandbox(options)
    pids: list[int] = []
    try:
        await sandbox.start()
        pids = [sandbox.envoy.pid, sandbox.prometheus.pid, sandbox.operator.pid if sandbox.operator else 0]
        with LiveView(stream, live=False) as view:
            result = await play_story(sandbox, options, view)
            # Then an A/B release on the same sandbox: x-canary: insider always reaches the canary.
            ab = await play_ab(sandbox, options, view, ("x-canary", "insider"), requests=50, iterations=4)
        # Prometheus scrapes Envoy's own stats too (what the Contour and Gloo builtin queries read).
        envoy_series = await sandbox.prometheus.value(
            'count({__name__=~"envoy_cluster_.*upstream_rq.*", sandbox="envoy"})'
        )
    finally:
        await sandbox.stop()
    output = stream.getvalue() + "\n".join(summary_lines(result))
    print(output)

    assert result.promoted, output
    assert result.rolled_back, output
    assert result.ok, output
    # Every check of the summary passed (weights stepped 5..50, primary image, halts...).
    assert [text for text, ok in result.checks if not ok] == [], output

    # The share of user requests reaching the canary (counted by the apps) tracks the weight at each step.
    # Envoy got every weight of run 1; each step long enough to count (>= 20 user requests) is checked.
    assert set(result.weights_seen) >= set(range(5, 55, 5)), output
    progressing = [s for s in result.steps if s.weight > 0]
    assert len({s.weight for s in progressing}) >= 6, output
    for step in progressing:
        assert abs(step.share - step.weight) <= 5.0, f"{step}: share {step.share:.1f}%\n{output}"

    # Rollback: on the tick of the threshold-th failed check, traffic back on the primary (a check of the
    # summary, counted in ticks; the seconds it took are printed, a benchmark's business, not a test's).
    assert result.rollback_s is not None
    assert any(
        text.startswith("run 2 rolled back on its 10th failed check") and ok for text, ok in result.checks
    )

    # The HTML report exists and is self-contained.
    assert result.report_path is not None
    page = result.report_path.read_text()
    assert "<svg" in page
    assert "Rolling back podinfo.test failed checks threshold reached 10" in page
    assert "<script src" not in page
    assert "<link" not in page

    # A/B: every request with the header reached the canary, none without it did; the routes held while
    # they were sent, and the run was then promoted.
    assert ab.error == "", output
    assert ab.matched is not None, output
    assert ab.unmatched is not None, output
    assert (ab.matched.canary, ab.matched.primary, ab.matched.errors) == (50, 0, 0), output
    assert (ab.unmatched.canary, ab.unmatched.primary, ab.unmatched.errors) == (0, 50, 0), output
    assert ab.routes_held, output
    assert ab.promoted, output

    assert envoy_series is not None, output
    assert envoy_series > 0, output

    # Every subprocess is gone after stop.
    assert all(pid > 0 for pid in pids)
    assert [pid for pid in pids if _running(pid)] == []


def _running(pid: int) -> bool:
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False


def _event(uid: str, message: str, count: int, first: str) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "name": f"podinfo.{uid}", "namespace": "test", "resourceVersion": "1"},
        "involvedObject": {"kind": "Canary", "name": "podinfo", "namespace": "test"},
        "message": message,
        "count": count,
        "firstTimestamp": first,
    }


def test_repeated_events_are_recorded_once_per_occurrence() -> None:
    """A repeated Event is one object whose count grows: each occurrence is a line of the report."""
    events: list[dict[str, Any]] = []
    informer = types.SimpleNamespace(list=lambda: events)
    sandbox: Any = types.SimpleNamespace(events=informer, provider=types.SimpleNamespace(host="h"))
    recorder = Recorder(sandbox, LiveView(io.StringIO(), live=False))
    halt = "Halt podinfo.test advancement request duration 1.0s > 500ms"
    events.append(_event("a", "New revision detected! Scaling up podinfo.test", 1, "T1"))
    events.append(_event("b", halt, 1, "T2"))
    recorder._record_events()
    for count in (2, 3, 5):  # the operator bumps the count; one poll may see several occurrences
        events[1] = _event("b", halt, count, "T2")
        recorder._record_events()
    recorder._record_events()
    events.append(
        {**_event("c", "Halt elsewhere", 1, "T3"), "involvedObject": {"kind": "Canary", "name": "x"}}
    )
    recorder._record_events()
    assert [e.message for e in recorder.events] == ["New revision detected! Scaling up podinfo.test"] + [
        halt
    ] * 5


def test_the_report_path_is_checked_before_the_story(tmp_path: Path) -> None:
    assert unwritable(tmp_path / "report.html") == ""
    assert unwritable(tmp_path) == "it is a directory"
    assert "is not a directory" in unwritable(tmp_path / "missing" / "report.html")
    (tmp_path / "file").write_text("")
    assert "is not a directory" in unwritable(tmp_path / "file" / "report.html")
