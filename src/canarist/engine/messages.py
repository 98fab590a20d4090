"""Every event, alert and condition text of a canary run, in Flagger's exact wording.

Flagger names things two ways: ``name.ns`` is the Canary (``canary.key``), ``target.ns`` is
``spec.targetRef.name`` in the canary's namespace. Each function says which one it takes. The runtime uses
the hook-result functions (``post_rollout_passed``...) for the events it records itself.

>>> advance_weight("podinfo.test", 5)
'Advance podinfo.test canary weight 5'
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------- tick guards

SUSPENDED = "skipping canary run as object is suspended"


def target_not_found(kind: str, name: str, namespace: str) -> str:
    return f'{kind.lower()} {name}.{namespace} get query error: {kind.lower()}s.apps "{name}" not found'


# ---------------------------------------------------------------------------------------------- initialization

PROVIDERS_AVAILABLE = "all the metrics providers are available!"


def providers_error(error: str) -> str:
    return f"Error checking metric providers: {error}"


def primary_not_ready(primary: str, namespace: str, reason: str) -> str:
    """``<target>-primary.ns not ready: <readiness message>``."""
    return f"{primary}.{namespace} not ready: {reason}"


def canary_not_ready(kind: str, target: str, namespace: str, reason: str) -> str:
    """``canary deployment target.ns not ready: <readiness message>``."""
    return f"canary {kind.lower()} {target}.{namespace} not ready: {reason}"


def initialization_done(key: str) -> str:
    return f"Initialization done! {key}"


def alert_initialized(kind: str) -> str:
    return f"New {kind} detected, initialization completed."


# ---------------------------------------------------------------------------------------------- new revision


def confirm_rollout_passed(hook: str) -> str:
    return f"Confirm-rollout check {hook} passed"


def waiting_for_approval(key: str, hook: str) -> str:
    return f"Halt {key} advancement waiting for approval {hook}"


ALERT_WAITING_FOR_APPROVAL = "Canary is waiting for approval."


def new_revision(target_key: str) -> str:
    return f"New revision detected! Scaling up {target_key}"


ALERT_NEW_REVISION = "New revision detected, progressing canary analysis."


def restarting_analysis(target_key: str) -> str:
    return f"New revision detected! Restarting analysis for {target_key}"


# ---------------------------------------------------------------------------------------------- analysis


def starting_analysis(target_key: str) -> str:
    return f"Starting canary analysis for {target_key}"


def pre_rollout_passed(hook: str) -> str:
    return f"Pre-rollout check {hook} passed"


def pre_rollout_failed(key: str, hook: str, error: str) -> str:
    return f"Halt {key} advancement pre-rollout check {hook} failed {error}"


def external_check_failed(key: str, hook: str, error: str) -> str:
    return f"Halt {key} advancement external check {hook} failed {error}"


def metric_no_data(metric: str) -> str:
    """Fallback text when a no-data metric result carries no message of its own."""
    return f"Halt advancement no values found for metric: {metric}"


def rollback_hook_passed(hook: str) -> str:
    return f"Rollback check {hook} passed"


def rollback_hook_not_signaling(hook: str) -> str:
    return f"Rollback hook {hook} not signaling a rollback"


def manual_rollback(key: str) -> str:
    return f"Rolling back {key} manual webhook invoked"


ALERT_MANUAL_ROLLBACK = "Rolling back manual webhook invoked"


def confirm_traffic_increase_passed(hook: str) -> str:
    return f"Confirm-traffic-increase check {hook} passed"


def waiting_for_traffic_increase(key: str, hook: str) -> str:
    return f"Halt {key} advancement waiting for traffic increase approval {hook}"


ALERT_WAITING_FOR_TRAFFIC_INCREASE = "Canary traffic increase is waiting for approval."


def confirm_promotion_passed(hook: str) -> str:
    return f"Confirm-promotion check {hook} passed"


def waiting_for_promotion(key: str, hook: str) -> str:
    return f"Halt {key} advancement waiting for promotion approval {hook}"


ALERT_WAITING_FOR_PROMOTION = "Canary promotion is waiting for approval."


def advance_weight(key: str, weight: int) -> str:
    return f"Advance {key} canary weight {weight}"


def advance_iteration(key: str, iteration: int, total: int) -> str:
    return f"Advance {key} canary iteration {iteration}/{total}"


def mirror_step(primary: int, canary: int, mirrored: bool) -> str:
    """Log line of the canary strategy's mirror step (Go prints booleans lowercase)."""
    return f"Running mirror step {primary}/{canary}/{str(mirrored).lower()}"


