"""The DaemonSet primary: build, promote, readiness and "scale to zero" (``pkg/canary/daemonset_*.go``).

A DaemonSet cannot be scaled, so Flagger "scales it to zero" with a node selector that matches no node
(``flagger.app/scale-to-zero: "true"``) and removes it to scale up. The primary never carries it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from canarist.engine.model import Readiness
from canarist.workloads import primary
from canarist.workloads._meta import Obj, get_path
from canarist.workloads.deployment import WAITING, parse_time, ready_threshold_replicas
from canarist.workloads.primary import PrimaryKind
from canarist.workloads.revision import SCALE_TO_ZERO_LABEL

DAEMON_SET = PrimaryKind(
    kind="DaemonSet",
    copied_spec_fields=("minReadySeconds", "revisionHistoryLimit", "updateStrategy"),
    has_replicas=False,
    dropped_node_selector=SCALE_TO_ZERO_LABEL,
)
COPIED_SPEC_FIELDS = DAEMON_SET.copied_spec_fields


def strategy_error(target: Mapping[str, Any]) -> str | None:
    """Flagger's error when the DaemonSet does not use the RollingUpdate strategy, else None."""
    kind = get_path(target, "spec", "updateStrategy", "type") or "RollingUpdate"
    if kind == "RollingUpdate":
        return None
    name = get_path(target, "metadata", "name") or ""
    namespace = get_path(target, "metadata", "namespace") or ""
    return f"daemonset {name}.{namespace} must have RollingUpdate strategy but have {kind}"


#: the primary DaemonSet ``<target>-primary``, created at initialization (see `primary.build`).
build_primary = functools.partial(primary.build, DAEMON_SET)
#: the observed primary DaemonSet with the target's template and spec fields copied over (`primary.promote`).
promote = functools.partial(primary.promote, DAEMON_SET)


def readiness(
    daemonset: Mapping[str, Any] | None,
    *,
    ready_threshold_pct: int,
    progress_deadline_s: int,
    last_transition_time: str | None,
    now: datetime,
) -> Readiness:
    """DaemonSet readiness: updatedNumberScheduled vs desiredNumberScheduled, numberAvailable vs the
    threshold; the deadline is measured from the canary's ``status.lastTransitionTime``."""
    status = (daemonset or {}).get("status") or {}
    if daemonset is None or not status:
        return Readiness(ready=False, message=f"{WAITING}0 out of 1 new pods have been updated")
    generation = int(get_path(daemonset, "metadata", "generation") or 0)
    if generation > int(status.get("observedGeneration") or 0):
        return Readiness(
            ready=False, message=f"{WAITING}observed daemonset generation less than desired generation"
        )
    desired = int(status.get("desiredNumberScheduled") or 0)
    updated = int(status.get("updatedNumberScheduled") or 0)
    available = int(status.get("numberAvailable") or 0)
    threshold = ready_threshold_replicas(desired, ready_threshold_pct)
    not_updated = updated < desired
    not_available = available < threshold
    if not not_updated and not not_available:
        return Readiness.ok()
    if last_transition_time:
        since = parse_time(last_transition_time)
        if since + timedelta(seconds=progress_deadline_s) < now:
            return Readiness(
                ready=False,
                retriable=False,
                message=f"exceeded its progressDeadlineSeconds: {progress_deadline_s}",
            )
    if not_updated:
        return Readiness(
            ready=False, message=f"{WAITING}{updated} out of {desired} new pods have been updated"
        )
    return Readiness(
        ready=False,
        message=f"{WAITING}{available} of {threshold} (readyThreshold {ready_threshold_pct}%) updated pods are available",
    )


def scale_to_zero_patch() -> Obj:
    """Merge patch adding the node selector that matches no node."""
    return {"spec": {"template": {"spec": {"nodeSelector": {SCALE_TO_ZERO_LABEL: "true"}}}}}


def scale_up_patch() -> Obj:
    """Merge patch removing that node selector."""
    return {"spec": {"template": {"spec": {"nodeSelector": {SCALE_TO_ZERO_LABEL: None}}}}}


def is_scaled_to_zero(daemonset: Mapping[str, Any]) -> bool:
    selector = get_path(daemonset, "spec", "template", "spec", "nodeSelector") or {}
    return SCALE_TO_ZERO_LABEL in selector
