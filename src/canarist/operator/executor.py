"""Carry out the engine's decisions: build manifests with the pure builders, write them through the access
layer, and report (Kubernetes Events, logs, the event webhook, alerts, metrics).

Writes compare against the informer caches first, so a steady-state tick writes nothing. A failed write
raises `ActionFailed` with a path-qualified message; the runtime records it as a Warning and the next tick
retries (every action is idempotent).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from canarist.api import Canary
from canarist.engine.model import (
    Action,
    Alert,
    CountOutcome,
    Event,
    Initialize,
    Promote,
    Routes,
    RunPostRollout,
    ScaleDownTarget,
    ScaleUpTarget,
    SetRoutes,
    WriteStatus,
)
from canarist.hooks.client import call_webhook
from canarist.hooks.payload import build_event_payload, build_payload
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient, contains
from canarist.kube.errors import Conflict, KubeError
from canarist.kube.events import EventRecorder
from canarist.kube.resources import ResourceKind
from canarist.operator.alerts import AlertSender
from canarist.operator.checks import CheckRunner
from canarist.operator.observe import ObjectStore, Observed, route_context
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry, status_value
from canarist.routers import registry as routers
from canarist.routers.base import AffinityCookies, RevertError, next_affinity_cookies
from canarist.workloads import deployment as deployments
from canarist.workloads import hpa as hpas
from canarist.workloads._meta import is_owned_by
from canarist.workloads.configs import primary_config_copy
from canarist.workloads.revision import webhook_checksum
from canarist.workloads.selector import discover_ports
from canarist.workloads.services import (
    build_services,
    merge_service,
    owned,
    revert_apex_service,
    service_needs_update,
)

log = logging.getLogger("canarist")

Obj = dict[str, Any]


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a map, else an empty one (an invalid object may have anything anywhere)."""
    return value if isinstance(value, Mapping) else {}


NewId = Callable[[], str]
TERMINATING = "Terminating"


class ActionFailed(Exception):
    """A write the decision needed did not happen; the message names the object."""


@dataclass
class TickContext:
    canary: Canary
    observed: Observed
    phase: str  # the phase reported to the event webhook for events without their own
    # Session-affinity cookies chosen by a SetRoutes of this tick, still to be saved in the status.
    cookies: AffinityCookies | None = None


def random_cookie_value() -> str:
    """Ten random letters, like Flagger's cookie values."""
    return "".join(secrets.choice(string.ascii_letters) for _ in range(10))


def cookie_status(cookies: AffinityCookies) -> dict[str, str]:
    return {
        "sessionAffinityCookie": cookies.canary,
        "primarySessionAffinityCookie": cookies.primary,
        "previousSessionAffinityCookie": cookies.previous,
    }


