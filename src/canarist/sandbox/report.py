"""The demo's run report: one self-contained HTML page (inline SVG; no scripts, styles or links from outside).

One timeline of three panels sharing the time axis, so that the story reads from the plots:

* **weight**: the canary weight canarist set (a step line: each route written) and the share of user
  requests the canary pods actually served in each sample (dots);
* **success rate** of the canary, with the Canary's minimum as a labelled threshold line, on an axis fitted to
  the values and the threshold;
* **p99 latency** of the canary in ms, on a log axis fitted to the values and the threshold (a pod that answers
  in half a millisecond and a 500 ms threshold are both readable), with the Canary's maximum.

The story's moments (``set image``, ``fault injected``, ``promoted``, ``rolled back``...) are labelled vertical
lines through the three panels, their labels staggered in rows so that none overlap; every operator Event is a
thin dotted mark (red for a halt or a rollback; hover for the message). Below: the summary, the checks, the
moments and every event with its time, one line per occurrence.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Axis",
    "Label",
    "Moment",
    "Sample",
    "Thresholds",
    "TimedEvent",
    "render_report",
    "stagger",
    "thresholds_of",
]


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the demo started
    weight: int
    observed_share: float | None  # percent of user requests served by the canary since the last sample
    success_rate: float | None
    p99_ms: float | None
    phase: str


@dataclass(frozen=True)
class TimedEvent:
    t: float
    message: str


#: colours of the kinds of moments
MOMENT_COLORS: Mapping[str, str] = {
    "action": "#1f4e9c",  # what the person did: set image
    "fault": "#d46a00",  # fault injected
    "good": "#1a7f37",  # initialized, promoted
    "bad": "#c00000",  # rolled back, failed
}


@dataclass(frozen=True)
class Moment:
    """A moment of the story, marked and labelled on the timeline."""

    t: float
    label: str
    kind: str = "action"  # a key of MOMENT_COLORS


@dataclass(frozen=True)
class Thresholds:
    """The bounds of the Canary's builtin metrics: success rate in percent, request duration (p99) in ms."""

    success_rate_min: float | None = None
    success_rate_max: float | None = None
    duration_min_ms: float | None = None
    duration_max_ms: float | None = None


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def thresholds_of(canary: Mapping[str, Any]) -> Thresholds:
    """The thresholds of a Canary's ``request-success-rate`` and ``request-duration`` metrics: ``threshold``
    (a minimum for the success rate, a maximum in ms for the duration, as Flagger reads them) or
    ``thresholdRange`` (``min``/``max``)."""
    spec = canary.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    found: dict[str, float | None] = {}
    for metric in analysis.get("metrics") or []:
        name = str(metric.get("name") or "")
        range_ = metric.get("thresholdRange") or {}
        low, high = _number(range_.get("min")), _number(range_.get("max"))
        threshold = _number(metric.get("threshold"))
        if name == "request-success-rate":
            found["success_rate_min"] = threshold if threshold is not None else low
            found["success_rate_max"] = high
        elif name == "request-duration":
            found["duration_max_ms"] = threshold if threshold is not None else high
            found["duration_min_ms"] = low
    return Thresholds(**found)


# -- axes -----------------------------------------------------------------------------------------------


def _fmt_ms(v: float) -> str:
    return f"{v / 1000:g}s" if v >= 1000 else f"{v:g}ms"


@dataclass(frozen=True)
class Axis:
    """A value axis: ``lo``..``hi``, linear or logarithmic (decades), with its tick values."""

    lo: float
    hi: float
    log: bool = False
    unit: str = ""

    def frac(self, v: float) -> float:
        """Where ``v`` lies between ``lo`` (0) and ``hi`` (1), clipped."""
        if self.log:
            if v <= 0:
                return 0.0
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return min(max(f, 0.0), 1.0)

    def ticks(self) -> list[float]:
        if self.log:
            first, last = round(math.log10(self.lo)), round(math.log10(self.hi))
            return [10.0**e for e in range(first, last + 1)]
        span = self.hi - self.lo
        step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500) if span / s <= 5), span)
        ticks: list[float] = []
        v = math.ceil(self.lo / step) * step
        while v <= self.hi + 1e-9:
            ticks.append(float(v))
            v += step
        return ticks

    def label(self, v: float) -> str:
        if self.unit == "ms":
            return _fmt_ms(v)
        return f"{v:g}{self.unit}"


