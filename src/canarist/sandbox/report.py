"""The demo's run report: one self-contained HTML page with inline SVG charts.

Three charts share the time axis: the canary weight canarist set (and the share of user requests the canary
apps actually served), the canary's success rate, and its p99 latency; events are vertical marks (hover for
the message). Below: the summary checks and the full event list.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Sample", "TimedEvent", "render_report"]


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


WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 900, 170, 60, 20, 20, 28


def _x(t: float, t_max: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (t / t_max if t_max > 0 else 0)


def _y(v: float, v_max: float) -> float:
    v = min(max(v, 0.0), v_max)
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - v / v_max if v_max > 0 else 1)


def _path(points: Sequence[tuple[float, float | None]], t_max: float, v_max: float) -> str:
    parts: list[str] = []
    pen_up = True
    for t, v in points:
        if v is None:
            pen_up = True
            continue
        parts.append(f"{'M' if pen_up else 'L'}{_x(t, t_max):.1f},{_y(v, v_max):.1f}")
        pen_up = False
    return " ".join(parts)


def _chart(
    title: str,
    series: Sequence[tuple[str, str, Sequence[tuple[float, float | None]]]],
    v_max: float,
    unit: str,
    t_max: float,
    events: Sequence[TimedEvent],
) -> str:
    out = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{html.escape(title)}">']
    out.append(f'<text x="{LEFT}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>')
    for frac in (0.0, 0.5, 1.0):
        y = _y(v_max * frac, v_max)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{v_max * frac:g}{unit}</text>'
        )
    step = max(5, int(t_max / 10 / 5 + 1) * 5) if t_max > 0 else 5
    t = 0
    while t <= t_max:
        x = _x(t, t_max)
        out.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle">{t}s</text>')
        t += step
    for event in events:
        x = _x(event.t, t_max)
        color = "#c00" if any(w in event.message for w in ("Halt", "Rolling back", "failed")) else "#888"
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="{color}" '
            f'stroke-dasharray="2,3"><title>{event.t:.1f}s {html.escape(event.message)}</title></line>'
        )
    for label, color, points in series:
        d = _path(points, t_max, v_max)
        if d:
            out.append(
                f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.8"><title>{html.escape(label)}</title></path>'
            )
    legend_x = WIDTH - RIGHT - 10
    for i, (label, color, _) in enumerate(series):
        out.append(
            f'<text x="{legend_x}" y="{14 + 12 * i}" font-size="11" text-anchor="end" fill="{color}">{html.escape(label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def render_report(
    title: str,
    samples: Sequence[Sample],
    events: Sequence[TimedEvent],
    summary: Sequence[tuple[str, str]],
    checks: Sequence[tuple[str, bool]],
) -> str:
    t_max = max([s.t for s in samples] + [e.t for e in events] + [1.0])
    weight = [(s.t, float(s.weight)) for s in samples]
    share = [(s.t, s.observed_share) for s in samples]
    success = [(s.t, s.success_rate) for s in samples]
    p99 = [(s.t, s.p99_ms) for s in samples]
    p99_max = max([v for _, v in p99 if v is not None] + [100.0])
    p99_max = float(int(p99_max * 1.2 / 50 + 1) * 50)
    charts = [
        _chart(
            "canary weight (set by canarist) and share of user requests served by the canary",
            [("weight", "#1f77b4", weight), ("observed share", "#ff7f0e", share)],
            100,
            "%",
            t_max,
            events,
        ),
        _chart("canary success rate", [("success rate", "#2ca02c", success)], 100, "%", t_max, events),
        _chart("canary p99 latency", [("p99", "#9467bd", p99)], p99_max, "ms", t_max, events),
    ]
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary)
    check_rows = "\n".join(
        f'<li class="{"ok" if ok else "bad"}">{"PASS" if ok else "FAIL"} {html.escape(text)}</li>'
        for text, ok in checks
    )
    event_rows = "\n".join(f"<tr><td>{e.t:6.1f}s</td><td>{html.escape(e.message)}</td></tr>" for e in events)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; }} th, td {{ text-align: left; padding: 2px 10px; vertical-align: top; }}
li.ok {{ color: #1a7f37; }} li.bad {{ color: #c00; font-weight: bold; }}
td:first-child {{ font-family: monospace; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table>{rows}</table>
<h2>Checks</h2><ul>{check_rows}</ul>
<h2>Timeline</h2>
{"".join(charts)}
<h2>Events</h2><table>{event_rows}</table>
</body></html>
"""
