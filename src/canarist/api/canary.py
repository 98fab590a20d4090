"""The Canary resource (``canaries.flagger.app``) and its run-time defaults."""

from __future__ import annotations

from typing import Any, ClassVar

from canarist.api import defaults
from canarist.api._base import FlaggerModel, field
from canarist.api.enums import Phase, Provider, Severity, Strategy, WebhookType, values
from canarist.api.istio import (
    CorsPolicy,
    Headers,
    HTTPMatchRequest,
    HTTPRequestMirror,
    HTTPRetry,
    HTTPRewrite,
    ParentReference,
    TrafficPolicy,
)
from canarist.api.meta import FlaggerObject
from canarist.durations import parse_duration

_NUMBER_INT = {"type": "number"}
_DURATION = {"pattern": "^[0-9]+(m|s)"}
_DATE_TIME = {"format": "date-time"}


# ---------------------------------------------------------------------------------------------- references


class ObjectRef(FlaggerModel):
    """{apiVersion, kind, name}, all required."""

    api_version: str = field("", crd={"required": True})
    kind: str = field("", crd={"required": True})
    name: str = field("", crd={"required": True})


class TargetRef(ObjectRef):
    kind: str = field("", crd={"required": True, "enum": ["DaemonSet", "Deployment", "Service"]})

    def is_knative(self) -> bool:
        """A Knative Service target (``serving.knative.dev/*`` Service)."""
        return self.kind == "Service" and self.api_version.startswith("serving.knative.dev/")


class ScalerReplicas(FlaggerModel):
    min_replicas: int | None = field(crd={"minimum": 1})
    max_replicas: int | None = field(crd={"minimum": 1})


class AutoscalerRef(ObjectRef):
    kind: str = field("", crd={"required": True, "enum": ["HorizontalPodAutoscaler", "ScaledObject"]})
    primary_scaler_queries: dict[str, str] = field(factory=dict)
    primary_scaler_replicas: ScalerReplicas | None = field()


class IngressRef(ObjectRef):
    kind: str = field("", crd={"required": True, "enum": ["Ingress"]})


class RouteRef(ObjectRef):
    kind: str = field("", crd={"required": True, "enum": ["ApisixRoute"]})


class UpstreamRef(ObjectRef):
    kind: str = field("", crd={"required": True, "enum": ["Upstream"]})
    namespace: str | None = field()


class CrossNamespaceRef(FlaggerModel):
    """{name, namespace}: ``templateRef`` and ``providerRef``. ``namespace`` defaults to the canary's."""

    name: str = field("", crd={"required": True})
    namespace: str | None = field()

    def namespace_or(self, default: str) -> str:
        return self.namespace or default


class SecretRef(FlaggerModel):
    name: str = field("", crd={"required": True}, description="Name of the Kubernetes secret")


# ---------------------------------------------------------------------------------------------- service


class CustomMetadata(FlaggerModel):
    labels: dict[str, str] = field(factory=dict)
    annotations: dict[str, str] = field(factory=dict)


class UnmanagedMetadata(FlaggerModel):
    annotations: list[str] = field(factory=list)
    labels: list[str] = field(factory=list)


class CanaryService(FlaggerModel):
    """``spec.service``: the generated Services and the routing options."""

    name: str = field("", description="Kubernetes service name")
    port: int = field(
        0, crd={**_NUMBER_INT, "required": True}, check={"integer": True, "min": 1, "max": 65535}
    )
    port_name: str = field("", description="Container port name")
    target_port: int | str | None = field(description="Container target port name")
    app_protocol: str = field("")
    traffic_distribution: str | None = field(
        crd={"enum": ["PreferClose", "PreferSameZone", "PreferSameNode"]}
    )
    port_discovery: bool = field(False)
    headless: bool = field(False)
    timeout: str = field("", check={"duration": True})
    backend_timeout: str = field("", check={"duration": True})
    mesh_name: str = field("")
    backends: list[str] = field(factory=list)
    hosts: list[str] = field(factory=list)
    delegation: bool = field(False)
    match: list[HTTPMatchRequest] = field(factory=list, description="URI match conditions")
    retries: HTTPRetry | None = field()
    rewrite: HTTPRewrite | None = field()
    mirror: list[HTTPRequestMirror] = field(factory=list)
    headers: Headers | None = field()
    gateways: list[str] = field(factory=list)
    gateway_refs: list[ParentReference] = field(factory=list, crd={"maxItems": 32})
    cors_policy: CorsPolicy | None = field()
    traffic_policy: TrafficPolicy | None = field()
    apex: CustomMetadata | None = field()
    primary: CustomMetadata | None = field()
    canary: CustomMetadata | None = field()
    unmanaged_metadata: UnmanagedMetadata | None = field()

    def port_name_or_default(self) -> str:
        """``portName``, default ``http``."""
        return self.port_name or defaults.PORT_NAME

    def target_port_or_default(self) -> int | str:
        """``targetPort``, default ``port``."""
        if self.target_port is None or self.target_port in ("", 0):
            return self.port
        return self.target_port


