"""``decide``: Flagger's tick (docs/flagger-parity.md#one-tick) as a pure function of (canary, obs, answers).

Read it top to bottom like one tick. Each phase has a small function; each function says which of
Flagger's steps it is. Pacing (docs/engine.md): work that waits on the world runs on any tick, work that
belongs to the analysis interval starts with ``t.pace()`` and runs only when due.

>>> result = decide(canary, observation, answers={}, settings=EngineSettings())
>>> while isinstance(result, NeedCheck):
...     answers[result.check] = run(result.check)
...     result = decide(canary, observation, answers, settings)
"""

from __future__ import annotations

from collections.abc import Mapping

from canarist.api import Canary, Phase, WebhookType
from canarist.engine import checks, ledger, messages
from canarist.engine.model import (
    Alert,
    Check,
    CheckResult,
    CountOutcome,
    Decision,
    EngineSettings,
    Initialize,
    NeedCheck,
    Observation,
    Promote,
    Routes,
    RunPostRollout,
    ScaleDownTarget,
    ScaleUpTarget,
)
from canarist.engine.revision import revision_changed
from canarist.engine.strategies import (
    Iterate,
    PromoteStep,
    RouteAllToCanary,
    ShiftWeight,
    Step,
    needs_promotion_gate,
    needs_traffic_gate,
    next_step,
    plan_for,
)
from canarist.engine.tick import NeedAnswer, NotDue, Tick
from canarist.engine.weights import FULL, shift_back

INITIALIZING = frozenset({Phase.NONE, Phase.INITIALIZING})
#: phases in which a run is under way (Flagger's shouldAdvance is true without any change).
ADVANCING = frozenset(
    {Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING}
)
#: phases from which a new revision starts a run (Flagger's checkCanaryStatus).
AT_REST = frozenset({Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.WAITING})
ANALYSING = frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION})

ALL_TO_PRIMARY = Routes(primary=FULL, canary=0)
ALL_TO_CANARY = Routes(primary=0, canary=FULL)


def decide(
    canary: Canary,
    obs: Observation,
    answers: Mapping[Check, CheckResult],
    settings: EngineSettings | None = None,
) -> NeedCheck | Decision:
    """The next question, or the decision for this tick. Pure and deterministic."""
    tick = Tick(canary, obs, answers, settings or EngineSettings())
    try:
        _tick(tick)
    except NeedAnswer as need:
        return NeedCheck(need.check)
    except NotDue:
        pass
    # A committed decision asks for a tick at once: if it was cut short, its record is finished right away.
    tick.again = tick.again or tick.committed or _can_follow_at_once(tick)
    return tick.decision()


# ---------------------------------------------------------------------------------------------- the tick


def _tick(t: Tick) -> None:
    canary, obs = t.canary, t.obs
    if t.phase in (Phase.TERMINATING, Phase.TERMINATED):
        return  # the runtime's finalizer owns the canary now
    if t.record.pending:
        # An earlier decision was recorded but not confirmed as applied: finish it, decide nothing (also
        # while suspended: the decision was taken before, and it may still have traffic to move).
        _replay(t)
        return
    # step 1
    if canary.spec.suspend:
        t.pace()
        t.event(messages.SUSPENDED)
        return
    # step 2 and the workload's own errors
    if obs.target is None:
        kind = canary.spec.target_ref.kind or "Deployment"
        if t.phase in ADVANCING:
            # The canary's pods are gone: traffic to them is errors for users. End the run now.
            _rollback(t, vanished=messages.target_vanished(kind, t.target, t.namespace))
            return
        t.pace()
        t.warn(messages.target_not_found(kind, t.target, t.namespace))
        return
    problem = obs.target.selector_error or obs.config_error
    if problem:
        t.pace()
        t.warn(problem)
        return
    # steps 3-11
    if t.phase in INITIALIZING:
        _initialize(t)
        return
    t.act(Initialize())
    # step 12: shouldAdvance
    changed = _changed(t)
    if t.phase not in ADVANCING and not changed:
        if t.phase == Phase.FAILED:
            _refresh_failed(t)
        return
    # step 14
    if not canary.skip_analysis() and not obs.primary.ready:
        reason = messages.primary_not_ready(canary.primary_name(), t.namespace, obs.primary.message)
        if obs.primary.retriable:
            t.pace()
            t.warn(reason)
        elif t.phase in (Phase.PROMOTING, Phase.FINALISING):
            _fail_promotion(t, reason)
        else:
            _rollback(t)
        return
    # step 15
    if obs.routes_error:
        t.pace()
        t.warn(obs.routes_error)
        return
    routes = obs.routes or ALL_TO_PRIMARY
    # step 16
    if t.phase in AT_REST:
        if t.phase == Phase.WAITING:
            t.pace()  # a closed confirm-rollout gate is retried once per interval
        _start_run(t)
        return
    # step 17
    if t.phase in ANALYSING and changed:
        _restart(t)
        return
    routes = _converge(t, routes)
    # step 18
    if not obs.canary.ready:
        reason = messages.canary_not_ready(t.kind, t.target, t.namespace, obs.canary.message)
        if obs.canary.retriable:
            t.pace()
            t.warn(reason)
        else:
            _rollback(t, deadline=reason)
        return
    # step 19
    if canary.skip_analysis():
        t.pace(first_step=_untried(t, routes))
        _promote_without_analysis(t)
        return
    # steps 21-22
    if t.phase == Phase.PROMOTING:
        _shift_traffic_back(t, routes)
        return
    if t.phase == Phase.FINALISING:
        _finalise(t)
        return
    # steps 20, 23-27: the run's first step comes as soon as the canary is ready, later ones per interval
    t.pace(first_step=_untried(t, routes))
    _analysis_step(t, routes)


