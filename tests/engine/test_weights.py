"""Weight ladders of the canary strategy (inventory §2.5), and canarist's cap at maxWeight."""

from __future__ import annotations

import pytest

from canarist.engine.model import Routes
from canarist.engine.weights import WeightPlan, ladder, next_step_weight, shift_back
from tests.engine.conftest import canary, initialized


@pytest.mark.parametrize(
    ("step_weight", "step_weights", "max_weight", "flagger", "capped"),
    [
        (20, (), 50, [20, 40, 60], [20, 40, 50]),
        (50, (), 100, [50, 100], [50, 100]),
        (5, (), 50, list(range(5, 55, 5)), list(range(5, 55, 5))),
        (0, (1, 2, 10, 80), 80, [1, 2, 10, 80], [1, 2, 10, 80]),
        (0, (1, 2, 10, 200), 100, [1, 2, 10, 100], [1, 2, 10, 100]),
        (30, (), 100, [30, 60, 90, 100], [30, 60, 90, 100]),
    ],
)
def test_ladders(
    step_weight: int, step_weights: tuple[int, ...], max_weight: int, flagger: list[int], capped: list[int]
) -> None:
    assert ladder(WeightPlan(step_weight, step_weights, max_weight, overshoot=True)) == flagger
    assert ladder(WeightPlan(step_weight, step_weights, max_weight)) == capped


def test_next_step_weight_off_the_ladder_jumps_to_the_rest() -> None:
    plan = WeightPlan(0, (1, 2, 10, 80), 80)
    assert next_step_weight(plan, 0) == 1
    assert next_step_weight(plan, 2) == 8
    assert next_step_weight(plan, 7) == 93  # not a rung: Flagger's maxStep
    assert next_step_weight(plan, 100) == 1


def test_fixed_step_weight_wins_over_the_ladder() -> None:
    assert next_step_weight(WeightPlan(10, (1, 2), 50), 0) == 10


def test_shift_back_clamps() -> None:
    assert shift_back(Routes(50, 50), 30) == Routes(80, 20)
    assert shift_back(Routes(80, 20), 30) == Routes(100, 0)


def test_step_weights_run_end_to_end() -> None:
    world = initialized(canary(stepWeight=None, maxWeight=None, stepWeights=[1, 2, 10, 80]))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    advances = [m.rsplit(" ", 1)[1] for m in world.messages() if "canary weight" in m]
    assert advances == ["1", "2", "10", "80"]


def test_capped_overshoot_end_to_end() -> None:
    world = initialized(canary(stepWeight=20))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    assert [s["canaryWeight"] for s in world.status_history if s["phase"] == "Progressing"] == [0, 20, 40, 50]
