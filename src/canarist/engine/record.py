"""The decision record (``status.decision``): what a run decided, durable in the Canary status.

Progress must not be inferred from side effects that may be half applied. A decision that moves traffic
records the split it wants (``routes``) in the same status write that records its progress; the engine
converges the route objects to it. A terminal or promoting decision records its side effects still to be
applied (``pending``) in a status write *before* any of them; a later write clears them. A tick that finds
pending side effects applies exactly those and clears them, it never decides anew (docs/engine.md).

>>> record = Record.of(canary.status.decision)
>>> [from_dict(item) for item in record.pending]
[SetRoutes(routes=Routes(primary=100, canary=0, mirrored=False)), ScaleDownTarget(), Event(...)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from canarist.api import CanaryDecision
from canarist.engine.model import (
    Action,
    Alert,
    CountOutcome,
    Event,
    EventType,
    Promote,
    Routes,
    RunPostRollout,
    ScaleDownTarget,
    SetRoutes,
    Severity,
)

#: side effects that are idempotent and change the world (applied first when a record is replayed).
EFFECTS = (SetRoutes, ScaleDownTarget, Promote)
#: announcements: applied once after the effects; repeated only if the clearing write does not happen.
ANNOUNCEMENTS = (Event, Alert, CountOutcome, RunPostRollout)


@dataclass(frozen=True)
class Record:
    """``status.decision`` as the engine reads it."""

    revision: str = ""
    routes: Routes | None = None
    pending: tuple[Action, ...] = ()

    @classmethod
    def of(cls, decision: CanaryDecision | None) -> Record:
        if decision is None:
            return cls()
        routes = decision.routes
        return cls(
            revision=decision.revision,
            routes=Routes(routes.primary, routes.canary, routes.mirrored) if routes is not None else None,
            pending=tuple(from_dict(item.to_dict()) for item in decision.pending),
        )

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"revision": self.revision}
        if self.routes is not None:
            out["routes"] = routes_dict(self.routes)
        if self.pending:
            out["pending"] = [to_dict(action) for action in self.pending]
        return out


def routes_dict(routes: Routes) -> dict[str, Any]:
    return {"primary": routes.primary, "canary": routes.canary, "mirrored": routes.mirrored}


def to_dict(action: Action) -> dict[str, Any]:
    """One pending side effect as ``status.decision.pending[]`` (camelCase)."""
    if isinstance(action, SetRoutes):
        return {"action": "SetRoutes", "routes": routes_dict(action.routes)}
    if isinstance(action, ScaleDownTarget):
        return {"action": "ScaleDownTarget"}
    if isinstance(action, Promote):
        return {"action": "Promote"}
    if isinstance(action, Event):
        return {"action": "Event", "type": action.type, "message": action.message, "phase": str(action.phase)}
    if isinstance(action, Alert):
        out: dict[str, Any] = {
            "action": "Alert",
            "message": action.message,
            "severity": action.severity,
            "withMetadata": action.with_metadata,
        }
        if action.fields:
            out["fields"] = [{"name": name, "value": value} for name, value in action.fields]
        return out
    if isinstance(action, CountOutcome):
        return {"action": "CountOutcome", "outcome": action.outcome, "analysisStatus": action.analysis_status}
    if isinstance(action, RunPostRollout):
        return {"action": "RunPostRollout", "phase": str(action.phase)}
    raise TypeError(f"{type(action).__name__} cannot be recorded as a pending side effect")


def from_dict(item: Mapping[str, Any]) -> Action:
    """The action of one ``status.decision.pending[]`` item (unknown ones read as a Warning event)."""
    kind = item.get("action")
    if kind == "SetRoutes":
        routes = item.get("routes") or {}
        return SetRoutes(
            Routes(
                int(routes.get("primary", 100)), int(routes.get("canary", 0)), bool(routes.get("mirrored"))
            )
        )
    if kind == "ScaleDownTarget":
        return ScaleDownTarget()
    if kind == "Promote":
        return Promote()
    if kind == "Event":
        event_type = "Warning" if item.get("type") == "Warning" else "Normal"
        return Event(cast(EventType, event_type), str(item.get("message", "")), str(item.get("phase", "")))
    if kind == "Alert":
        severity = item.get("severity") if item.get("severity") in ("info", "warn", "error") else "info"
        fields = tuple(
            (str(f.get("name", "")), str(f.get("value", "")))
            for f in item.get("fields") or []
            if isinstance(f, Mapping)
        )
        return Alert(
            str(item.get("message", "")),
            cast(Severity, severity),
            bool(item.get("withMetadata", False)),
            fields,
        )
    if kind == "CountOutcome":
        return CountOutcome(
            "success" if item.get("outcome") == "success" else "failure",
            "skipped" if item.get("analysisStatus") == "skipped" else "completed",
        )
    if kind == "RunPostRollout":
        return RunPostRollout(str(item.get("phase", "")))
    return Event("Warning", f"unknown pending action in status.decision: {kind!r}", "")


def effects_first(actions: Sequence[Action]) -> list[Action]:
    """The idempotent effects in their order, then the announcements in theirs."""
    return [a for a in actions if isinstance(a, EFFECTS)] + [a for a in actions if not isinstance(a, EFFECTS)]
