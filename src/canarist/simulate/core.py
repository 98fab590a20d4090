"""Scenario, result and ``run`` (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from canarist.api import Canary, MetricTemplate
from canarist.engine.model import Check, CheckResult, EngineSettings, Event, SetRoutes, WriteStatus
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


@dataclass(frozen=True)
class Replay:
    """Answer metric checks from what a real Prometheus recorded: the check the engine makes at virtual time
    ``t`` is the instant query the operator would have sent at ``start + (t - release)``, where ``release``
    is the virtual time of the scenario's first revision change (60 s by default) and ``start`` the real
    time the new revision was released. The run lasts until ``end``."""

    url: str
    start: datetime
    end: datetime
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("--from and --to need a time zone (2026-12-03T14:00:00Z)")
        if self.end <= self.start:
            raise ValueError(f"--to ({self.end.isoformat()}) must be after --from ({self.start.isoformat()})")


class _Prom(ThreadingHTTPServer):
    """Answers ``/api/v1/query`` with ``self.value`` (None: an empty vector), or, replaying, with what
    ``self.replay`` answers for the same query at ``self.at`` (Unix seconds)."""

    value: float | None = None
    replay: Replay | None = None
    at: float = 0.0
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    server: _Prom

    def do_GET(self) -> None:
        replay = self.server.replay
        if replay is not None:
            status, body = self._forward(replay)
        else:
            value = self.server.value
            result = [] if value is None else [{"metric": {}, "value": [0, repr(float(value))]}]
            status = 200
            body = json.dumps(
                {"status": "success", "data": {"resultType": "vector", "result": result}}
            ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def _forward(self, replay: Replay) -> tuple[int, bytes]:
        """The same instant query, at the replayed instant, to the real Prometheus; its answer as it is."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("query", [""])[0]
        params = urllib.parse.urlencode({"query": query, "time": f"{self.server.at:.3f}"})
        url = f"{replay.url.rstrip('/')}/api/v1/query?{params}"
        try:
            # no proxy from the environment, as the operator's own metric client
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url, timeout=replay.timeout_s) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as error:
            return int(error.code), bytes(error.read())
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            reason = getattr(error, "reason", error)
            body = {"status": "error", "errorType": "unavailable", "error": f"{replay.url}: {reason}"}
            return 503, json.dumps(body).encode()

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
    replay: Replay | None = None,
    min_interval_s: float = 10.0,
) -> SimulationResult:
    """Simulate ``canary`` (a manifest dict, a model or a path) through ``scenario``; with ``replay``, the
    metrics come from a real Prometheus over a past window (`Replay`) and the scenario's only say when
    the release happens, how webhooks answer and how long rollouts take. ``min_interval_s`` is the
    operator's ``--min-analysis-interval`` (Flagger's 10 s floor on the analysis interval)."""
    manifest = _manifest(canary)
    release = scenario.revisions[0][0] if scenario.revisions else 0.0
    if replay is not None:
        window = (replay.end - replay.start).total_seconds()
        scenario = Scenario(
            metrics=scenario.metrics,
            webhooks=scenario.webhooks,
            revisions=scenario.revisions[:1] or ((release, "rev-2"),),
            duration_s=release + window,
            rollout_s=scenario.rollout_s,
        )
    by_name: dict[str, MetricTemplate] = {}
    for raw in templates:
        template = raw if isinstance(raw, MetricTemplate) else MetricTemplate.model_validate(raw)
        by_name[template.metadata.name or ""] = template
    server = _Prom(("127.0.0.1", 0), _Handler)
    server.replay = replay
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
            if replay is not None:
                server.at = replay.start.timestamp() + (t - release)
            return _metric(world.canary, check.name, t, by_name, scenario, server, url, loop)

        world = World(
            manifest,
            settings=EngineSettings(min_interval_s=min_interval_s),
            answer=answer,
            rollout_s=scenario.rollout_s,
        )
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