def _percent_axis(values: Sequence[float]) -> Axis:
    """0 up to the next ten above the largest value (weights and shares)."""
    top = max([*values, 10.0])
    return Axis(0.0, float(math.floor(top / 10) * 10 + 10) if top < 100 else 100.0, unit="%")


def _success_axis(values: Sequence[float]) -> Axis:
    """From ten below the lowest value or threshold (at least 2 points of room), rounded down to a ten, to
    100 %: a 99 % threshold and a canary at 70 % are both clear."""
    if not values:
        return Axis(0.0, 100.0, unit="%")
    low = max(0.0, math.floor((min(values) - 2.0) / 10) * 10)
    return Axis(min(low, 90.0), max(100.0, math.ceil(max(values))), unit="%")


def _latency_axis(values: Sequence[float]) -> Axis:
    """Decades from the one holding the smallest positive value or threshold to the one above the largest."""
    positive = [v for v in values if v > 0]
    if not positive:
        return Axis(1.0, 1000.0, log=True, unit="ms")
    lo = 10.0 ** math.floor(math.log10(max(min(positive), 1e-3)))
    hi = 10.0 ** math.ceil(math.log10(max(positive)))
    if hi <= lo:
        hi = lo * 10
    return Axis(lo, hi, log=True, unit="ms")


# -- labels ---------------------------------------------------------------------------------------------

#: the estimated width of one character of an 11px sans-serif label (generous, so that labels do not touch)
CHAR_PX = 6.6
LABEL_GAP = 8.0


@dataclass(frozen=True)
class Label:
    x: float  # where the moment's line is
    row: int
    start: float  # the text's extent on the x axis (estimated)
    end: float
    anchor: str  # "start" (text right of the line) or "end" (left of it, near the right edge)


