"""A small world in virtual time that runs ``decide`` the way the operator runtime does.

It keeps a Canary manifest and its status, a target and a primary workload that take ``rollout_s`` to roll
out, the routes, and answers checks from a script. It ticks when the engine asks (``next_due_at``,
``again``), when a workload finishes rolling out, and when the user changes something, so tests and demos
read like stories:

>>> world = World(manifest)
>>> world.run(60)                         # initialization
>>> world.change_target("rev-2")          # a new revision
>>> world.run_until(lambda w: w.phase == "Succeeded")
>>> world.messages()
['all the metrics providers are available!', ..., 'Promotion completed! Scaling down podinfo.test']
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from canarist.api import Canary, Provider, WebhookType
from canarist.engine import checks, messages
from canarist.engine.decide import decide
from canarist.engine.model import (
    Action,
    Alert,
    Check,
    CheckResult,
    Command,
    CountOutcome,
    Decision,
    EngineSettings,
    Event,
    Initialize,
    NeedCheck,
    Observation,
    Promote,
    Readiness,
    RouterCapabilities,
    Routes,
    RunPostRollout,
    ScaleDownTarget,
    ScaleUpTarget,
    SetRoutes,
    TargetFacts,
    WriteStatus,
)

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

Answerer = Callable[[Check, "World"], CheckResult]
#: picks how many actions of a decision get applied before the runtime stops (None: all of them)
Cut = Callable[[Decision], int | None]

#: a router that only switches the apex Service (Flagger's ``kubernetes`` provider)
SERVICE_ONLY = RouterCapabilities(weights=False, matches=False, mirroring=False, session_affinity=False)


def all_pass(check: Check, world: World) -> CheckResult:
    """The default check script: every webhook, metric and provider check passes."""
    return CheckResult(ok=True, value=100.0 if check.kind == "metric" else None)


@dataclass
class Workload:
    """A Deployment reduced to what readiness needs."""

    name: str
    replicas: int
    revision: str
    ready_at: datetime | None = None  # the current rollout finishes then; None: not rolling out
    deadline_exceeded: bool = False

    def readiness(self, now: datetime) -> Readiness:
        if self.deadline_exceeded:
            return Readiness(
                False, retriable=False, message=f'deployment "{self.name}" exceeded its progress deadline'
            )
        if self.ready_at is not None and now < self.ready_at:
            return Readiness(
                False,
                message=f"waiting for rollout to finish: 0 out of {max(self.replicas, 1)} new replicas have been updated",
            )
        return Readiness.ok()


@dataclass
class Tock:
    """One tick of the world: when, the checks asked, and the decision applied."""

    at: datetime
    asked: list[Check]
    decision: Decision


@dataclass
class World:
    manifest: Mapping[str, Any]
    settings: EngineSettings = field(default_factory=EngineSettings)
    answer: Answerer = all_pass
    revision: str = "rev-1"
    configs: dict[str, str] = field(default_factory=dict)
    rollout_s: float = 5.0
    now: datetime = EPOCH

    status: dict[str, Any] = field(default_factory=dict)
    target: Workload = field(init=False)
    primary: Workload | None = None
    routes: Routes | None = None
    routes_error: str | None = None
    config_error: str | None = None
    target_missing: bool = False
    #: what the router can do; None: every capability, except for the kubernetes provider (SERVICE_ONLY)
    router: RouterCapabilities | None = None
    last_paced_at: datetime | None = None
    #: CanaryCommands a person created (the engine skips those ``status.commands`` records)
    commands: list[Command] = field(default_factory=list)
    events: list[tuple[datetime, Event]] = field(default_factory=list)
    alerts: list[tuple[datetime, Alert]] = field(default_factory=list)
    outcomes: list[CountOutcome] = field(default_factory=list)
    post_rollouts: list[str] = field(default_factory=list)
    history: list[Tock] = field(default_factory=list)
    status_history: list[dict[str, Any]] = field(default_factory=list)
    _changes: list[tuple[datetime, Callable[[World], None]]] = field(default_factory=list)
    _next_due: datetime | None = None
    _cut: tuple[Cut, bool] | None = None

    def __post_init__(self) -> None:
        self.manifest = copy.deepcopy(dict(self.manifest))
        self.status = copy.deepcopy(dict(self.manifest.get("status") or {}))
        name = self.canary.target_name()
        self.target = Workload(name=name, replicas=1, revision=self.revision)

    # -- what the engine sees ------------------------------------------------------------------------------

    @property
    def canary(self) -> Canary:
        return Canary.model_validate({**self.manifest, "status": self.status})

    @property
    def phase(self) -> str:
        return str(self.status.get("phase", ""))

    def observe(self) -> Observation:
        canary = self.canary
        if self.primary is None:
            primary = Readiness(
                False, message="waiting for rollout to finish: 0 out of 1 new replicas have been updated"
            )
        else:
            primary = self.primary.readiness(self.now)
        target = (
            None
            if self.target_missing
            else TargetFacts(
                kind=canary.spec.target_ref.kind or "Deployment",
                name=self.target.name,
                revision=self.revision,
                replicas=self.target.replicas,
            )
        )
        return Observation(
            now=self.now,
            target=target,
            tracked_configs=dict(self.configs),
            config_error=self.config_error,
            primary_exists=self.primary is not None,
            primary=primary,
            canary=self.target.readiness(self.now),
            routes=self.routes,
            routes_error=self.routes_error,
            last_paced_at=self.last_paced_at,
            router=self.capabilities(),
            commands=tuple(self.commands),
        )

    def capabilities(self) -> RouterCapabilities:
        if self.router is not None:
            return self.router
        if self.canary.provider_or(self.settings.mesh_provider) == Provider.KUBERNETES:
            return SERVICE_ONLY
        return RouterCapabilities()

    # -- one tick ------------------------------------------------------------------------------------------

    def tick(self) -> Decision:
        """Ask ``decide`` until it decides, answering its checks, then apply the decision."""
        canary, obs = self.canary, self.observe()
        answers: dict[Check, CheckResult] = {}
        asked: list[Check] = []
        while True:
            result = decide(canary, obs, answers, self.settings)
            if not isinstance(result, NeedCheck):
                break
            if result.check in answers or len(asked) > 100:
                raise AssertionError(f"engine asked {result.check} again")
            asked.append(result.check)
            answers[result.check] = self.answer(result.check, self)
        actions = result.actions
        crashed = False
        if self._cut is not None:
            select, crash = self._cut
            keep = select(result)
            if keep is not None:
                self._cut = None
                actions, crashed = actions[:keep], crash
        for action in actions:
            self.apply(action)
        if crashed:
            self.last_paced_at = None  # the operator died: a new one starts without memory
        elif result.paced:
            self.last_paced_at = self.now  # also after a failed write, as the runtime does
        self._next_due = result.next_due_at
        self.history.append(Tock(self.now, asked, result))
        return result

    def apply(self, action: Action) -> None:
        if isinstance(action, Initialize):
            if self.primary is None:
                self.primary = Workload(
                    name=self.canary.primary_name(),
                    replicas=max(self.target.replicas, 1),
                    revision=self.revision,
                    ready_at=self.now + timedelta(seconds=self.rollout_s),
                )
            if action.takeover and self.routes is None:
                self.routes = Routes(primary=100, canary=0)
        elif isinstance(action, ScaleDownTarget):
            self.target.replicas = 0
            self.target.ready_at = None
        elif isinstance(action, ScaleUpTarget):
            self.target.replicas = 1
            self.target.ready_at = self.now + timedelta(seconds=self.rollout_s)
        elif isinstance(action, SetRoutes):
            self.routes = action.routes
        elif isinstance(action, Promote):
            assert self.primary is not None
            self.primary.revision = self.revision
            self.primary.ready_at = self.now + timedelta(seconds=self.rollout_s)
        elif isinstance(action, WriteStatus):
            self.status = copy.deepcopy(dict(action.status))
            self.status_history.append(self.status)
        elif isinstance(action, Event):
            self.events.append((self.now, action))
        elif isinstance(action, Alert):
            self.alerts.append((self.now, action))
        elif isinstance(action, CountOutcome):
            self.outcomes.append(action)
        elif isinstance(action, RunPostRollout):
            self._run_post_rollout(action.phase)

    def _run_post_rollout(self, phase: str) -> None:
        """What the runtime does for RunPostRollout: call the hooks, record an event per hook."""
        self.post_rollouts.append(phase)
        for hook in checks.webhooks(self.canary, WebhookType.POST_ROLLOUT):
            result = self.answer(checks.webhook_check(hook, phase), self)
            if result.passed:
                message = messages.post_rollout_passed(hook.name)
                self.events.append((self.now, Event("Normal", message, phase)))
            else:
                message = messages.post_rollout_failed(hook.name, result.message)
                self.events.append((self.now, Event("Warning", message, phase)))

    # -- the user and the cluster --------------------------------------------------------------------------

    def at(self, seconds: float, change: Callable[[World], None]) -> None:
        """Schedule ``change`` ``seconds`` from now (it wakes the canary, like an informer event)."""
        self._changes.append((self.now + timedelta(seconds=seconds), change))
        self._changes.sort(key=lambda item: item[0])

    def command(self, action: str, **options: Any) -> Command:
        """A person creates a CanaryCommand (``canarist pause podinfo``...)."""
        command = Command(
            uid=f"uid-{len(self.commands) + 1}",
            name=f"{action}-{len(self.commands) + 1}",
            action=action,
            **options,
        )
        self.commands.append(command)
        return command

    def command_record(self, command: Command) -> dict[str, Any] | None:
        """``status.commands[]`` of ``command``, once consumed."""
        return next((c for c in self.status.get("commands") or [] if c.get("uid") == command.uid), None)

    def change_target(self, revision: str) -> None:
        """Apply a new pod template to the target (it rolls out if it has replicas)."""
        self.revision = revision
        if self.target.replicas > 0:
            self.target.ready_at = self.now + timedelta(seconds=self.rollout_s)

    def update_spec(self, change: Callable[[dict[str, Any]], None]) -> None:
        spec = copy.deepcopy(dict(self.manifest["spec"]))
        change(spec)
        self.manifest = {**self.manifest, "spec": spec}

    def interrupt(self, select: Cut, *, crash: bool = False) -> None:
        """Cut the first decision for which ``select`` returns a number: only that many of its actions are
        applied (a write that failed, so the runtime stopped there; or, with ``crash``, the operator died
        after them and restarts without memory). Later decisions apply in full."""
        self._cut = (select, crash)

    def restart_operator(self) -> None:
        """The runtime restarts: its memory of the last paced tick is gone."""
        self.last_paced_at = None

    # -- running -------------------------------------------------------------------------------------------

    def _wakes(self) -> list[datetime]:
        wakes = [w for w in (self._next_due,) if w is not None]
        for workload in (self.target, self.primary):
            if workload is not None and workload.ready_at is not None and workload.ready_at > self.now:
                wakes.append(workload.ready_at)
        if self._changes:
            wakes.append(self._changes[0][0])
        return wakes

    def run_until(
        self,
        done: Callable[[World], bool],
        *,
        limit_s: float = 3600.0,
        wake_every_s: float | None = None,
    ) -> None:
        """Tick on every wake-up until ``done`` holds (checked after each tick) or ``limit_s`` passes.

        ``wake_every_s`` adds extra wake-ups (a busy cluster) that must not change the story.
        """
        end = self.now + timedelta(seconds=limit_s)
        decision = self.tick()
        while not done(self):
            for _ in range(20):
                if not decision.again:
                    break
                decision = self.tick()
                if done(self):
                    return
            else:
                raise AssertionError("engine keeps asking to tick again")
            wakes = self._wakes()
            if wake_every_s is not None:
                wakes.append(self.now + timedelta(seconds=wake_every_s))
            upcoming = [w for w in wakes if w > self.now]
            if not upcoming:
                raise AssertionError(f"nothing to wait for in phase {self.phase!r}")
            moment = min(upcoming)
            if moment > end:
                raise AssertionError(
                    f"not done after {limit_s}s, phase {self.phase!r}: {self.messages()[-5:]}"
                )
            self.now = moment
            while self._changes and self._changes[0][0] <= self.now:
                _, change = self._changes.pop(0)
                change(self)
            decision = self.tick()

    def run(self, seconds: float, *, wake_every_s: float | None = None) -> None:
        """Tick on every wake-up during the next ``seconds`` of virtual time (now included)."""
        end = self.now + timedelta(seconds=seconds)

        def quiet_until_end(world: World) -> bool:
            upcoming = [w for w in world._wakes() if w > world.now]
            if wake_every_s is not None:
                upcoming.append(world.now + timedelta(seconds=wake_every_s))
            return not world.history[-1].decision.again and (not upcoming or min(upcoming) > end)

        self.run_until(quiet_until_end, limit_s=seconds + 1, wake_every_s=wake_every_s)
        self.now = max(self.now, end)

    # -- what happened -------------------------------------------------------------------------------------

    def messages(self) -> list[str]:
        return [event.message for _, event in self.events]

    def alert_messages(self) -> list[str]:
        return [alert.message for _, alert in self.alerts]

    def phases(self) -> list[str]:
        """Every phase the status went through, without repeats."""
        seen: list[str] = []
        for status in self.status_history:
            phase = str(status.get("phase", ""))
            if not seen or seen[-1] != phase:
                seen.append(phase)
        return seen

    def weights(self) -> list[int]:
        """Every canary weight the routes were set to, in order."""
        return [
            tock_action.routes.canary
            for tock in self.history
            for tock_action in tock.decision.actions
            if isinstance(tock_action, SetRoutes)
        ]
