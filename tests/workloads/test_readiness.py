"""Deployment readiness with Flagger's exact messages, and the scaling helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from canarist.engine.model import Readiness
from canarist.workloads.deployment import readiness, ready_threshold_replicas, scale_up_replicas, scaled

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
W = "waiting for rollout to finish: "


def dep(
    replicas: int = 2,
    *,
    generation: int = 3,
    observed: int = 3,
    updated: int = 2,
    total: int = 2,
    available: int = 2,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo-primary", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": conditions or [],
        },
    }


def check(obj: dict[str, Any] | None, threshold: int = 100, deadline: int = 600, **kw: Any) -> Readiness:
    return readiness(obj, ready_threshold_pct=threshold, progress_deadline_s=deadline, now=NOW, **kw)


PROGRESSING = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}


def unavailable(since: str) -> dict[str, Any]:
    return {
        "type": "Available",
        "status": "False",
        "reason": "MinimumReplicasUnavailable",
        "lastUpdateTime": since,
    }


def test_ready() -> None:
    assert check(dep()) == Readiness(ready=True)


def test_missing_or_status_less() -> None:
    assert check(None) == Readiness(False, True, W + "0 out of 1 new replicas have been updated")
    assert check(None, expected_replicas=3) == Readiness(
        False, True, W + "0 out of 3 new replicas have been updated"
    )
    fresh = {"metadata": {"name": "p", "generation": 1}, "spec": {"replicas": 2}}
    assert check(fresh) == Readiness(False, True, W + "0 out of 2 new replicas have been updated")


def test_generation() -> None:
    assert check(dep(generation=4, observed=3)) == Readiness(
        False, True, W + "observed deployment generation less than desired generation"
    )


def test_updated_replicas() -> None:
    assert check(dep(3, updated=1, total=3)).message == W + "1 out of 3 new replicas have been updated"


def test_old_replicas_pending() -> None:
    assert check(dep(2, updated=2, total=3)).message == W + "1 old replicas are pending termination"


def test_available_below_threshold() -> None:
    assert check(dep(4, updated=4, total=4, available=3)) == Readiness(
        False, True, W + "3 of 4 (readyThreshold 100%) updated replicas are available"
    )
    # 50% of 4 updated = 2: three available is enough
    assert check(dep(4, updated=4, total=4, available=3), threshold=50).ready
    assert check(dep(4, updated=4, total=4, available=1), threshold=50).message == (
        W + "1 of 2 (readyThreshold 50%) updated replicas are available"
    )


def test_threshold_uses_float32_floor() -> None:
    assert ready_threshold_replicas(3, 100) == 3
    assert ready_threshold_replicas(3, 50) == 1
    assert ready_threshold_replicas(10, 10) == 1
    assert ready_threshold_replicas(0, 100) == 0


def test_progress_deadline_exceeded_condition() -> None:
    stuck = dep(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
    assert check(stuck) == Readiness(
        False, False, 'deployment "podinfo-primary" exceeded its progress deadline'
    )


def test_minimum_replicas_unavailable_past_the_canary_deadline() -> None:
    old = dep(2, updated=1, total=2, conditions=[PROGRESSING, unavailable("2024-05-01T11:50:00Z")])
    assert check(old, deadline=60) == Readiness(False, False, W + "1 out of 2 new replicas have been updated")
    assert check(old, deadline=900).retriable
    recent = dep(2, updated=1, total=2, conditions=[PROGRESSING, unavailable("2024-05-01T11:59:30Z")])
    assert check(recent, deadline=60).retriable
    # the rule holds without a Progressing condition too (a simulated cluster may not write one)
    alone = dep(2, updated=1, total=2, conditions=[unavailable("2024-05-01T11:50:00Z")])
    assert not check(alone, deadline=60).retriable
    # a deployment that is fully rolled out is ready even with an old unavailable condition
    done = dep(2, conditions=[PROGRESSING, unavailable("2024-05-01T11:50:00Z")])
    assert check(done, deadline=60) == Readiness(ready=True)


def test_scaling() -> None:
    assert scaled({"spec": {"replicas": 0}}, 3) == {"spec": {"replicas": 3}}
    target = {"spec": {"replicas": 0}}
    assert scale_up_replicas({"spec": {"replicas": 4}}, None, None) == 4
    assert scale_up_replicas(target, {"spec": {"replicas": 3}}, None) == 3
    assert scale_up_replicas(target, None, None) == 1
    hpa = {"kind": "HorizontalPodAutoscaler", "spec": {"minReplicas": 2}}
    assert scale_up_replicas(target, {"spec": {"replicas": 3}}, hpa) == 2
    assert (
        scale_up_replicas(target, None, {"kind": "HorizontalPodAutoscaler", "spec": {"minReplicas": 1}}) == 1
    )
    assert scale_up_replicas(target, None, {"kind": "ScaledObject", "spec": {"minReplicaCount": 5}}) == 5
    assert scale_up_replicas(target, {"spec": {"replicas": 3}}, None, has_autoscaler=True) == 1
