"""The run report read from its SVG (threshold lines, axes, story moments, events) and the live view's
repeated events, recorded by the operator's real EventRecorder on the local control plane."""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.events import EventRecorder
from canarist.localcluster import LocalClusterThread
from canarist.sandbox.liveview import LiveView, event_messages_for, render_panel, snapshot
from canarist.sandbox.report import (
    CHAR_PX,
    Moment,
    Sample,
    Thresholds,
    TimedEvent,
    render_report,
    stagger,
    thresholds_of,
)

SVG = "{http://www.w3.org/2000/svg}"
HALT = "Halt podinfo.test advancement request duration 1.23s > 500ms"
MOMENTS = [
    Moment(1.0, "initialized", "good"),
    Moment(4.6, "set image 3.1.1"),
    Moment(26.9, "promoted", "good"),
    Moment(28.0, "set image 3.1.2"),
    Moment(31.5, "fault injected (latency)", "fault"),
    Moment(52.0, "rolled back", "bad"),
]


def _story() -> tuple[list[Sample], list[TimedEvent], list[tuple[float, int]]]:
    """Run 1 promoted at 50 %, run 2 halted ten times on a 1.2 s p99 and rolled back at 52 s."""
    samples: list[Sample] = []
    for i in range(60):
        t = float(i)
        weight = min(50, max(0, (i - 6) // 2 * 5)) if i < 27 else (0 if i < 31 else 10)
        fault = i >= 33
        samples.append(
            Sample(
                t,
                weight,
                float(weight) + 0.7 if i > 8 else None,
                (100.0 if i < 40 else 97.5) if weight else None,
                (1234.0 if fault else 0.49) if weight else None,
                "Progressing",
            )
        )
    routes = [(float(i), min(50, (i - 6) // 2 * 5)) for i in range(6, 27, 2)]
    routes += [(27.0, 0), (31.0, 5), (33.0, 10), (52.0, 0)]
    events = [TimedEvent(4.8, "New revision detected! Scaling up podinfo.test")]
    events += [TimedEvent(28.2, "New revision detected! Scaling up podinfo.test")]
    events += [TimedEvent(33.5 + 2 * i, HALT) for i in range(10)]
    events += [TimedEvent(52.0, "Rolling back podinfo.test failed checks threshold reached 10")]
    return samples, events, routes


@pytest.fixture(scope="module")
def page() -> str:
    samples, events, routes = _story()
    return render_report(
        "canarist demo: a test story",
        samples,
        events,
        [("outcome", "OK")],
        [("run 2 rolled back", True)],
        moments=MOMENTS,
        thresholds=Thresholds(success_rate_min=99.0, duration_max_ms=500.0),
        route_weights=routes,
    )


@pytest.fixture(scope="module")
def svg(page: str) -> ET.Element:
    match = re.search(r"<svg .*?</svg>", page, re.S)
    assert match is not None
    return ET.fromstring(match.group(0))  # the timeline is a well-formed SVG document


def _ticks(svg: ET.Element, panel: str) -> dict[float, float]:
    """tick value -> y, as drawn."""
    return {
        float(line.attrib["data-value"]): float(line.attrib["y1"])
        for line in svg.iter(f"{SVG}line")
        if line.get("class") == "tick" and line.get("data-panel") == panel
    }


def _threshold_y(svg: ET.Element, panel: str) -> dict[float, float]:
    return {
        float(line.attrib["data-value"]): float(line.attrib["y1"])
        for line in svg.iter(f"{SVG}line")
        if line.get("class") == "threshold" and line.get("data-panel") == panel
    }


def _path_points(svg: ET.Element, panel: str) -> list[tuple[float, float]]:
    [path] = [p for p in svg.iter(f"{SVG}path") if p.get("data-series") == panel]
    return [(float(x), float(y)) for x, y in re.findall(r"[ML]([\d.]+),([\d.]+)", path.attrib["d"])]


def test_threshold_lines_sit_at_their_values_on_the_drawn_axes(page: str, svg: ET.Element) -> None:
    # Success rate: linear; 99 % is nine tenths of the way from the 90 % tick to the 100 % tick.
    ticks = _ticks(svg, "success")
    [(value, y)] = _threshold_y(svg, "success").items()
    assert value == 99.0
    assert y == pytest.approx(ticks[90.0] + 0.9 * (ticks[100.0] - ticks[90.0]), abs=0.15)
    # p99: log; 500 ms is log10(5) of the way from the 100 ms tick to the 1 s tick.
    ticks = _ticks(svg, "p99")
    [(value, y)] = _threshold_y(svg, "p99").items()
    assert value == 500.0
    assert y == pytest.approx(ticks[100.0] + math.log10(5) * (ticks[1000.0] - ticks[100.0]), abs=0.15)
    labels = [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == "threshold-label"]
    assert sorted(labels) == ["max 500ms", "min 99%"]


def test_axes_fit_the_values_and_the_thresholds(svg: ET.Element) -> None:
    samples, _, routes = _story()
    p99 = [s.p99_ms for s in samples if s.p99_ms is not None]
    ticks = _ticks(svg, "p99")
    # The log axis spans the half-millisecond answers, the 500 ms threshold and the 1.2 s fault.
    assert max(ticks) >= max(p99)
    assert min(ticks) <= min(p99)
    # The values are drawn where the axis says: 0.49 ms between the 0.1 ms and 1 ms ticks (not flat on the
    # bottom edge), 1234 ms above the 1 s tick.
    ys = {round(y, 1) for _, y in _path_points(svg, "p99")}
    fast = ticks[0.1] + math.log10(4.9) * (ticks[1.0] - ticks[0.1])
    slow = ticks[1000.0] + math.log10(1.234) * (ticks[10000.0] - ticks[1000.0])
    assert any(abs(y - fast) < 0.15 for y in ys), (ys, fast)
    assert any(abs(y - slow) < 0.15 for y in ys), (ys, slow)
    assert ticks[0.1] > fast > ticks[1.0] > ticks[1000.0] > slow > ticks[10000.0]  # y grows downwards
    # Success rate: from below the lowest value (97.5) to 100 %, the 99 % threshold inside.
    success = _ticks(svg, "success")
    assert min(success) <= 97.5
    assert max(success) == 100.0
    # Weight: at least the largest weight set and share served.
    weight = _ticks(svg, "weight")
    shares = [s.observed_share for s in samples if s.observed_share is not None]
    assert max(weight) >= max([w for _, w in routes] + shares)


def test_the_weight_set_is_a_step_line_and_each_sample_of_the_share_a_dot(svg: ET.Element) -> None:
    samples, _, routes = _story()
    ticks = _ticks(svg, "weight")
    [path] = [p for p in svg.iter(f"{SVG}path") if p.get("data-series") == "weight"]
    d = path.attrib["d"]
    assert d.startswith("M")
    assert "L" not in d  # only horizontal and vertical moves: a step line
    low, high = sorted(ticks)[:2]
    y_of = {w: ticks[low] + (w - low) / (high - low) * (ticks[high] - ticks[low]) for _, w in routes}
    levels = [float(v) for v in re.findall(r"V([\d.]+)", d)]
    assert [round(v, 1) for v in levels] == [round(y_of[w], 1) for _, w in routes[1:]]
    dots = [c for c in svg.iter(f"{SVG}circle") if c.get("class") == "share"]
    assert len(dots) == len([s for s in samples if s.observed_share is not None])


def test_every_moment_is_labelled_and_no_two_labels_overlap(svg: ET.Element) -> None:
    groups = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "moment"]
    texts = [g.find(f"{SVG}text") for g in groups]
    assert [t.text for t in texts if t is not None] == [m.label for m in MOMENTS]
    extents: list[tuple[float, float, float]] = []  # (baseline y, x from, x to)
    for text in texts:
        assert text is not None
        assert text.text is not None
        x, width = float(text.attrib["x"]), len(text.text) * CHAR_PX
        start = x if text.attrib["text-anchor"] == "start" else x - width
        extents.append((float(text.attrib["y"]), start, start + width))
    for i, a in enumerate(extents):
        for b in extents[i + 1 :]:
            assert a[0] != b[0] or a[2] <= b[1] or b[2] <= a[1], (a, b)
    # Close moments (promoted 26.9 s, set image 28 s, fault 31.5 s) were put in different rows.
    assert len({e[0] for e in extents[2:5]}) >= 2
    # Each moment's line runs down through the three panels, at its time.
    plots = {r.attrib["data-panel"]: r for r in svg.iter(f"{SVG}rect") if r.get("class") == "plot"}
    bottom = float(plots["p99"].attrib["y"]) + float(plots["p99"].attrib["height"])
    times = {
        float(t.attrib["data-t"]): float(t.attrib["x"])
        for t in svg.iter(f"{SVG}text")
        if t.get("class") == "time"
    }
    x0, x10 = times[0.0], times[10.0]
    for group, moment in zip(groups, MOMENTS, strict=True):
        line = group.find(f"{SVG}line")
        assert line is not None
        assert float(line.attrib["y2"]) == pytest.approx(bottom, abs=0.1)
        assert float(line.attrib["x1"]) == pytest.approx(x0 + (x10 - x0) * moment.t / 10, abs=0.15)


def test_stagger_puts_labels_of_close_moments_in_rows() -> None:
    labels = stagger([100.0, 110.0, 120.0, 400.0, 895.0], ["a long label"] * 5, right_edge=900.0)
    assert [lab.row for lab in labels] == [0, 1, 2, 0, 0]
    assert labels[-1].anchor == "end"  # drawn left of a line at the edge
    assert labels[-1].end <= 900.0


def test_every_event_is_listed_with_its_time_repeats_included(page: str) -> None:
    _, events, _ = _story()
    rows = re.findall(r"<tr class=\"\w+\"><td>\s*([\d.]+)s</td><td>([^<]*)</td></tr>", page)
    assert [(float(t), m.replace("&gt;", ">")) for t, m in rows] == [(e.t, e.message) for e in events]
    assert sum(1 for _, m in rows if m.startswith("Halt")) == 10
    for moment in MOMENTS:  # and the moments, with their times
        assert f"{moment.t:6.1f}s</td><td style" in page
        assert moment.label in page


def test_the_page_is_self_contained(page: str) -> None:
    for needle in ("<script", "<link", "src=", "href=", "@import", "url("):
        assert needle not in page


def test_thresholds_come_from_the_canary() -> None:
    walkthrough = yaml.safe_load(
        (Path(__file__).parents[2] / "examples" / "podinfo" / "canary.yaml").read_text()
    )
    assert thresholds_of(walkthrough) == Thresholds(success_rate_min=99.0, duration_max_ms=500.0)
    ranged = {
        "spec": {
            "analysis": {
                "metrics": [
                    {"name": "request-success-rate", "thresholdRange": {"min": 95}},
                    {"name": "request-duration", "thresholdRange": {"max": 250}},
                    {"name": "error-rate", "thresholdRange": {"max": 1}},
                ]
            }
        }
    }
    assert thresholds_of(ranged) == Thresholds(success_rate_min=95.0, duration_max_ms=250.0)


# -- the live view ------------------------------------------------------------------------------------------


CANARY = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test"},
    "spec": {"targetRef": {"name": "podinfo"}, "analysis": {"threshold": 10, "maxWeight": 50}},
    "status": {"phase": "Progressing", "canaryWeight": 10, "failedChecks": 3},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    thread = LocalClusterThread(readiness_delay=0.05).start()
    try:
        yield thread.write_kubeconfig(tmp_path_factory.mktemp("kube") / "kubeconfig", namespace="test")
    finally:
        thread.stop()


async def _client(kubeconfig: Path) -> KubeClient:
    client = KubeClient.from_kubeconfig(kubeconfig)
    await client.ensure(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}}, kind=kinds.NAMESPACE
    )
    return client


async def test_the_live_view_prints_every_occurrence_of_a_repeated_event(cluster: Path) -> None:
    """The operator's recorder folds a repeat into one Event whose count grows: the plain live view prints
    each occurrence, and a panel shows the count."""
    client = await _client(cluster)
    try:
        await _repeats(client)
    finally:
        await client.close()


async def _repeats(client: KubeClient) -> None:
    recorder = EventRecorder(client)
    stream = io.StringIO()
    view = LiveView(stream, live=False)

    async def update() -> None:
        events = (await client.list(kinds.EVENT, namespace="test")).items
        view.update([snapshot(CANARY, event_messages_for(events, "test", "podinfo"))])

    await recorder.record(CANARY, "Normal", "Synced", "Advance podinfo.test canary weight 10")
    await update()
    for _ in range(3):
        await recorder.record(CANARY, "Warning", "Synced", HALT)
        await update()
    # Two occurrences between two updates: both printed.
    await recorder.record(CANARY, "Warning", "Synced", HALT)
    await recorder.record(CANARY, "Warning", "Synced", HALT)
    await update()
    await update()  # nothing new: nothing printed
    events = [line.split(" event: ", 1)[1] for line in stream.getvalue().splitlines() if " event: " in line]
    assert events == [
        "Advance podinfo.test canary weight 10",
        HALT,
        f"{HALT} (x2)",
        f"{HALT} (x3)",
        f"{HALT} (x4)",
        f"{HALT} (x5)",
    ]
    listed = event_messages_for((await client.list(kinds.EVENT, namespace="test")).items, "test", "podinfo")
    assert [(e.message, e.count) for e in listed] == [
        ("Advance podinfo.test canary weight 10", 1),
        (HALT, 5),
    ]
    console = Console(file=io.StringIO(), width=200)
    with console.capture() as captured:
        console.print(render_panel(snapshot(CANARY, listed)))
    assert f"{HALT} (x5)" in captured.get()
