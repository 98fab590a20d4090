"""The Deployment primary: build, promote, readiness and scaling (``pkg/canary/deployment_*.go``).

All functions are pure: observed objects and the clock come in as arguments, manifests go out.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from canarist.engine.model import Readiness
from canarist.workloads import primary
from canarist.workloads._meta import Obj, get_path
from canarist.workloads.primary import (
    FLAGGER_ID,
    PRIMARY_SUFFIX,
    PrimaryKind,
    primary_labels,
    primary_pod_spec,
    template_annotations,
)

__all__ = [
    "COPIED_SPEC_FIELDS",
    "DEPLOYMENT",
    "FLAGGER_ID",
    "PRIMARY_SUFFIX",
    "build_primary",
    "primary_labels",
    "primary_pod_spec",
    "promote",
    "readiness",
    "scale_up_replicas",
    "scaled",
    "template_annotations",
]

DEPLOYMENT = PrimaryKind(
    kind="Deployment",
    copied_spec_fields=("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy"),
    has_replicas=True,
)
#: spec fields copied from the target to the primary on create and promote.
COPIED_SPEC_FIELDS = DEPLOYMENT.copied_spec_fields


#: the primary Deployment ``<target>-primary``, created at initialization (see `primary.build`).
build_primary = functools.partial(primary.build, DEPLOYMENT)
#: the observed primary Deployment with the target's template and spec fields copied over (`primary.promote`).
promote = functools.partial(primary.promote, DEPLOYMENT)


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
    """Whether a Deployment finished rolling out, with Flagger's messages (``deployment_ready.go``).

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
