"""Scenarios through canarist.simulate.run: the real engine, the operator's metric checks."""

from __future__ import annotations

from typing import Any

from canarist.simulate import Scenario, run
from tests.fixtures.canaries import canary_manifest


def canary(**overrides: Any) -> dict[str, Any]:
    return canary_manifest(**{"service": {"port": 9898}, **overrides})


def test_a_good_canary_promotes() -> None:
    manifest = canary()
    result = run(
        manifest, Scenario(metrics={"request-success-rate": [(0, 100.0)], "request-duration": [(0, 0.1)]})
    )
    assert result.phase == "Succeeded", result.timeline()
    assert result.weights[:1] != []
    assert max(result.weights) > 0
    assert result.failed_at is None
    assert result.succeeded_at is not None
    assert "Promotion completed!" in " ".join(result.messages)


def test_a_failing_metric_rolls_back() -> None:
    manifest = canary()
    scenario = Scenario(
        metrics={"request-success-rate": [(0, 100.0), (90, 50.0)], "request-duration": [(0, 0.1)]}
    )
    result = run(manifest, scenario)
    assert result.phase == "Failed", result.timeline()
    assert result.failed_at is not None
    assert result.failed_at == 365.0  # 65s: first step; from 95s a failed check every 30s, 10 of them
    assert result.weights == [5, 0]
    assert any("success rate 50.00% < 99%" in m for m in result.messages), result.messages


def test_scenario_file_format(tmp_path: Any) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "metrics:\n  request-success-rate:\n    - {from: 0, value: 100}\n  request-duration: 0.1\n"
        "revisions: [[60, rev-2]]\nduration: 3600\n"
    )
    scenario = Scenario.load(path)
    assert scenario.metrics["request-duration"] == [(0.0, 0.1)]
    assert run(canary(), scenario).phase == "Succeeded"


def test_no_data_fails_the_check_by_default() -> None:
    result = run(
        canary(),
        Scenario(metrics={"request-success-rate": [(0, 100.0), (90, None)], "request-duration": [(0, 0.1)]}),
    )
    assert result.phase == "Failed", result.timeline()
    assert any("no values found" in m for m in result.messages)


def test_a_failing_gate_webhook_holds_then_rolls_back() -> None:
    scenario = Scenario(
        metrics={"request-success-rate": [(0, 100.0)], "request-duration": [(0, 0.1)]},
        webhooks={"acceptance-test": [(0, False)]},
    )
    result = run(canary(), scenario)
    assert result.phase == "Failed", result.timeline()
    assert result.weights == [0]  # the pre-rollout hook failed: traffic never left the primary
