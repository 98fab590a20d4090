"""One decision in the making: the facts of the tick, the actions so far, the status draft, pacing, checks.

``decide`` walks Flagger's tick top to bottom against a :class:`Tick`. Two signals end the walk early:

* :class:`NeedAnswer` when a check has no answer yet (``decide`` returns ``NeedCheck``; the runtime asks
  again with the answer and the walk replays to the same point, since everything is deterministic);
* :class:`NotDue` when interval-paced work is reached before its time (the decision keeps what was
  decided before that point, which is only ``Initialize``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from canarist.api import Canary
from canarist.engine.model import (
    Action,
    Alert,
    Check,
    CheckResult,
    Decision,
    EngineSettings,
    Event,
    EventType,
    Initialize,
    Observation,
    Severity,
    WriteStatus,
)
from canarist.engine.status import StatusDraft, parse_time


class NeedAnswer(Exception):
    def __init__(self, check: Check) -> None:
        super().__init__(check)
        self.check = check


class NotDue(Exception):
    pass


class _StatusSlot:
    """Where the single WriteStatus goes in the action list (the position of the last status write)."""


class Tick:
    def __init__(
        self,
        canary: Canary,
        obs: Observation,
        answers: Mapping[Check, CheckResult],
        settings: EngineSettings,
    ) -> None:
        self.canary = canary
        self.obs = obs
        self.answers = answers
        self.settings = settings
        self.namespace = canary.metadata.namespace
        self.key = canary.key
        self.target = canary.target_name()
        self.target_key = f"{self.target}.{self.namespace}"
        self.kind = canary.spec.target_ref.kind or (obs.target.kind if obs.target else "Deployment")
        self.interval = timedelta(seconds=canary.analysis_interval(settings.min_interval_s))
        self.phase = str(canary.status.phase)
        self.status = StatusDraft.of(canary.status)
        self.actions: list[Action | _StatusSlot] = []
        self.paced = False
        self.again = False
        self._last_written = parse_time(canary.status.last_transition_time)

    # -- pacing -------------------------------------------------------------------------------------------

    @property
    def due_at(self) -> datetime | None:
        """When interval-paced work may run next: one interval after the last paced tick or status write."""
        marks = [m for m in (self.obs.last_paced_at, self._last_written) if m is not None]
        return max(marks) + self.interval if marks else None

    @property
    def due(self) -> bool:
        due_at = self.due_at
        return due_at is None or self.obs.now >= due_at

    def pace(self) -> None:
        """Interval-paced work starts here: stop unless it is due."""
        assert all(isinstance(a, Initialize) for a in self.actions), "paced work must come first"
        if not self.due:
            raise NotDue
        self.paced = True

    # -- checks -------------------------------------------------------------------------------------------

    def ask(self, check: Check) -> CheckResult:
        answer = self.answers.get(check)
        if answer is None:
            raise NeedAnswer(check)
        return answer

    # -- actions ------------------------------------------------------------------------------------------

    def act(self, action: Action) -> None:
        self.actions.append(action)

    def event(self, message: str, *, type: EventType = "Normal", phase: str | None = None) -> None:
        """Record an event; the event webhook sees ``phase``, by default the status phase decided so far."""
        self.actions.append(
            Event(type=type, message=message, phase=self.status.phase if phase is None else phase)
        )

    def warn(self, message: str, *, phase: str | None = None) -> None:
        self.event(message, type="Warning", phase=phase)

    def alert(self, message: str, severity: Severity = "info", *, with_metadata: bool = False) -> None:
        self.actions.append(Alert(message=message, severity=severity, with_metadata=with_metadata))

    # -- status (Flagger's primitives; the single WriteStatus sits where the last one ran) ----------------

    def sync(self, phase: str, *, weight: int = 0, failed_checks: int = 0, iterations: int = 0) -> None:
        """SyncStatus: also records the observed target revision and tracked configs."""
        revision = self.obs.target.revision if self.obs.target else self.status.last_applied_spec
        self.status.sync(
            phase,
            revision=revision,
            configs=self.obs.tracked_configs,
            weight=weight,
            failed_checks=failed_checks,
            iterations=iterations,
        )
        self._wrote_status()

    def set_phase(self, phase: str) -> None:
        self.status.set_phase(phase, analysis_iterations=self.canary.iterations())
        self._wrote_status()

    def set_weight(self, weight: int) -> None:
        self.status.set_weight(weight)
        self._wrote_status()

    def set_iterations(self, iterations: int) -> None:
        self.status.set_iterations(iterations)
        self._wrote_status()

    def set_failed_checks(self, failed_checks: int) -> None:
        self.status.set_failed_checks(failed_checks)
        self._wrote_status()

    def _wrote_status(self) -> None:
        self.actions = [a for a in self.actions if not isinstance(a, _StatusSlot)]
        self.actions.append(_StatusSlot())

    # -- the result ---------------------------------------------------------------------------------------

    def decision(self) -> Decision:
        now = self.obs.now
        actions: list[Action] = []
        for action in self.actions:
            if isinstance(action, _StatusSlot):
                rendered = self.status.render(self.canary.status.to_dict(), now=now, kind=self.kind)
                actions.append(WriteStatus(status=rendered))
            else:
                actions.append(action)
        marks = [m for m in (self.obs.last_paced_at, self._last_written) if m is not None]
        if self.paced or self.status.written:
            marks.append(now)
        next_due_at = max(marks) + self.interval if marks else now
        return Decision(actions=tuple(actions), paced=self.paced, again=self.again, next_due_at=next_due_at)