START_MIRRORING = "Start traffic mirroring"
STOP_MIRRORING_ROUTE_ALL = "Stop traffic mirroring and route all traffic to canary"
ROUTE_ALL_TO_CANARY = "Routing all traffic to canary"

KUBERNETES_NO_AB = "A/B testing is not supported when using the kubernetes provider"
KUBERNETES_NO_PROGRESSIVE = "Progressive traffic is not supported when using the kubernetes provider"
KUBERNETES_ITERATIONS = "Setting canaryAnalysis.iterations: 10"


# ---------------------------------------------------------------------------------------------- promotion


def copying_spec(target: str, namespace: str) -> str:
    return f"Copying {target}.{namespace} template spec to {target}-primary.{namespace}"


ROUTE_ALL_TO_PRIMARY = "Routing all traffic to primary"


def advance_primary_weight(key: str, weight: int) -> str:
    return f"Advance {key} primary weight {weight}"


def promotion_completed(target_key: str) -> str:
    return f"Promotion completed! Scaling down {target_key}"


ALERT_PROMOTION_COMPLETED = "Canary analysis completed successfully, promotion finished."


def promotion_skipped(target_key: str) -> str:
    return f"Promotion completed! Canary analysis was skipped for {target_key}"


ALERT_PROMOTION_SKIPPED = "Canary analysis was skipped, promotion finished."


def promotion_failed(target_key: str, error: str) -> str:
    return f"Promotion of {target_key} failed, primary not ready: {error}"


def alert_promotion_failed(error: str) -> str:
    return f"Promotion failed, primary not ready: {error}"


# ---------------------------------------------------------------------------------------------- rollback


def threshold_reached(key: str, failed_checks: int) -> str:
    return f"Rolling back {key} failed checks threshold reached {failed_checks}"


def alert_threshold_reached(failed_checks: int) -> str:
    return f"Failed checks threshold reached {failed_checks}"


def deadline_exceeded(key: str, error: str) -> str:
    return f"Rolling back {key} progress deadline exceeded {error}"


def alert_deadline_exceeded(error: str) -> str:
    return f"Progress deadline exceeded {error}"


def target_vanished(kind: str, name: str, namespace: str) -> str:
    """canarist: the reason of a rollback whose target was deleted mid-run."""
    return f"target {kind} {name}.{namespace} not found"


def rolling_back(key: str, reason: str) -> str:
    """canarist: ``Rolling back podinfo.test target Deployment podinfo.test not found``."""
    return f"Rolling back {key} {reason}"


def alert_rolling_back(reason: str) -> str:
    return f"Rolling back, {reason}"


def canary_failed(key: str) -> str:
    return f"Canary failed! Scaling down {key}"


# ---------------------------------------------------------------------------------------------- canarist: waits

WAITING_FOR_CANARY = "waiting for the new revision to roll out"
WAITING_FOR_PRIMARY = "waiting for the primary to roll out the promoted revision"


def holding_no_data(key: str, metric: str, left_s: int) -> str:
    """canarist: a ``noData: hold`` metric without data holds the step (no failed check)."""
    return (
        f"Halt {key} advancement holding for data of metric {metric} (noData: hold), "
        f"progress deadline in {left_s}s"
    )


def provider_error(key: str, metric: str, count: int, limit: int, error: str) -> str:
    """canarist: a metric provider error holds the step (no failed check) up to ``maxProviderErrors``."""
    return f"Halt {key} advancement metric {metric} provider error ({count} in a row, {limit} tolerated): {error}"


