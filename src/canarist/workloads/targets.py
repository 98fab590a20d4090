"""The table of target kinds: what canarist does with each ``spec.targetRef.kind``, in one record per kind.

The runtime picks the record once per tick (`target_kind`) and uses only it: the resource to read,
how to build and promote the ``-primary``, how to judge readiness, how to scale to zero and back, the
kind's own precondition (a DaemonSet must use RollingUpdate), whether it runs pods behind a selector, and
the ``-canary`` copy a kind without pods needs, and where a kind keeps its versions when they are objects of
their own (a Knative Service's Revisions). Adding a kind is one record here.

>>> TARGETS["DaemonSet"].resource
ResourceKind('apps', 'v1', 'daemonsets', 'DaemonSet', ...)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canarist.api import Canary
from canarist.engine.model import Readiness
from canarist.kube import resources as kinds
from canarist.kube.resources import ResourceKind
from canarist.workloads import daemonset, deployment, knative, service
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
class CanaryCopy:
    """The ``-canary`` object a kind without pods needs: built from the target on every tick."""

    #: ``build(canary, target)``: the desired copy.
    build: Callable[[Canary, Mapping[str, Any]], Obj]
    #: ``merge(observed, desired)``: the object to write over the existing copy, or None when it is current.
    merge: Callable[[Obj, Obj], Obj | None]


@dataclass(frozen=True)
class RevisionObjects:
    """For a kind whose primary and canary are revisions of the target itself, kept as objects of another
    resource (a Knative Service's Revisions): there is no ``-primary`` object. The primary is the revision
    the target names, the canary the target's latest one; readiness is judged on those revision objects,
    and the initialization and the promotion rewrite the target itself."""

    resource: ResourceKind
    #: ``primary(target)``: the name of the primary revision (``""`` before initialization).
    primary: Callable[[Mapping[str, Any]], str]
    #: ``canary(target)``: the name of the latest revision (``""`` while there is none).
    canary: Callable[[Mapping[str, Any]], str]
    #: ``owner(revision)``: the name of the target a revision belongs to.
    owner: Callable[[Mapping[str, Any]], str]


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
    #: whether the kind runs pods behind a label selector. Only such a kind has a selector label, the
    #: ClusterIP services built from it (``<apex>``, ``-primary``, ``-canary``), tracked ConfigMaps and
    #: Secrets, discovered ports and an autoscaler. A Service target has none of these.
    runs_pods: bool = True
    #: the ``-canary`` copy of the target, for a kind whose canary is not the target itself (a Service).
    canary_copy: CanaryCopy | None = None
    #: where the kind's primary and canary revisions live, for a kind without a ``-primary`` object.
    revisions: RevisionObjects | None = None
    #: whether the kind is a CRD's (a Knative Service): watched, with its revisions' kind, from the first
    #: canary that targets one, and refused with ``install_hint`` where the cluster does not serve it.
    on_demand: bool = False
    install_hint: str = ""


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

SERVICE = TargetKind(
    kind="Service",
    resource=kinds.SERVICE,
    build_primary=service.build_primary,
    promote=service.promote,
    readiness=service.readiness,
    scale_patch=service.no_scale_patch,
    is_scaled_down=service.never_scaled_down,
    has_replicas=False,
    runs_pods=False,
    canary_copy=CanaryCopy(build=service.build_canary, merge=service.refresh),
)

KNATIVE_SERVICE = TargetKind(
    kind="Service",
    resource=knative.SERVICE,
    build_primary=knative.build_primary,
    promote=knative.promote,
    readiness=knative.readiness,
    scale_patch=knative.no_scale_patch,
    is_scaled_down=knative.never_scaled_down,
    problem=knative.problem,
    has_replicas=False,
    runs_pods=False,
    revisions=RevisionObjects(
        resource=knative.REVISION,
        primary=knative.primary_revision,
        canary=knative.latest_revision,
        owner=knative.service_of,
    ),
    on_demand=True,
    install_hint="install Knative Serving",
)

#: ``spec.targetRef.kind`` → its record (for ``Service``, the Kubernetes one: a ``Service`` of
#: ``serving.knative.dev`` is `KNATIVE_SERVICE`).
TARGETS: dict[str, TargetKind] = {record.kind: record for record in (DEPLOYMENT, DAEMON_SET, SERVICE)}
#: every record, the Knative Service included (its kinds are watched from the first canary that needs them).
ALL_TARGETS: tuple[TargetKind, ...] = (*TARGETS.values(), KNATIVE_SERVICE)
KNATIVE_GROUP = "serving.knative.dev/"


class UnsupportedTarget(LookupError):
    """``spec.targetRef.kind`` names a kind canarist cannot run."""


def target_kind(kind: str, api_version: str = "") -> TargetKind:
    """The record for ``kind`` (a ``Service`` of ``serving.knative.dev`` is a Knative Service, not a plain
    one); raises `UnsupportedTarget` with a message a person can act on."""
    supported = ", ".join(sorted(TARGETS))
    if kind == "Service" and api_version.startswith(KNATIVE_GROUP):
        if api_version != knative.API_VERSION:
            raise UnsupportedTarget(
                f"spec.targetRef.apiVersion: Knative Service {api_version} is not supported "
                f"(supported: {knative.API_VERSION})"
            )
        return KNATIVE_SERVICE
    record = TARGETS.get(kind)
    if record is not None:
        return record
    raise UnsupportedTarget(f"spec.targetRef.kind: unknown target kind {kind!r} (supported: {supported})")