def _changed(t: Tick) -> bool:
    assert t.obs.target is not None
    return revision_changed(
        t.obs.target.revision,
        t.obs.tracked_configs,
        last_applied=t.status.last_applied_spec,
        last_promoted=t.status.last_promoted_spec,
        tracked=t.status.tracked_configs,
    )


def _replay(t: Tick) -> None:
    """A recorded decision whose side effects were not confirmed (the operator stopped, or a write failed,
    after its first status write): apply them again, in the recorded order, and clear them."""
    if t.obs.target is not None:
        t.act(Initialize())
    t.replay()
    if t.obs.target is None:  # a vanished target cannot be promoted; the rest still applies
        t.actions = [a for a in t.actions if not isinstance(a, Promote)]


def _converge(t: Tick, routes: Routes) -> Routes:
    """The route objects follow the split the status records (a route write of an earlier tick failed)."""
    recorded = t.record.routes
    if (
        recorded is None
        or not t.obs.router.weights
        or t.record.revision != t.status.last_applied_spec
        or recorded == routes
    ):
        return routes
    t.converge(recorded)
    return recorded


def _first_step(t: Tick, routes: Routes) -> bool:
    """Whether the analysis step is a run's first one ("Starting canary analysis" and pre-rollout hooks):
    no traffic and no iteration yet (a mirrored canary's mirror step comes after it)."""
    analysis = t.canary.analysis()
    mirrored_run = bool(analysis and analysis.mirror) and routes.mirrored
    return routes.canary == 0 and t.status.iterations == 0 and not mirrored_run


def _untried(t: Tick, routes: Routes) -> bool:
    """The run's first step, not taken yet and not failed yet: since the run started (or restarted) the
    status has recorded no progress and no failed check. It is paced by ``Tick.first_step_due_at`` (at
    once in a new run); any other step waits one interval after the last paced tick or status write."""
    return (
        t.phase == Phase.PROGRESSING
        and t.status.failed_checks == 0
        and t.status.canary_weight == 0
        and _first_step(t, routes)
    )


def _can_follow_at_once(t: Tick) -> bool:
    """Whether the next transition needs nothing but this decision applied (so: tick again now)."""
    if not t.status.written or t.obs.target is None:
        return False
    if t.status.phase == Phase.FINALISING:
        return True
    return t.status.phase in (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED) and _changed(t)


# ---------------------------------------------------------------------------------------------- initialization


def _initialize(t: Tick) -> None:
    """Steps 3-11: create the primary, wait for it, take over the traffic, scale the target down."""
    canary, obs = t.canary, t.obs
    ready = obs.primary.ready or canary.skip_analysis()
    if not ready and obs.primary.retriable:
        t.pace()
    if not canary.skip_analysis():
        providers = t.ask(checks.PROVIDERS)
        if providers.passed:
            t.event(messages.PROVIDERS_AVAILABLE)
        else:
            t.warn(messages.providers_error(providers.message))
    if not ready:
        t.act(Initialize(takeover=False))
        if t.phase == Phase.NONE:
            t.set_phase(Phase.INITIALIZING)  # Flagger's sync handler does this when the canary appears
        if obs.primary.retriable:
            t.warn(messages.primary_not_ready(canary.primary_name(), t.namespace, obs.primary.message))
        else:
            _rollback(t)
        return
    t.act(Initialize())
    t.act(ScaleDownTarget())
    t.sync(Phase.INITIALIZED)
    t.event(messages.initialization_done(t.key))
    t.alert(messages.alert_initialized(t.kind), "info", with_metadata=True)


