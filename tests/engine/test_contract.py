"""decide() called directly: the questions it asks, determinism, and the shape of decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from canarist.api import Canary
from canarist.engine import (
    Check,
    CheckResult,
    Decision,
    EngineSettings,
    Initialize,
    NeedCheck,
    Observation,
    Readiness,
    Routes,
    TargetFacts,
    WriteStatus,
    decide,
)
from tests.engine.conftest import canary as seed_manifest

NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
PASS = CheckResult(ok=True)


def canary_in(phase: str, **status: Any) -> Canary:
    manifest = seed_manifest(
        status={
            "phase": phase,
            "lastAppliedSpec": "rev-2",
            "lastPromotedSpec": "rev-1",
            "trackedConfigs": {},
            "lastTransitionTime": "2024-01-01T11:59:00Z",
            **status,
        }
    )
    return Canary.model_validate(manifest)


def observe(**facts: Any) -> Observation:
    base: dict[str, Any] = {
        "now": NOW,
        "target": TargetFacts(kind="Deployment", name="podinfo", revision="rev-2", replicas=1),
        "tracked_configs": {},
        "config_error": None,
        "primary_exists": True,
        "primary": Readiness.ok(),
        "canary": Readiness.ok(),
        "routes": Routes(90, 10),
        "routes_error": None,
        "last_paced_at": None,
    }
    return Observation(**{**base, **facts})


def questions(canary: Canary, obs: Observation, answer: CheckResult = PASS) -> list[Check]:
    answers: dict[Check, CheckResult] = {}
    while isinstance(result := decide(canary, obs, answers, EngineSettings()), NeedCheck):
        answers[result.check] = answer
    return list(answers)


def test_analysis_questions_in_flaggers_order() -> None:
    canary = canary_in("Progressing", canaryWeight=10)
    assert questions(canary, observe()) == [
        Check("webhook", "load-test", "", "Progressing"),
        Check("metric", "request-success-rate"),
        Check("metric", "request-duration"),
    ]


def test_same_inputs_same_question() -> None:
    canary, obs = canary_in("Progressing", canaryWeight=10), observe()
    assert (
        decide(canary, obs, {})
        == decide(canary, obs, {})
        == NeedCheck(Check("webhook", "load-test", "", "Progressing"))
    )


def test_failed_hook_short_circuits_the_metrics() -> None:
    canary = canary_in("Progressing", canaryWeight=10)
    assert questions(canary, observe(), CheckResult(ok=False, message="boom")) == [
        Check("webhook", "load-test", "", "Progressing")
    ]


def test_not_due_keeps_only_the_reconcile() -> None:
    canary = canary_in("Progressing", canaryWeight=10)
    decision = decide(canary, observe(now=NOW - timedelta(seconds=45)), {})
    assert decision == Decision(
        actions=(Initialize(),), paced=False, next_due_at=datetime(2024, 1, 1, 11, 59, 30, tzinfo=UTC)
    )


def test_last_paced_at_defers_the_next_step() -> None:
    canary = canary_in("Progressing", canaryWeight=10)
    decision = decide(canary, observe(last_paced_at=NOW - timedelta(seconds=10)), {})
    assert isinstance(decision, Decision)
    assert not decision.paced
    assert decision.next_due_at == NOW + timedelta(seconds=20)


def test_a_paced_step_writes_one_complete_status() -> None:
    canary = canary_in("Progressing", canaryWeight=10, failedChecks=2, sessionAffinityCookie="c")
    answers = {q: CheckResult(ok=True) for q in questions(canary, observe())}
    decision = decide(canary, observe(), answers)
    assert isinstance(decision, Decision)
    assert decision.paced
    assert decision.next_due_at == NOW + timedelta(seconds=30)
    [write] = [a for a in decision.actions if isinstance(a, WriteStatus)]
    status = dict(write.status)
    assert status["canaryWeight"] == 15
    assert status["failedChecks"] == 2
    assert status["sessionAffinityCookie"] == "c"
    assert status["lastTransitionTime"] == "2024-01-01T12:00:00Z"
    assert status["conditions"][0]["reason"] == "Progressing"


def test_steady_state_reconciles_and_waits() -> None:
    decision = decide(canary_in("Succeeded", lastPromotedSpec="rev-2"), observe(), {})
    assert isinstance(decision, Decision)
    assert decision.actions == (Initialize(),)
    assert not decision.paced


def test_primary_takeover_waits_for_a_ready_primary() -> None:
    manifest = seed_manifest()
    not_ready = Readiness(
        False, message="waiting for rollout to finish: 0 out of 1 new replicas have been updated"
    )
    obs = observe(primary=not_ready, primary_exists=False, routes=None)
    canary = Canary.model_validate(manifest)
    decision = decide(
        canary, obs, {Check("providers"): CheckResult(ok=False, message="prometheus not avaiable: x")}
    )
    assert isinstance(decision, Decision)
    kinds = [type(a).__name__ for a in decision.actions]
    assert kinds == ["Event", "Initialize", "WriteStatus", "Event"]
    assert decision.actions[1] == Initialize(takeover=False)
    assert decision.actions[0].message == "Error checking metric providers: prometheus not avaiable: x"  # type: ignore[union-attr]


def test_finalising_follows_promoting_at_once() -> None:
    decision = decide(canary_in("Promoting", canaryWeight=50), observe(routes=Routes(50, 50)), {})
    assert isinstance(decision, Decision)
    assert decision.again
    assert not decision.paced


def test_non_retriable_primary_during_init_rolls_back() -> None:
    canary = Canary.model_validate(seed_manifest())
    stuck = Readiness(
        False, retriable=False, message='deployment "podinfo-primary" exceeded its progress deadline'
    )
    decision = decide(canary, observe(primary=stuck), {Check("providers"): CheckResult(ok=True)})
    assert isinstance(decision, Decision)
    messages = [a.message for a in decision.actions if hasattr(a, "message") and hasattr(a, "type")]
    assert messages == [
        "all the metrics providers are available!",
        # canarist says why (PrimaryNotReady), with Flagger's progress-deadline words: every end alerts
        "Rolling back podinfo.test progress deadline exceeded podinfo-primary.test not ready: "
        'deployment "podinfo-primary" exceeded its progress deadline',
        "Canary failed! Scaling down podinfo.test",
    ]
