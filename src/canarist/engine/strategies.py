"""The three strategies (canary, A/B testing, blue/green, each optionally mirrored) as data.

A :class:`StrategyPlan` says how a run moves; :func:`next_step` turns it and the current progress into the
one :data:`Step` of an analysis tick that passed its checks. ``decide`` executes steps without knowing the
strategy: gates, routes, status and events follow from the step's type.

>>> next_step(plan, routes=Routes(95, 5), iterations=0)
ShiftWeight(routes=Routes(primary=90, canary=10, mirrored=False), weight=10)
"""

from __future__ import annotations

from dataclasses import dataclass

from canarist.api import Canary, Strategy
from canarist.engine import messages
from canarist.engine.model import EngineSettings, RouterCapabilities, Routes
from canarist.engine.weights import FULL, WeightPlan, advance, next_step_weight, weighted

#: iterations Flagger assumes for the kubernetes provider when the spec has none.
KUBERNETES_ITERATIONS = 10


@dataclass(frozen=True)
class StrategyPlan:
    """How a run of this canary moves traffic.

    ``routing`` is False for a router without weights, like the ``kubernetes`` provider (blue/green by
    switching the apex Service only); ``warnings`` are the events Flagger repeats on every analysis tick
    for that provider.
    """

    strategy: Strategy
    weights: WeightPlan
    iterations: int
    mirror: bool
    routing: bool = True
    warnings: tuple[str, ...] = ()

    @property
    def progressive(self) -> bool:
        return self.strategy == Strategy.CANARY


def plan_for(
    canary: Canary, settings: EngineSettings, router: RouterCapabilities | None = None
) -> StrategyPlan:
    """How this canary's run moves, given what the router can do (``router.weights``: without weights the
    run is blue/green without routing, with Flagger's ``kubernetes`` provider warnings)."""
    router = router or RouterCapabilities()
    analysis = canary.analysis()
    weights = WeightPlan(
        step_weight=analysis.step_weight if analysis else 0,
        step_weights=tuple(analysis.step_weights) if analysis else (),
        max_weight=canary.max_weight(),
        overshoot=settings.overshoot_max_weight,
    )
    mirror = bool(analysis and analysis.mirror)
    if router.weights:
        return StrategyPlan(canary.strategy(), weights, canary.iterations(), mirror)
    warnings: list[str] = []
    if analysis is not None and analysis.match:
        warnings.append(messages.KUBERNETES_NO_AB)
    iterations = canary.iterations()
    if iterations < 1:
        warnings += [messages.KUBERNETES_NO_PROGRESSIVE, messages.KUBERNETES_ITERATIONS]
        iterations = KUBERNETES_ITERATIONS
    return StrategyPlan(
        Strategy.BLUE_GREEN, weights, iterations, mirror, routing=False, warnings=tuple(warnings)
    )


# ---------------------------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class ShiftWeight:
    """Canary strategy: move ``weight`` percent to the canary (weight 0 with ``routes.mirrored``: the mirror step)."""

    routes: Routes
    weight: int


@dataclass(frozen=True)
class Iterate:
    """A/B and blue/green: one more iteration (``routes`` set first when given)."""

    iteration: int
    total: int
    routes: Routes | None = None


@dataclass(frozen=True)
class RouteAllToCanary:
    """Blue/green after the last iteration: all traffic to the canary and one more analysis round."""

    iteration: int
    message: str | None  # None: the provider does not route (kubernetes)


@dataclass(frozen=True)
class PromoteStep:
    """The analysis is complete: copy the canary to the primary."""


Step = ShiftWeight | Iterate | RouteAllToCanary | PromoteStep


def needs_promotion_gate(step: Step) -> bool:
    """Steps that only happen once confirm-promotion passes."""
    return isinstance(step, RouteAllToCanary | PromoteStep)


def needs_traffic_gate(plan: StrategyPlan, routes: Routes, waiting_promotion: bool) -> bool:
    """Flagger asks confirm-traffic-increase before any canary-strategy step (also the promoting one),
    except while the traffic is mirrored or promotion is waiting for approval."""
    return plan.progressive and not routes.mirrored and not waiting_promotion


def next_step(plan: StrategyPlan, *, routes: Routes, iterations: int) -> Step | None:
    """The step after a passing analysis, or None when the spec gives no way forward (stepWeight 0)."""
    if plan.strategy == Strategy.CANARY:
        return _canary_step(plan, routes)
    if plan.strategy == Strategy.AB_TESTING:
        if iterations < plan.iterations:
            return Iterate(iterations + 1, plan.iterations, routes=Routes(primary=0, canary=FULL))
        return PromoteStep()
    return _blue_green_step(plan, routes, iterations)


def _canary_step(plan: StrategyPlan, routes: Routes) -> Step | None:
    current = routes.canary
    if next_step_weight(plan.weights, current) <= 0:
        return None
    if current >= plan.weights.max_weight:
        return PromoteStep()
    if plan.mirror and current == 0 and not routes.mirrored:
        return ShiftWeight(Routes(primary=FULL, canary=0, mirrored=True), weight=0)
    weight = advance(plan.weights, current)
    return ShiftWeight(weighted(weight), weight=weight)


def _blue_green_step(plan: StrategyPlan, routes: Routes, iterations: int) -> Step:
    if iterations < plan.iterations:
        mirror_now = plan.routing and plan.mirror and not routes.mirrored
        start_mirror = Routes(primary=FULL, canary=0, mirrored=True) if mirror_now else None
        return Iterate(iterations + 1, plan.iterations, routes=start_mirror)
    if iterations == plan.iterations:
        if not plan.routing:
            return RouteAllToCanary(iterations + 1, message=None)
        message = messages.STOP_MIRRORING_ROUTE_ALL if plan.mirror else messages.ROUTE_ALL_TO_CANARY
        return RouteAllToCanary(iterations + 1, message=message)
    return PromoteStep()
