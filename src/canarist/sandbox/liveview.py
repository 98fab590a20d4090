"""The live view of canaries: one rich panel per Canary on a terminal, plain lines otherwise.

A panel shows the phase, a weight bar (against maxWeight), each metric's current value against its
threshold, failed checks against the threshold, and the latest events. Metric values come from the
operator's ``flagger_canary_metric_analysis`` gauge (in-process for the demo, from Prometheus for
``canarist get canaries --watch --metrics-server URL``); without a source the values show as ``-``.

On a non-terminal (CI, a pipe) nothing is redrawn: a line is printed when a canary's phase, weight or failed
checks change, and a line for each occurrence of an event. The operator records a repeated event (same reason
and message) as one Event whose ``count`` grows, so repeats are counted per Event object, not by message: a
panel shows ``message (xN)``, the plain stream prints each new occurrence with its number.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

__all__ = [
    "CanarySnapshot",
    "EventLine",
    "LiveView",
    "MetricLine",
    "event_messages_for",
    "plain_line",
    "render_panel",
    "snapshot",
]

PHASE_STYLE = {
    "Succeeded": "bold green",
    "Failed": "bold red",
    "Progressing": "bold yellow",
    "Promoting": "bold cyan",
    "Finalising": "bold cyan",
    "Initialized": "green",
    "Initializing": "dim",
    "Waiting": "magenta",
    "WaitingPromotion": "magenta",
    "Terminating": "dim",
    "Terminated": "dim",
}


@dataclass(frozen=True)
class MetricLine:
    name: str
    value: float | None
    threshold: float | None
    threshold_range: tuple[float | None, float | None] = (None, None)

    @property
    def unit(self) -> str:
        return {"request-success-rate": "%", "request-duration": "ms"}.get(self.name, "")

    @property
    def ok(self) -> bool | None:
        if self.value is None:
            return None
        low, high = self.threshold_range
        if low is not None or high is not None:
            return (low is None or self.value >= low) and (high is None or self.value <= high)
        if self.threshold is None:
            return None
        if self.name == "request-success-rate":
            return self.value >= self.threshold
        return self.value <= self.threshold

    def describe(self) -> str:
        if self.value is None:
            value = "-"
        elif self.unit == "ms":
            value = format_ms(self.value)
        else:
            value = f"{self.value:.2f}{self.unit}"
        if self.threshold is not None:
            op = ">=" if self.name == "request-success-rate" else "<="
            return f"{self.name} {value} ({op} {self.threshold:g}{self.unit})"
        low, high = self.threshold_range
        return f"{self.name} {value} (range {low if low is not None else '-'}..{high if high is not None else '-'})"


def format_ms(value: float) -> str:
    """A duration in milliseconds, readable at every scale: ``0ms``, ``350µs``, ``<1µs``, ``12.50ms``."""
    if value == 0:
        return "0ms"
    if abs(value) < 0.001:
        return "<1µs"
    if abs(value) < 1:
        return f"{value * 1000:.0f}µs"
    return f"{value:.2f}ms"


@dataclass(frozen=True)
class EventLine:
    """One Event about a canary: its message and how many times it occurred. ``key`` names the Event object
    (its uid or name), so that the occurrences of a repeated event are told from a new event; ``time`` is
    when it last occurred (UTC, None when the Event carries no time)."""

    message: str
    count: int = 1
    key: str = ""
    time: datetime | None = None

    def __str__(self) -> str:
        return self.message if self.count <= 1 else f"{self.message} (x{self.count})"


@dataclass(frozen=True)
class CanarySnapshot:
    namespace: str
    name: str
    phase: str
    weight: int
    max_weight: int
    failed_checks: int
    threshold: int
    iterations: int
    last_transition: str
    metrics: tuple[MetricLine, ...] = ()
    events: tuple[EventLine, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def snapshot(
    canary: Mapping[str, Any],
    events: Sequence[EventLine | str] = (),
    metric_values: Mapping[str, float] | None = None,
) -> CanarySnapshot:
    """A view of one Canary object (a dict) with its events, oldest first (`event_messages_for`; a plain
    string is one occurrence of its own event) and metric values (metric name -> value as reported by
    ``flagger_canary_metric_analysis``; durations in seconds, shown in ms)."""
    meta = canary.get("metadata") or {}
    spec = canary.get("spec") or {}
    status = canary.get("status") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    values = metric_values or {}
    metrics: list[MetricLine] = []
    for metric in analysis.get("metrics") or []:
        name = str(metric.get("name") or "")
        value = values.get(name)
        if value is not None and name == "request-duration":
            value = value * 1000
        range_ = metric.get("thresholdRange") or {}
        metrics.append(
            MetricLine(
                name,
                value,
                _float(metric.get("threshold")),
                (_float(range_.get("min")), _float(range_.get("max"))),
            )
        )
    max_weight = _int(analysis.get("maxWeight"), 100) or 100
    return CanarySnapshot(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name") or ""),
        phase=str(status.get("phase") or "Initializing"),
        weight=_int(status.get("canaryWeight")),
        max_weight=max_weight,
        failed_checks=_int(status.get("failedChecks")),
        threshold=_int(analysis.get("threshold"), 1) or 1,
        iterations=_int(status.get("iterations")),
        last_transition=str(status.get("lastTransitionTime") or ""),
        metrics=tuple(metrics),
        events=tuple(
            e if isinstance(e, EventLine) else EventLine(e, 1, f"#{i}") for i, e in enumerate(events)
        ),
    )


def _event_count(event: Mapping[str, Any]) -> int:
    """How many times an Event occurred: ``count`` (core/v1), ``series.count`` (events.k8s.io), else 1."""
    series = event.get("series")
    count = series.get("count") if isinstance(series, Mapping) else None
    return max(1, _int(count if count is not None else event.get("count"), 1))


def _event_key(event: Mapping[str, Any], index: int) -> str:
    meta = event.get("metadata") or {}
    return str(meta.get("uid") or meta.get("name") or f"#{index}")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """When an Event last occurred: ``series.lastObservedTime``, ``lastTimestamp``, ``eventTime``,
    ``firstTimestamp``, then its creation time; None when it carries none of them."""
    series = event.get("series")
    candidates = [series.get("lastObservedTime") if isinstance(series, Mapping) else None]
    candidates += [event.get("lastTimestamp"), event.get("eventTime"), event.get("firstTimestamp")]
    candidates.append((event.get("metadata") or {}).get("creationTimestamp"))
    for candidate in candidates:
        parsed = _parse_time(candidate)
        if parsed is not None:
            return parsed
    return None


_NO_TIME = datetime.min.replace(tzinfo=UTC)


def event_messages_for(events: Iterable[Mapping[str, Any]], namespace: str, name: str) -> list[EventLine]:
    """The core/v1 Events about Canary ``namespace/name`` (message, occurrences, identity, time), ordered by
    their last occurrence: a repeated event moves to the end when it occurs again."""
    mine = [
        e
        for e in events
        if (e.get("involvedObject") or {}).get("kind") == "Canary"
        and (e.get("involvedObject") or {}).get("name") == name
        and (e.get("involvedObject") or {}).get("namespace", e.get("metadata", {}).get("namespace"))
        == namespace
    ]
    mine.sort(
        key=lambda e: (
            event_time(e) or _NO_TIME,
            _int((e.get("metadata") or {}).get("resourceVersion")),
        )
    )
    return [
        EventLine(str(e.get("message") or ""), _event_count(e), _event_key(e, i), event_time(e))
        for i, e in enumerate(mine)
    ]


def render_panel(snap: CanarySnapshot, max_events: int = 8) -> Panel:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("phase", Text(snap.phase, style=PHASE_STYLE.get(snap.phase, "")))
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=snap.max_weight, completed=min(snap.weight, snap.max_weight), width=30),
        Text(f"{snap.weight}% / {snap.max_weight}%"),
    )
    grid.add_row("weight", bar)
    for metric in snap.metrics:
        style = {True: "green", False: "red", None: "dim"}[metric.ok]
        grid.add_row("metric", Text(metric.describe(), style=style))
    failed_style = "red" if snap.failed_checks else "green"
    grid.add_row("failed checks", Text(f"{snap.failed_checks} / {snap.threshold}", style=failed_style))
    events = Text("\n".join(str(e) for e in snap.events[-max_events:]) or "-", style="dim")
    grid.add_row("events", events)
    return Panel(grid, title=f"[bold]{snap.key}[/bold]", subtitle=snap.last_transition or None)


def plain_line(snap: CanarySnapshot) -> str:
    metrics = "; ".join(m.describe() for m in snap.metrics)
    return (
        f"{snap.key} phase={snap.phase} weight={snap.weight}%/{snap.max_weight}% "
        f"failed={snap.failed_checks}/{snap.threshold}" + (f" | {metrics}" if metrics else "")
    )


class LiveView:
    """Shows snapshots: redrawn panels on a terminal (``live``), else one line per change."""

    def __init__(self, stream: IO[str] | None = None, live: bool | None = None, title: str = "") -> None:
        self.console = Console(file=stream, highlight=False)
        self.live_mode = self.console.is_terminal if live is None else live
        self.title = title
        self._live: Live | None = None
        self._last_line: dict[str, str] = {}
        self._occurrences: dict[str, dict[str, int]] = {}  # canary -> Event key -> occurrences printed
        self.footer: str = ""

    def __enter__(self) -> LiveView:
        if self.live_mode:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def print(self, message: str) -> None:
        """A line above the panels (or in the plain stream)."""
        if self._live is not None:
            self._live.console.print(message, markup=False, highlight=False)
        else:
            self.console.print(f"{_clock()} {message}", markup=False, highlight=False, soft_wrap=True)

    def update(self, snapshots: Sequence[CanarySnapshot]) -> None:
        if self._live is not None:
            parts: list[RenderableType] = [render_panel(s) for s in snapshots] or [
                Text("no canaries", style="dim")
            ]
            if self.footer:
                parts.append(Text(self.footer, style="dim"))
            self._live.update(Group(*parts))
            return
        # New event lines of every canary, each stamped with its Event's own time and printed in time order
        # (an event without a time is stamped now); a stable sort keeps each canary's order for equal times.
        now = datetime.now(UTC)
        lines: list[tuple[datetime, str]] = []
        for snap in snapshots:
            printed = self._occurrences.setdefault(snap.key, {})
            for event in snap.events:
                when = event.time or now
                for line in _new_occurrences(event, printed.get(event.key, 0)):
                    lines.append((when, f"{_clock(when)} {snap.key} event: {line}"))
                printed[event.key] = event.count
        for _, text in sorted(lines, key=lambda item: item[0]):
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
        for snap in snapshots:
            # Print a state line when phase, weight or failed checks change (not on every metric refresh).
            state = f"{snap.phase}|{snap.weight}|{snap.failed_checks}"
            if self._last_line.get(snap.key) != state:
                self._last_line[snap.key] = state
                self.console.print(
                    f"{_clock()} {plain_line(snap)}", markup=False, highlight=False, soft_wrap=True
                )


#: more new occurrences of one event than this in one update (a watch started on an old canary) are one line
EXPAND_UP_TO = 5


def _new_occurrences(event: EventLine, printed: int) -> list[str]:
    """Lines for the occurrences of ``event`` after the first ``printed``: one per occurrence, numbered
    from the second (``(x2)``, ``(x3)``...); a count lower than printed is a new Event under the same name."""
    if event.count < printed:
        printed = 0
    new = event.count - printed
    if new <= 0:
        return []
    if new > EXPAND_UP_TO:
        return [f"{event.message} (x{event.count}, {new} occurrences since the last update)"]
    return [
        event.message if n == 1 else f"{event.message} (x{n})" for n in range(printed + 1, event.count + 1)
    ]


def _clock(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).astimezone(UTC).strftime("%H:%M:%S")


def monotonic() -> float:
    return time.monotonic()