def stagger(xs: Sequence[float], texts: Sequence[str], right_edge: float) -> list[Label]:
    """Rows for labels at ``xs`` so that no two labels of a row overlap: each label goes to the first row
    where it fits after the previous label (greedy, in x order). A label that would run past ``right_edge``
    is drawn left of its line."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    row_ends: list[float] = []
    out: dict[int, Label] = {}
    for i in order:
        x, width = xs[i], len(texts[i]) * CHAR_PX
        if x + 3 + width <= right_edge:
            start, end, anchor = x + 3, x + 3 + width, "start"
        else:
            start, end, anchor = x - 3 - width, x - 3, "end"
        row = next((r for r, e in enumerate(row_ends) if e + LABEL_GAP <= start), len(row_ends))
        if row == len(row_ends):
            row_ends.append(end)
        else:
            row_ends[row] = end
        out[i] = Label(x, row, start, end, anchor)
    return [out[i] for i in range(len(xs))]


# -- the timeline -----------------------------------------------------------------------------------------

WIDTH, LEFT, RIGHT = 900, 64, 76  # the right margin holds the threshold labels
ROW_H = 14  # a row of moment labels
PANEL_TITLE_H, PLOT_H, PANEL_AXIS_H = 22, 120, 26


def _x(t: float, t_max: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (t / t_max if t_max > 0 else 0.0)


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


class _Panel:
    def __init__(self, key: str, title: str, axis: Axis, top: float) -> None:
        self.key = key
        self.title = title
        self.axis = axis
        self.top = top
        self.plot_top = top + PANEL_TITLE_H
        self.plot_bottom = self.plot_top + PLOT_H

    def y(self, v: float) -> float:
        return self.plot_bottom - PLOT_H * self.axis.frac(v)


def _line_path(panel: _Panel, points: Sequence[tuple[float, float | None]], t_max: float) -> str:
    parts: list[str] = []
    pen_up = True
    for t, v in points:
        if v is None or math.isnan(v):
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{_x(t, t_max):.1f},{panel.y(v):.1f}")
        pen_up = False
    return " ".join(parts)


def _step_path(panel: _Panel, steps: Sequence[tuple[float, float]], t_max: float) -> str:
    """A value held from each point until the next one, and the last one until ``t_max``."""
    parts: list[str] = []
    for i, (t, v) in enumerate(steps):
        y = panel.y(v)
        parts.append(f"M{_x(t, t_max):.1f},{y:.1f}" if i == 0 else f"V{y:.1f}")
        t_next = steps[i + 1][0] if i + 1 < len(steps) else t_max
        parts.append(f"H{_x(t_next, t_max):.1f}")
    return " ".join(parts)


def _panel_frame(out: list[str], panel: _Panel, t_max: float, legend: Sequence[tuple[str, str]]) -> None:
    out.append(
        f'<text x="{LEFT}" y="{panel.top + 15:.1f}" font-size="13" font-weight="bold">{html.escape(panel.title)}</text>'
    )
    x = float(WIDTH - RIGHT)  # each entry: a swatch, then its text, from the right edge leftwards
    for text, color in reversed(legend):
        out.append(
            f'<text x="{x:.1f}" y="{panel.top + 15:.1f}" font-size="11" text-anchor="end" fill="{color}">{html.escape(text)}</text>'
        )
        x -= len(text) * CHAR_PX
        if text.startswith("served"):  # the share is drawn as dots
            out.append(f'<circle cx="{x - 10:.1f}" cy="{panel.top + 11:.1f}" r="2.5" fill="{color}"/>')
        else:
            out.append(
                f'<line x1="{x - 18:.1f}" x2="{x - 6:.1f}" y1="{panel.top + 11:.1f}" y2="{panel.top + 11:.1f}" stroke="{color}" stroke-width="2"/>'
            )
        x -= 36
    out.append(
        f'<rect class="plot" data-panel="{panel.key}" x="{LEFT}" y="{panel.plot_top:.1f}" '
        f'width="{WIDTH - LEFT - RIGHT}" height="{PLOT_H}" fill="none" stroke="#bbb"/>'
    )
    for v in panel.axis.ticks():
        y = panel.y(v)
        out.append(
            f'<line class="tick" data-panel="{panel.key}" data-value="{v:g}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>'
        )
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{html.escape(panel.axis.label(v))}</text>'
        )
    step = max(5, int(t_max / 10 / 5 + 1) * 5) if t_max > 0 else 5
    t = 0
    while t <= t_max:
        out.append(
            f'<text class="time" data-t="{t}" x="{_x(t, t_max):.1f}" y="{panel.plot_bottom + 13:.1f}" font-size="10" '
            f'text-anchor="middle">{t}s</text>'
        )
        t += step


def _threshold(out: list[str], panel: _Panel, value: float, text: str) -> None:
    y = panel.y(value)
    out.append(
        f'<line class="threshold" data-panel="{panel.key}" data-value="{value:g}" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
        f'y1="{y:.1f}" y2="{y:.1f}" stroke="#c00000" stroke-width="1.2" stroke-dasharray="6,3"/>'
    )
    # In the right margin, level with the line: never over the data.
    out.append(
        f'<text class="threshold-label" data-panel="{panel.key}" x="{WIDTH - RIGHT + 5}" y="{y + 4:.1f}" font-size="11" '
        f'fill="#c00000">{html.escape(text)}</text>'
    )


def _event_color(message: str) -> str:
    return "#c00000" if any(w in message for w in ("Halt", "Rolling back", "failed")) else "#999"


def timeline_svg(
    samples: Sequence[Sample],
    events: Sequence[TimedEvent],
    moments: Sequence[Moment] = (),
    thresholds: Thresholds = Thresholds(),
    route_weights: Sequence[tuple[float, int]] = (),
) -> str:
    """The three panels in one SVG (a well-formed XML document), the moments' lines running through all."""
    t_last = max([s.t for s in samples] + [e.t for e in events] + [m.t for m in moments] + [1.0])
    t_max = t_last + max(1.0, 0.02 * t_last)  # room after the last moment
    labels = stagger([_x(m.t, t_max) for m in moments], [m.label for m in moments], WIDTH - 4)
    rows = max([lab.row + 1 for lab in labels] + [1])
    band = 6 + ROW_H * rows
    panel_h = PANEL_TITLE_H + PLOT_H + PANEL_AXIS_H

    weights = [(t, float(w)) for t, w in route_weights] or [(s.t, float(s.weight)) for s in samples]
    share = [(s.t, s.observed_share) for s in samples]
    success = [(s.t, s.success_rate) for s in samples]
    p99 = [(s.t, s.p99_ms) for s in samples]

    def known(points: Sequence[tuple[float, float | None]]) -> list[float]:
        return [v for _, v in points if v is not None and not math.isnan(v)]

    bounds = thresholds
    success_bounds = [v for v in (bounds.success_rate_min, bounds.success_rate_max) if v is not None]
    duration_bounds = [v for v in (bounds.duration_min_ms, bounds.duration_max_ms) if v is not None]
    panels = [
        _Panel(
            "weight",
            "canary weight and the share of user requests it served",
            _percent_axis([w for _, w in weights] + known(share)),
            band,
        ),
        _Panel(
            "success",
            "canary success rate",
            _success_axis(known(success) + success_bounds),
            band + panel_h,
        ),
        _Panel(
            "p99",
            "canary p99 latency (log scale)",
            _latency_axis(known(p99) + duration_bounds),
            band + 2 * panel_h,
        ),
    ]
    weight_panel, success_panel, p99_panel = panels
    height = band + 3 * panel_h
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" '
        f'role="img" aria-label="timeline: weight, success rate and p99 latency of the canary" '
        f'font-family="system-ui, sans-serif">'
    ]
    legends = {
        "weight": [("weight set", "#1f77b4"), ("served by the canary", "#ff7f0e")],
        "success": [("success rate", "#2ca02c"), ("threshold", "#c00000")],
        "p99": [("p99", "#9467bd"), ("threshold", "#c00000")],
    }
    for panel in panels:
        _panel_frame(out, panel, t_max, legends[panel.key])
    # Operator events: thin marks in every panel, the message on hover.
    for event in events:
        x = _x(event.t, t_max)
        for panel in panels:
            out.append(
                f'<line class="event" x1="{x:.1f}" x2="{x:.1f}" y1="{panel.plot_top:.1f}" y2="{panel.plot_bottom:.1f}" '
                f'stroke="{_event_color(event.message)}" stroke-width="0.8" stroke-dasharray="1,3">'
                f"<title>{event.t:.1f}s {html.escape(event.message)}</title></line>"
            )
    for panel, low, high, fmt in (
        (success_panel, bounds.success_rate_min, bounds.success_rate_max, lambda v: f"{v:g}%"),
        (p99_panel, bounds.duration_min_ms, bounds.duration_max_ms, _fmt_ms),
    ):
        if low is not None:
            _threshold(out, panel, low, f"min {fmt(low)}")
        if high is not None:
            _threshold(out, panel, high, f"max {fmt(high)}")
    # Series.
    if weights:
        out.append(
            f'<path class="series" data-panel="weight" data-series="weight" d="{_step_path(weight_panel, weights, t_max)}" '
            f'fill="none" stroke="#1f77b4" stroke-width="1.8"><title>canary weight set</title></path>'
        )
    for t, v in share:
        if v is not None:
            out.append(
                f'<circle class="share" cx="{_x(t, t_max):.1f}" cy="{weight_panel.y(v):.1f}" r="1.8" fill="#ff7f0e">'
                f"<title>{t:.1f}s {v:.1f}% of user requests served by the canary</title></circle>"
            )
    for panel, key, color, points in (
        (success_panel, "success", "#2ca02c", success),
        (p99_panel, "p99", "#9467bd", p99),
    ):
        d = _line_path(panel, points, t_max)
        if d:
            out.append(
                f'<path class="series" data-panel="{key}" data-series="{key}" d="{d}" fill="none" '
                f'stroke="{color}" stroke-width="1.8"/>'
            )
    # The story's moments: a line through the three panels, a label in the band above.
    bottom = p99_panel.plot_bottom
    for moment, lab in zip(moments, labels, strict=True):
        color = MOMENT_COLORS.get(moment.kind, "#333")
        y = 4 + ROW_H * lab.row + 10
        tx = lab.x + 3 if lab.anchor == "start" else lab.x - 3
        out.append(
            f'<g class="moment" data-t="{moment.t:.1f}" data-row="{lab.row}">'
            f'<line x1="{lab.x:.1f}" x2="{lab.x:.1f}" y1="{y - 10:.1f}" y2="{bottom:.1f}" stroke="{color}" '
            f'stroke-width="1.3" stroke-opacity="0.75"/>'
            f'<text x="{tx:.1f}" y="{y:.1f}" font-size="11" text-anchor="{lab.anchor}" fill="{color}">'
            f"{html.escape(moment.label)}</text>"
            f"<title>{moment.t:.1f}s {html.escape(moment.label)}</title></g>"
        )
    out.append("</svg>")
    return "\n".join(out)


