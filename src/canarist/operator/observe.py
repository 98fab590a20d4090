"""Build the engine's `Observation` of one canary from the informer caches (no API calls).

Everything here is a read of in-memory objects plus the pure builders' readers (selector, revision hash,
config checksums, readiness, routes), so an analysis tick costs no request to the API server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from canarist.api import Canary
from canarist.engine.model import Observation, Readiness, Routes, TargetFacts
from canarist.kube import resources as kinds
from canarist.kube.resources import ResourceKind
from canarist.operator.settings import OperatorSettings
from canarist.routers import registry as routers
from canarist.routers.base import RouteContext, RoutesError
from canarist.workloads import deployment as deployments
from canarist.workloads.configs import TrackedConfigs, tracked_configs
from canarist.workloads.revision import revision_hash
from canarist.workloads.selector import SelectorError, find_selector

Obj = dict[str, Any]


class ObjectStore(Protocol):
    """Read access to the informer caches."""

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None: ...


TARGET_KINDS = {"Deployment": kinds.DEPLOYMENT, "DaemonSet": kinds.DAEMON_SET, "Service": kinds.SERVICE}


@dataclass(frozen=True)
class Observed:
    """The observation plus the raw objects the executor needs to act on it in the same tick."""

    observation: Observation
    target: Obj | None
    primary: Obj | None
    selector: tuple[str, str] | None
    configs: TrackedConfigs
    route_objects: Mapping[str, Obj]


def target_kind(canary: Canary) -> ResourceKind | None:
    return TARGET_KINDS.get(canary.spec.target_ref.kind)


def route_context(canary: Canary, settings: OperatorSettings) -> RouteContext:
    return RouteContext.from_canary(canary)


def observe(
    canary: Canary,
    store: ObjectStore,
    settings: OperatorSettings,
    now: datetime,
    last_paced_at: datetime | None,
) -> Observed:
    namespace = canary.metadata.namespace or ""
    kind = target_kind(canary)
    target = store.get(kind, namespace, canary.spec.target_ref.name) if kind is not None else None
    primary = store.get(kinds.DEPLOYMENT, namespace, canary.primary_name())

    selector: tuple[str, str] | None = None
    facts: TargetFacts | None = None
    if target is not None:
        selector_error: str | None = None
        try:
            selector = find_selector(canary.spec.target_ref.kind, target, settings.selector_labels)
        except SelectorError as error:
            selector_error = str(error)
        replicas = (target.get("spec") or {}).get("replicas")
        facts = TargetFacts(
            kind=canary.spec.target_ref.kind,
            name=canary.spec.target_ref.name,
            revision=revision_hash(target),
            replicas=replicas if isinstance(replicas, int) else None,
            selector_error=selector_error,
        )

    configs = _configs(target, store, namespace, settings)
    config_error = f"configs not found: {', '.join(configs.missing)}" if configs.missing else None

    router = routers.get(canary.provider_or(settings.mesh_provider))
    context = route_context(canary, settings)
    route_objects: dict[str, Obj] = {}
    for ref in router.objects(context):
        obj = store.get(
            kinds.kind_of({"apiVersion": ref.api_version, "kind": ref.kind}), ref.namespace, ref.name
        )
        if obj is not None:
            route_objects[ref.key] = obj
    routes: Routes | None = None
    routes_error: str | None = None
    if route_objects:
        try:
            routes = router.routes(context, route_objects)
        except RoutesError as error:
            routes_error = str(error)

    observation = Observation(
        now=now,
        target=facts,
        tracked_configs=dict(configs.checksums),
        config_error=config_error,
        primary_exists=primary is not None,
        primary=_readiness(canary, primary, now, canary.primary_ready_threshold(), facts),
        canary=_readiness(canary, target, now, canary.canary_ready_threshold(), facts),
        routes=routes,
        routes_error=routes_error,
        last_paced_at=last_paced_at,
    )
    return Observed(observation, target, primary, selector, configs, route_objects)


def _configs(
    target: Obj | None, store: ObjectStore, namespace: str, settings: OperatorSettings
) -> TrackedConfigs:
    if target is None or not settings.enable_config_tracking or target.get("kind") == "Service":
        return TrackedConfigs()
    return tracked_configs(
        target,
        lambda name: store.get(kinds.CONFIG_MAP, namespace, name),
        lambda name: store.get(kinds.SECRET, namespace, name),
    )


def _readiness(
    canary: Canary, workload: Obj | None, now: datetime, threshold: int, facts: TargetFacts | None
) -> Readiness:
    if canary.spec.target_ref.kind == "Service":
        return Readiness.ok()
    return deployments.readiness(
        workload,
        ready_threshold_pct=threshold,
        progress_deadline_s=canary.progress_deadline_seconds(),
        now=now,
        expected_replicas=facts.replicas if facts is not None and facts.replicas else None,
    )
