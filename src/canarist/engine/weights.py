"""Traffic weights of the progressive (canary) strategy and of the promotion shift back.

Flagger's last step may overshoot ``maxWeight`` (stepWeight 20, maxWeight 50 → 20, 40, 60). canarist caps
the step at ``maxWeight`` (→ 20, 40, 50) unless ``overshoot`` asks for Flagger's exact ladder.

>>> ladder(WeightPlan(step_weight=20, step_weights=(), max_weight=50))
[20, 40, 50]
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from canarist.engine.model import Routes

FULL = 100


@dataclass(frozen=True)
class WeightPlan:
    """The weight settings of ``spec.analysis`` (``max_weight`` already resolved, see ``Canary.max_weight``)."""

    step_weight: int
    step_weights: tuple[int, ...]
    max_weight: int
    overshoot: bool = False


def next_step_weight(plan: WeightPlan, current: int) -> int:
    """The size of the next step from ``current`` (Flagger's nextStepWeight).

    A fixed ``stepWeight`` wins; otherwise the ladder ``stepWeights`` gives the distance to the next rung.
    """
    if plan.step_weight > 0 or not plan.step_weights:
        return plan.step_weight
    room = FULL - current
    if room == 0:
        return 1
    ladder_ = plan.step_weights
    if current == 0:
        return min(room, ladder_[0])
    for rung, next_rung in pairwise(ladder_):
        if current == rung:
            return min(room, next_rung - current)
    return room


def advance(plan: WeightPlan, current: int) -> int:
    """The canary weight after one step from ``current`` (only called while ``current < max_weight``)."""
    weight = min(FULL, current + next_step_weight(plan, current))
    if not plan.overshoot:
        weight = min(weight, plan.max_weight)
    return max(weight, 0)


def ladder(plan: WeightPlan) -> list[int]:
    """Every canary weight of a run, in order (for docs and tests)."""
    weights: list[int] = []
    current = 0
    while current < plan.max_weight and len(weights) <= FULL:
        current = advance(plan, current)
        weights.append(current)
    return weights


def weighted(canary_weight: int) -> Routes:
    """Routes with ``canary_weight`` percent on the canary and the rest on the primary, no mirror."""
    canary_weight = max(0, min(FULL, canary_weight))
    return Routes(primary=FULL - canary_weight, canary=canary_weight)


def shift_back(routes: Routes, step: int) -> Routes:
    """One step of the promotion traffic shift back to the primary (``stepWeightPromotion``)."""
    return Routes(primary=min(FULL, routes.primary + step), canary=max(0, routes.canary - step))
