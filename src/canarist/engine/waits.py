"""What a run waits for, since when, and how a run ends (docs/engine.md, "Waits and the progress deadline").

A run waits on the world in a few ways: the canary or the primary rolling out, a closed gate, a pre-rollout
webhook that keeps failing, a metric held for data (``noData: hold``), a metric provider that errors, a
promotion that does not finish. Each is a :class:`Wait` in ``status.wait`` (its start survives an operator
restart); ``spec.progressDeadlineSeconds`` after its start the run ends with the wait's reason. Every end of
a run says why with an :class:`Ending`: the typed cause (the ``Ended`` condition's reason and
``status.ledger.end.cause``), the Warning event and the alert.

>>> wait = Wait(NO_DATA, since=now, check="request-success-rate")
>>> wait.deadline(600) - now
datetime.timedelta(seconds=600)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from canarist.api.canary import CanaryWait
from canarist.engine.ledger import MAX_MESSAGE, cut, parse_time, rfc3339

# ---------------------------------------------------------------------------------------------- causes

CANARY_NOT_READY = "CanaryNotReady"
PRIMARY_NOT_READY = "PrimaryNotReady"
GATE_CLOSED = "GateClosed"
WEBHOOK_FAILING = "WebhookFailing"
NO_DATA = "NoData"
PROVIDER_ERRORS = "ProviderErrors"
PROMOTION_STUCK = "PromotionStuck"
# ends that are not waits
SUCCEEDED = "Succeeded"
ANALYSIS_SKIPPED = "AnalysisSkipped"
FAILED_CHECKS = "FailedChecks"
ROLLBACK_REQUESTED = "RollbackRequested"
ABORTED = "Aborted"
TARGET_DELETED = "TargetDeleted"

#: waits an analysis step declares each time it runs: it clears them first, and declares what still holds.
ANALYSIS_WAITS = frozenset({GATE_CLOSED, WEBHOOK_FAILING, NO_DATA, PROVIDER_ERRORS})
#: the reason of the ``Ended`` condition while a run is under way.
RUNNING = "Running"


@dataclass(frozen=True)
class Wait:
    """``status.wait``: the run waits for ``reason`` since ``since`` (``check``: the gate, webhook or metric
    waited on; ``provider_errors``: consecutive provider errors, for ProviderErrors)."""

    reason: str
    since: datetime
    check: str = ""
    message: str = ""
    provider_errors: int = 0

    @classmethod
    def of(cls, model: CanaryWait | None) -> Wait | None:
        if model is None or not model.reason:
            return None
        since = parse_time(model.since)
        if since is None:
            return None  # a wait without a start cannot be timed: it starts again
        return cls(
            reason=model.reason,
            since=since,
            check=model.check,
            message=model.message,
            provider_errors=model.provider_errors,
        )

    def deadline(self, deadline_s: float) -> datetime:
        return self.since + timedelta(seconds=deadline_s)

    def render(self, deadline_s: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "reason": self.reason,
            "since": rfc3339(self.since),
            "deadline": rfc3339(self.deadline(deadline_s)),
        }
        if self.check:
            out["check"] = self.check
        if self.message:
            out["message"] = cut(self.message, MAX_MESSAGE)
        if self.provider_errors:
            out["providerErrors"] = self.provider_errors
        return out


def same(a: Wait | None, b: Wait | None) -> bool:
    """The same wait as written to the status (times in whole seconds, the message bounded)."""
    if a is None or b is None:
        return a is b
    return a.render(0) == b.render(0)


@dataclass(frozen=True)
class Ending:
    """Why a run ends: the typed ``cause``, the Warning event before the rollback's own (``warning``), the
    alert (error severity; ``with_metadata`` as Flagger's deadline alert), and for a wait that ran out its
    start (``since``). An empty text sends nothing (it was sent already, e.g. a manual rollback's)."""

    cause: str
    warning: str = ""
    alert: str = ""
    with_metadata: bool = True
    since: datetime | None = None
    #: the check the run waited on (its last ledger entry is the alert's evidence)
    check: str = ""

    def fields(self) -> tuple[tuple[str, str], ...]:
        """The alert fields of the ending: the cause, and since when the run waited."""
        out: list[tuple[str, str]] = [("Reason", self.cause)]
        if self.since is not None:
            out.append(("Waiting since", rfc3339(self.since)))
        return tuple(out)