# ---------------------------------------------------------------------------------------------- analysis


class ThresholdRange(FlaggerModel):
    min: float | None = field(description="Min value accepted for this metric")
    max: float | None = field(description="Max value accepted for this metric")


#: ``analysis.metrics[].noData``: what a metric without data does to the step (canarist, not in Flagger).
NO_DATA_POLICIES = ("fail", "hold")
#: ``analysis.maxProviderErrors`` when absent: consecutive provider errors a run tolerates.
MAX_PROVIDER_ERRORS = 4


class MinSamples(FlaggerModel):
    """canarist: a guard query counting the samples behind a metric; fewer than count read as no data.

    The query runs first, on the metric's provider, rendered like the metric's (same variables and
    interval); an answer below ``count`` (or no answer) makes the metric's value count as no data.
    """

    query: str = field("", crd={"required": True}, description="Query returning the number of samples")
    count: float = field(
        0, crd={**_NUMBER_INT, "required": True}, check={"min": 0}, description="Minimum number of samples"
    )


class MetricComparison(FlaggerModel):
    """canarist: judge the canary against the primary over the same window (docs/metrics.md, "Comparing
    with the primary"). The builtin request-success-rate compares error counts with an exact one-sided
    test: the check fails only when the canary is significantly worse (p below alpha) by at least
    minEffect percentage points; fewer than minSamples requests on either side is no data.
    """

    alpha: float = field(0.05, check={"min": 0}, description="Significance level of the one-sided test (0-1)")
    min_samples: float = field(
        50, crd=_NUMBER_INT, check={"min": 0}, description="Requests needed on each side for a verdict"
    )
    min_effect: float = field(
        0.0, check={"min": 0}, description="Smallest difference that fails, in percentage points"
    )


class CanaryMetric(FlaggerModel):
    """``analysis.metrics[]``: a builtin metric, an inline query (deprecated) or a templateRef."""

    name: str = field("", crd={"required": True})
    interval: str = field("", crd=_DURATION, check={"duration": True})
    threshold: float | None = field(description="Max value accepted for this metric (deprecated)")
    threshold_range: ThresholdRange | None = field()
    query: str = field("", description="Prometheus query (deprecated)")
    template_ref: CrossNamespaceRef | None = field()
    template_variables: dict[str, str] = field(factory=dict)
    no_data: str = field(
        "",
        crd={"enum": list(NO_DATA_POLICIES)},
        description="canarist: no data fails the check (fail, the default) or holds the step (hold)",
    )
    min_samples: MinSamples | None = field(
        description="canarist: fewer samples than count make the metric's value count as no data"
    )
    dry_run: bool = field(
        False,
        description="canarist: evaluated and recorded like any metric, but never fails, holds or ends a run "
        "(a Normal event says what it would have done)",
    )
    compare: MetricComparison | None = field(
        description="canarist: compare the canary with the primary statistically (builtin request-success-rate)"
    )

    def no_data_policy(self) -> str:
        """``noData``: ``fail`` (the default, Flagger's behaviour) or ``hold``."""
        return self.no_data or NO_DATA_POLICIES[0]

    def is_builtin(self) -> bool:
        """A builtin metric (``request-success-rate``/``request-duration``) without a template or query."""
        return (
            self.name in ("request-success-rate", "request-duration")
            and self.template_ref is None
            and not self.query
        )

    def interval_or_default(self) -> str:
        """``interval``, default ``1m`` for every kind of metric (a deliberate deviation, see docs/api.md)."""
        return self.interval or defaults.METRIC_INTERVAL

    def interval_seconds(self) -> float:
        """The metric interval in seconds (the default when unparsable)."""
        try:
            return parse_duration(self.interval_or_default())
        except ValueError:
            return parse_duration(defaults.METRIC_INTERVAL)