# ---------------------------------------------------------------------------------------------- a new run


def _start_run(t: Tick) -> None:
    """Step 16: a new revision (or a Waiting canary) passes the confirm-rollout gates and starts a run."""
    for hook in checks.webhooks(t.canary, WebhookType.CONFIRM_ROLLOUT):
        if not t.ask(checks.webhook_check(hook, t.phase)).passed:
            if t.phase != Phase.WAITING:
                t.set_phase(Phase.WAITING)
                t.warn(messages.waiting_for_approval(t.key, hook.name))
                if not hook.mute_alert:
                    t.alert(messages.ALERT_WAITING_FOR_APPROVAL, "warn")
            return
        t.event(messages.confirm_rollout_passed(hook.name))
    t.event(messages.new_revision(t.target_key), phase=Phase.PROGRESSING)
    t.alert(messages.ALERT_NEW_REVISION, "info", with_metadata=True)
    t.act(ScaleUpTarget())
    t.sync(Phase.PROGRESSING)


def _restart(t: Tick) -> None:
    """Step 17: the target changed during the analysis: start over from zero traffic."""
    t.event(messages.restarting_analysis(t.target_key))
    t.sync(Phase.PROGRESSING)
    t.route(ALL_TO_PRIMARY)


def _refresh_failed(t: Tick) -> None:
    """Step 12 for a Failed canary: record the revision now running (reverting to the promoted spec is not
    a new run, but re-applying the failed one afterwards is)."""
    assert t.obs.target is not None
    if t.obs.target.revision != t.status.last_applied_spec:
        t.sync(
            Phase.FAILED,
            weight=t.status.canary_weight,
            failed_checks=t.status.failed_checks,
            iterations=t.status.iterations,
        )


# ---------------------------------------------------------------------------------------------- analysis


def _analysis_step(t: Tick, routes: Routes) -> None:
    """Steps 20 and 23-27: rollback hooks, threshold, pre-rollout or analysis, then the strategy's step."""
    if _rollback_requested(t):
        return
    if t.status.failed_checks >= t.canary.threshold():
        _rollback(t)
        return
    passed = _pre_rollout(t) if _first_step(t, routes) else _run_analysis(t)
    if not passed:
        t.set_failed_checks(t.status.failed_checks + 1)
        if t.status.failed_checks >= t.canary.threshold():
            # The check that reaches the threshold rolls back at once; Flagger waits one more interval.
            _rollback(t)
        return
    plan = plan_for(t.canary, t.settings, t.obs.router)
    for warning in plan.warnings:
        t.warn(warning)
    step = next_step(plan, routes=routes, iterations=t.status.iterations)
    gated = needs_traffic_gate(plan, routes, t.phase == Phase.WAITING_PROMOTION)
    if step is None or (gated and not _confirm_traffic_increase(t)):
        if t.record.routes is None and _first_step(t, routes):
            t.hold(routes)  # the first step was taken: its retries wait for the interval (docs/engine.md)
        return
    if needs_promotion_gate(step) and not _confirm_promotion(t):
        return
    _take_step(t, step)


def _rollback_requested(t: Tick) -> bool:
    """Step 20: a ``rollback`` webhook that answers with success rolls the canary back."""
    for hook in checks.webhooks(t.canary, WebhookType.ROLLBACK):
        if t.ask(checks.webhook_check(hook, t.phase)).passed:
            t.warn(messages.rollback_hook_passed(hook.name))
            t.warn(messages.manual_rollback(t.key))
            t.alert(messages.ALERT_MANUAL_ROLLBACK, "warn")
            _rollback(t)
            return True
        t.event(messages.rollback_hook_not_signaling(hook.name))
    return False


def _pre_rollout(t: Tick) -> bool:
    """Step 25, first tick of a run: announce it and run the pre-rollout hooks."""
    t.event(messages.starting_analysis(t.target_key))
    for hook in checks.webhooks(t.canary, WebhookType.PRE_ROLLOUT):
        result = t.ask(checks.webhook_check(hook, Phase.PROGRESSING))
        if not result.passed:
            t.warn(messages.pre_rollout_failed(t.key, hook.name, result.message))
            return False
        t.event(messages.pre_rollout_passed(hook.name))
    return True


