"""Build the engine's `Observation` of one canary from the object cache (no API calls).

Everything here is a read of in-memory objects plus the pure builders' readers (selector, revision hash,
config checksums, readiness, routes), so an analysis tick costs no request to the API server. What observe
resolves — the target kind's record, the router and its route context — travels on in `Observed`, so the
executor never resolves them again.

A problem that only an edit fixes (an unsupported provider or target kind, a spec the router cannot route,
a reference the operator may not follow) raises `Permanent`; the controller reports it once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from canarist.api import Canary
from canarist.engine.model import Observation, Readiness, Routes, TargetFacts
from canarist.kube import resources as kinds
from canarist.kube.cache import MISSING, PENDING, ObjectStore
from canarist.kube.resources import UnknownKind
from canarist.operator.settings import OperatorSettings
from canarist.routers import registry as routers
from canarist.routers.base import RouteContext, Router, RouterConfigError, RoutesError
from canarist.workloads.configs import TrackedConfigs, tracked_configs
from canarist.workloads.revision import revision_hash
from canarist.workloads.selector import SelectorError, find_selector
from canarist.workloads.targets import ReadinessInputs, TargetKind, UnsupportedTarget, target_kind

Obj = dict[str, Any]

__all__ = [
    "BLOCKED_CONDITION",
    "ObjectStore",
    "Observed",
    "Permanent",
    "observe",
    "resolve_router",
    "route_context",
]


#: the status condition that says why a canary cannot run (absent while it can).
BLOCKED_CONDITION = "Blocked"


class Permanent(Exception):
    """A problem no retry fixes: the canary (or the operator's configuration) must change.

    ``reason`` is a short CamelCase word for the status condition and the alert."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Observed:
    """The observation plus what the executor needs to act on it in the same tick."""

    observation: Observation
    target_kind: TargetKind
    router: Router
    context: RouteContext
    target: Obj | None
    primary: Obj | None
    selector: tuple[str, str] | None
    configs: TrackedConfigs
    route_objects: Mapping[str, Obj]


def route_context(canary: Canary, settings: OperatorSettings) -> RouteContext:
    return RouteContext.from_canary(
        canary,
        ingress_class=settings.ingress_class,
        ingress_annotations_prefix=settings.ingress_annotations_prefix,
    )


def resolve_router(canary: Canary, settings: OperatorSettings) -> Router:
    """The router of ``spec.provider`` (or ``-mesh-provider``), refusing what it cannot route."""
    problems = routers.provider_problems(canary, settings.mesh_provider)
    if problems:
        reason = (
            "UnsupportedProvider" if problems[0].startswith("spec.provider:") else "UnsupportedByProvider"
        )
        raise Permanent(reason, "; ".join(problems))
    return routers.get(canary.provider_or(settings.mesh_provider))


def cross_namespace_refs(canary: Canary) -> list[str]:
    """References to objects in other namespaces (refused with ``-no-cross-namespace-refs``)."""
    namespace = canary.metadata.namespace or ""
    problems: list[str] = []
    analysis = canary.analysis()
    named: list[tuple[str, Any]] = []
    if analysis is not None:
        named += [
            (f"spec.analysis.metrics[{i}].templateRef", m.template_ref)
            for i, m in enumerate(analysis.metrics or [])
        ]
        named += [
            (f"spec.analysis.alerts[{i}].providerRef", a.provider_ref)
            for i, a in enumerate(analysis.alerts or [])
        ]
    for path, ref in named:
        if ref is not None and ref.namespace and ref.namespace != namespace:
            problems.append(
                f"{path}.namespace: {ref.namespace} is another namespace "
                "(cross-namespace references are disabled by -no-cross-namespace-refs)"
            )
    refs: tuple[tuple[str, Any], ...] = (
        ("targetRef", canary.spec.target_ref),
        ("autoscalerRef", canary.spec.autoscaler_ref),
        ("upstreamRef", canary.spec.upstream_ref),
    )
    for field, obj_ref in refs:
        other = getattr(obj_ref, "namespace", None) if obj_ref is not None else None
        if not other and obj_ref is not None and isinstance(getattr(obj_ref, "model_extra", None), dict):
            other = (obj_ref.model_extra or {}).get("namespace")
        if other and other != namespace:
            problems.append(
                f"spec.{field}.namespace: {other} is another namespace "
                "(cross-namespace references are disabled by -no-cross-namespace-refs)"
            )
    return problems


def _owning_canary(obj: Mapping[str, Any]) -> str | None:
    """The name of the Canary that generated ``obj``, if one did."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Canary" and str(ref.get("apiVersion") or "").startswith("flagger.app/"):
            return str(ref.get("name") or "")
    return None


class NotSynced(RuntimeError):
    """The router's kinds are being listed for the first time: tick again shortly."""


#: ``spec.autoscalerRef.kind`` → its resource. A ScaledObject is KEDA's CRD, watched from the first canary
#: that names one.
AUTOSCALER_KINDS: dict[str, kinds.ResourceKind] = {
    "HorizontalPodAutoscaler": kinds.HORIZONTAL_POD_AUTOSCALER,
    "ScaledObject": kinds.SCALED_OBJECT,
}


def _watch_autoscaler_kind(kind: kinds.ResourceKind, store: ObjectStore) -> None:
    state = store.watch(kind)
    if state == MISSING:
        raise Permanent(
            "AutoscalerNotInstalled",
            f"spec.autoscalerRef: the cluster does not serve {kind.group_resource} ({kind.api_version}); "
            "install KEDA's CRDs",
        )
    if state == PENDING:
        raise NotSynced(f"spec.autoscalerRef: waiting for the first list of {kind.group_resource}")


def _watch_router_kinds(router: Router, store: ObjectStore) -> None:
    """A router's kinds are watched from the first canary that uses it; a kind the cluster does not serve
    (the provider's CRDs are not installed) stops the run with a Warning naming it."""
    missing: list[str] = []
    pending = False
    for kind in router.kinds:
        state = store.watch(kind)
        if state == MISSING:
            missing.append(f"{kind.group_resource} ({kind.api_version})")
        elif state == PENDING:
            pending = True
    if missing:
        raise Permanent(
            "ProviderNotInstalled",
            f"provider {router.name}: the cluster does not serve {', '.join(missing)}; "
            "install the provider's CRDs",
        )
    if pending:
        raise NotSynced(f"provider {router.name}: waiting for the first list of its objects")


def _references(router: Router, context: RouteContext, store: ObjectStore) -> dict[str, Obj]:
    """The objects the router reads but does not own; a missing one stops the run with a Warning."""
    found: dict[str, Obj] = {}
    missing: list[str] = []
    for ref in router.references(context):
        kind = kinds.kind_of({"apiVersion": ref.api_version, "kind": ref.kind})
        obj = store.get(kind, ref.namespace, ref.name)
        if obj is None:
            missing.append(f"{ref.path or ref.kind}: {ref.kind} {ref.name}.{ref.namespace} not found")
        else:
            found[ref.key] = obj
    if missing:
        raise Permanent("MissingReference", f"provider {router.name}: " + "; ".join(missing))
    return found


def _watch_target_kinds(record: TargetKind, store: ObjectStore) -> None:
    """A target kind served by a CRD (a Knative Service and its Revisions) is watched from the first canary
    that targets one; a kind the cluster does not serve stops the run with a Warning naming it."""
    revisions = record.revisions
    wanted = [record.resource, *([revisions.resource] if revisions is not None else [])]
    states = {kind: store.watch(kind) for kind in wanted}
    missing = [
        f"{kind.group_resource} ({kind.api_version})" for kind, state in states.items() if state == MISSING
    ]
    if missing:
        hint = f"; {record.install_hint}" if record.install_hint else ""
        raise Permanent(
            "TargetNotInstalled", f"spec.targetRef: the cluster does not serve {', '.join(missing)}{hint}"
        )
    if PENDING in states.values():
        raise NotSynced(f"spec.targetRef: waiting for the first list of {record.resource.group_resource}")


def _primary_and_canary(
    canary: Canary, record: TargetKind, target: Obj | None, store: ObjectStore
) -> tuple[Obj | None, Obj | None, Obj | None]:
    """The object a promotion rewrites (the ``-primary``; for a kind with revision objects, the target once
    it names its primary revision), and the workloads whose readiness is the primary's and the canary's."""
    namespace = canary.metadata.namespace or ""
    revisions = record.revisions
    if revisions is None:
        primary = store.get(record.resource, namespace, canary.primary_name())
        return primary, primary, target
    if target is None:
        return None, None, None
    primary_name, canary_name = revisions.primary(target), revisions.canary(target)
    primary_revision = store.get(revisions.resource, namespace, primary_name) if primary_name else None
    canary_revision = store.get(revisions.resource, namespace, canary_name) if canary_name else None
    return (target if primary_name else None), primary_revision, canary_revision


def observe(
    canary: Canary,
    store: ObjectStore,
    settings: OperatorSettings,
    now: datetime,
    last_paced_at: datetime | None,
) -> Observed:
    namespace = canary.metadata.namespace or ""
    try:
        record = target_kind(canary.spec.target_ref.kind, canary.spec.target_ref.api_version)
    except UnsupportedTarget as error:
        raise Permanent("UnsupportedTarget", str(error)) from None
    scaler = canary.spec.autoscaler_ref
    if scaler is not None and not record.runs_pods:
        raise Permanent(
            "UnsupportedAutoscaler",
            f"spec.autoscalerRef: a {record.kind} target runs no pods of its own to autoscale; "
            "remove the autoscalerRef",
        )
    if scaler is not None and scaler.kind not in AUTOSCALER_KINDS:
        raise Permanent(
            "UnsupportedAutoscaler",
            f"spec.autoscalerRef.kind: {scaler.kind} autoscalers are not supported by canarist yet "
            f"(supported: {', '.join(sorted(AUTOSCALER_KINDS))})",
        )
    if settings.no_cross_namespace_refs:
        problems = cross_namespace_refs(canary)
        if problems:
            raise Permanent("CrossNamespaceReference", "; ".join(problems))
    router = resolve_router(canary, settings)
    if scaler is not None:
        _watch_autoscaler_kind(AUTOSCALER_KINDS[scaler.kind], store)
    _watch_router_kinds(router, store)
    context = route_context(canary, settings)

    if record.on_demand:
        _watch_target_kinds(record, store)
    target = store.get(record.resource, namespace, canary.spec.target_ref.name)
    if target is not None:
        owner = _owning_canary(target)
        if owner is not None:
            raise Permanent(
                "TargetOwnedByCanary",
                f"spec.targetRef: {record.kind} {canary.spec.target_ref.name}.{namespace} was generated by "
                f"canary {owner}.{namespace}; a canary cannot target another canary's objects",
            )
    primary, primary_workload, canary_workload = _primary_and_canary(canary, record, target, store)

    selector: tuple[str, str] | None = None
    facts: TargetFacts | None = None
    if target is not None:
        problem: str | None = record.problem(target)
        if problem is None and record.runs_pods:
            try:
                selector = find_selector(record.kind, target, settings.selector_labels)
            except SelectorError as error:
                problem = str(error)
        replicas = (target.get("spec") or {}).get("replicas")
        facts = TargetFacts(
            kind=record.kind,
            name=canary.spec.target_ref.name,
            revision=revision_hash(target),
            replicas=replicas if isinstance(replicas, int) else None,
            selector_error=problem,
        )

    if selector is not None:
        context = dataclasses.replace(context, selector_label=selector[0], selector_value=selector[1])
    context = dataclasses.replace(context, target=target)
    configs = _configs(target if record.runs_pods else None, store, namespace, settings)
    config_error = f"configs not found: {', '.join(configs.missing)}" if configs.missing else None

    route_objects: dict[str, Obj] = {}
    try:
        for ref in router.objects(context):
            kind = kinds.kind_of({"apiVersion": ref.api_version, "kind": ref.kind})
            obj = store.get(kind, ref.namespace, ref.name)
            if obj is not None:
                route_objects[ref.key] = obj
        context = dataclasses.replace(context, references=_references(router, context, store))
    except (UnknownKind, RouterConfigError) as error:
        raise Permanent("RouterConfigError", f"provider {router.name}: {error}") from None
    routes: Routes | None = None
    routes_error: str | None = None
    if route_objects:
        try:
            routes = router.routes(context, route_objects)
        except RoutesError as error:
            routes_error = str(error)

    inputs = ReadinessInputs(
        ready_threshold_pct=0,
        progress_deadline_s=canary.progress_deadline_seconds(),
        now=now,
        expected_replicas=facts.replicas if facts is not None and facts.replicas else None,
        last_transition_time=canary.status.last_transition_time or None,
    )
    observation = Observation(
        now=now,
        target=facts,
        tracked_configs=dict(configs.checksums),
        config_error=config_error,
        primary_exists=primary is not None,
        primary=_readiness(record, primary_workload, inputs, canary.primary_ready_threshold()),
        canary=_readiness(record, canary_workload, inputs, canary.canary_ready_threshold()),
        routes=routes,
        routes_error=routes_error,
        last_paced_at=last_paced_at,
        router=router.capabilities,
    )
    return Observed(observation, record, router, context, target, primary, selector, configs, route_objects)


def _configs(
    target: Obj | None, store: ObjectStore, namespace: str, settings: OperatorSettings
) -> TrackedConfigs:
    if target is None or not settings.enable_config_tracking:
        return TrackedConfigs()
    return tracked_configs(
        target,
        lambda name: store.get(kinds.CONFIG_MAP, namespace, name),
        lambda name: store.get(kinds.SECRET, namespace, name),
    )


def _readiness(
    record: TargetKind, workload: Obj | None, inputs: ReadinessInputs, threshold: int
) -> Readiness:
    return record.readiness(workload, dataclasses.replace(inputs, ready_threshold_pct=threshold))
