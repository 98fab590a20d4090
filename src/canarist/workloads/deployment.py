"""The Deployment primary: build, promote, readiness and scaling (inventory §2.4).

All functions are pure: observed objects and the clock come in as arguments, manifests go out.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from canarist.api import Canary
from canarist.engine.model import Readiness
from canarist.workloads._meta import (
    Obj,
    controller_ref,
    deep,
    filter_metadata,
    get_path,
    include_by_prefix,
)
from canarist.workloads.configs import rename_pod_spec_refs
from canarist.workloads.selector import DEFAULT_SELECTOR_LABELS

#: pod-template annotation set to a fresh id on every create/promote, forcing a rollout of the primary.
FLAGGER_ID = "flagger-id"
PRIMARY_SUFFIX = "-primary"
#: spec fields copied from the target to the primary on create and promote.
COPIED_SPEC_FIELDS = ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy")


def primary_labels(labels: Mapping[str, str] | None, label: str, value: str) -> dict[str, str]:
    """``labels`` with the selector label set to ``value`` (Flagger's makePrimaryLabels)."""
    out = {k: v for k, v in (labels or {}).items() if k != label}
    out[label] = value
    return out


def template_annotations(annotations: Mapping[str, str] | None, flagger_id: str) -> dict[str, str]:
    out = {k: v for k, v in (annotations or {}).items() if k != FLAGGER_ID}
    out[FLAGGER_ID] = flagger_id
    return out


def _suffix_selector(
    selector: dict[str, Any] | None, target_name: str, selector_labels: Collection[str]
) -> None:
    """Rename ``<selector label>: <target name>`` to ``<target name>-primary`` in a label selector."""
    if not isinstance(selector, dict):
        return
    for expression in selector.get("matchExpressions") or []:
        if expression.get("key") in selector_labels:
            values = expression.get("values") or []
            for i, value in enumerate(values):
                if value == target_name:
                    values[i] = target_name + PRIMARY_SUFFIX
                    break
    match_labels = selector.get("matchLabels") or {}
    for key, value in list(match_labels.items()):
        if key in selector_labels and value == target_name:
            match_labels[key] = target_name + PRIMARY_SUFFIX


def primary_pod_spec(
    target: Mapping[str, Any], configs_renamed: Collection[str], selector_labels: Collection[str]
) -> Obj:
    """The target's pod spec with config refs pointing at ``-primary`` copies, and topology spread /
    pod anti-affinity selectors that reference the target name renamed to ``<target>-primary``."""
    pod_spec = get_path(target, "spec", "template", "spec") or {}
    spec = rename_pod_spec_refs(pod_spec, configs_renamed)
    name = str(get_path(target, "metadata", "name") or "")
    for constraint in spec.get("topologySpreadConstraints") or []:
        _suffix_selector(constraint.get("labelSelector"), name, selector_labels)
    anti = get_path(spec, "affinity", "podAntiAffinity") or {}
    for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        _suffix_selector(get_path(term, "podAffinityTerm", "labelSelector"), name, selector_labels)
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        _suffix_selector(term.get("labelSelector"), name, selector_labels)
    return spec


def _template(
    target: Mapping[str, Any],
    selector_label: str,
    primary_value: str,
    flagger_id: str,
    configs_renamed: Collection[str],
    selector_labels: Collection[str],
) -> Obj:
    meta = get_path(target, "spec", "template", "metadata") or {}
    return {
        "metadata": {
            "labels": primary_labels(meta.get("labels"), selector_label, primary_value),
            "annotations": template_annotations(meta.get("annotations"), flagger_id),
        },
        "spec": primary_pod_spec(target, configs_renamed, selector_labels),
    }


def build_primary(
    canary: Canary,
    target: Mapping[str, Any],
    selector_label: str,
    selector_value: str,
    *,
    flagger_id: str,
    include_label_prefixes: Sequence[str] = (),
    configs_renamed: Collection[str] = frozenset(),
    selector_labels: Collection[str] = DEFAULT_SELECTOR_LABELS,
) -> Obj:
    """The primary Deployment ``<target>-primary`` created at initialization.

    ``flagger_id`` is the fresh id for the ``flagger-id`` pod annotation (a UUID in Flagger; the caller
    generates it). ``configs_renamed`` holds the ``configmap/<name>``/``secret/<name>`` keys of the tracked
    configs whose ``-primary`` copies exist.
    """
    meta = target.get("metadata") or {}
    spec = target.get("spec") or {}
    primary_value = f"{selector_value}{PRIMARY_SUFFIX}"
    replicas = spec.get("replicas")
    out_spec: Obj = {}
    for key in COPIED_SPEC_FIELDS:
        if spec.get(key) is not None:
            out_spec[key] = deep(spec[key])
    out_spec["replicas"] = replicas if isinstance(replicas, int) and replicas > 0 else 1
    out_spec["selector"] = {"matchLabels": {selector_label: primary_value}}
    out_spec["template"] = _template(
        target, selector_label, primary_value, flagger_id, configs_renamed, selector_labels
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": canary.primary_name(),
            "namespace": canary.metadata.namespace or meta.get("namespace", ""),
            "labels": primary_labels(
                include_by_prefix(meta.get("labels"), include_label_prefixes), selector_label, primary_value
            ),
            "annotations": filter_metadata(meta.get("annotations")),
            "ownerReferences": [controller_ref(canary)],
        },
        "spec": out_spec,
    }