def _run_analysis(t: Tick) -> bool:
    """Step 25, later ticks: rollout hooks, then metrics; the first failure stops the analysis."""
    for hook in checks.webhooks(t.canary, WebhookType.ROLLOUT):
        result = t.ask(checks.webhook_check(hook, Phase.PROGRESSING))
        if not result.passed:
            t.warn(messages.external_check_failed(t.key, hook.name, result.message))
            return False
    for metric in checks.metrics(t.canary):
        result = t.ask(checks.metric_check(metric))
        if not result.passed:
            t.warn(result.message or messages.metric_no_data(metric.name))
            return False
    return True


def _confirm_traffic_increase(t: Tick) -> bool:
    for hook in checks.webhooks(t.canary, WebhookType.CONFIRM_TRAFFIC_INCREASE):
        if not t.ask(checks.webhook_check(hook, Phase.PROGRESSING)).passed:
            t.warn(messages.waiting_for_traffic_increase(t.key, hook.name))
            if not hook.mute_alert:
                t.alert(messages.ALERT_WAITING_FOR_TRAFFIC_INCREASE, "warn")
            return False
        t.event(messages.confirm_traffic_increase_passed(hook.name))
    return True


def _confirm_promotion(t: Tick) -> bool:
    for hook in checks.webhooks(t.canary, WebhookType.CONFIRM_PROMOTION):
        if not t.ask(checks.webhook_check(hook, Phase.PROGRESSING)).passed:
            if t.phase != Phase.WAITING_PROMOTION:
                t.set_phase(Phase.WAITING_PROMOTION)
                t.warn(messages.waiting_for_promotion(t.key, hook.name))
                if not hook.mute_alert:
                    t.alert(messages.ALERT_WAITING_FOR_PROMOTION, "warn")
            else:
                held = max(0, t.canary.iterations() - 1)
                if t.status.iterations != held:
                    t.set_iterations(held)
            return False
        t.event(messages.confirm_promotion_passed(hook.name))
    return True


def _take_step(t: Tick, step: Step) -> None:
    """Step 27: execute the strategy's step."""
    if isinstance(step, ShiftWeight):
        t.route(step.routes)
        t.set_weight(step.weight)
        t.event(messages.advance_weight(t.key, step.weight))
    elif isinstance(step, Iterate):
        if step.routes is not None:
            t.route(step.routes)
        t.set_iterations(step.iteration)
        t.event(messages.advance_iteration(t.key, step.iteration, step.total))
    elif isinstance(step, RouteAllToCanary):
        if step.message is not None:
            t.event(step.message)
            t.route(ALL_TO_CANARY)
        t.set_iterations(step.iteration)
    elif isinstance(step, PromoteStep):
        # Promoting is written before the primary is touched, with the promotion pending: a tick that
        # finds Promoting can trust that the primary has (or is getting) the new spec.
        t.commit()
        t.event(messages.copying_spec(t.target, t.namespace))
        t.act(Promote())
        t.set_phase(Phase.PROMOTING)


# ---------------------------------------------------------------------------------------------- promotion


def _shift_traffic_back(t: Tick, routes: Routes) -> None:
    """Step 21 (``runPromotionTrafficShift``): the primary runs the new spec; move the traffic back to it."""
    if not t.obs.router.weights:
        t.set_phase(Phase.FINALISING)
        return
    analysis = t.canary.analysis()
    step = analysis.step_weight_promotion if analysis else 0
    if step <= 0:
        t.event(messages.ROUTE_ALL_TO_PRIMARY)
        t.route(ALL_TO_PRIMARY)
        t.set_phase(Phase.FINALISING)
        return
    t.pace()  # a stepped shift back moves one step per interval
    shifted = shift_back(routes, step)
    t.route(shifted)
    t.event(messages.advance_primary_weight(t.key, shifted.primary))
    if shifted.primary >= FULL:
        t.set_phase(Phase.FINALISING)
    else:
        t.set_weight(shifted.canary)


def _finalise(t: Tick) -> None:
    """Step 22: the traffic is back on the primary; scale the canary down and succeed."""
    t.commit()
    t.status.end_run(
        Phase.SUCCEEDED, messages.ALERT_PROMOTION_COMPLETED, at=t.obs.now, threshold=t.canary.threshold()
    )
    t.act(ScaleDownTarget())
    t.set_phase(Phase.SUCCEEDED)
    t.act(CountOutcome("success", "completed"))
    t.act(RunPostRollout(Phase.SUCCEEDED))
    t.event(messages.promotion_completed(t.target_key))
    t.alert(messages.ALERT_PROMOTION_COMPLETED, "info")