class CanaryWebhook(FlaggerModel):
    """``analysis.webhooks[]``."""

    name: str = field("", crd={"required": True})
    type: str = field("", crd={"enum": values(WebhookType)})
    mute_alert: bool = field(False)
    url: str = field("", crd={"required": True, "format": "url"})
    timeout: str = field("", crd=_DURATION, check={"duration": True})
    retries: int | None = field(crd=_NUMBER_INT, check={"integer": True, "min": 0})
    disable_tls: bool = field(False, alias="disableTLS")
    metadata: dict[str, str] = field(factory=dict)

    def hook_type(self) -> WebhookType | str:
        """The type as a ``WebhookType`` (empty means ``rollout``); an unknown type is returned as is."""
        if self.type == "":
            return WebhookType.ROLLOUT
        try:
            return WebhookType(self.type)
        except ValueError:
            return self.type

    def timeout_seconds(self) -> float:
        """``timeout`` in seconds, default 10 (also when unparsable or not positive)."""
        if not self.timeout:
            return defaults.WEBHOOK_TIMEOUT_SECONDS
        try:
            seconds = parse_duration(self.timeout)
        except ValueError:
            return defaults.WEBHOOK_TIMEOUT_SECONDS
        return seconds if seconds > 0 else defaults.WEBHOOK_TIMEOUT_SECONDS


class CanaryAlert(FlaggerModel):
    """``analysis.alerts[]``."""

    name: str = field("", crd={"required": True})
    severity: str = field("", crd={"enum": values(Severity)})
    provider_ref: CrossNamespaceRef = field(factory=CrossNamespaceRef, crd={"required": True})

    def effective_severity(self) -> Severity | str:
        """``severity``, with the empty value meaning ``info`` (canarist's decision, see docs/api.md)."""
        if self.severity == "":
            return Severity(defaults.ALERT_SEVERITY)
        try:
            return Severity(self.severity)
        except ValueError:
            return self.severity

    def accepts(self, severity: str) -> bool:
        """Whether this alert receives a message of ``severity``: info gets all, warn gets warn+error."""
        order = {"info": 0, "warn": 1, "error": 2}
        mine = order.get(str(self.effective_severity()))
        theirs = order.get(str(severity))
        if mine is None or theirs is None:
            return False
        return theirs >= mine


class SessionAffinity(FlaggerModel):
    """``analysis.sessionAffinity``."""

    cookie_name: str = field("", crd={"required": True})
    primary_cookie_name: str = field("")
    domain: str = field("")
    http_only: bool = field(False)
    max_age: int | None = field(
        crd={"type": "number", "default": defaults.SESSION_AFFINITY_MAX_AGE}, check={"integer": True}
    )
    partitioned: bool = field(False)
    path: str = field("")
    same_site: str = field("", crd={"enum": ["Strict", "Lax", "None"]})
    secure: bool = field(False)

    def max_age_seconds(self) -> int:
        """``maxAge``, default 86400 when absent or ≤ 0."""
        if self.max_age is None or self.max_age <= 0:
            return defaults.SESSION_AFFINITY_MAX_AGE
        return self.max_age


class CanaryAnalysis(FlaggerModel):
    """``spec.analysis`` (or the deprecated ``spec.canaryAnalysis``)."""

    crd_schema: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {"required": ["interval", "threshold", "iterations"]},
            {"required": ["interval", "threshold", "stepWeight"]},
            {"required": ["interval", "threshold", "stepWeights"]},
        ]
    }

    interval: str = field(
        "", crd=_DURATION, check={"duration": True}, description="Schedule interval for this canary"
    )
    iterations: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0})
    threshold: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0})
    max_weight: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0, "max": 100})
    step_weight: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0, "max": 100})
    step_weights: list[int] = field(
        factory=list, crd={"itemType": "number"}, check={"integer": True, "min": 0, "max": 100}
    )
    step_weight_promotion: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0, "max": 100})
    mirror: bool = field(False)
    mirror_weight: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0, "max": 100})
    primary_ready_threshold: int | None = field(
        crd=_NUMBER_INT, check={"integer": True, "min": 0, "max": 100}
    )
    canary_ready_threshold: int | None = field(crd=_NUMBER_INT, check={"integer": True, "min": 0, "max": 100})
    match: list[HTTPMatchRequest] = field(factory=list, description="A/B testing match conditions")
    metrics: list[CanaryMetric] = field(factory=list)
    webhooks: list[CanaryWebhook] = field(factory=list)
    alerts: list[CanaryAlert] = field(factory=list)
    session_affinity: SessionAffinity | None = field()
    max_provider_errors: int | None = field(
        crd=_NUMBER_INT,
        check={"integer": True, "min": 0},
        description="canarist: consecutive metric provider errors tolerated before the run ends (default 4)",
    )


