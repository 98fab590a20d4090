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
from typing import Any

from canarist.api import Canary
from canarist.engine.ledger import parse_time
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
    Routes,
    SetRoutes,
    Severity,
    WriteStatus,
)
from canarist.engine.record import Record, effects_first
from canarist.engine.status import StatusDraft
from canarist.engine.waits import Wait


class NeedAnswer(Exception):
    def __init__(self, check: Check) -> None:
        super().__init__(check)
        self.check = check


class NotDue(Exception):
    pass


class _StatusSlot:
    """Where the single WriteStatus goes in the action list (the position of the last status write)."""


class _Converge(SetRoutes):
    """A SetRoutes that only brings the route objects back to the recorded split (no progress)."""


class _RunRoutes(SetRoutes):
    """A SetRoutes that moves the run's traffic (recorded in the same decision's status write)."""


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
        self.deadline_s = float(canary.progress_deadline_seconds())
        self.status.deadline_s = self.deadline_s
        self.record = Record.of(canary.status.decision)
        self.actions: list[Action | _StatusSlot] = []
        #: the decision's side effects are recorded as pending before any of them (``commit``)
        self.committed = False
        #: the pending side effects of the status are applied again (``replay``)
        self.replaying = False
        self.paced = False
        self.again = False
        #: a person's command was applied in this decision: its effect does not wait for the interval
        self.urgent = False
        self._last_written = parse_time(canary.status.last_transition_time)
        #: when the paced work this decision stopped at (``NotDue``) becomes due
        self._not_due_until: datetime | None = None

    # -- pacing -------------------------------------------------------------------------------------------

    @property
    def due_at(self) -> datetime | None:
        """When interval-paced work may run next: one interval after the last paced tick or status write."""
        marks = [m for m in (self.obs.last_paced_at, self._last_written) if m is not None]
        return max(marks) + self.interval if marks else None

    @property
    def first_step_due_at(self) -> datetime | None:
        """When the first step of a run, not taken yet, may run (docs/engine.md, "Pacing").

        At once while the run has recorded no step (no ``status.decision.routes`` since it started): the
        run's own status write ("New revision detected") and paced ticks (readiness warnings) do not hold
        it back. After a restart on a new revision, or a first step held at a closed gate (``hold``), one
        interval after the last paced tick (the interval that was running ends first), or after the last
        status write when the runtime has no memory (an operator restart).
        """
        if self.record.routes is None:
            return None
        last = self.obs.last_paced_at or self._last_written
        return last + self.interval if last is not None else None

    def pace(self, *, first_step: bool = False) -> None:
        """Interval-paced work starts here: stop unless it is due.

        ``first_step``: the work is a run's first step, not taken yet (``first_step_due_at``).
        """
        if self.urgent:
            self.paced = True
            return
        # paced work comes first: before it only Initialize, a converging route write, and the record and
        # announcement of refused commands (kept when the paced work is not due)
        early = (
            (Initialize, _Converge, Event, _StatusSlot)
            if self.status.commands_changed
            else (Initialize, _Converge)
        )
        assert all(isinstance(a, early) for a in self.actions), "paced work must come first"
        due_at = self.first_step_due_at if first_step else self.due_at
        deadline = self.wait_deadline
        if due_at is not None and deadline is not None:
            due_at = min(due_at, deadline)  # a wait's last retry comes at its deadline
        if due_at is not None and self.obs.now < due_at:
            self._not_due_until = due_at
            raise NotDue
        self.paced = True

    # -- waits (docs/engine.md, "Waits and the progress deadline") ---------------------------------------

    @property
    def wait_deadline(self) -> datetime | None:
        """When the wait in force runs out (None: the run waits for nothing)."""
        wait = self.status.wait
        return wait.deadline(self.deadline_s) if wait is not None else None

    def waiting(self, reason: str, *, check: str = "", message: str = "", provider_errors: int = 0) -> bool:
        """The run waits for ``reason`` (still, or from now on): recorded in ``status.wait``, with the start
        it had when the decision began if the reason is the same. Returns whether its deadline passed."""
        entry = self.status.entry_wait
        if entry is not None and entry.reason == reason:
            # the same wait: its start, and its words while it waits on the same thing (a readiness
            # message that changes as pods come up is no reason to write the status)
            since = entry.since
            message = entry.message if entry.check == check and entry.message else message
        else:
            since = self.obs.now
        wait = Wait(reason, since, check=check, message=message, provider_errors=provider_errors)
        self.status.set_wait(wait)
        return self.obs.now >= wait.deadline(self.deadline_s)

    def start_wait(self, reason: str, *, message: str = "") -> None:
        """A wait that starts now, whatever came before (a new run waits for its canary to roll out)."""
        self.status.set_wait(Wait(reason, self.obs.now, message=message))

    def clear_wait(self, *reasons: str) -> None:
        """The run no longer waits for any of ``reasons``."""
        if self.status.wait is not None and self.status.wait.reason in reasons:
            self.status.set_wait(None)

    @property
    def waited(self) -> Wait | None:
        """The wait in force in this decision (for the ending of a wait that ran out)."""
        return self.status.wait

    # -- checks -------------------------------------------------------------------------------------------

    def ask(self, check: Check) -> CheckResult:
        answer = self.answers.get(check)
        if answer is None:
            raise NeedAnswer(check)
        # the decision ledger (status.ledger) records every answer, with the status write of this decision
        revision = self.obs.target.revision if self.obs.target else self.status.last_applied_spec
        if self.status.record_check(check, answer, at=self.obs.now, revision=revision):
            self._wrote_status()
        return answer

    # -- actions ------------------------------------------------------------------------------------------

    def act(self, action: Action) -> None:
        self.actions.append(action)

    def route(self, routes: Routes) -> None:
        """Move the run's traffic: recorded in the status (``status.decision.routes``), written before the
        route objects are changed (a failed route write is repaired by ``converge`` on the next tick)."""
        self.actions.append(_RunRoutes(routes))
        self.status.set_routes(routes)
        self._wrote_status()

    def hold(self, routes: Routes) -> None:
        """Record the split the run holds, without moving traffic (``status.decision.routes``): a first
        step that stopped at a closed gate counts as taken, so its retries wait for the interval."""
        self.status.set_routes(routes)
        self._wrote_status()

    def converge(self, routes: Routes) -> None:
        """Bring the route objects back to the split the status records (a half-applied earlier tick)."""
        self.actions.append(_Converge(routes))

    def commit(self) -> None:
        """This decision is terminal or promotes: write the status with every side effect of the decision
        as pending first, then the effects, then the announcements, then clear them with a second write."""
        self.committed = True

    def replay(self) -> None:
        """Apply the recorded pending side effects of an earlier decision, then clear them."""
        self.replaying = True
        for action in self.record.pending:
            self.actions.append(action)
        self.status.written = True

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

    def consume(self, record: dict[str, Any]) -> None:
        """Record a consumed command (``status.commands``) with this decision's status write."""
        self.status.add_command(record)
        self._wrote_status()

    def _wrote_status(self) -> None:
        self.actions = [a for a in self.actions if not isinstance(a, _StatusSlot)]
        self.actions.append(_StatusSlot())

    # -- the result ---------------------------------------------------------------------------------------

    def _write(self, pending: tuple[Action, ...] = ()) -> WriteStatus:
        base = self.canary.status.to_dict()
        return WriteStatus(self.status.render(base, now=self.obs.now, kind=self.kind, pending=pending))

    def _ordered(self) -> list[Action]:
        """The actions in the order they are applied (docs/engine.md, "The order of writes").

        * a replay: the recorded side effects, then the write that clears them;
        * a committed decision: Initialize (and a converging SetRoutes), the status with every other
          action recorded as pending, the effects (routes, scale-down, promotion), the announcements
          (events, alerts, counters, post-rollout hooks), the status with nothing pending;
        * a step that moves traffic: Initialize, the status recording the new split, the events, the
          route change last (a failed route write is repaired from the status on the next tick);
        * anything else: Flagger's order, the single status write where the last of Flagger's was.
        """
        prefix: list[Action] = []
        body: list[Action] = []
        moves: list[Action] = []
        for a in self.actions:
            if isinstance(a, _StatusSlot):
                continue
            if isinstance(a, Initialize | _Converge):
                prefix.append(SetRoutes(a.routes) if isinstance(a, _Converge) else a)
            elif isinstance(a, _RunRoutes):
                moves.append(SetRoutes(a.routes))
                body.append(moves[-1])
            else:
                body.append(a)
        if self.replaying:
            return [*prefix, *body, self._write()]
        if self.committed:
            pending = tuple(effects_first(body))
            return [*prefix, self._write(pending), *pending, self._write()]
        if moves:
            return [*prefix, self._write(), *(a for a in body if a not in moves), *moves]
        ordered = [
            self._write()
            if isinstance(a, _StatusSlot)
            else SetRoutes(a.routes)
            if isinstance(a, _Converge)
            else a
            for a in self.actions
        ]
        if self.status.wait_changed and not any(isinstance(a, _StatusSlot) for a in self.actions):
            ordered.append(self._write())  # only the wait changed: a write of its own, last
        return ordered

    def decision(self) -> Decision:
        now = self.obs.now
        actions = self._ordered()
        marks = [m for m in (self.obs.last_paced_at, self._last_written) if m is not None]
        if self.paced or self.status.written:
            marks.append(now)
        next_due_at = max(marks) + self.interval if marks else now
        if self._not_due_until is not None:
            next_due_at = self._not_due_until
        deadline = self.wait_deadline
        if deadline is not None and deadline > now:
            next_due_at = min(next_due_at, deadline)  # wake up when the wait runs out
        return Decision(actions=tuple(actions), paced=self.paced, again=self.again, next_due_at=next_due_at)
