"""The primary HorizontalPodAutoscaler ``<hpa>-primary`` (autoscaling/v2, Flagger's ``hpa_reconciler.go``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarist.api import Canary
from canarist.workloads._meta import (
    Obj,
    controller_ref,
    deep,
    filter_metadata,
    managed_annotations,
    set_metadata_map,
)

PRIMARY_SUFFIX = "-primary"


def primary_hpa_spec(canary: Canary, hpa: Mapping[str, Any], primary_name: str) -> Obj:
    """scaleTargetRef → the primary (same kind/apiVersion), min/max/metrics/behavior copied, then the
    ``autoscalerRef.primaryScalerReplicas`` overrides applied."""
    spec = hpa.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    out: Obj = {
        "scaleTargetRef": {
            "apiVersion": ref.get("apiVersion", "apps/v1"),
            "kind": ref.get("kind", "Deployment"),
            "name": primary_name,
        },
    }
    if spec.get("minReplicas") is not None:
        out["minReplicas"] = spec["minReplicas"]
    out["maxReplicas"] = spec.get("maxReplicas", 0)
    for key in ("metrics", "behavior"):
        if spec.get(key) is not None:
            out[key] = deep(spec[key])
    autoscaler = canary.spec.autoscaler_ref
    overrides = autoscaler.primary_scaler_replicas if autoscaler is not None else None
    if overrides is not None:
        if overrides.min_replicas is not None:
            out["minReplicas"] = overrides.min_replicas
        if overrides.max_replicas is not None:
            out["maxReplicas"] = overrides.max_replicas
    return out


def build_primary_hpa(canary: Canary, hpa: Mapping[str, Any], primary_name: str) -> Obj:
    """The primary HPA ``<autoscalerRef.name>-primary``; metadata = the HPA's labels/annotations without
    toolkit keys, plus the Flux opt-out annotations.

    The same object is the desired state for updates (:func:`hpa_needs_update`, :func:`hpa_update`).
    Flagger filters labels by ``-include-label-prefix`` on update but not on create, and compares against
    the unfiltered source, which re-writes the HPA on every Promoting tick; canarist uses one rule.
    """
    meta = hpa.get("metadata") or {}
    name = (canary.spec.autoscaler_ref.name if canary.spec.autoscaler_ref else meta.get("name", "")) or ""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": f"{name}{PRIMARY_SUFFIX}",
            "namespace": canary.metadata.namespace or meta.get("namespace", ""),
            "labels": filter_metadata(meta.get("labels")),
            "annotations": managed_annotations(meta.get("annotations")),
            "ownerReferences": [controller_ref(canary)],
        },
        "spec": primary_hpa_spec(canary, hpa, primary_name),
    }


def _min(spec: Mapping[str, Any]) -> int:
    value = spec.get("minReplicas")
    return int(value) if value is not None else 1


def hpa_needs_update(observed: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Outside init mode: update when metrics, behavior, min (default 1), max, labels or annotations differ."""
    o_spec = observed.get("spec") or {}
    d_spec = desired.get("spec") or {}
    o_meta = observed.get("metadata") or {}
    d_meta = desired.get("metadata") or {}
    return (
        (o_spec.get("metrics") or None) != (d_spec.get("metrics") or None)
        or (o_spec.get("behavior") or None) != (d_spec.get("behavior") or None)
        or _min(o_spec) != _min(d_spec)
        or o_spec.get("maxReplicas") != d_spec.get("maxReplicas")
        or (o_meta.get("labels") or {}) != (d_meta.get("labels") or {})
        or (o_meta.get("annotations") or {}) != (d_meta.get("annotations") or {})
    )


def hpa_update(observed: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj:
    """The observed primary HPA with the desired min/max/metrics/behavior, labels and annotations."""
    out: Obj = deep(dict(observed))
    spec = out.setdefault("spec", {})
    d_spec = desired.get("spec") or {}
    for key in ("minReplicas", "maxReplicas", "metrics", "behavior"):
        if key in d_spec:
            spec[key] = deep(d_spec[key])
        else:
            spec.pop(key, None)
    meta = out.setdefault("metadata", {})
    d_meta = desired.get("metadata") or {}
    set_metadata_map(meta, "labels", d_meta.get("labels") or {})
    set_metadata_map(meta, "annotations", d_meta.get("annotations") or {})
    return out