# ---------------------------------------------------------------------------------------------- spec/status


class CanarySpec(FlaggerModel):
    provider: str = field("", crd={"enum": values(Provider)}, description="Traffic managent provider")
    metrics_server: str = field("", description="Prometheus URL")
    target_ref: TargetRef = field(factory=TargetRef, crd={"required": True})
    autoscaler_ref: AutoscalerRef | None = field()
    ingress_ref: IngressRef | None = field()
    route_ref: RouteRef | None = field()
    upstream_ref: UpstreamRef | None = field()
    service: CanaryService = field(factory=CanaryService)
    analysis: CanaryAnalysis | None = field(crd={"required": True})
    canary_analysis: CanaryAnalysis | None = field(description="Deprecated: use analysis")
    progress_deadline_seconds: int | None = field(crd=_NUMBER_INT, check={"integer": True, "min": 0})
    skip_analysis: bool = field(False)
    revert_on_deletion: bool = field(False)
    suspend: bool = field(False)


class CanaryCondition(FlaggerModel):
    type: str = field("", crd={"required": True})
    status: str = field("", crd={"required": True})
    last_update_time: str | None = field(crd=_DATE_TIME)
    last_transition_time: str | None = field(crd=_DATE_TIME)
    reason: str = field("", crd={"required": True})
    message: str = field("")


class DecisionRoutes(FlaggerModel):
    """A traffic split of a recorded decision, in percent (mirrored: the canary also gets a copy)."""

    primary: int = field(0, check={"integer": True, "min": 0, "max": 100})
    canary: int = field(0, check={"integer": True, "min": 0, "max": 100})
    mirrored: bool = field(False)


#: the side effects a recorded decision may still have to apply (``status.decision.pending[].action``).
DECISION_ACTIONS = (
    "SetRoutes",
    "ScaleDownTarget",
    "Promote",
    "Event",
    "Alert",
    "CountOutcome",
    "RunPostRollout",
)


class AlertField(FlaggerModel):
    """One extra field of a recorded alert (e.g. the evidence of the check that failed the run)."""

    name: str = field("")
    value: str = field("")


class DecisionAction(FlaggerModel):
    """One side effect of a recorded decision, still to be applied (canarist, not in Flagger).

    action names it; the other fields are its arguments: routes (SetRoutes); type, message, phase (Event);
    message, severity, withMetadata, fields (Alert); outcome, analysisStatus (CountOutcome); phase (RunPostRollout).
    """

    action: str = field("", crd={"required": True, "enum": list(DECISION_ACTIONS)})
    routes: DecisionRoutes | None = field()
    type: str = field("")
    message: str = field("")
    phase: str = field("")
    severity: str = field("")
    with_metadata: bool = field(False)
    outcome: str = field("")
    analysis_status: str = field("")
    fields: list[AlertField] = field(factory=list)


class CanaryDecision(FlaggerModel):
    """The durable record of the run's last traffic or outcome decision (canarist, not in Flagger).

    revision: the target revision of the run (status.lastAppliedSpec when written).
    routes: the split the run holds now; the engine converges the route objects to it.
    pending: side effects of a terminal or promoting decision not yet confirmed as applied; a tick that
    finds them applies exactly these (routes, scale-down, promotion, events, alerts, counters, post-rollout
    hooks) and clears them, instead of deciding anew.
    """

    revision: str = field("")
    routes: DecisionRoutes | None = field()
    pending: list[DecisionAction] = field(factory=list)