def render_report(
    title: str,
    samples: Sequence[Sample],
    events: Sequence[TimedEvent],
    summary: Sequence[tuple[str, str]],
    checks: Sequence[tuple[str, bool]],
    *,
    moments: Sequence[Moment] = (),
    thresholds: Thresholds = Thresholds(),
    route_weights: Sequence[tuple[float, int]] = (),
) -> str:
    """The whole page. ``route_weights`` are the canary weights as the routes were written ``(t, weight)``;
    without them the weight line follows the samples' ``weight``."""
    svg = timeline_svg(samples, events, moments, thresholds, route_weights)
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary)
    check_rows = "\n".join(
        f'<li class="{"ok" if ok else "bad"}">{"PASS" if ok else "FAIL"} {html.escape(text)}</li>'
        for text, ok in checks
    )
    moment_rows = "\n".join(
        f'<tr><td>{m.t:6.1f}s</td><td style="color:{MOMENT_COLORS.get(m.kind, "#333")}">{html.escape(m.label)}</td></tr>'
        for m in sorted(moments, key=lambda m: m.t)
    )
    event_rows = "\n".join(
        f'<tr class="{"bad" if _event_color(e.message) != "#999" else "ev"}"><td>{e.t:6.1f}s</td>'
        f"<td>{html.escape(e.message)}</td></tr>"
        for e in events
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 10px; vertical-align: top; }}
li.ok {{ color: #1a7f37; }} li.bad {{ color: #c00; font-weight: bold; }}
tr.bad td {{ color: #a00; }}
td:first-child {{ font-family: monospace; white-space: pre; }}
p.note {{ color: #555; font-size: 0.9em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{rows}</table>
<h2>Checks</h2><ul>{check_rows}</ul>
<h2>Timeline</h2>
{svg}
<p class="note">Solid vertical lines: the moments of the story (listed below). Dotted marks: the operator's
events, red for a halt or a rollback (hover for the message). Dashed red lines: the Canary's thresholds.
The weight line is the canary weight canarist set; the dots are the share of user requests the canary pods
served in each sample.</p>
<h2>Moments</h2><table>{moment_rows}</table>
<h2>Events</h2><table>{event_rows}</table>
</body></html>
"""