def _promote_without_analysis(t: Tick) -> None:
    """Step 19 (docs/flagger-parity.md#one-tick): skipAnalysis promotes the ready canary at once."""
    t.commit()
    t.status.end_run(
        Phase.SUCCEEDED, messages.ALERT_PROMOTION_SKIPPED, at=t.obs.now, threshold=t.canary.threshold()
    )
    t.route(ALL_TO_PRIMARY)
    t.event(messages.copying_spec(t.target, t.namespace))
    t.act(Promote())
    t.act(ScaleDownTarget())
    t.set_phase(Phase.SUCCEEDED)
    t.act(CountOutcome("success", "skipped"))
    t.act(RunPostRollout(Phase.SUCCEEDED))
    t.event(messages.promotion_skipped(t.target_key))
    t.alert(messages.ALERT_PROMOTION_SKIPPED, "info")


# ---------------------------------------------------------------------------------------------- failure


def _rollback(t: Tick, *, deadline: str | None = None, vanished: str | None = None) -> None:
    """Flagger's rollback: route everything to the primary, scale the canary down, mark the run Failed.

    ``deadline``: the canary missed its progress deadline (Flagger rolls back silently there; canarist
    says why, with the event and alert Flagger has for it). ``vanished``: the target was deleted mid-run.
    The decision is committed: recorded with all its side effects before the first of them.
    """
    t.commit()
    threshold = t.canary.threshold()
    end = t.status.end_run(
        Phase.FAILED, _rollback_reason(t, deadline, vanished), at=t.obs.now, threshold=threshold
    )
    if vanished is not None:
        t.warn(messages.rolling_back(t.key, vanished))
        t.alert(messages.alert_rolling_back(vanished), "error", with_metadata=True)
    if deadline is not None:
        t.warn(messages.deadline_exceeded(t.key, deadline))
        t.alert(messages.alert_deadline_exceeded(deadline), "error", with_metadata=True)
    if t.status.failed_checks >= threshold:
        t.warn(messages.threshold_reached(t.key, t.status.failed_checks))
        # Flagger's alert text, with the evidence of the check that failed last as its fields
        evidence = ledger.alert_fields(end.evidence) if end.evidence is not None else ()
        t.act(Alert(messages.alert_threshold_reached(t.status.failed_checks), "error", fields=evidence))
    t.route(ALL_TO_PRIMARY)
    t.warn(messages.canary_failed(t.key), phase=Phase.FAILED)
    t.act(ScaleDownTarget())
    t.sync(Phase.FAILED, failed_checks=t.status.failed_checks, iterations=t.status.iterations)
    t.act(CountOutcome("failure", "completed"))
    t.act(RunPostRollout(Phase.FAILED))


def _rollback_reason(t: Tick, deadline: str | None, vanished: str | None) -> str:
    """Why the run ends, for the ledger (``status.ledger.end.reason``), in the words of its alert."""
    if vanished is not None:
        return messages.alert_rolling_back(vanished)
    if deadline is not None:
        return messages.alert_deadline_exceeded(deadline)
    last = t.status.ledger.entries[-1] if t.status.ledger.entries else None
    if last is not None and last.type == WebhookType.ROLLBACK and last.verdict == "pass":
        return messages.ALERT_MANUAL_ROLLBACK
    if t.status.failed_checks >= t.canary.threshold():
        return messages.alert_threshold_reached(t.status.failed_checks)
    if not t.obs.primary.ready:
        return messages.primary_not_ready(t.canary.primary_name(), t.namespace, t.obs.primary.message)
    return "rolled back"


def _fail_promotion(t: Tick, reason: str) -> None:
    """``handleFailedPromotion``: the primary cannot roll out; keep the traffic on the healthy canary."""
    t.warn(messages.promotion_failed(t.target_key, reason))
    t.commit()
    t.status.end_run(
        Phase.FAILED, messages.alert_promotion_failed(reason), at=t.obs.now, threshold=t.canary.threshold()
    )
    t.alert(messages.alert_promotion_failed(reason), "error")
    t.route(ALL_TO_CANARY)
    t.sync(Phase.FAILED, weight=FULL, failed_checks=t.status.failed_checks, iterations=t.status.iterations)
    t.act(CountOutcome("failure", "completed"))
    t.act(RunPostRollout(Phase.FAILED))
