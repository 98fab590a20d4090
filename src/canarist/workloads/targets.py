"""The table of target kinds: what canarist does with each ``spec.targetRef.kind``, in one record per kind.

The runtime picks the record once per tick (``TARGETS.get(kind)``) and uses only it: the resource to read,
how to build and promote the ``-primary``, how to judge readiness, how to scale to zero and back, and the
kind's own precondition (a DaemonSet must use RollingUpdate). Adding a kind is one record here.

>>> TARGETS["DaemonSet"].resource
ResourceKind('apps', 'v1', 'daemonsets', 'DaemonSet', ...)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canarist.engine.model import Readiness
from canarist.kube import resources as kinds
from canarist.kube.resources import ResourceKind
from canarist.workloads import daemonset, deployment
from canarist.workloads._meta import Obj, get_path


@dataclass(frozen=True)
class ReadinessInputs:
    """What any kind's readiness needs besides the workload."""

    ready_threshold_pct: int
    progress_deadline_s: int
    now: datetime
    expected_replicas: int | None
    last_transition_time: str | None


def _deployment_readiness(workload: Mapping[str, Any] | None, inputs: ReadinessInputs) -> Readiness:
    return deployment.readiness(
        workload,
        ready_threshold_pct=inputs.ready_threshold_pct,
        progress_deadline_s=inputs.progress_deadline_s,
        now=inputs.now,
        expected_replicas=inputs.expected_replicas,
    )


def _daemonset_readiness(workload: Mapping[str, Any] | None, inputs: ReadinessInputs) -> Readiness:
    return daemonset.readiness(
        workload,
        ready_threshold_pct=inputs.ready_threshold_pct,
        progress_deadline_s=inputs.progress_deadline_s,
        last_transition_time=inputs.last_transition_time,
        now=inputs.now,
    )


def _deployment_scale_patch(target: Mapping[str, Any], replicas: int) -> Obj | None:
    if get_path(target, "spec", "replicas") == replicas:
        return None
    return deployment.scaled(target, replicas)


def _daemonset_scale_patch(target: Mapping[str, Any], replicas: int) -> Obj | None:
    """A DaemonSet cannot scale: zero is a node selector that matches no node, anything else removes it."""
    down = daemonset.is_scaled_to_zero(target)
    if replicas == 0:
        return None if down else daemonset.scale_to_zero_patch()
    return daemonset.scale_up_patch() if down else None


def _is_scaled_down_deployment(target: Mapping[str, Any]) -> bool:
    return not get_path(target, "spec", "replicas")


def _no_problem(target: Mapping[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class TargetKind:
    """One kind of target workload."""

    kind: str
    resource: ResourceKind
    #: ``build_primary(canary, target, label, value, *, flagger_id, ...)`` (see `workloads.primary.build`).
    build_primary: Callable[..., Obj]
    #: ``promote(canary, target, primary, label, value, *, flagger_id, ...)`` (`workloads.primary.promote`).
    promote: Callable[..., Obj]
    readiness: Callable[[Mapping[str, Any] | None, ReadinessInputs], Readiness]
    #: a merge patch bringing the target to ``replicas`` (0: scaled down), or None when it is there already.
    scale_patch: Callable[[Mapping[str, Any], int], Obj | None]
    is_scaled_down: Callable[[Mapping[str, Any]], bool]
    #: the kind's own reason why a target cannot be used (None when it can).
    problem: Callable[[Mapping[str, Any]], str | None] = _no_problem
    #: whether the kind has replicas (a Deployment) or runs one pod per node (a DaemonSet).
    has_replicas: bool = True


DEPLOYMENT = TargetKind(
    kind="Deployment",
    resource=kinds.DEPLOYMENT,
    build_primary=deployment.build_primary,
    promote=deployment.promote,
    readiness=_deployment_readiness,
    scale_patch=_deployment_scale_patch,
    is_scaled_down=_is_scaled_down_deployment,
)

DAEMON_SET = TargetKind(
    kind="DaemonSet",
    resource=kinds.DAEMON_SET,
    build_primary=daemonset.build_primary,
    promote=daemonset.promote,
    readiness=_daemonset_readiness,
    scale_patch=_daemonset_scale_patch,
    is_scaled_down=daemonset.is_scaled_to_zero,
    problem=daemonset.strategy_error,
    has_replicas=False,
)

#: ``spec.targetRef.kind`` → its record. Flagger also accepts ``Service`` (and Knative ``Service``) targets;
#: canarist reports those as not supported yet, once, instead of half-running them.
TARGETS: dict[str, TargetKind] = {record.kind: record for record in (DEPLOYMENT, DAEMON_SET)}
FLAGGER_TARGET_KINDS = frozenset({"Deployment", "DaemonSet", "Service"})


class UnsupportedTarget(LookupError):
    """``spec.targetRef.kind`` names a kind canarist cannot run."""


def target_kind(kind: str) -> TargetKind:
    """The record for ``kind``; raises `UnsupportedTarget` with a message a person can act on."""
    record = TARGETS.get(kind)
    if record is not None:
        return record
    supported = ", ".join(sorted(TARGETS))
    if kind in FLAGGER_TARGET_KINDS:
        raise UnsupportedTarget(
            f"spec.targetRef.kind: {kind} targets are not supported by canarist yet (supported: {supported})"
        )
    raise UnsupportedTarget(f"spec.targetRef.kind: unknown target kind {kind!r} (supported: {supported})")
