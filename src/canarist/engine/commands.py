"""Runtime commands in the engine: which phase each one applies to, and the words of its outcome.

A command (``canarist abort podinfo``...) reaches the engine as a :class:`Command` in
``Observation.commands``; ``decide`` consumes each one at most once (its uid is recorded in
``status.commands`` with the decision's own status write, docs/control.md "Exactly once"). This module is the
pure part: the refusals, the hold a command leaves in ``status.hold``, and the texts.

>>> refusal(Command(uid="u1", name="c", action="resume"), phase="Progressing", hold=None, weights=True)
'resume: the run is not paused'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canarist.api import Phase
from canarist.api.canary import COMMAND_ACTIONS, CanaryHold
from canarist.engine.ledger import MAX_MESSAGE, cut, parse_time, rfc3339
from canarist.engine.model import Command

#: how many consumed commands ``status.commands`` remembers (the uids a restarted operator must not apply
#: again; a command is consumed within a tick or two of its creation, so a short memory is enough).
MAX_RECORDS = 20

APPLIED = "Applied"
REFUSED = "Refused"

#: phases with a run that a person can hold, promote or set the weight of.
ANALYSING = frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION})
#: phases whose run can still be rolled back (the promotion has not started copying the spec).
ABORTABLE = frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.WAITING})
PROMOTING = frozenset({Phase.PROMOTING, Phase.FINALISING})


@dataclass(frozen=True)
class Hold:
    """``status.hold``: what a person asked the current run to do (pause, set-weight, promote, retry)."""

    action: str
    since: datetime
    weight: int | None = None
    force: bool = False
    requested_by: str = ""
    reason: str = ""
    command: str = ""

    @property
    def holds(self) -> bool:
        """The run stands still (pause, set-weight) until a resume."""
        return self.action in ("pause", "set-weight")

    @classmethod
    def of(cls, model: CanaryHold | None) -> Hold | None:
        if model is None or not model.action:
            return None
        since = parse_time(model.since) or datetime.min
        return cls(
            action=model.action,
            since=since,
            weight=model.weight,
            force=model.force,
            requested_by=model.requested_by,
            reason=model.reason,
            command=model.command,
        )

    @classmethod
    def asked(cls, command: Command, at: datetime, weight: int | None = None) -> Hold:
        return cls(
            action=command.action,
            since=at,
            weight=weight,
            force=command.force,
            requested_by=command.requested_by,
            reason=command.reason,
            command=command.name,
        )

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "since": rfc3339(self.since)}
        if self.weight is not None:
            out["weight"] = self.weight
        if self.force:
            out["force"] = True
        for key, value in (
            ("requestedBy", self.requested_by),
            ("reason", self.reason),
            ("command", self.command),
        ):
            if value:
                out[key] = cut(value, MAX_MESSAGE)
        return out


def record(command: Command, outcome: str, message: str, at: datetime) -> dict[str, Any]:
    """The ``status.commands[]`` item of a consumed command."""
    out: dict[str, Any] = {
        "uid": command.uid,
        "name": command.name,
        "action": command.action,
        "outcome": outcome,
        "message": cut(message, MAX_MESSAGE),
        "at": rfc3339(at),
    }
    if command.requested_by:
        out["requestedBy"] = cut(command.requested_by, MAX_MESSAGE)
    if command.reason:
        out["reason"] = cut(command.reason, MAX_MESSAGE)
    if command.weight is not None:
        out["weight"] = command.weight
    return out


def refusal(
    command: Command,
    *,
    phase: str,
    hold: Hold | None,
    weights: bool,
    revision: str = "",
    ab_testing: bool = False,
) -> str | None:
    """Why ``command`` does not apply to the run in ``phase`` (None: it applies). One sentence, which the
    command's status, the Warning event and the CLI show as they are."""
    action = command.action
    if action not in COMMAND_ACTIONS:
        return f"{action}: not a command (one of {', '.join(COMMAND_ACTIONS)})"
    if command.revision and revision and command.revision != revision and action != "retry":
        return f"{action}: meant for revision {command.revision}, but the current run is of {revision}"
    shown = phase or "Initializing"
    if phase in ("", Phase.INITIALIZING):
        return f"{action}: the canary is initializing; there is no run yet"
    if action == "abort":
        if phase in PROMOTING:
            return "abort: the promotion is under way (the primary is getting the new spec); it cannot be rolled back"
        if phase not in ABORTABLE:
            return f"abort: there is no run under way (phase {shown})"
        return None
    if action == "retry":
        if phase != Phase.FAILED:
            return f"retry: the last run did not fail (phase {shown}); retry starts a failed revision again"
        if hold is not None and hold.action == "retry":
            return "retry: a retry was already requested"
        return None
    if phase in PROMOTING:
        return f"{action}: the promotion is under way; it finishes on its own"
    if phase not in ANALYSING:
        return f"{action}: there is no run under way (phase {shown})"
    if action == "resume":
        return None if hold is not None and hold.holds else "resume: the run is not paused"
    if action == "pause":
        if hold is not None and hold.holds:
            return "pause: the run is already paused"
        if hold is not None and hold.action == "promote":
            return "pause: a promotion was requested; it waits only for the confirm-promotion gates"
        return None
    if action == "set-weight":
        weight = command.weight
        if weight is None or not 0 <= weight <= 100:
            return f"set-weight: the weight must be 0-100 (got {weight})"
        if not weights:
            return "set-weight: the canary's router does not split traffic by weight"
        if ab_testing:
            return "set-weight: an A/B test routes by headers and cookies, not by weight"
        if phase != Phase.PROGRESSING:
            return (
                f"set-weight: the run waits for promotion (phase {phase}); its traffic is not moved any more"
            )
        if hold is not None and hold.action == "promote":
            return "set-weight: a promotion was requested; it waits only for the confirm-promotion gates"
        return None
    if action == "promote":
        if hold is not None and hold.action == "promote" and (hold.force or not command.force):
            return "promote: a promotion was already requested"
        return None
    return None  # pragma: no cover - every action is handled above


def who(command: Command) -> str:
    return command.requested_by or "an unknown user"


def requested(command: Command) -> str:
    """``abort requested by alice@example.com (latency regression)``."""
    text = f"{command.action} requested by {who(command)}"
    return f"{text} ({command.reason})" if command.reason else text


def applied_event(key: str, command: Command, effect: str) -> str:
    """The Normal event of an applied command: ``podinfo.test pause requested by alice: held at weight 20``."""
    return f"{key} {requested(command)}: {effect}"


def refused_event(key: str, command: Command, why: str) -> str:
    return f"{key} {requested(command)} refused: {why}"


def alert_fields(command: Command) -> tuple[tuple[str, str], ...]:
    fields = [("Command", command.action), ("Requested by", who(command))]
    if command.reason:
        fields.append(("Reason", command.reason))
    return tuple(fields)