class LedgerEntry(FlaggerModel):
    """One answered check of the run (canarist, not in Flagger): what was asked and what came back.

    check/kind/type name it (kind metric or webhook; type the webhook type as written); weight and
    iteration are the step in force when it was asked; result is value, noData or error; verdict pass or
    fail. A metric adds value (in unit), min/max (the accepted range), query and provider (type and
    address); a webhook adds url, httpStatus and body (an excerpt of the answer). message is the event
    text of a failure. dryRun marks the answer of a dry-run metric. Text fields are bounded; credentials
    are never recorded.
    """

    at: str | None = field(crd=_DATE_TIME)
    check: str = field("", crd={"required": True})
    kind: str = field("", crd={"enum": ["metric", "webhook"]})
    type: str = field("")
    weight: int = field(0, check={"integer": True, "min": 0, "max": 100})
    iteration: int = field(0, check={"integer": True, "min": 0})
    result: str = field("", crd={"enum": ["value", "noData", "error"]})
    verdict: str = field("", crd={"enum": ["pass", "fail"]})
    value: float | None = field()
    unit: str = field("")
    min: float | None = field()
    max: float | None = field()
    query: str = field("")
    provider: str = field("")
    url: str = field("")
    http_status: int | None = field(check={"integer": True, "min": 0})
    body: str = field("")
    duration_seconds: float | None = field()
    message: str = field("")
    dry_run: bool = field(
        False, description="canarist: a dry-run metric's answer (recorded, never failed nor held the run)"
    )
    primary_value: float | None = field(description="canarist: the primary's value, for a comparison")
    test: str = field("", description="canarist: the statistical test of a comparison")
    p_value: float | None = field(description="canarist: the comparison's p-value")
    effect: float | None = field(description="canarist: canary minus primary, in the value's unit")


class LedgerSummary(FlaggerModel):
    """Per check of the run: how often it was answered, how often it failed, and its last answer."""

    check: str = field("", crd={"required": True})
    kind: str = field("", crd={"enum": ["metric", "webhook"]})
    type: str = field("")
    count: int = field(0, check={"integer": True, "min": 0})
    failures: int = field(0, check={"integer": True, "min": 0})
    no_data: int = field(0, check={"integer": True, "min": 0})
    errors: int = field(0, check={"integer": True, "min": 0})
    last_at: str | None = field(crd=_DATE_TIME)
    last_result: str = field("", crd={"enum": ["value", "noData", "error"]})
    last_verdict: str = field("", crd={"enum": ["pass", "fail"]})
    last_value: float | None = field()
    unit: str = field("")


#: why a run ended (``status.ledger.end.cause``, the ``Ended`` condition's reason), and what a run waits
#: for (``status.wait.reason``): canarist's words, docs/engine.md "Waits and the progress deadline".
WAIT_REASONS = (
    "CanaryNotReady",
    "PrimaryNotReady",
    "GateClosed",
    "WebhookFailing",
    "NoData",
    "ProviderErrors",
    "PromotionStuck",
)
#: every wait that runs out is also a cause of the run's end
END_CAUSES = (
    "Succeeded",
    "AnalysisSkipped",
    "FailedChecks",
    "RollbackRequested",
    "Aborted",
    "TargetDeleted",
    *WAIT_REASONS,
)


class LedgerEnd(FlaggerModel):
    """How the run ended: the phase, why, and the evidence of the last failed check (if any).

    cause is the typed reason (FailedChecks, NoData, GateClosed...); since, for a wait that ran out its
    progress deadline, is when that wait started.
    """

    at: str | None = field(crd=_DATE_TIME)
    phase: str = field("")
    reason: str = field("")
    cause: str = field("", crd={"enum": list(END_CAUSES)})
    since: str | None = field(crd=_DATE_TIME)
    failed_checks: int = field(0, check={"integer": True, "min": 0})
    threshold: int = field(0, check={"integer": True, "min": 0})
    evidence: LedgerEntry | None = field()


class CanaryLedger(FlaggerModel):
    """The decision ledger of the current run (canarist, not in Flagger; docs/engine.md, "The ledger").

    revision and startedAt identify the run; entries are its last answered checks, oldest first (bounded;
    dropped counts the older ones left out); summary has one item per check; end says how the run ended.
    """

    revision: str = field("")
    started_at: str | None = field(crd=_DATE_TIME)
    entries: list[LedgerEntry] = field(factory=list)
    dropped: int = field(0, check={"integer": True, "min": 0})
    summary: list[LedgerSummary] = field(factory=list)
    end: LedgerEnd | None = field()


