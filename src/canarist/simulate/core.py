"""Scenario, result and ``run`` (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from canarist.api import Canary, MetricTemplate
from canarist.engine.model import Check, CheckResult, Event, SetRoutes, WriteStatus
from canarist.engine.simulate import World
from canarist.metrics.checks import evaluate_metric

#: (t seconds since the start, value); a value of None is "no data" from then on
Points = Sequence[tuple[float, float | None]]


def value_at(points: Points, t: float) -> float | None:
    """The step function through ``points``: the value of the last point at or before ``t``."""
    current: float | None = None
    for at, value in sorted(points, key=lambda p: p[0]):
        if at > t:
            break
        current = value
    return current


@dataclass
class Scenario:
    """Metric values and webhook answers over virtual time, and revision changes.

    ``metrics``: metric name -> points (a metric not listed has no data); ``webhooks``: webhook name ->
    (t, passes) points (a webhook not listed passes); ``revisions``: (t, revision) changes of the target;
    ``duration_s``: how long to simulate; ``rollout_s``: how long a workload takes to roll out.
    """

    metrics: Mapping[str, Points] = field(default_factory=dict)
    webhooks: Mapping[str, Sequence[tuple[float, bool]]] = field(default_factory=dict)
    revisions: Sequence[tuple[float, str]] = ((60.0, "rev-2"),)
    duration_s: float = 3600.0
    rollout_s: float = 5.0

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """Read a scenario YAML file (format in docs/metrics.md, "Simulating an analysis")."""
        where = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ValueError(f"{where}: cannot read the scenario: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{where}: a scenario is a mapping")
        return cls.from_dict(data, where=where)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "scenario") -> Scenario:
        def points(key: str, raw: Any) -> list[tuple[float, Any]]:
            if isinstance(raw, (int, float)) or raw is None:
                return [(0.0, raw)]
            if not isinstance(raw, list):
                raise ValueError(f"{where}: {key}: a value or a list of [t, value] pairs")
            out: list[tuple[float, Any]] = []
            for i, item in enumerate(raw):
                if isinstance(item, dict) and "from" in item:
                    out.append((float(item["from"]), item.get("value")))
                elif isinstance(item, (list, tuple)) and len(item) == 2:
                    out.append((float(item[0]), item[1]))
                else:
                    raise ValueError(f"{where}: {key}[{i}]: expected [t, value] or {{from: t, value: v}}")
            return out

        metrics = {
            str(name): [(t, None if v is None else float(v)) for t, v in points(f"metrics.{name}", raw)]
            for name, raw in (data.get("metrics") or {}).items()
        }
        webhooks = {
            str(name): [(t, bool(v)) for t, v in points(f"webhooks.{name}", raw)]
            for name, raw in (data.get("webhooks") or {}).items()
        }
        revisions = [(t, str(v)) for t, v in points("revisions", data.get("revisions", [[60, "rev-2"]]))]
        return cls(
            metrics=metrics,
            webhooks=webhooks,
            revisions=revisions,
            duration_s=float(data.get("duration", 3600)),
            rollout_s=float(data.get("rollout", 5)),
        )


@dataclass(frozen=True)
class Step:
    """One decision: when (seconds from the start), the phase and canary weight after it, its events."""

    t: float
    phase: str
    weight: int
    events: tuple[str, ...]


@dataclass
class SimulationResult:
    steps: list[Step]
    phase: str
    weights: list[int]
    messages: list[str]
    ledger: list[dict[str, Any]]
    #: seconds from the start when the canary ended Failed / Succeeded (None: it did not)
    failed_at: float | None
    succeeded_at: float | None

    def timeline(self) -> str:
        lines = [
            f"{s.t:7.0f}s  {s.phase:<12} weight {s.weight:>3}  {' | '.join(s.events)}" for s in self.steps
        ]
        end = self.failed_at if self.phase == "Failed" else self.succeeded_at
        lines.append(f"end: {self.phase or 'unknown'}" + (f" at {end:.0f}s" if end is not None else ""))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "failedAt": self.failed_at,
            "succeededAt": self.succeeded_at,
            "weights": self.weights,
            "steps": [vars(s) | {"events": list(s.events)} for s in self.steps],
            "messages": self.messages,
        }


class _Prom(ThreadingHTTPServer):
    """Answers ``/api/v1/query`` with ``self.value`` (None: an empty vector)."""

    value: float | None = None
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server: _Prom

    def do_GET(self) -> None:
        value = self.server.value
        result = [] if value is None else [{"metric": {}, "value": [0, repr(float(value))]}]
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


def _manifest(canary: Mapping[str, Any] | Canary | str | Path) -> dict[str, Any]:
    if isinstance(canary, Canary):
        return canary.model_dump(by_alias=True, exclude_none=True, mode="json")
    if isinstance(canary, (str, Path)):
        data = yaml.safe_load(Path(canary).read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{canary}: a Canary manifest is a mapping")
        return data
    return dict(canary)


def run(
    canary: Mapping[str, Any] | Canary | str | Path,
    scenario: Scenario,
    *,
    templates: Sequence[MetricTemplate | Mapping[str, Any]] = (),
) -> SimulationResult:
    """Simulate ``canary`` (a manifest dict, a model or a path) through ``scenario``."""
    manifest = _manifest(canary)
    by_name: dict[str, MetricTemplate] = {}
    for raw in templates:
        template = raw if isinstance(raw, MetricTemplate) else MetricTemplate.model_validate(raw)
        by_name[template.metadata.name or ""] = template
    server = _Prom(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    loop = asyncio.new_event_loop()
    try:

        def seconds(world: World) -> float:
            return (world.now - start).total_seconds()

        def answer(check: Check, world: World) -> CheckResult:
            t = seconds(world)
            if check.kind == "webhook":
                ok = value_at(scenario.webhooks.get(check.name, [(0.0, True)]), t)
                return CheckResult(ok=bool(ok), message="" if ok else "simulated webhook failure")
            if check.kind != "metric":
                return CheckResult(ok=True)
            return _metric(world.canary, check.name, t, by_name, scenario, server, url, loop)

        world = World(manifest, answer=answer, rollout_s=scenario.rollout_s)
        start = world.now
        for t, revision in scenario.revisions:
            world.at(t, _changer(revision))
        _drive(world, scenario, seconds)
    finally:
        server.shutdown()
        server.server_close()
        loop.close()
    return _result(world, start)


def _changer(revision: str) -> Callable[[World], None]:
    return lambda world: world.change_target(revision)


def _drive(world: World, scenario: Scenario, seconds: Any) -> None:
    last_change = max((t for t, _ in scenario.revisions), default=0.0)

    def done(w: World) -> bool:
        return seconds(w) > last_change and w.phase in ("Succeeded", "Failed")

    # not finished within the scenario's duration, or nothing left to wait for: report as is
    with contextlib.suppress(AssertionError):
        world.run_until(done, limit_s=scenario.duration_s)


def _metric(
    canary: Canary,
    name: str,
    t: float,
    templates: Mapping[str, MetricTemplate],
    scenario: Scenario,
    server: _Prom,
    url: str,
    loop: asyncio.AbstractEventLoop,
) -> CheckResult:
    metric = next(m for m in (canary.spec.analysis.metrics if canary.spec.analysis else []) if m.name == name)
    template = None
    if metric.template_ref is not None:
        found = templates.get(metric.template_ref.name)
        if found is not None:
            spec = found.model_dump(by_alias=True, exclude_none=True, mode="json")
            spec["spec"]["provider"]["address"] = url
            template = MetricTemplate.model_validate(spec)
    server.value = value_at(scenario.metrics.get(name, []), t)
    canary = canary.model_copy(update={"spec": canary.spec.model_copy(update={"metrics_server": url})})
    result = loop.run_until_complete(evaluate_metric(canary, metric, metrics_server=url, template=template))
    return result.answer()


def _result(world: World, start: Any) -> SimulationResult:
    steps: list[Step] = []
    weight = 0
    phase = ""
    failed_at = succeeded_at = None
    for tock in world.history:
        events = tuple(a.message for a in tock.decision.actions if isinstance(a, Event))
        for action in tock.decision.actions:
            if isinstance(action, SetRoutes):
                weight = action.routes.canary
            if isinstance(action, WriteStatus):
                phase = str(action.status.get("phase", phase))
        t = (tock.at - start).total_seconds()
        if phase == "Failed" and failed_at is None:
            failed_at = t
        if phase == "Succeeded":
            succeeded_at = succeeded_at if succeeded_at is not None else t
        if phase not in ("Failed", "Succeeded"):
            failed_at = succeeded_at = None
        if events or not steps or steps[-1].phase != phase or steps[-1].weight != weight:
            steps.append(Step(t, phase, weight, events))
    return SimulationResult(
        steps=steps,
        phase=world.phase,
        weights=world.weights(),
        messages=world.messages(),
        ledger=list(world.status.get("ledger") or []),
        failed_at=failed_at,
        succeeded_at=succeeded_at,
    )