class Executor:
    def __init__(
        self,
        client: KubeClient,
        store: ObjectStore,
        recorder: EventRecorder,
        settings: OperatorSettings,
        telemetry: Telemetry,
        alerts: AlertSender,
        new_id: NewId = lambda: str(uuid.uuid4()),
    ) -> None:
        self._client = client
        self._store = store
        self._recorder = recorder
        self._settings = settings
        self._telemetry = telemetry
        self._alerts = alerts
        self._new_id = new_id
        # Called with every object we wrote, so the next tick reads our own writes (see Controller.get).
        self.on_write: Callable[[ResourceKind, Obj], None] = lambda kind, obj: None

    async def apply(self, canary: Canary, observed: Observed, actions: tuple[Action, ...]) -> Canary:
        """Apply ``actions`` in order; returns the canary as it stands after the status write."""
        ctx = TickContext(canary, observed, canary.status.phase or "")
        for action in actions:
            await self._apply_one(ctx, action)
        if ctx.cookies is not None:  # routes changed but no status write followed: save the cookies alone
            status = ctx.canary.status.to_dict()
            await self._write_status(ctx, status)
        return ctx.canary

    async def _apply_one(self, ctx: TickContext, action: Action) -> None:
        match action:
            case Initialize(takeover=takeover):
                await self._initialize(ctx, takeover)
            case ScaleDownTarget():
                await self._scale_target(ctx, 0)
            case ScaleUpTarget():
                await self._scale_target(ctx, self._scale_up_replicas(ctx))
            case SetRoutes(routes=routes):
                await self._set_routes(ctx, routes)
            case Promote():
                await self._promote(ctx)
            case WriteStatus(status=status):
                await self._write_status(ctx, status)
            case Event(type=event_type, message=message, phase=phase):
                await self.event(ctx.canary, event_type, message, phase or ctx.phase)
            case Alert(message=message, severity=severity, with_metadata=with_metadata):
                await self._alerts.send(ctx.canary, message, severity, with_metadata)
            case RunPostRollout(phase=phase):
                await self._post_rollout(ctx, phase)
            case CountOutcome(outcome=outcome, analysis_status=analysis_status):
                self._count(ctx.canary, outcome, analysis_status)

    # ------------------------------------------------------------------ events

    async def event(self, canary: Canary, event_type: str, message: str, phase: str) -> None:
        """One event, three ways: a log line, a Kubernetes Event (reason Synced), the event webhooks."""
        log.info(message, extra={"canary": canary.key})  # warnings too: Flagger logs both at info level
        await self._recorder.record(canary.reference(), event_type, "Synced", message)
        await self._event_webhooks(canary, event_type, message, phase)

    async def _event_webhooks(self, canary: Canary, event_type: str, message: str, phase: str) -> None:
        analysis = canary.analysis()
        hooks = [h for h in (analysis.webhooks or []) if str(h.type or "") == "event"] if analysis else []
        targets: list[tuple[str, Mapping[str, str] | None, float]] = [
            (h.url, h.metadata, h.timeout_seconds()) for h in hooks
        ]
        if not targets and self._settings.event_webhook:
            targets = [(self._settings.event_webhook, None, 10.0)]
        name, namespace = canary.metadata.name or "", canary.metadata.namespace or ""
        checksum = CheckRunner.checksum(canary)
        for url, metadata, timeout in targets:
            payload = build_event_payload(name, namespace, phase, checksum, message, event_type, metadata)
            await self._post_event(url, payload, timeout, canary.key)

    async def invalid_canary_event(self, obj: Obj, message: str) -> None:
        """A Warning about a canary that cannot be loaded, to the global event webhook: the canary's own
        event hooks are in the spec that failed, so they cannot be trusted."""
        if not self._settings.event_webhook:
            return
        meta = _mapping(obj.get("metadata"))
        status = _mapping(obj.get("status"))
        configs = status.get("trackedConfigs")
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        checksum = webhook_checksum(
            configs if isinstance(configs, dict) else None, str(status.get("lastAppliedSpec") or "")
        )
        phase = str(status.get("phase") or "")
        payload = build_event_payload(name, namespace, phase, checksum, message, "Warning")
        await self._post_event(self._settings.event_webhook, payload, 10.0, f"{name}.{namespace}")

    async def _post_event(self, url: str, payload: Obj, timeout_s: float, key: str) -> None:
        result = await call_webhook(url, payload, timeout_s=timeout_s)
        if not result.ok:
            log.warning("error sending event to webhook: %s", result, extra={"canary": key})

    # ------------------------------------------------------------------ generated objects

    def _selector(self, ctx: TickContext) -> tuple[str, str]:
        if ctx.observed.selector is None:
            raise ActionFailed(
                f"{ctx.canary.spec.target_ref.kind} {ctx.canary.spec.target_ref.name} has no usable selector"
            )
        return ctx.observed.selector

    async def _initialize(self, ctx: TickContext, takeover: bool) -> None:
        canary, observed = ctx.canary, ctx.observed
        target = observed.target
        if target is None:
            raise ActionFailed(
                f"target {canary.spec.target_ref.kind} {canary.spec.target_ref.name} not found"
            )
        label, value = self._selector(ctx)
        services = build_services(canary, label, value, discover_ports(canary, target))
        await self._ensure_service(canary, services.canary)
        await self._ensure_service(canary, services.primary)
        renamed = await self._ensure_primary_configs(ctx)
        if observed.primary is None:
            primary = deployments.build_primary(
                canary,
                target,
                label,
                value,
                flagger_id=self._new_id(),
                include_label_prefixes=self._settings.include_label_prefix,
                configs_renamed=renamed,
                selector_labels=self._settings.selector_labels,
            )
            await self._create(kinds.DEPLOYMENT, primary)
        if not takeover:
            return
        await self._ensure_primary_hpa(ctx, create_only=True)
        await self._ensure_service(canary, services.apex)
        await self._reconcile_routes(ctx)

    async def _ensure_service(self, canary: Canary, desired: Obj) -> None:
        namespace = canary.metadata.namespace or ""
        name = desired["metadata"]["name"]
        observed = self._store.get(kinds.SERVICE, namespace, name)
        if observed is None:
            await self._create(kinds.SERVICE, desired)
            return
        analysis_unmanaged = canary.spec.service.unmanaged_metadata
        merged = merge_service(observed, desired, owned(observed, canary), analysis_unmanaged)
        if service_needs_update(observed, merged):
            await self._replace(kinds.SERVICE, merged)

    async def _ensure_primary_configs(self, ctx: TickContext) -> set[str]:
        configs = ctx.observed.configs
        namespace = ctx.canary.metadata.namespace or ""
        for key, obj in configs.objects.items():
            kind = kinds.CONFIG_MAP if key.startswith("configmap/") else kinds.SECRET
            desired = primary_config_copy(
                ctx.canary, obj, include_label_prefixes=self._settings.include_label_prefix
            )
            observed = self._store.get(kind, namespace, desired["metadata"]["name"])
            await self._create_or_update(kind, observed, desired)
        return configs.renamed()

    async def _ensure_primary_hpa(self, ctx: TickContext, create_only: bool) -> None:
        ref = ctx.canary.spec.autoscaler_ref
        if ref is None or ref.kind != "HorizontalPodAutoscaler":
            return
        namespace = ctx.canary.metadata.namespace or ""
        hpa = self._store.get(kinds.HORIZONTAL_POD_AUTOSCALER, namespace, ref.name)
        if hpa is None:
            raise ActionFailed(
                f"HorizontalPodAutoscaler {ref.name}.{namespace} not found (spec.autoscalerRef)"
            )
        desired = hpas.build_primary_hpa(ctx.canary, hpa, ctx.canary.primary_name())
        observed = self._store.get(kinds.HORIZONTAL_POD_AUTOSCALER, namespace, desired["metadata"]["name"])
        if observed is None:
            await self._create(kinds.HORIZONTAL_POD_AUTOSCALER, desired)
        elif not create_only and hpas.hpa_needs_update(observed, desired):
            await self._replace(kinds.HORIZONTAL_POD_AUTOSCALER, hpas.hpa_update(observed, desired))

    async def _reconcile_routes(self, ctx: TickContext) -> None:
        current = ctx.observed.observation.routes or Routes(primary=100, canary=0)
        await self._write_routes(ctx, current, only_if_policy_differs=True)

    async def _set_routes(self, ctx: TickContext, routes: Routes) -> None:
        context = route_context(ctx.canary, self._settings)
        cookies = next_affinity_cookies(
            ctx.canary,
            routes.canary,
            context.cookies,
            fresh_canary=random_cookie_value(),
            fresh_primary=random_cookie_value(),
        )
        if cookies != context.cookies:
            ctx.cookies = cookies
        await self._write_routes(ctx, routes, only_if_policy_differs=False, cookies=cookies)
        self._telemetry.set_weights(
            ctx.canary.spec.target_ref.name,
            ctx.canary.metadata.namespace or "",
            routes.primary,
            routes.canary,
        )

    async def _write_routes(
        self,
        ctx: TickContext,
        routes: Routes,
        only_if_policy_differs: bool,
        cookies: AffinityCookies | None = None,
    ) -> None:
        router = routers.get(ctx.canary.provider_or(self._settings.mesh_provider))
        context = route_context(ctx.canary, self._settings)
        if cookies is not None:
            context = dataclasses.replace(context, cookies=cookies)
        for desired in router.desired(context, routes):
            kind = kinds.kind_of(desired)
            name = desired["metadata"]["name"]
            observed = ctx.observed.route_objects.get(f"{desired['kind']}/{name}")
            if observed is None:
                await self._create(kind, desired)
                continue
            if only_if_policy_differs and not router.needs_update(context, observed, desired):
                continue
            merged = router.merge(context, observed, desired, set_routes=not only_if_policy_differs)
            if not contains(observed, merged) or not contains(merged, observed):
                await self._replace(kind, merged)

    # ------------------------------------------------------------------ scaling and promotion

    def _scale_up_replicas(self, ctx: TickContext) -> int:
        target = ctx.observed.target
        if target is None:
            return 1
        ref = ctx.canary.spec.autoscaler_ref
        autoscaler = None
        if ref is not None:
            kind = kinds.HORIZONTAL_POD_AUTOSCALER if ref.kind == "HorizontalPodAutoscaler" else None
            autoscaler = (
                self._store.get(kind, ctx.canary.metadata.namespace or "", ref.name) if kind else None
            )
        return deployments.scale_up_replicas(
            target, ctx.observed.primary, autoscaler, has_autoscaler=ref is not None
        )

    async def _scale_target(self, ctx: TickContext, replicas: int) -> None:
        target = ctx.observed.target
        if target is None or target.get("kind") not in ("Deployment",):
            return
        if (target.get("spec") or {}).get("replicas") == replicas:
            return
        if replicas == 0:
            log.info(
                "Scaling down %s %s.%s",
                target["kind"],
                ctx.canary.spec.target_ref.name,
                ctx.canary.metadata.namespace,
                extra={"canary": ctx.canary.key},
            )
        await self._patch(kinds.DEPLOYMENT, target, deployments.scaled(target, replicas))

    async def _promote(self, ctx: TickContext) -> None:
        canary, observed = ctx.canary, ctx.observed
        if observed.target is None or observed.primary is None:
            raise ActionFailed(f"cannot promote {canary.key}: the target or the primary is missing")
        label, value = self._selector(ctx)
        renamed = await self._ensure_primary_configs(ctx)
        promoted = deployments.promote(
            canary,
            observed.target,
            observed.primary,
            label,
            value,
            flagger_id=self._new_id(),
            include_label_prefixes=self._settings.include_label_prefix,
            configs_renamed=renamed,
            selector_labels=self._settings.selector_labels,
        )
        await self._replace(kinds.DEPLOYMENT, promoted)
        await self._ensure_primary_hpa(ctx, create_only=False)

    # ------------------------------------------------------------------ revert on deletion

    async def revert(self, canary: Canary, observed: Observed) -> None:
        """Undo the takeover: target scaled back up, a foreign apex Service and route objects restored."""
        ctx = TickContext(canary, observed, TERMINATING)
        target = observed.target
        if (
            target is not None
            and target.get("kind") == "Deployment"
            and not (target.get("spec") or {}).get("replicas")
        ):
            primary_replicas = ((observed.primary or {}).get("spec") or {}).get("replicas")
            replicas = (
                primary_replicas if isinstance(primary_replicas, int) and primary_replicas > 0 else None
            )
            await self._scale_target(ctx, replicas or self._scale_up_replicas(ctx))
        if observed.selector is not None:
            namespace = canary.metadata.namespace or ""
            apex = self._store.get(kinds.SERVICE, namespace, canary.apex_name())
            restored = revert_apex_service(apex, canary, *observed.selector) if apex is not None else None
            if restored is not None:
                await self._replace(kinds.SERVICE, restored)
        router = routers.get(canary.provider_or(self._settings.mesh_provider))
        try:
            for obj in router.revert(route_context(canary, self._settings), observed.route_objects):
                await self._replace(kinds.kind_of(obj), obj)
        except RevertError as error:
            if any(not is_owned_by(obj, canary) for obj in observed.route_objects.values()):
                await self.event(canary, "Warning", str(error), TERMINATING)
            # Route objects the canary created are removed by garbage collection with it.

    # ------------------------------------------------------------------ status, hooks, counters

    async def _write_status(self, ctx: TickContext, status: Mapping[str, Any]) -> None:
        if ctx.cookies is not None:
            status = {**status, **cookie_status(ctx.cookies)}
            ctx.cookies = None
        ctx.canary = await self.write_status(ctx.canary, status)
        ctx.phase = str(status.get("phase") or ctx.phase)

    async def write_status(self, canary: Canary, status: Mapping[str, Any]) -> Canary:
        """Replace the canary's status; returns the canary as written."""
        new_status = dict(status)

        def mutate(obj: Obj) -> None:
            obj["status"] = dict(new_status)

        try:
            written = await self._put_status(canary, new_status, mutate)
        except KubeError as error:
            raise ActionFailed(f"status of canary {canary.key}: {error}") from error
        self.on_write(kinds.CANARY, written)
        self._telemetry.status.labels(
            name=canary.spec.target_ref.name, namespace=canary.metadata.namespace or ""
        ).set(status_value(str(new_status.get("phase") or "")))
        return Canary.model_validate(written)

    async def _put_status(self, canary: Canary, status: Obj, mutate: Callable[[Obj], None]) -> Obj:
        """PUT the status over the version we decided on (no read); re-read and re-apply only on a conflict."""
        cached = self._store.get(kinds.CANARY, canary.metadata.namespace or "", canary.metadata.name or "")
        if cached is not None:
            try:
                return await self._client.replace_status({**cached, "status": status}, kind=kinds.CANARY)
            except Conflict:
                pass
        return await self._client.update_status(
            kinds.CANARY, canary.metadata.name or "", canary.metadata.namespace, mutate
        )

    async def _post_rollout(self, ctx: TickContext, phase: str) -> None:
        canary = ctx.canary
        analysis = canary.analysis()
        for hook in analysis.webhooks or [] if analysis is not None else []:
            if str(hook.type or "") != "post-rollout":
                continue
            payload = build_payload(
                canary.metadata.name or "",
                canary.metadata.namespace or "",
                phase,
                CheckRunner.checksum(canary),
                hook.metadata,
            )
            result = await call_webhook(
                hook.url, payload, hook.timeout_seconds(), hook.retries or 0, bool(hook.disable_tls)
            )
            if result.ok:
                await self.event(canary, "Normal", f"Post-rollout check {hook.name} passed", phase)
            else:
                await self.event(canary, "Warning", f"Post-rollout hook {hook.name} failed {result}", phase)

    def _count(self, canary: Canary, outcome: str, analysis_status: str) -> None:
        counter = self._telemetry.successes if outcome == "success" else self._telemetry.failures
        counter.labels(
            name=canary.spec.target_ref.name,
            namespace=canary.metadata.namespace or "",
            deployment_strategy=str(canary.strategy()),
            analysis_status=analysis_status,
        ).inc()

    # ------------------------------------------------------------------ writes

    async def _create(self, kind: ResourceKind, obj: Obj) -> None:
        try:
            self.on_write(kind, await self._client.create(obj, kind=kind))
        except KubeError as error:
            if getattr(error, "reason", "") == "AlreadyExists" or type(error).__name__ == "AlreadyExists":
                return  # the cache lagged behind our own earlier write; the next tick compares again
            raise ActionFailed(f"creating {kind.kind} {obj['metadata'].get('name')}: {error}") from error
        log.info("%s %s.%s created", kind.kind, obj["metadata"].get("name"), obj["metadata"].get("namespace"))

    async def _replace(self, kind: ResourceKind, obj: Obj) -> None:
        try:
            self.on_write(kind, await self._client.replace(obj, kind=kind))
        except KubeError as error:
            raise ActionFailed(f"updating {kind.kind} {obj['metadata'].get('name')}: {error}") from error
        log.info("%s %s.%s updated", kind.kind, obj["metadata"].get("name"), obj["metadata"].get("namespace"))

    async def _patch(self, kind: ResourceKind, obj: Obj, patch: Obj) -> None:
        meta = obj.get("metadata") or {}
        try:
            self.on_write(
                kind,
                await self._client.patch(kind, meta.get("name", ""), patch, namespace=meta.get("namespace")),
            )
        except KubeError as error:
            raise ActionFailed(f"patching {kind.kind} {meta.get('name')}: {error}") from error

    async def _create_or_update(self, kind: ResourceKind, observed: Obj | None, desired: Obj) -> None:
        if observed is None:
            await self._create(kind, desired)
            return
        if contains(observed, {k: v for k, v in desired.items() if k != "metadata"}) and contains(
            observed.get("metadata") or {},
            {k: v for k, v in (desired.get("metadata") or {}).items() if k in ("labels", "ownerReferences")},
        ):
            return
        merged = {**observed, **{k: v for k, v in desired.items() if k != "metadata"}}
        merged["metadata"] = {**(observed.get("metadata") or {}), **(desired.get("metadata") or {})}
        merged["metadata"]["resourceVersion"] = (observed.get("metadata") or {}).get("resourceVersion")
        await self._replace(kind, merged)
