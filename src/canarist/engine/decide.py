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
from datetime import datetime

from canarist.api import Canary, CanaryMetric, Phase, Strategy, WebhookType
from canarist.engine import checks, commands, ledger, messages, waits
from canarist.engine.commands import APPLIED, REFUSED, Hold
from canarist.engine.model import (
    Alert,
    Check,
    CheckResult,
    Command,
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
from canarist.engine.waits import Ending
from canarist.engine.weights import FULL, shift_back

INITIALIZING = frozenset({Phase.NONE, Phase.INITIALIZING})
#: phases in which a run is under way (Flagger's shouldAdvance is true without any change).
ADVANCING = frozenset(
    {Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING}
)
#: phases from which a new revision starts a run (Flagger's checkCanaryStatus).
AT_REST = frozenset({Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.WAITING})
ANALYSING = frozenset({Phase.PROGRESSING, Phase.WAITING_PROMOTION})

#: every wait a run may be in (docs/engine.md, "Waits and the progress deadline").
ALL_WAITS = (
    waits.CANARY_NOT_READY,
    waits.PRIMARY_NOT_READY,
    waits.PROMOTION_STUCK,
    *waits.ANALYSIS_WAITS,
)

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
        # a suspended run waits for the user, not the world: its waits start again once it resumes
        t.clear_wait(*ALL_WAITS)
        t.pace()
        t.event(messages.SUSPENDED)
        return
    # step 2 and the workload's own errors
    if obs.target is None:
        kind = canary.spec.target_ref.kind or "Deployment"
        if t.phase in ADVANCING:
            # The canary's pods are gone: traffic to them is errors for users. End the run now.
            vanished = messages.target_vanished(kind, t.target, t.namespace)
            _rollback(
                t,
                Ending(
                    waits.TARGET_DELETED,
                    messages.rolling_back(t.key, vanished),
                    messages.alert_rolling_back(vanished),
                ),
            )
            return
        t.pace()
        t.warn(messages.target_not_found(kind, t.target, t.namespace))
        return
    problem = obs.target.selector_error or obs.config_error
    if problem:
        t.pace()
        t.warn(problem)
        return
    # a person's commands (docs/control.md), each consumed once; an abort ends the tick
    if _commands(t):
        return
    # steps 3-11
    if t.phase in INITIALIZING:
        _initialize(t)
        return
    t.act(Initialize())
    # step 12: shouldAdvance (a retry is a new run of the same revision)
    changed = _changed(t) or _held(t, "retry")
    if t.phase not in ADVANCING and not changed:
        if t.phase == Phase.FAILED:
            _refresh_failed(t)
        return
    # step 14
    if not canary.skip_analysis():
        if not obs.primary.ready and not _primary_idle(t):
            _primary_not_ready(t)
            return
        if obs.primary.ready:
            t.clear_wait(waits.PRIMARY_NOT_READY, waits.PROMOTION_STUCK)
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
    if _held(t, "pause", "set-weight"):
        # held by a person: nothing moves, and no wait runs (its deadline starts again on resume)
        t.clear_wait(*ALL_WAITS)
        t.pace()
        return
    # step 18
    if not obs.canary.ready:
        reason = messages.canary_not_ready(t.kind, t.target, t.namespace, obs.canary.message)
        expired = t.waiting(waits.CANARY_NOT_READY, message=reason)
        if obs.canary.retriable and not expired:
            t.pace()
            t.warn(reason)
        else:
            _rollback(t, _deadline_ending(t, waits.CANARY_NOT_READY, reason))
        return
    t.clear_wait(waits.CANARY_NOT_READY)
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
    """A new revision (or configs). After a failed promotion the primary does not run the promoted spec:
    going back to it is a new revision too (it must reach the primary)."""
    assert t.obs.target is not None
    return revision_changed(
        t.obs.target.revision,
        t.obs.tracked_configs,
        last_applied=t.status.last_applied_spec,
        last_promoted="" if _failed_promotion(t) else t.status.last_promoted_spec,
        tracked=t.status.tracked_configs,
    )


def _failed_promotion(t: Tick) -> bool:
    """A run that ended with a failed promotion: Failed with the traffic on the canary (weight 100)."""
    return t.phase == Phase.FAILED and t.status.canary_weight >= FULL


def _primary_idle(t: Tick) -> bool:
    """The primary gets no traffic (after a failed promotion the routes send all of it to the canary):
    its readiness does not hold a run back outside the promotion, and the run's promotion will replace it.
    Not for A/B testing, whose 0/100 split still sends unmatched requests to the primary."""
    routes = t.obs.routes
    return (
        routes is not None
        and routes.primary == 0
        and routes.canary >= FULL
        and t.obs.router.weights
        and t.canary.strategy() != Strategy.AB_TESTING
        and t.phase not in (Phase.PROMOTING, Phase.FINALISING)
    )


def _primary_not_ready(t: Tick) -> None:
    """Step 14: the primary is not ready. Promoting or Finalising: the promotion waits (PromotionStuck),
    then fails; in a run: the run waits (PrimaryNotReady), then rolls back; at rest: warn once per
    interval (a non-retriable primary rolls back, as Flagger)."""
    obs = t.obs
    reason = messages.primary_not_ready(t.canary.primary_name(), t.namespace, obs.primary.message)
    if t.phase in (Phase.PROMOTING, Phase.FINALISING):
        expired = t.waiting(waits.PROMOTION_STUCK, message=reason)
        if obs.primary.retriable and not expired:
            t.pace()
            t.warn(reason)
        else:
            wait = t.waited
            since = wait.since if wait is not None and obs.primary.retriable else None
            text = messages.primary_deadline(reason, int(t.deadline_s)) if obs.primary.retriable else reason
            _fail_promotion(t, text, since=since)
        return
    in_run = t.phase in ADVANCING
    expired = t.waiting(waits.PRIMARY_NOT_READY, message=reason) if in_run else False
    if obs.primary.retriable and not expired:
        t.pace()
        t.warn(reason)
        return
    _rollback(t, _deadline_ending(t, waits.PRIMARY_NOT_READY, reason))


def _deadline_ending(t: Tick, cause: str, reason: str) -> Ending:
    """Flagger's progress-deadline Warning and alert ("Rolling back podinfo.test progress deadline exceeded
    <reason>"), typed with ``cause``; ``since`` when canarist's own deadline of the wait ran out."""
    wait = t.waited
    since = wait.since if wait is not None and wait.reason == cause else None
    return Ending(
        cause,
        messages.deadline_exceeded(t.key, reason),
        messages.alert_deadline_exceeded(reason),
        since=since,
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


# ---------------------------------------------------------------------------------------------- commands


def _held(t: Tick, *actions: str) -> bool:
    hold = t.status.hold
    return hold is not None and hold.action in actions


def _commands(t: Tick) -> bool:
    """Consume the pending commands, oldest first (docs/control.md). Each is recorded in
    ``status.commands`` with this decision's status write, so it is never applied twice. Returns True when
    one ended the tick (an abort rolls back)."""
    for command in t.obs.commands:
        if t.status.consumed(command.uid):
            continue
        revision = t.obs.target.revision if t.obs.target is not None else t.status.last_applied_spec
        why = commands.refusal(
            command,
            phase=t.status.phase,
            hold=t.status.hold,
            weights=t.obs.router.weights,
            revision=t.status.last_applied_spec or revision,
            ab_testing=t.canary.strategy() == Strategy.AB_TESTING,
        )
        if why is not None:
            t.consume(commands.record(command, REFUSED, why, t.obs.now))
            t.warn(commands.refused_event(t.key, command, why))
            continue
        t.urgent = True
        if command.action == "abort":
            _abort(t, command)
            return True
        _apply_command(t, command)
    return False


def _apply_command(t: Tick, command: Command) -> None:
    now = t.obs.now
    weight = t.status.canary_weight
    if command.action == "pause":
        t.status.set_hold(Hold.asked(command, now, weight))
        effect = f"held at weight {weight} until resumed"
    elif command.action == "resume":
        t.status.set_hold(None)
        effect = f"resumed at weight {weight}"
    elif command.action == "set-weight":
        weight = command.weight if command.weight is not None else weight
        t.status.set_hold(Hold.asked(command, now, weight))
        t.route(Routes(primary=FULL - weight, canary=weight))
        t.set_weight(weight)
        effect = f"canary weight set to {weight} and held until resumed"
    elif command.action == "promote":
        t.status.set_hold(Hold.asked(command, now))
        effect = (
            "promoting now, without the confirm-promotion gates"
            if command.force
            else "promoting now (the confirm-promotion gates still apply)"
        )
    else:  # retry
        t.status.set_hold(Hold.asked(command, now))
        effect = f"starting a new run of revision {t.status.last_applied_spec}"
    t.consume(commands.record(command, APPLIED, effect, now))
    t.event(commands.applied_event(t.key, command, effect))
    t.act(
        Alert(commands.applied_event(t.key, command, effect), "info", fields=commands.alert_fields(command))
    )


def _abort(t: Tick, command: Command) -> None:
    """``abort``: roll the run back now (cause Aborted), saying who asked and why."""
    effect = f"rolled back at weight {t.status.canary_weight}"
    t.consume(commands.record(command, APPLIED, effect, t.obs.now))
    if t.obs.target is not None:
        t.act(Initialize())
    text = commands.applied_event(t.key, command, "rolling back")
    _rollback(
        t,
        Ending(
            waits.ABORTED,
            text,
            commands.applied_event(t.key, command, effect),
            with_metadata=False,
        ),
        fields=commands.alert_fields(command),
    )


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
        reason = messages.primary_not_ready(canary.primary_name(), t.namespace, obs.primary.message)
        if obs.primary.retriable:
            t.warn(reason)
        else:
            _rollback(t, _deadline_ending(t, waits.PRIMARY_NOT_READY, reason))
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
            expired = _gate_closed(
                t, hook.name, WebhookType.CONFIRM_ROLLOUT, messages.waiting_for_approval(t.key, hook.name)
            )
            if t.phase != Phase.WAITING:
                t.set_phase(Phase.WAITING)
                t.warn(messages.waiting_for_approval(t.key, hook.name))
                if not hook.mute_alert:
                    t.alert(messages.ALERT_WAITING_FOR_APPROVAL, "warn")
            elif expired is not None:
                _rollback(t, expired)
            return
        t.event(messages.confirm_rollout_passed(hook.name))
    t.event(messages.new_revision(t.target_key), phase=Phase.PROGRESSING)
    t.alert(messages.ALERT_NEW_REVISION, "info", with_metadata=True)
    t.act(ScaleUpTarget())
    t.sync(Phase.PROGRESSING)
    t.start_wait(waits.CANARY_NOT_READY, message=messages.WAITING_FOR_CANARY)


def _restart(t: Tick) -> None:
    """Step 17: the target changed during the analysis: start over from zero traffic."""
    t.event(messages.restarting_analysis(t.target_key))
    t.sync(Phase.PROGRESSING)
    t.start_wait(waits.CANARY_NOT_READY, message=messages.WAITING_FOR_CANARY)
    t.route(ALL_TO_PRIMARY)


def _gate_closed(t: Tick, hook: str, gate_type: str, message: str) -> Ending | None:
    """A closed gate: the run waits (GateClosed); the ending when the wait ran out, else None."""
    if not t.waiting(waits.GATE_CLOSED, check=hook, message=message):
        return None
    wait = t.waited
    what = messages.gate_closed_expired(gate_type, hook, int(t.deadline_s))
    return Ending(
        waits.GATE_CLOSED,
        messages.deadline_exceeded(t.key, what),
        messages.alert_deadline_exceeded(what),
        since=wait.since if wait is not None else None,
        check=hook,
    )


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


class _Outcome:
    """What an analysis step's checks came to (besides an :class:`Ending`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


PASS = _Outcome("PASS")
#: a check failed: failedChecks + 1
FAIL = _Outcome("FAIL")
#: the step waits (no data held, a provider error): no failed check, no progress
HOLD = _Outcome("HOLD")

Outcome = _Outcome | Ending


def _analysis_step(t: Tick, routes: Routes) -> None:
    """Steps 20 and 23-27: rollback hooks, threshold, pre-rollout or analysis, then the strategy's step.

    The step's waits (a closed gate, a failing pre-rollout hook, a metric held for data or erring) are
    declared again by each step that still has them: a step that gets past them ends them."""
    t.clear_wait(*waits.ANALYSIS_WAITS)
    if _rollback_requested(t):
        return
    hold = t.status.hold
    if hold is not None and hold.action == "promote":
        # promote: the remaining steps are skipped; confirm-promotion still gates it unless forced
        if hold.force or _confirm_promotion(t):
            _take_step(t, PromoteStep())
        return
    if t.status.failed_checks >= t.canary.threshold():
        _rollback(t)
        return
    outcome = _pre_rollout(t) if _first_step(t, routes) else _run_analysis(t)
    if outcome is HOLD:
        return
    if isinstance(outcome, Ending):
        if outcome.cause == waits.WEBHOOK_FAILING:
            t.set_failed_checks(t.status.failed_checks + 1)  # the failing hook is a failed check too
        _rollback(t, outcome)
        return
    if outcome is FAIL:
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
        if not t.committed and t.record.routes is None and _first_step(t, routes):
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
            _rollback(t, Ending(waits.ROLLBACK_REQUESTED))
            return True
        t.event(messages.rollback_hook_not_signaling(hook.name))
    return False


def _pre_rollout(t: Tick) -> Outcome:
    """Step 25, first tick of a run: announce it and run the pre-rollout hooks. A failing hook is a failed
    check, and the first step waits for it (WebhookFailing) until the progress deadline."""
    t.event(messages.starting_analysis(t.target_key))
    for hook in checks.webhooks(t.canary, WebhookType.PRE_ROLLOUT):
        result = t.ask(checks.webhook_check(hook, Phase.PROGRESSING))
        if not result.passed:
            t.warn(messages.pre_rollout_failed(t.key, hook.name, result.message))
            if t.waiting(waits.WEBHOOK_FAILING, check=hook.name, message=result.message):
                what = messages.webhook_failing_expired(hook.name, int(t.deadline_s), result.message)
                return _expired(t, waits.WEBHOOK_FAILING, what, hook.name)
            return FAIL
        t.event(messages.pre_rollout_passed(hook.name))
    return PASS


def _run_analysis(t: Tick) -> Outcome:
    """Step 25, later ticks: rollout hooks, then metrics; the first check that does not pass stops the
    analysis. A metric without data fails (``noData: fail``, Flagger's) or holds the step (``hold``); a
    metric whose provider errs holds it, up to ``maxProviderErrors`` in a row. A dry-run metric is asked
    and recorded like the others, but never stops the analysis: a Normal event says what it would have
    done."""
    for hook in checks.webhooks(t.canary, WebhookType.ROLLOUT):
        result = t.ask(checks.webhook_check(hook, Phase.PROGRESSING))
        if not result.passed:
            t.warn(messages.external_check_failed(t.key, hook.name, result.message))
            return FAIL
    for metric in checks.metrics(t.canary):
        check = checks.metric_check(metric)
        result = t.ask(check)
        if metric.dry_run:
            t.status.ledger.mark_dry_run(check)
            if not result.passed:
                t.event(_dry_run_message(t, metric, result))
            continue
        if result.passed:
            continue
        if result.outcome == "error":
            return _provider_error(t, metric, result.message)
        if result.outcome == "no_data" and metric.no_data_policy() == "hold":
            return _hold_for_data(t, metric)
        t.warn(result.message or messages.metric_no_data(metric.name))
        return FAIL
    return PASS


def _dry_run_message(t: Tick, metric: CanaryMetric, result: CheckResult) -> str:
    """What a dry-run metric that did not pass would have done to the step."""
    if result.outcome == "error":
        return messages.dry_run_provider_error(t.key, metric.name, result.message)
    message = result.message or messages.metric_no_data(metric.name)
    if result.outcome == "no_data" and metric.no_data_policy() == "hold":
        return messages.dry_run_held_for_data(t.key, metric.name, message)
    return messages.dry_run_halted(t.key, metric.name, message)


def _hold_for_data(t: Tick, metric: CanaryMetric) -> Outcome:
    """``noData: hold``: the step waits for data (NoData), without a failed check, up to the deadline."""
    if t.waiting(waits.NO_DATA, check=metric.name, message=messages.metric_no_data(metric.name)):
        what = messages.no_data_expired(metric.name, int(t.deadline_s))
        return _expired(t, waits.NO_DATA, what, metric.name)
    left = _seconds_left(t)
    t.warn(messages.holding_no_data(t.key, metric.name, left))
    return HOLD


def _provider_error(t: Tick, metric: CanaryMetric, error: str) -> Outcome:
    """The metric's provider could not answer: the step waits (ProviderErrors), without a failed check.
    The run ends at the error past ``maxProviderErrors`` in a row, or at the deadline."""
    limit = t.canary.max_provider_errors()
    entry = t.status.entry_wait
    count = (entry.provider_errors if entry is not None and entry.reason == waits.PROVIDER_ERRORS else 0) + 1
    expired = t.waiting(waits.PROVIDER_ERRORS, check=metric.name, message=error, provider_errors=count)
    if count > limit:
        what = messages.provider_errors_exhausted(metric.name, count, limit, error)
        wait = t.waited
        return Ending(
            waits.PROVIDER_ERRORS,
            messages.rolling_back(t.key, what),
            what,
            since=wait.since if wait is not None else None,
            check=metric.name,
        )
    if expired:
        what = messages.provider_errors_expired(metric.name, int(t.deadline_s), error)
        return _expired(t, waits.PROVIDER_ERRORS, what, metric.name)
    t.warn(messages.provider_error(t.key, metric.name, count, limit, error))
    return HOLD


def _expired(t: Tick, cause: str, what: str, check: str) -> Ending:
    """The wait for ``check`` ran out: "Rolling back podinfo.test progress deadline exceeded <what>"."""
    wait = t.waited
    return Ending(
        cause,
        messages.deadline_exceeded(t.key, what),
        messages.alert_deadline_exceeded(what),
        since=wait.since if wait is not None else None,
        check=check,
    )


def _seconds_left(t: Tick) -> int:
    deadline = t.wait_deadline
    return max(0, int((deadline - t.obs.now).total_seconds())) if deadline is not None else 0


def _confirm_traffic_increase(t: Tick) -> bool:
    for hook in checks.webhooks(t.canary, WebhookType.CONFIRM_TRAFFIC_INCREASE):
        if not t.ask(checks.webhook_check(hook, Phase.PROGRESSING)).passed:
            message = messages.waiting_for_traffic_increase(t.key, hook.name)
            expired = _gate_closed(t, hook.name, WebhookType.CONFIRM_TRAFFIC_INCREASE, message)
            if expired is not None:
                _rollback(t, expired)
                return False
            t.warn(message)
            if not hook.mute_alert:
                t.alert(messages.ALERT_WAITING_FOR_TRAFFIC_INCREASE, "warn")
            return False
        t.event(messages.confirm_traffic_increase_passed(hook.name))
    return True


def _confirm_promotion(t: Tick) -> bool:
    for hook in checks.webhooks(t.canary, WebhookType.CONFIRM_PROMOTION):
        if not t.ask(checks.webhook_check(hook, Phase.PROGRESSING)).passed:
            message = messages.waiting_for_promotion(t.key, hook.name)
            expired = _gate_closed(t, hook.name, WebhookType.CONFIRM_PROMOTION, message)
            if expired is not None:
                _rollback(t, expired)
            elif t.phase != Phase.WAITING_PROMOTION:
                t.set_phase(Phase.WAITING_PROMOTION)
                t.warn(message)
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
        t.start_wait(waits.PROMOTION_STUCK, message=messages.WAITING_FOR_PRIMARY)


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
        Phase.SUCCEEDED,
        messages.ALERT_PROMOTION_COMPLETED,
        at=t.obs.now,
        threshold=t.canary.threshold(),
        cause=waits.SUCCEEDED,
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
        Phase.SUCCEEDED,
        messages.ALERT_PROMOTION_SKIPPED,
        at=t.obs.now,
        threshold=t.canary.threshold(),
        cause=waits.ANALYSIS_SKIPPED,
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


def _rollback(t: Tick, ending: Ending | None = None, *, fields: tuple[tuple[str, str], ...] = ()) -> None:
    """Flagger's rollback: route everything to the primary, scale the canary down, mark the run Failed.

    ``ending`` says why when it is not the failed checks threshold: its Warning and alert come first (a
    canary past its progress deadline: Flagger rolls back silently there; canarist says why, with the
    event and alert Flagger has for it), typed with its cause (the ``Ended`` condition, the ledger's end).
    A primary that gets no traffic and is not ready (after a failed promotion) does not get it back: the
    traffic stays on the canary. The decision is committed: recorded with all its side effects before the
    first of them.
    """
    t.commit()
    threshold = t.canary.threshold()
    cause = ending.cause if ending is not None else _rollback_cause(t)
    reason = ending.alert if ending is not None and ending.alert else _rollback_reason(t)
    end = t.status.end_run(
        Phase.FAILED,
        reason,
        at=t.obs.now,
        threshold=threshold,
        cause=cause,
        since=ending.since if ending is not None else None,
        check=ending.check if ending is not None else "",
    )
    evidence = ledger.alert_fields(end.evidence) if end.evidence is not None else ()
    if ending is not None and ending.warning:
        t.warn(ending.warning)
    if ending is not None and ending.alert:
        alert_fields = ending.fields() + fields + (evidence if ending.check else ())
        t.act(Alert(ending.alert, "error", with_metadata=ending.with_metadata, fields=alert_fields))
    if t.status.failed_checks >= threshold and t.phase != Phase.WAITING:
        t.warn(messages.threshold_reached(t.key, t.status.failed_checks))
        # Flagger's alert text, with the evidence of the check that failed last as its fields
        t.act(Alert(messages.alert_threshold_reached(t.status.failed_checks), "error", fields=evidence))
    keep_on_canary = not t.obs.primary.ready and _primary_idle(t)
    t.route(ALL_TO_CANARY if keep_on_canary else ALL_TO_PRIMARY)
    t.warn(messages.canary_failed(t.key), phase=Phase.FAILED)
    if not keep_on_canary:
        t.act(ScaleDownTarget())
    t.sync(
        Phase.FAILED,
        weight=FULL if keep_on_canary else 0,
        failed_checks=t.status.failed_checks,
        iterations=t.status.iterations,
    )
    t.act(CountOutcome("failure", "completed"))
    t.act(RunPostRollout(Phase.FAILED))


def _rollback_cause(t: Tick) -> str:
    if t.status.failed_checks >= t.canary.threshold():
        return waits.FAILED_CHECKS
    return waits.PRIMARY_NOT_READY if not t.obs.primary.ready else waits.FAILED_CHECKS


def _rollback_reason(t: Tick) -> str:
    """Why the run ends, for the ledger (``status.ledger.end.reason``), in the words of its alert."""
    last = t.status.ledger.entries[-1] if t.status.ledger.entries else None
    if last is not None and last.type == WebhookType.ROLLBACK and last.verdict == "pass":
        return messages.ALERT_MANUAL_ROLLBACK
    if t.status.failed_checks >= t.canary.threshold():
        return messages.alert_threshold_reached(t.status.failed_checks)
    if not t.obs.primary.ready:
        return messages.primary_not_ready(t.canary.primary_name(), t.namespace, t.obs.primary.message)
    return "rolled back"


def _fail_promotion(t: Tick, reason: str, *, since: datetime | None = None) -> None:
    """``handleFailedPromotion``: the primary cannot roll out; keep the traffic on the healthy canary
    (PromotionStuck; ``since``: when the promotion started, if canarist's own deadline ran out)."""
    t.warn(messages.promotion_failed(t.target_key, reason))
    t.commit()
    alert = messages.alert_promotion_failed(reason)
    t.status.end_run(
        Phase.FAILED,
        alert,
        at=t.obs.now,
        threshold=t.canary.threshold(),
        cause=waits.PROMOTION_STUCK,
        since=since,
    )
    t.act(Alert(alert, "error", fields=Ending(waits.PROMOTION_STUCK, since=since).fields()))
    t.route(ALL_TO_CANARY)
    t.sync(Phase.FAILED, weight=FULL, failed_checks=t.status.failed_checks, iterations=t.status.iterations)
    t.act(CountOutcome("failure", "completed"))
    t.act(RunPostRollout(Phase.FAILED))