def promote(
    canary: Canary,
    target: Mapping[str, Any],
    primary: Mapping[str, Any],
    selector_label: str,
    selector_value: str,
    *,
    flagger_id: str,
    include_label_prefixes: Sequence[str] = (),
    configs_renamed: Collection[str] = frozenset(),
    selector_labels: Collection[str] = DEFAULT_SELECTOR_LABELS,
) -> Obj:
    """The observed primary with the target's template and spec fields copied over (Flagger's Promote).

    Replicas are copied only when the canary has no autoscalerRef. Object labels and annotations come from
    the target, filtered by ``-include-label-prefix``; the selector label keeps ``<value>-primary``.
    The selector is never changed (it is immutable).
    """
    out: Obj = deep(dict(primary))
    spec = target.get("spec") or {}
    out_spec = out.setdefault("spec", {})
    primary_value = f"{selector_value}{PRIMARY_SUFFIX}"
    for key in COPIED_SPEC_FIELDS:
        if spec.get(key) is not None:
            out_spec[key] = deep(spec[key])
        else:
            out_spec.pop(key, None)
    if canary.spec.autoscaler_ref is None and spec.get("replicas") is not None:
        out_spec["replicas"] = spec["replicas"]
    out_spec["template"] = _template(
        target, selector_label, primary_value, flagger_id, configs_renamed, selector_labels
    )
    meta = target.get("metadata") or {}
    out_meta = out.setdefault("metadata", {})
    out_meta["annotations"] = include_by_prefix(meta.get("annotations"), include_label_prefixes)
    out_meta["labels"] = primary_labels(
        include_by_prefix(meta.get("labels"), include_label_prefixes), selector_label, primary_value
    )
    return out


# ---------------------------------------------------------------------------------------------- readiness


def _f32(value: float) -> float:
    """Round to IEEE single precision (Go's float32)."""
    result: float = struct.unpack("f", struct.pack("f", value))[0]
    return result


def ready_threshold_replicas(updated: int, threshold_pct: int) -> int:
    """``int32(float32(updated) * float32(threshold)/100)``, as Flagger computes it."""
    ratio = _f32(_f32(float(threshold_pct)) / 100.0)
    return int(_f32(_f32(float(updated)) * ratio))


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return condition  # type: ignore[no-any-return]
    return None


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp as the API server writes it (``2024-01-02T03:04:05Z``)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


WAITING = "waiting for rollout to finish: "