class CanaryWait(FlaggerModel):
    """What the run waits for now (canarist, not in Flagger): the reason, since when, until when.

    reason is one of CanaryNotReady, PrimaryNotReady, GateClosed, WebhookFailing, NoData, ProviderErrors,
    PromotionStuck; since is when the wait started (kept across operator restarts); deadline is since plus
    spec.progressDeadlineSeconds, when the run ends with the wait's reason; check names the gate, webhook or
    metric waited on; providerErrors counts the consecutive provider errors (ProviderErrors only).
    """

    reason: str = field("", crd={"required": True, "enum": list(WAIT_REASONS)})
    since: str | None = field(crd=_DATE_TIME)
    deadline: str | None = field(crd=_DATE_TIME)
    check: str = field("")
    message: str = field("")
    provider_errors: int = field(0, check={"integer": True, "min": 0})


#: the runtime commands (``canarist promote|abort|pause|resume|retry|set-weight``, docs/control.md).
COMMAND_ACTIONS = ("promote", "abort", "pause", "resume", "retry", "set-weight")
#: what a person asked a run to keep doing (``status.hold.action``): hold it (pause, set-weight), or
#: finish it as soon as its gates allow (promote), or start the current revision again (retry).
HOLD_ACTIONS = ("pause", "set-weight", "promote", "retry")


class CanaryCommandRecord(FlaggerModel):
    """One CanaryCommand the operator consumed (canarist, not in Flagger; docs/control.md).

    uid is the command object's uid (a command is applied once: its uid is here in the same status write
    as its effect); outcome is Applied or Refused and message says what the run did or why it was refused;
    requestedBy is the user the client reported (the API server's answer to a SelfSubjectReview).
    """

    uid: str = field("", crd={"required": True})
    name: str = field("")
    action: str = field("", crd={"enum": list(COMMAND_ACTIONS)})
    outcome: str = field("", crd={"enum": ["Applied", "Refused"]})
    message: str = field("")
    requested_by: str = field("")
    reason: str = field("")
    at: str | None = field(crd=_DATE_TIME)
    weight: int | None = field(check={"integer": True, "min": 0, "max": 100})


class CanaryHold(FlaggerModel):
    """What a person asked the current run to do until it is done (canarist, not in Flagger).

    action pause or set-weight holds the run at its weight (weight, for set-weight) until a resume, and its
    progress deadline does not run; promote finishes the run as soon as its confirm-promotion gates allow
    (force: without them); retry starts the current revision again. command names the CanaryCommand.
    """

    action: str = field("", crd={"required": True, "enum": list(HOLD_ACTIONS)})
    weight: int | None = field(check={"integer": True, "min": 0, "max": 100})
    force: bool = field(False)
    since: str | None = field(crd=_DATE_TIME)
    requested_by: str = field("")
    reason: str = field("")
    command: str = field("")


class CanaryStatus(FlaggerModel):
    phase: str = field("", crd={"enum": values(Phase)}, description="Analysis phase of this canary")
    failed_checks: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0})
    canary_weight: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0, "max": 100})
    iterations: int = field(0, crd=_NUMBER_INT, check={"integer": True, "min": 0})
    tracked_configs: dict[str, str] | None = field()
    last_applied_spec: str = field("")
    last_promoted_spec: str = field("")
    last_transition_time: str | None = field(crd=_DATE_TIME)
    session_affinity_cookie: str = field("")
    primary_session_affinity_cookie: str = field("")
    previous_session_affinity_cookie: str = field("")
    conditions: list[CanaryCondition] = field(factory=list)
    decision: CanaryDecision | None = field(
        description="canarist: the durable record of the run's last traffic or outcome decision"
    )
    ledger: CanaryLedger | None = field(
        description="canarist: the checks of the current run, what came back, and how the run ended"
    )
    wait: CanaryWait | None = field(
        description="canarist: what the run waits for, since when, and its progress deadline"
    )
    hold: CanaryHold | None = field(
        description="canarist: a person's hold, promotion or retry of the run (canarist promote, pause...)"
    )
    commands: list[CanaryCommandRecord] = field(
        factory=list,
        description="canarist: the last runtime commands consumed, each applied once (docs/control.md)",
    )

    def promoted_condition(self) -> CanaryCondition | None:
        """The ``Promoted`` condition, if any."""
        return next((c for c in self.conditions if c.type == "Promoted"), None)