def gate_closed_expired(gate_type: str, hook: str, seconds: int) -> str:
    """canarist: what ran out for a closed gate (after "progress deadline exceeded")."""
    return f"GateClosed: {gate_type} gate {hook} still closed after {seconds}s"


def no_data_expired(metric: str, seconds: int) -> str:
    return f"NoData: no data for metric {metric} after {seconds}s (noData: hold)"


def provider_errors_expired(metric: str, seconds: int, error: str) -> str:
    return f"ProviderErrors: the provider of metric {metric} erred for {seconds}s: {error}"


def provider_errors_exhausted(metric: str, count: int, limit: int, error: str) -> str:
    """canarist: more consecutive provider errors than ``maxProviderErrors`` tolerates."""
    return (
        f"ProviderErrors: {count} provider errors in a row for metric {metric} ({limit} tolerated): {error}"
    )


def webhook_failing_expired(hook: str, seconds: int, error: str) -> str:
    return f"WebhookFailing: pre-rollout check {hook} still failing after {seconds}s: {error}"


def primary_deadline(reason: str, seconds: int) -> str:
    """canarist: the primary's not-ready text when canarist's own deadline ran out."""
    return f"{reason} (progress deadline of {seconds}s exceeded)"


# ---------------------------------------------------------------------------------------------- canarist: dry-run metrics


def _dry_run_detail(key: str, message: str) -> str:
    """A metric's failure text without its "Halt <key> advancement" lead (the dry-run event says it)."""
    for lead in (f"Halt {key} advancement ", "Halt advancement "):
        if message.startswith(lead):
            return message[len(lead) :]
    return message


def dry_run_halted(key: str, metric: str, message: str) -> str:
    """canarist: a dry-run metric failed (or had no data, ``noData: fail``): a failed check, had it counted.

    >>> dry_run_halted("podinfo.test", "request-duration",
    ...                "Halt podinfo.test advancement request duration 612ms > 500ms")
    'Dry-run metric request-duration would have halted podinfo.test advancement: request duration 612ms > 500ms'
    """
    return f"Dry-run metric {metric} would have halted {key} advancement: {_dry_run_detail(key, message)}"


def dry_run_held_for_data(key: str, metric: str, message: str) -> str:
    """canarist: a dry-run ``noData: hold`` metric had no data: the step would have waited for it."""
    detail = _dry_run_detail(key, message)
    return f"Dry-run metric {metric} would have held {key} advancement for data (noData: hold): {detail}"


def dry_run_provider_error(key: str, metric: str, error: str) -> str:
    """canarist: a dry-run metric's provider erred: the step would have waited (ProviderErrors)."""
    return f"Dry-run metric {metric} would have held {key} advancement on a provider error: {error}"


# ---------------------------------------------------------------------------------------------- hooks the runtime runs


def post_rollout_passed(hook: str) -> str:
    return f"Post-rollout check {hook} passed"


def post_rollout_failed(hook: str, error: str) -> str:
    return f"Post-rollout hook {hook} failed {error}"


# ---------------------------------------------------------------------------------------------- the Promoted condition


def condition_running(revision: str) -> str:
    """canarist: the ``Ended`` condition's message while a run is under way."""
    return f"The analysis of revision {revision} is under way."


def condition_message(phase: str, kind: str) -> str:
    """The message of the ``Promoted`` condition for ``phase`` (Flagger's ``pkg/canary/status.go``)."""
    by_phase = {
        "Initialized": f"{kind} initialization completed.",
        "Waiting": "Waiting for approval.",
        "WaitingPromotion": "Waiting for approval.",
        "Progressing": "New revision detected, progressing canary analysis.",
        "Promoting": "Canary analysis completed, starting primary rolling update.",
        "Finalising": "Canary analysis completed, routing all traffic to primary.",
        "Succeeded": "Canary analysis completed successfully, promotion finished.",
        "Failed": f"Canary analysis failed, {kind} scaled to zero.",
    }
    return by_phase.get(phase, f"New {kind} detected, starting initialization.")
