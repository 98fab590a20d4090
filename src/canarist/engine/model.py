"""Value types shared by the engine and the pure builders (workloads/, routers/).

These are plain frozen dataclasses: facts the runtime observed, or what the engine wants.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True)
class Readiness:
    """Whether a workload finished rolling out.

    ``retriable`` is False when waiting longer cannot help (the progress deadline passed):
    the engine then rolls back instead of waiting.

    >>> Readiness(ready=False, message="waiting for rollout to finish: 0 out of 1 new replicas have been updated")
    """

    ready: bool
    retriable: bool = True
    message: str = ""

    @classmethod
    def ok(cls) -> Readiness:
        return cls(ready=True)


@dataclass(frozen=True)
class Routes:
    """Traffic split between the primary and the canary, in percent, and whether the canary gets a mirror.

    >>> Routes(primary=95, canary=5)
    """

    primary: int
    canary: int
    mirrored: bool = False


# ---------------------------------------------------------------------------------------------- observations


@dataclass(frozen=True)
class TargetFacts:
    """What the runtime observed about the target workload (``spec.targetRef``).

    ``revision`` is the pod-template hash compared with ``status.lastAppliedSpec``/``lastPromotedSpec``.
    ``selector_error`` is set when the target cannot be used (e.g. no selector label); the engine then only
    reports it.

    >>> TargetFacts(kind="Deployment", name="podinfo", revision="5f8bd6c7d4", replicas=2)
    """

    kind: str
    name: str
    revision: str
    replicas: int | None = None
    selector_error: str | None = None


@dataclass(frozen=True)
class RouterCapabilities:
    """What the router in force can do. The engine asks these, never the provider's name.

    ``weights``: splits traffic by percentage (without it a canary runs as blue/green, Flagger's
    ``kubernetes`` provider behaviour); ``matches``: routes by header/cookie/query match (A/B testing);
    ``mirroring``: copies requests to the canary; ``session_affinity``: pins a client to a side by cookie.
    """

    weights: bool = True
    matches: bool = True
    mirroring: bool = True
    session_affinity: bool = True


@dataclass(frozen=True)
class Command:
    """One CanaryCommand as the runtime observed it (docs/control.md, ``engine.commands``)."""

    uid: str
    name: str
    action: str
    weight: int | None = None
    force: bool = False
    reason: str = ""
    requested_by: str = ""
    revision: str = ""


@dataclass(frozen=True)
class Observation:
    """Everything the engine may know about the world for one tick (the runtime builds it from its caches).

    ``primary`` of a primary that does not exist yet must read as a freshly created one (not ready,
    retriable, "waiting for rollout to finish: 0 out of N new replicas have been updated").
    ``last_paced_at`` is the runtime's memory of the last decision with ``paced=True`` (None after a restart).
    """

    now: datetime
    target: TargetFacts | None
    tracked_configs: Mapping[str, str] = field(default_factory=dict)
    config_error: str | None = None
    primary_exists: bool = True
    primary: Readiness = field(default_factory=Readiness.ok)
    canary: Readiness = field(default_factory=Readiness.ok)
    routes: Routes | None = None
    routes_error: str | None = None
    last_paced_at: datetime | None = None
    router: RouterCapabilities = field(default_factory=RouterCapabilities)
    #: the canary's CanaryCommands not consumed yet, oldest first (docs/control.md); the engine skips any
    #: whose uid ``status.commands`` records.
    commands: tuple[Command, ...] = ()


@dataclass(frozen=True)
class EngineSettings:
    """Operator-wide settings the engine needs.

    ``overshoot_max_weight`` reproduces Flagger's last weight step exactly (which may exceed maxWeight, e.g.
    stepWeight 20 / maxWeight 50 → 20, 40, 60); canarist caps the last step at maxWeight by default.
    """

    min_interval_s: float = 10.0
    mesh_provider: str = "istio"
    cluster_name: str = ""
    overshoot_max_weight: bool = False


# ---------------------------------------------------------------------------------------------- checks


CheckKind = Literal["providers", "webhook", "metric"]


@dataclass(frozen=True)
class Check:
    """One question the engine asks the runtime, answered with a :class:`CheckResult`.

    * ``Check("providers")``: are all metric providers of the canary reachable?
    * ``Check("webhook", name, webhook_type, phase)``: call the webhook ``name`` of ``analysis.webhooks``
      whose type is ``webhook_type`` (as written in the spec, ``""`` for an untyped rollout hook), with
      ``phase`` in the payload.
    * ``Check("metric", name)``: evaluate ``analysis.metrics[name]`` against its threshold.
    """

    kind: CheckKind
    name: str = ""
    webhook_type: str = ""
    phase: str = ""


#: what came back from a check: a value (or an HTTP answer), no data (the provider answered with no
#: values), or an error (the check could not be answered: unreachable, HTTP 5xx, an invalid answer, a
#: missing template or Secret).
ResultKind = Literal["value", "no_data", "error"]


@dataclass(frozen=True)
class CheckResult:
    """The answer to a :class:`Check`: what came back, and the evidence for the decision ledger.

    ``message``: for a failed webhook the error text (Flagger's ``%v``, usually the response body); for a
    metric Flagger's complete event text (e.g. "Halt podinfo.test advancement success rate 69.17% < 99%");
    for providers the error after "Error checking metric providers: ". ``no_data`` marks a metric query
    that returned nothing, ``error`` a check that could not be answered: neither ever passes, whatever
    ``ok`` says. What they do to the step is the engine's: no data fails the check (``noData: fail``, as in
    Flagger) or holds the step (``hold``); a metric error holds it, up to ``analysis.maxProviderErrors``
    in a row (docs/engine.md, "Waits and the progress deadline"). A webhook error is a failed check.

    The evidence (all optional, recorded in ``status.ledger``, never a credential): for a metric the
    rendered ``query``, the ``provider`` (type and address), the accepted range ``threshold_min`` /
    ``threshold_max`` in the ``unit`` of ``value`` ("%", "ms" or ""); for a webhook its ``url``, the
    ``http_status`` and a bounded excerpt of the response ``body``; ``duration_s`` for both.
    """

    ok: bool
    message: str = ""
    value: float | None = None
    no_data: bool = False
    error: bool = False
    query: str = ""
    provider: str = ""
    threshold_min: float | None = None
    threshold_max: float | None = None
    unit: str = ""
    url: str = ""
    http_status: int | None = None
    body: str = ""
    duration_s: float | None = None
    #: a comparison with the primary: the primary's value (in ``unit``), the test, its p-value and the
    #: effect (canary minus primary)
    primary_value: float | None = None
    test: str = ""
    p_value: float | None = None
    effect: float | None = None

    @property
    def passed(self) -> bool:
        return self.ok and not self.no_data and not self.error

    @property
    def outcome(self) -> ResultKind:
        """Which of the three outcomes this is (no data wins over an error flag, as it is more precise)."""
        if self.no_data:
            return "no_data"
        if self.error:
            return "error"
        return "value"


@dataclass(frozen=True)
class NeedCheck:
    """``decide`` needs the answer to ``check`` before it can decide: run it, add the answer, call again."""

    check: Check


# ---------------------------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Initialize:
    """Ensure the generated objects exist (Flagger steps 3 and 5-10 of a tick).

    ``takeover=False`` while the primary is not ready yet during initialization: ensure only the
    ``-primary``/``-canary`` Services and the primary workload with its ConfigMap/Secret copies. With
    ``takeover=True`` also create the primary HPA (create only), point the apex Service selector at the
    primary pods and reconcile the route objects (keeping their current weights; new ones start at 100/0).
    """

    takeover: bool = True


@dataclass(frozen=True)
class ScaleDownTarget:
    """Scale the target to zero (a DaemonSet: a node selector that matches no node)."""


@dataclass(frozen=True)
class ScaleUpTarget:
    """Resume the target scaler and scale the target up from zero (Flagger's ScaleFromZero)."""


@dataclass(frozen=True)
class SetRoutes:
    """Set the traffic split on the route objects."""

    routes: Routes


@dataclass(frozen=True)
class Promote:
    """Copy the target's template and configs to the primary, and update the primary HPA."""


@dataclass(frozen=True)
class WriteStatus:
    """Replace ``status`` (subresource) with ``status``: the complete new status, camelCase."""

    status: Mapping[str, Any]


EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    """Record an event (Kubernetes Event with reason Synced, a log line, the event webhook).

    ``phase`` is the phase the event webhook payload carries (what Flagger sends for that event).
    """

    type: EventType
    message: str
    phase: str = ""


Severity = Literal["info", "warn", "error"]


@dataclass(frozen=True)
class Alert:
    """Send ``message`` to the canary's alert providers (``with_metadata``: add Target, thresholds, routing;
    ``fields``: more fields, e.g. the evidence of the check that failed the run)."""

    message: str
    severity: Severity = "info"
    with_metadata: bool = False
    #: extra (title, value) fields after the metadata: the failing check's evidence of a rollback alert.
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RunPostRollout:
    """Call the post-rollout webhooks with ``phase`` (Succeeded or Failed); failures are only reported."""

    phase: str


@dataclass(frozen=True)
class CountOutcome:
    """Increment ``flagger_canary_successes_total`` or ``flagger_canary_failures_total``."""

    outcome: Literal["success", "failure"]
    analysis_status: Literal["completed", "skipped"] = "completed"


Action = (
    Initialize
    | ScaleDownTarget
    | ScaleUpTarget
    | SetRoutes
    | Promote
    | WriteStatus
    | Event
    | Alert
    | RunPostRollout
    | CountOutcome
)


@dataclass(frozen=True)
class Decision:
    """What to do now, in order (stop at the first failed write), and when to tick next.

    ``paced``: this decision did interval-paced work (remember ``now`` as ``last_paced_at``).
    ``again``: tick again right away, the next transition does not wait for anything.
    ``next_due_at``: when the next interval-paced work is due (wake up then, or earlier on a change).
    """

    actions: tuple[Action, ...]
    paced: bool
    again: bool = False
    next_due_at: datetime | None = None