class Canary(FlaggerObject):
    """A ``flagger.app/v1beta1`` Canary.

    >>> canary = Canary.model_validate(manifest)
    >>> canary.analysis_interval(), canary.max_weight(), canary.strategy()
    """

    KIND: ClassVar[str] = "Canary"

    kind: str = field("Canary")
    spec: CanarySpec = field(factory=CanarySpec)
    status: CanaryStatus = field(factory=CanaryStatus)

    # -- names (docs/flagger-parity.md#names-of-generated-objects) -------------------------------------

    def target_name(self) -> str:
        return self.spec.target_ref.name

    def apex_name(self) -> str:
        """``service.name`` if set, else ``targetRef.name``."""
        return self.spec.service.name or self.spec.target_ref.name

    def primary_name(self) -> str:
        """The primary workload: ``<targetRef.name>-primary`` (never the apex name)."""
        return self.spec.target_ref.name + defaults.PRIMARY_SUFFIX

    def primary_service_name(self) -> str:
        return self.apex_name() + defaults.PRIMARY_SUFFIX

    def canary_service_name(self) -> str:
        return self.apex_name() + defaults.CANARY_SUFFIX

    # -- run-time defaults -----------------------------------------------------------------------------

    def analysis(self) -> CanaryAnalysis | None:
        """``spec.analysis``, else the deprecated ``spec.canaryAnalysis``, else None."""
        return self.spec.analysis if self.spec.analysis is not None else self.spec.canary_analysis

    def analysis_interval(self, min_seconds: float = defaults.MIN_ANALYSIS_INTERVAL_SECONDS) -> float:
        """The analysis interval in seconds: default 60 (also on a parse error), at least ``min_seconds``."""
        analysis = self.analysis()
        seconds = defaults.ANALYSIS_INTERVAL_SECONDS
        if analysis is not None and analysis.interval:
            try:
                seconds = parse_duration(analysis.interval)
            except ValueError:
                seconds = defaults.ANALYSIS_INTERVAL_SECONDS
        return max(min_seconds, seconds)

    def threshold(self) -> int:
        """Failed checks allowed before rollback; 1 when unset or ≤ 0."""
        analysis = self.analysis()
        if analysis is None or analysis.threshold <= 0:
            return defaults.THRESHOLD
        return analysis.threshold

    def max_weight(self) -> int:
        """min(100, last stepWeights) when stepWeights is set; else maxWeight when > 0; else 100."""
        analysis = self.analysis()
        if analysis is None:
            return defaults.MAX_WEIGHT
        if analysis.step_weights:
            return min(defaults.MAX_WEIGHT, analysis.step_weights[-1])
        return analysis.max_weight if analysis.max_weight > 0 else defaults.MAX_WEIGHT

    def iterations(self) -> int:
        analysis = self.analysis()
        return analysis.iterations if analysis is not None else 0

    def strategy(self) -> Strategy:
        """``ab-testing`` (match + iterations), ``blue-green`` (iterations) or ``canary``."""
        analysis = self.analysis()
        if analysis is not None and analysis.iterations > 0:
            return Strategy.AB_TESTING if analysis.match else Strategy.BLUE_GREEN
        return Strategy.CANARY

    def progress_deadline_seconds(self) -> int:
        """``spec.progressDeadlineSeconds``, default 600."""
        value = self.spec.progress_deadline_seconds
        return defaults.PROGRESS_DEADLINE_SECONDS if value is None else value

    def max_provider_errors(self) -> int:
        """``analysis.maxProviderErrors``: consecutive metric provider errors a run tolerates, default 4."""
        analysis = self.analysis()
        if analysis is None or analysis.max_provider_errors is None:
            return MAX_PROVIDER_ERRORS
        return max(0, analysis.max_provider_errors)

    def skip_analysis(self) -> bool:
        """``spec.skipAnalysis``, also true when neither analysis nor canaryAnalysis is set."""
        return self.spec.skip_analysis or self.analysis() is None

    def primary_ready_threshold(self) -> int:
        analysis = self.analysis()
        if analysis is None or analysis.primary_ready_threshold is None:
            return defaults.READY_THRESHOLD_PERCENT
        return analysis.primary_ready_threshold

    def canary_ready_threshold(self) -> int:
        analysis = self.analysis()
        if analysis is None or analysis.canary_ready_threshold is None:
            return defaults.READY_THRESHOLD_PERCENT
        return analysis.canary_ready_threshold

    def provider_or(self, default: str) -> str:
        """``spec.provider``, else the operator's ``-mesh-provider``."""
        return self.spec.provider or default
