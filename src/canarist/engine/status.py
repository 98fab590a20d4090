"""The Canary status as the engine changes it during one decision, and the ``Promoted`` condition.

Flagger writes the status several times per tick through a few primitives (``pkg/canary/status.go``). The engine
applies the same primitives to a :class:`StatusDraft` and writes the result once.

>>> draft = StatusDraft.of(CanaryStatus(phase="Progressing", canaryWeight=10))
>>> draft.set_weight(15)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from canarist.api import CanaryStatus, Phase
from canarist.engine import messages, waits
from canarist.engine.commands import MAX_RECORDS, Hold
from canarist.engine.ledger import End, Ledger, rfc3339
from canarist.engine.model import Action, Check, CheckResult, Routes
from canarist.engine.record import Record
from canarist.engine.waits import Wait

PROMOTED = "Promoted"
#: canarist's condition: whether the last run ended, and why (its reason is the run's typed cause).
ENDED = "Ended"

# SetStatusPhase keeps weight and iterations only in these phases.
_KEEPS_PROGRESS = frozenset({Phase.PROGRESSING, Phase.WAITING, Phase.PROMOTING})
# SetStatusPhase records the applied spec as promoted in these phases.
_PROMOTES = frozenset({Phase.INITIALIZED, Phase.SUCCEEDED})
# A check answered in these phases belongs to a new run (the confirm-rollout gates of a new revision).
_STARTS_RUN = frozenset({Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED})


@dataclass
class StatusDraft:
    """The status fields the state machine owns, plus whether any primitive wrote them."""

    phase: str
    canary_weight: int
    failed_checks: int
    iterations: int
    last_applied_spec: str
    last_promoted_spec: str
    tracked_configs: dict[str, str] | None
    written: bool = field(default=False)
    #: ``status.decision``: None = no record (none yet, or a new run started); else the routes it holds.
    record: Record | None = field(default=None)
    #: ``status.ledger``: the checks of the current run (docs/engine.md, "The ledger").
    ledger: Ledger = field(default_factory=Ledger)
    #: the phase the decision started from (which tells whether a check or a sync starts a new run).
    entry_phase: str = field(default="")
    #: a new ledger was started by this decision (a run starts once, however many checks it asks first).
    ledger_restarted: bool = field(default=False)
    #: ``status.wait``: what the run waits for (docs/engine.md, "Waits and the progress deadline").
    wait: Wait | None = field(default=None)
    #: ``status.wait`` as the decision found it.
    entry_wait: Wait | None = field(default=None)
    #: ``spec.progressDeadlineSeconds`` (the wait's deadline is ``since`` plus this).
    deadline_s: float = field(default=600.0)
    #: the ``Ended`` condition this decision writes: (status, reason, message), None to keep it.
    ended: tuple[str, str, str] | None = field(default=None)
    #: ``status.hold``: a person's pause, set-weight, promotion or retry of the run (docs/control.md).
    hold: Hold | None = field(default=None)
    #: ``status.commands``: the last commands consumed (camelCase items), newest last.
    commands: list[dict[str, Any]] = field(default_factory=list)
    #: a command was consumed in this decision
    commands_changed: bool = field(default=False)

    @property
    def wait_changed(self) -> bool:
        return not waits.same(self.wait, self.entry_wait)

    @classmethod
    def of(cls, status: CanaryStatus) -> StatusDraft:
        return cls(
            phase=str(status.phase),
            canary_weight=status.canary_weight,
            failed_checks=status.failed_checks,
            iterations=status.iterations,
            last_applied_spec=status.last_applied_spec,
            last_promoted_spec=status.last_promoted_spec,
            tracked_configs=dict(status.tracked_configs) if status.tracked_configs is not None else None,
            record=Record.of(status.decision) if status.decision is not None else None,
            ledger=Ledger.of(status.ledger),
            entry_phase=str(status.phase),
            wait=Wait.of(status.wait),
            entry_wait=Wait.of(status.wait),
            hold=Hold.of(status.hold),
            commands=[c.to_dict() for c in status.commands],
        )

    # -- runtime commands (docs/control.md) -----------------------------------------------------------

    def consumed(self, uid: str) -> bool:
        """Whether the command ``uid`` was consumed already (by this decision or an earlier one)."""
        return any(c.get("uid") == uid for c in self.commands)

    def add_command(self, item: dict[str, Any]) -> None:
        self.commands = [*self.commands, item][-MAX_RECORDS:]
        self.commands_changed = True
        self.written = True

    def set_hold(self, hold: Hold | None) -> None:
        if hold != self.hold:
            self.hold = hold
            self.written = True

    # -- Flagger's status primitives ------------------------------------------------------------------

    def sync(
        self,
        phase: str,
        *,
        revision: str,
        configs: Mapping[str, str],
        weight: int = 0,
        failed_checks: int = 0,
        iterations: int = 0,
    ) -> None:
        """SyncStatus: phase and counters, and the target revision and configs as now observed."""
        self.phase = phase
        self.canary_weight = weight
        self.failed_checks = failed_checks
        self.iterations = iterations
        self.last_applied_spec = revision
        self.tracked_configs = dict(configs)
        if phase == Phase.INITIALIZED:
            self.last_promoted_spec = revision
        if phase in (Phase.INITIALIZED, Phase.PROGRESSING):
            self.record = None  # a new run (or none): the last run's record does not apply to it
        if phase == Phase.PROGRESSING and self.entry_phase != Phase.WAITING:
            # a new run from rest, or a restart on a new revision (from Waiting: the run that waited)
            self.restart_ledger(revision)
        if phase == Phase.PROGRESSING:
            self.ended = ("False", waits.RUNNING, messages.condition_running(revision))
            self.hold = None  # a hold belongs to the run it was put on; a retry is consumed by its run
        if phase != Phase.PROGRESSING:
            self.wait = None  # at rest: nothing to wait for (a run's start declares its first wait)
        self.written = True

    def set_phase(self, phase: str, *, analysis_iterations: int = 0) -> None:
        """SetStatusPhase: other than Progressing/Waiting/Promoting it also resets weight and iterations.

        WaitingPromotion sets iterations to ``analysis.iterations - 1`` (never below 0: Flagger writes -1
        for the canary strategy, which the CRD's ``minimum: 0`` would reject).
        """
        self.phase = phase
        if phase not in _KEEPS_PROGRESS:
            self.canary_weight = 0
            self.iterations = 0
        if phase == Phase.WAITING_PROMOTION:
            self.iterations = max(0, analysis_iterations - 1)
        if phase in _PROMOTES:
            self.last_promoted_spec = self.last_applied_spec
        if phase not in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.WAITING):
            self.hold = None  # promoting, or the run ended: nothing left to hold
        self.written = True

    def set_weight(self, weight: int) -> None:
        self.canary_weight = weight
        self.written = True

    def set_iterations(self, iterations: int) -> None:
        self.iterations = iterations
        self.written = True

    def set_failed_checks(self, failed_checks: int) -> None:
        self.failed_checks = failed_checks
        self.written = True

    def set_routes(self, routes: Routes) -> None:
        """Record the split the run holds from now on (``status.decision.routes``)."""
        self.record = Record(routes=routes)
        self.written = True

    # -- the decision ledger ------------------------------------------------------------------------------

    def restart_ledger(self, revision: str) -> None:
        """Start the ledger of a new run (once per decision)."""
        if not self.ledger_restarted:
            self.ledger.restart(revision)
            self.ledger_restarted = True
            self.written = True

    def record_check(self, check: Check, result: CheckResult, *, at: datetime, revision: str) -> bool:
        """Record the answer to ``check`` at the step in force; returns whether the ledger changed.

        The providers probe at initialization is not part of a run and is not recorded. A check answered
        at rest (Initialized, Succeeded, Failed: a new revision's confirm-rollout gates) starts a new run.
        """
        if check.kind not in ("metric", "webhook"):
            return False
        restarted = False
        if self.entry_phase in _STARTS_RUN and not self.ledger_restarted:
            self.restart_ledger(revision)
            restarted = True
        elif not self.ledger.active:
            self.ledger.restart(revision)  # a status written without a ledger (Flagger's, or an older one)
        changed = self.ledger.record(
            check, result, at=at, weight=self.canary_weight, iteration=self.iterations
        )
        if changed:
            self.written = True
        return changed or restarted

    def end_run(
        self,
        phase: str,
        reason: str,
        *,
        at: datetime,
        threshold: int,
        cause: str,
        since: datetime | None = None,
        check: str = "",
    ) -> End:
        """Record how the run ended (the evidence of the last failed check comes with it), the ``Ended``
        condition with the typed ``cause``, and that the run waits for nothing any more."""
        if not self.ledger.active:
            self.ledger.restart(self.last_applied_spec)
        self.written = True
        self.wait = None
        self.hold = None
        self.ended = ("True", cause, reason)
        return self.ledger.finish(
            phase,
            reason,
            at=at,
            failed_checks=self.failed_checks,
            threshold=threshold,
            cause=cause,
            since=since,
            check=check,
        )

    # -- the wait -----------------------------------------------------------------------------------------

    def set_wait(self, wait: Wait | None) -> None:
        """``status.wait`` from now on (written with the decision's status write, or one of its own)."""
        self.wait = wait

    # -- the written object -----------------------------------------------------------------------------

    def render(
        self, base: Mapping[str, Any], *, now: datetime, kind: str, pending: tuple[Action, ...] = ()
    ) -> dict[str, Any]:
        """The complete new status (camelCase): ``base`` (the current status) with this draft applied, and
        ``pending`` as the decision record's side effects still to apply."""
        status = dict(base)
        status.update(
            {
                "phase": self.phase,
                "canaryWeight": self.canary_weight,
                "failedChecks": self.failed_checks,
                "iterations": self.iterations,
                "lastAppliedSpec": self.last_applied_spec,
                "lastPromotedSpec": self.last_promoted_spec,
                # a write that only records a wait is not a transition (it keeps the pacing marks)
                "lastTransitionTime": rfc3339(now)
                if self.written or not base.get("lastTransitionTime")
                else base["lastTransitionTime"],
            }
        )
        if self.tracked_configs is not None:
            status["trackedConfigs"] = dict(self.tracked_configs)
        status["conditions"] = promoted_conditions(
            base.get("conditions") or [], phase=self.phase, kind=kind, now=now
        )
        if self.ended is not None:
            status["conditions"] = set_condition(status["conditions"], ENDED, *self.ended, now=now)
        status.pop("decision", None)
        status.pop("ledger", None)
        status.pop("wait", None)
        status.pop("hold", None)
        if self.hold is not None:
            status["hold"] = self.hold.render()
        if self.commands:
            status["commands"] = [dict(c) for c in self.commands]
        if self.ledger.active:
            status["ledger"] = self.ledger.render(now)
        if self.wait is not None:
            status["wait"] = self.wait.render(self.deadline_s)
        if self.record is not None or pending:
            routes = self.record.routes if self.record is not None else None
            record = Record(revision=self.last_applied_spec, routes=routes, pending=pending)
            status["decision"] = record.render()
        return status


def condition_status(phase: str) -> str:
    if phase in (Phase.INITIALIZED, Phase.SUCCEEDED):
        return "True"
    if phase == Phase.FAILED:
        return "False"
    return "Unknown"


def set_condition(
    conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str, *, now: datetime
) -> list[dict[str, Any]]:
    """``conditions`` with the condition ``type_`` set (replaced only when its status, reason or message
    changes; its lastTransitionTime kept while the status stays the same)."""
    result = [dict(c) for c in conditions]
    index = next((i for i, c in enumerate(result) if c.get("type") == type_), None)
    old = result[index] if index is not None else None
    wanted = (status, reason, message)
    if old is not None and (old.get("status"), old.get("reason"), old.get("message")) == wanted:
        return result
    stamp = rfc3339(now)
    kept = old.get("lastTransitionTime") if old is not None and old.get("status") == status else None
    condition = {
        "type": type_,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": kept or stamp,
        "reason": reason,
        "message": message,
    }
    if index is None:
        result.append(condition)
    else:
        result[index] = condition
    return result


def promoted_conditions(
    conditions: list[Mapping[str, Any]], *, phase: str, kind: str, now: datetime
) -> list[dict[str, Any]]:
    """``conditions`` with the ``Promoted`` condition for ``phase``.

    The condition is replaced only when its status or reason changes; its lastTransitionTime is kept while
    the status value stays the same.
    """
    status = condition_status(phase)
    reason = phase or str(Phase.INITIALIZING)
    result = [dict(c) for c in conditions]
    index = next((i for i, c in enumerate(result) if c.get("type") == PROMOTED), None)
    old = result[index] if index is not None else None
    if old is not None and old.get("status") == status and old.get("reason") == reason:
        return result
    stamp = rfc3339(now)
    kept = old.get("lastTransitionTime") if old is not None else None
    condition = {
        "type": PROMOTED,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": kept if kept and old is not None and old.get("status") == status else stamp,
        "reason": reason,
        "message": messages.condition_message(reason, kind),
    }
    if index is None:
        result.append(condition)
    else:
        result[index] = condition
    return result