def readiness(
    deployment: Mapping[str, Any] | None,
    *,
    ready_threshold_pct: int,
    progress_deadline_s: int,
    now: datetime,
    expected_replicas: int | None = None,
) -> Readiness:
    """Whether a Deployment finished rolling out, with Flagger's messages (inventory §2.4).

    ``ready_threshold_pct`` is the canary's primaryReadyThreshold or canaryReadyThreshold and
    ``progress_deadline_s`` its progressDeadlineSeconds. ``now`` must be timezone-aware.

    A missing Deployment, or one without a status yet, reads as "0 out of N new replicas have been
    updated", N being ``spec.replicas``, else ``expected_replicas``, else 1.
    """
    spec = (deployment or {}).get("spec") or {}
    spec_replicas = spec.get("replicas")
    status = (deployment or {}).get("status") or {}
    if deployment is None or not status:
        wanted = spec_replicas if spec_replicas is not None else expected_replicas
        return Readiness(
            ready=False,
            message=f"{WAITING}0 out of {1 if wanted is None else wanted} new replicas have been updated",
        )
    generation = int(get_path(deployment, "metadata", "generation") or 0)
    if generation > int(status.get("observedGeneration") or 0):
        return Readiness(
            ready=False,
            message=f"{WAITING}observed deployment generation less than desired generation",
        )
    # Flagger evaluates this only when a Progressing condition exists; the API server always writes one
    # (progressDeadlineSeconds is defaulted), so canarist does not require it.
    retriable = True
    progressing = _condition(status, "Progressing")
    available = _condition(status, "Available")
    if (
        available is not None
        and available.get("status") == "False"
        and available.get("reason") == "MinimumReplicasUnavailable"
        and available.get("lastUpdateTime")
    ):
        since = parse_time(str(available["lastUpdateTime"]))
        retriable = not (since + timedelta(seconds=progress_deadline_s) < now)
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available_replicas = int(status.get("availableReplicas") or 0)
    threshold_replicas = ready_threshold_replicas(updated, ready_threshold_pct)
    name = str(get_path(deployment, "metadata", "name") or "")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(
            ready=False, retriable=False, message=f'deployment "{name}" exceeded its progress deadline'
        )
    if spec_replicas is not None and updated < int(spec_replicas):
        message = f"{WAITING}{updated} out of {spec_replicas} new replicas have been updated"
    elif replicas > updated:
        message = f"{WAITING}{replicas - updated} old replicas are pending termination"
    elif available_replicas < threshold_replicas:
        message = (
            f"{WAITING}{available_replicas} of {threshold_replicas} "
            f"(readyThreshold {ready_threshold_pct}%) updated replicas are available"
        )
    else:
        return Readiness.ok()
    return Readiness(ready=False, retriable=retriable, message=message)


# ---------------------------------------------------------------------------------------------- scaling


def scaled(deployment: Mapping[str, Any], replicas: int) -> Obj:
    """A merge patch setting ``spec.replicas`` (Flagger's Scale)."""
    return {"spec": {"replicas": replicas}}


def scale_up_replicas(
    target: Mapping[str, Any],
    primary: Mapping[str, Any] | None,
    autoscaler: Mapping[str, Any] | None,
    *,
    has_autoscaler: bool | None = None,
) -> int:
    """Replicas for ScaleFromZero: the target's when > 0; else, without an autoscalerRef, the primary's;
    else the HPA's minReplicas (ScaledObject: minReplicaCount) when > 1; else 1.

    ``has_autoscaler`` says whether the canary has an autoscalerRef (default: ``autoscaler is not None``).
    """
    replicas = get_path(target, "spec", "replicas")
    if isinstance(replicas, int) and replicas > 0:
        return replicas
    uses_autoscaler = autoscaler is not None if has_autoscaler is None else has_autoscaler
    if not uses_autoscaler:
        primary_replicas = get_path(primary, "spec", "replicas")
        if isinstance(primary_replicas, int):
            return primary_replicas
        return 1
    if autoscaler is not None:
        key = "minReplicaCount" if autoscaler.get("kind") == "ScaledObject" else "minReplicas"
        minimum = get_path(autoscaler, "spec", key)
        if isinstance(minimum, int) and minimum > 1:
            return minimum
    return 1
