"""The primary KEDA ScaledObject: what it copies, the trigger queries it rewrites or takes from
``primaryScalerQueries``, the HPA name, the replica overrides, updates, and the pause annotation."""

from __future__ import annotations

from typing import Any

from canarist.api import Canary
from canarist.workloads import scaledobject
from canarist.workloads.deployment import scale_up_replicas
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, OWNER

QUERY = 'sum(rate(http_requests_total{app="podinfo"}[2m]))'


def autoscaler(**extra: Any) -> dict[str, Any]:
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo-so", **extra}


def canary(**extra: Any) -> Canary:
    return podinfo.canary(autoscaler=autoscaler(**extra))


def target_so(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": "podinfo-so",
            "namespace": "test",
            "resourceVersion": "3",
            "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "annotations": {"team": "web", "autoscaling.keda.sh/paused-replicas": "0"},
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "pollingInterval": 10,
            "cooldownPeriod": 30,
            "minReplicaCount": 1,
            "maxReplicaCount": 4,
            "idleReplicaCount": 0,
            "fallback": {"failureReplicas": 2, "replicas": 3},
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "requests",
                    "metadata": {"serverAddress": "http://prometheus:9090", "query": QUERY, "threshold": "5"},
                },
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}},
            ],
            **spec,
        },
    }


def test_the_primary_scaledobject_targets_the_primary_and_copies_the_scaling_fields() -> None:
    built = scaledobject.build_primary_so(canary(), target_so())
    assert built["apiVersion"] == "keda.sh/v1alpha1"
    assert built["metadata"] == {
        "name": "podinfo-so-primary",
        "namespace": "test",
        "labels": {"app": "podinfo"},
        "annotations": {"team": "web", **FLUX},  # the target's pause is not the primary's
        "ownerReferences": [OWNER],
    }
    spec = built["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "podinfo-primary",
    }
    for key, value in {
        "pollingInterval": 10,
        "cooldownPeriod": 30,
        "minReplicaCount": 1,
        "maxReplicaCount": 4,
        "idleReplicaCount": 0,
        "fallback": {"failureReplicas": 2, "replicas": 3},
    }.items():
        assert spec[key] == value, key
    assert (
        spec["triggers"][0]["metadata"]["query"]
        == 'sum(rate(http_requests_total{app="podinfo-primary"}[2m]))'
    )
    assert spec["triggers"][0]["metadata"]["serverAddress"] == "http://prometheus:9090"
    assert spec["triggers"][1] == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}
    assert "advanced" not in spec


def test_queries_are_rewritten_for_the_primary() -> None:
    cases = {
        'x{app="podinfo"}': 'x{app="podinfo-primary"}',
        'x{app="podinfo-canary"}': 'x{app="podinfo-primary"}',
        'x{app="podinfo-canary", svc="podinfo"}': 'x{app="podinfo-primary", svc="podinfo-primary"}',
        'x{app="other"}': 'x{app="other"}',
    }
    for query, expected in cases.items():
        assert scaledobject.primary_query(query, "podinfo") == expected, query


def test_primary_scaler_queries_replace_the_named_triggers_only() -> None:
    primary = 'sum(rate(http_requests_total{app="podinfo-primary", env="prod"}[1m]))'
    subject = canary(primaryScalerQueries={"requests": primary})
    triggers = [
        *target_so()["spec"]["triggers"],
        {"type": "prometheus", "name": "other", "metadata": {"query": QUERY}},
    ]
    spec = scaledobject.primary_so_spec(subject, target_so(triggers=triggers))
    assert spec["triggers"][0]["metadata"]["query"] == primary
    assert spec["triggers"][2]["metadata"]["query"] == QUERY  # named by no entry: left as it is


def test_the_hpa_name_and_the_replica_overrides() -> None:
    subject = canary(primaryScalerReplicas={"minReplicas": 2, "maxReplicas": 8})
    so = target_so(
        advanced={
            "horizontalPodAutoscalerConfig": {"name": "podinfo-hpa"},
            "restoreToOriginalReplicaCount": True,
        }
    )
    spec = scaledobject.primary_so_spec(subject, so)
    assert spec["advanced"] == {
        "horizontalPodAutoscalerConfig": {"name": "podinfo-hpa-primary"},
        "restoreToOriginalReplicaCount": True,
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 8)
    assert so["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "podinfo-hpa"  # not mutated


def test_an_update_follows_the_target_and_keeps_the_primary_s_identity() -> None:
    subject = canary()
    existing = podinfo.stored(scaledobject.build_primary_so(subject, target_so()))
    assert scaledobject.so_update(existing, scaledobject.build_primary_so(subject, target_so())) is None
    changed = scaledobject.build_primary_so(subject, target_so(pollingInterval=20))
    updated = scaledobject.so_update(existing, changed)
    assert updated is not None
    assert updated["spec"]["pollingInterval"] == 20
    assert updated["metadata"]["resourceVersion"] == existing["metadata"]["resourceVersion"]
    assert updated["metadata"]["ownerReferences"] == [OWNER]


def test_pause_and_resume() -> None:
    running = target_so()
    del running["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"]
    assert scaledobject.pause_patch(running) == {
        "metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": "0"}}
    }
    assert scaledobject.resume_patch(running) is None
    paused = target_so()
    assert scaledobject.pause_patch(paused) is None
    assert scaledobject.resume_patch(paused) == {
        "metadata": {"annotations": {"autoscaling.keda.sh/paused-replicas": None}}
    }


def test_scaling_up_from_zero_uses_the_scaledobject_minimum() -> None:
    target = podinfo.deployment()
    target["spec"]["replicas"] = 0
    assert scale_up_replicas(target, None, target_so(minReplicaCount=3)) == 3
    assert scale_up_replicas(target, None, target_so(minReplicaCount=1)) == 1
