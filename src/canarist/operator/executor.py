"""Carry out the engine's decisions: build manifests with the pure builders, write them through the one
`Writer`, and report (Kubernetes Events, logs, the event webhook, alerts, metrics).

Every write goes through the writer's single policy — desired → write only if it differs from the cached
object — so a steady-state tick writes nothing. The target kind's record, the router and its route context
come resolved in `Observed`. A failed write raises `ActionFailed` with a path-qualified message; the runtime
records it as a Warning and the next tick retries (every action is idempotent). Notifications (event
webhooks, alerts) are queued on an outbox and never delay the tick.
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
from canarist.kube.cache import ObjectStore
from canarist.kube.client import KubeClient
from canarist.kube.errors import Conflict, KubeError
from canarist.kube.events import EventRecorder
from canarist.kube.writer import WriteError, Writer
from canarist.notify.events import submit_event
from canarist.notify.outbox import Outbox
from canarist.operator.alerts import AlertSender
from canarist.operator.observe import AUTOSCALER_KINDS, BLOCKED_CONDITION, Observed
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry, status_value
from canarist.routers.base import AffinityCookies, RevertError, next_affinity_cookies
from canarist.workloads import deployment as deployments
from canarist.workloads import hpa as hpas
from canarist.workloads import scaledobject as scaledobjects
from canarist.workloads._meta import is_owned_by
from canarist.workloads.configs import primary_config_copy
from canarist.workloads.primary import FLAGGER_ID
from canarist.workloads.revision import run_checksum as checksum
from canarist.workloads.revision import webhook_checksum
from canarist.workloads.selector import discover_ports
from canarist.workloads.services import build_services, merge_service, owned, revert_apex_service

log = logging.getLogger("canarist")

Obj = dict[str, Any]
NewId = Callable[[], str]
TERMINATING = "Terminating"
EVENT_WEBHOOK_TIMEOUT_S = 10.0

#: ``spec.autoscalerRef.kind`` → the resource of the target's autoscaler.
SCALER_KINDS = {
    "HorizontalPodAutoscaler": kinds.HORIZONTAL_POD_AUTOSCALER,
    "ScaledObject": kinds.SCALED_OBJECT,
}

#: a failed write: the writer's error, named as the executor always named it.
ActionFailed = WriteError


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a map, else an empty one (an invalid object may have anything anywhere)."""
    return value if isinstance(value, Mapping) else {}


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


def _template_id(workload: Mapping[str, Any] | None) -> str:
    annotations = _mapping(_mapping(_mapping(_mapping(workload).get("spec")).get("template")).get("metadata"))
    return str(_mapping(annotations.get("annotations")).get(FLAGGER_ID) or "")


class Executor:
    def __init__(
        self,
        client: KubeClient,
        cache: ObjectStore,
        writer: Writer,
        recorder: EventRecorder,
        settings: OperatorSettings,
        telemetry: Telemetry,
        alerts: AlertSender,
        outbox: Outbox,
        new_id: NewId = lambda: str(uuid.uuid4()),
    ) -> None:
        self._client = client
        self._cache = cache
        self._writer = writer
        self.recorder = recorder
        self._settings = settings
        self._telemetry = telemetry
        self._alerts = alerts
        self._outbox = outbox
        self._new_id = new_id

    @property
    def client(self) -> KubeClient:
        """The API client the executor writes with (the runtime commands' status goes through it too)."""
        return self._client

    async def apply(self, canary: Canary, observed: Observed, actions: tuple[Action, ...]) -> Canary:
        """Apply ``actions`` in order; returns the canary as it stands after the status write."""
        ctx = TickContext(canary, observed, canary.status.phase or "")
        for action in actions:
            await self._apply_one(ctx, action)
        if ctx.cookies is not None:  # routes changed but no status write followed: save the cookies alone
            await self._write_status(ctx, ctx.canary.status.to_dict())
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
            case Alert(message=message, severity=severity, with_metadata=with_metadata, fields=fields):
                await self._alerts.send(ctx.canary, message, severity, with_metadata, fields)
            case RunPostRollout(phase=phase):
                await self._post_rollout(ctx, phase)
            case CountOutcome(outcome=outcome, analysis_status=analysis_status):
                self._count(ctx.canary, outcome, analysis_status)

    # ------------------------------------------------------------------ events

    async def event(self, canary: Canary, event_type: str, message: str, phase: str) -> None:
        """One event, three ways: a log line, a Kubernetes Event (reason Synced), the event webhooks."""
        log.info(message, extra={"canary": canary.key})  # warnings too: Flagger logs both at info level
        await self.recorder.record(canary.reference(), event_type, "Synced", message)
        self._event_webhooks(canary, event_type, message, phase)

    def _event_webhooks(self, canary: Canary, event_type: str, message: str, phase: str) -> None:
        analysis = canary.analysis()
        hooks = [h for h in (analysis.webhooks or []) if str(h.type or "") == "event"] if analysis else []
        targets: list[tuple[str, Mapping[str, str] | None, float]] = [
            (h.url, h.metadata, h.timeout_seconds()) for h in hooks
        ]
        if not targets and self._settings.event_webhook:
            targets = [(self._settings.event_webhook, None, EVENT_WEBHOOK_TIMEOUT_S)]
        name, namespace = canary.metadata.name or "", canary.metadata.namespace or ""
        sum_ = checksum(canary)
        for url, metadata, timeout in targets:
            payload = build_event_payload(name, namespace, phase, sum_, message, event_type, metadata)
            submit_event(self._outbox, url, payload, timeout, canary.key)

    async def invalid_canary_event(self, obj: Obj, message: str) -> None:
        """A Warning about a canary that cannot run, to the global event webhook: the canary's own event
        hooks are in a spec that cannot be trusted."""
        if not self._settings.event_webhook:
            return
        meta = _mapping(obj.get("metadata"))
        status = _mapping(obj.get("status"))
        configs = status.get("trackedConfigs")
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        sum_ = webhook_checksum(
            configs if isinstance(configs, dict) else None, str(status.get("lastAppliedSpec") or "")
        )
        phase = str(status.get("phase") or "")
        payload = build_event_payload(name, namespace, phase, sum_, message, "Warning")
        submit_event(
            self._outbox,
            self._settings.event_webhook,
            payload,
            EVENT_WEBHOOK_TIMEOUT_S,
            f"{name}.{namespace}",
        )

    # ------------------------------------------------------------------ generated objects

    def _selector(self, ctx: TickContext) -> tuple[str, str]:
        """The target's selector label and value; ``("", "")`` for a kind that runs no pods (a Service)."""
        if not ctx.observed.target_kind.runs_pods:
            return "", ""
        if ctx.observed.selector is None:
            ref = ctx.canary.spec.target_ref
            raise ActionFailed(f"{ref.kind} {ref.name} has no usable selector")
        return ctx.observed.selector

    async def _initialize(self, ctx: TickContext, takeover: bool) -> None:
        canary, observed = ctx.canary, ctx.observed
        target = observed.target
        if target is None:
            raise ActionFailed(
                f"target {canary.spec.target_ref.kind} {canary.spec.target_ref.name} not found"
            )
        record = observed.target_kind
        label, value = self._selector(ctx)
        # A kind with pods gets the ClusterIP services of its selector; a Service target is its own apex and
        # gets a -canary copy of itself instead, refreshed on every tick.
        services = (
            build_services(canary, label, value, discover_ports(canary, target)) if record.runs_pods else None
        )
        if services is not None:
            await self._ensure_service(canary, services.canary)
            await self._ensure_service(canary, services.primary)
        if record.canary_copy is not None:
            copy = record.canary_copy
            await self._writer.converge(record.resource, copy.build(canary, target), merge=copy.merge)
        renamed = await self._ensure_primary_configs(ctx)
        if observed.primary is None:
            primary = record.build_primary(
                canary,
                target,
                label,
                value,
                flagger_id=self._new_id(),
                include_label_prefixes=self._settings.include_label_prefix,
                configs_renamed=renamed,
                selector_labels=self._settings.selector_labels,
            )
            if record.revisions is not None:
                # the primary is a revision of the target: the target itself names it
                await self._writer.replace(record.resource, primary)
            else:
                await self._writer.create(record.resource, primary)
        if not takeover:
            return
        await self._ensure_primary_scaler(ctx, create_only=True)
        if services is not None:
            await self._ensure_service(canary, services.apex)
        await self._reconcile_routes(ctx)

    async def _ensure_service(self, canary: Canary, desired: Obj) -> None:
        unmanaged = canary.spec.service.unmanaged_metadata

        def merge(observed: Obj, wanted: Obj) -> Obj:
            return merge_service(observed, wanted, owned(observed, canary), unmanaged)

        await self._writer.converge(kinds.SERVICE, desired, merge=merge)

    async def _ensure_primary_configs(self, ctx: TickContext) -> set[str]:
        configs = ctx.observed.configs
        for key, obj in configs.objects.items():
            kind = kinds.CONFIG_MAP if key.startswith("configmap/") else kinds.SECRET
            desired = primary_config_copy(
                ctx.canary, obj, include_label_prefixes=self._settings.include_label_prefix
            )
            await self._writer.converge(kind, desired)
        return configs.renamed()

    def _target_scaler(self, ctx: TickContext) -> Obj | None:
        """The target's autoscaler (``spec.autoscalerRef``) from the cache; None without one or when missing."""
        ref = ctx.canary.spec.autoscaler_ref
        kind = AUTOSCALER_KINDS.get(ref.kind) if ref is not None else None
        if ref is None or kind is None:
            return None
        return self._cache.get(kind, ctx.canary.metadata.namespace or "", ref.name)

    async def _ensure_primary_scaler(self, ctx: TickContext, create_only: bool) -> None:
        ref = ctx.canary.spec.autoscaler_ref
        if ref is not None and ref.kind == "ScaledObject":
            await self._ensure_primary_so(ctx, create_only)
        else:
            await self._ensure_primary_hpa(ctx, create_only)

    async def _ensure_primary_so(self, ctx: TickContext, create_only: bool) -> None:
        ref = ctx.canary.spec.autoscaler_ref
        assert ref is not None
        so = self._target_scaler(ctx)
        if so is None:
            namespace = ctx.canary.metadata.namespace or ""
            raise ActionFailed(f"ScaledObject {ref.name}.{namespace} not found (spec.autoscalerRef)")
        desired = scaledobjects.build_primary_so(ctx.canary, so)

        def merge(observed: Obj, wanted: Obj) -> Obj | None:
            return None if create_only else scaledobjects.so_update(observed, wanted)

        await self._writer.converge(kinds.SCALED_OBJECT, desired, merge=merge)

    async def _pause_target_scaler(self, ctx: TickContext, pause: bool) -> None:
        """Pause the target's ScaledObject at zero replicas, or resume it (KEDA only: an HPA needs neither)."""
        ref = ctx.canary.spec.autoscaler_ref
        if ref is None or ref.kind != "ScaledObject":
            return
        so = self._target_scaler(ctx)
        if so is None:
            return
        patch = scaledobjects.pause_patch(so) if pause else scaledobjects.resume_patch(so)
        if patch is not None:
            await self._writer.patch(kinds.SCALED_OBJECT, so, patch)

    async def _ensure_primary_hpa(self, ctx: TickContext, create_only: bool) -> None:
        ref = ctx.canary.spec.autoscaler_ref
        if ref is None or ref.kind != "HorizontalPodAutoscaler":
            return
        namespace = ctx.canary.metadata.namespace or ""
        hpa = self._cache.get(kinds.HORIZONTAL_POD_AUTOSCALER, namespace, ref.name)
        if hpa is None:
            raise ActionFailed(
                f"HorizontalPodAutoscaler {ref.name}.{namespace} not found (spec.autoscalerRef)"
            )
        desired = hpas.build_primary_hpa(ctx.canary, hpa, ctx.canary.primary_name())

        def merge(observed: Obj, wanted: Obj) -> Obj | None:
            if create_only or not hpas.hpa_needs_update(observed, wanted):
                return None
            return hpas.hpa_update(observed, wanted)

        await self._writer.converge(kinds.HORIZONTAL_POD_AUTOSCALER, desired, merge=merge)

    async def _reconcile_routes(self, ctx: TickContext) -> None:
        current = ctx.observed.observation.routes or Routes(primary=100, canary=0)
        await self._write_routes(ctx, current, reconcile=True)

    async def _set_routes(self, ctx: TickContext, routes: Routes) -> None:
        context = ctx.observed.context
        cookies = next_affinity_cookies(
            ctx.canary,
            routes.canary,
            context.cookies,
            fresh_canary=random_cookie_value(),
            fresh_primary=random_cookie_value(),
        )
        if cookies != context.cookies:
            ctx.cookies = cookies
        await self._write_routes(ctx, routes, reconcile=False, cookies=cookies)
        self._telemetry.set_weights(
            ctx.canary.spec.target_ref.name,
            ctx.canary.metadata.namespace or "",
            routes.primary,
            routes.canary,
        )

    async def _write_routes(
        self, ctx: TickContext, routes: Routes, *, reconcile: bool, cookies: AffinityCookies | None = None
    ) -> None:
        router = ctx.observed.router
        context = ctx.observed.context
        if cookies is not None:
            context = dataclasses.replace(context, cookies=cookies)

        def merge(observed: Obj, desired: Obj) -> Obj | None:
            if reconcile and not router.needs_update(context, observed, desired):
                return None
            return router.merge(context, observed, desired, set_routes=not reconcile)

        for desired in router.desired(context, routes):
            await self._writer.converge(kinds.kind_of(desired), desired, merge=merge)

    # ------------------------------------------------------------------ scaling and promotion

    def _scale_up_replicas(self, ctx: TickContext) -> int:
        target = ctx.observed.target
        if target is None:
            return 1
        ref = ctx.canary.spec.autoscaler_ref
        return deployments.scale_up_replicas(
            target, ctx.observed.primary, self._target_scaler(ctx), has_autoscaler=ref is not None
        )

    async def _scale_target(self, ctx: TickContext, replicas: int) -> None:
        target, record = ctx.observed.target, ctx.observed.target_kind
        if target is None:
            return
        # KEDA would scale a target back up (or down) behind our back: paused at zero while scaled down.
        await self._pause_target_scaler(ctx, pause=replicas == 0)
        patch = record.scale_patch(target, replicas)
        if patch is None:
            return
        if replicas == 0:
            log.info(
                "Scaling down %s %s.%s",
                record.kind,
                ctx.canary.spec.target_ref.name,
                ctx.canary.metadata.namespace,
                extra={"canary": ctx.canary.key},
            )
        await self._writer.patch(record.resource, target, patch)

    async def _promote(self, ctx: TickContext) -> None:
        """Copy the target's template to the primary — only when the primary does not carry it already, so a
        replayed Promote (after a crash or a lost answer) writes nothing and restarts no rollout."""
        canary, observed = ctx.canary, ctx.observed
        if observed.target is None or observed.primary is None:
            raise ActionFailed(f"cannot promote {canary.key}: the target or the primary is missing")
        label, value = self._selector(ctx)
        renamed = await self._ensure_primary_configs(ctx)

        def promoted(flagger_id: str) -> Obj:
            assert observed.target is not None
            assert observed.primary is not None
            return observed.target_kind.promote(
                canary,
                observed.target,
                observed.primary,
                label,
                value,
                flagger_id=flagger_id,
                include_label_prefixes=self._settings.include_label_prefix,
                configs_renamed=renamed,
                selector_labels=self._settings.selector_labels,
            )

        if promoted(_template_id(observed.primary)) != observed.primary:
            await self._writer.replace(observed.target_kind.resource, promoted(self._new_id()))
        await self._ensure_primary_scaler(ctx, create_only=False)

    # ------------------------------------------------------------------ revert on deletion

    async def revert(self, canary: Canary, observed: Observed) -> None:
        """Undo the takeover: target scaled back up, a foreign apex Service and route objects restored."""
        ctx = TickContext(canary, observed, TERMINATING)
        target = observed.target
        await self._pause_target_scaler(ctx, pause=False)
        if target is not None and observed.target_kind.is_scaled_down(target):
            primary_replicas = _mapping(_mapping(observed.primary).get("spec")).get("replicas")
            replicas = (
                primary_replicas if isinstance(primary_replicas, int) and primary_replicas > 0 else None
            )
            await self._scale_target(ctx, replicas or self._scale_up_replicas(ctx))
        if observed.selector is not None:
            namespace = canary.metadata.namespace or ""
            apex = self._cache.get(kinds.SERVICE, namespace, canary.apex_name())
            restored = revert_apex_service(apex, canary, *observed.selector) if apex is not None else None
            if restored is not None:
                await self._writer.replace(kinds.SERVICE, restored)
        try:
            for obj in observed.router.revert(observed.context, observed.route_objects):
                await self._writer.replace(kinds.kind_of(obj), obj)
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
        written = await self._put_status(canary.to_manifest(), dict(status))
        self._telemetry.status.labels(
            name=canary.spec.target_ref.name, namespace=canary.metadata.namespace or ""
        ).set(status_value(str(status.get("phase") or "")))
        return Canary.model_validate(written)

    async def set_condition(self, obj: Obj, condition: Obj | None) -> Obj | None:
        """Put ``condition`` into the status conditions (replacing one of its type), or with None remove the
        canarist condition (type ``Blocked``). Returns the written object, or None when nothing changed."""
        status = dict(_mapping(obj.get("status")))
        conditions = [dict(c) for c in status.get("conditions") or [] if isinstance(c, Mapping)]
        kept = [c for c in conditions if c.get("type") != BLOCKED_CONDITION]
        old = next((c for c in conditions if c.get("type") == BLOCKED_CONDITION), None)
        if condition is None and old is None:
            return None
        if (
            condition is not None
            and old is not None
            and all(old.get(k) == condition.get(k) for k in ("status", "reason", "message"))
        ):
            return None
        status["conditions"] = kept + ([condition] if condition is not None else [])
        try:
            return await self._put_status(obj, status)
        except ActionFailed as error:
            log.warning("%s", error)
            return None

    async def _put_status(self, obj: Mapping[str, Any], status: Obj) -> Obj:
        """PUT the status over the version we decided on (no read); re-read and re-apply only on a conflict."""
        meta = _mapping(obj.get("metadata"))
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        cached = self._cache.get(kinds.CANARY, namespace, name)

        def mutate(current: Obj) -> None:
            current["status"] = dict(status)

        try:
            if cached is not None:
                try:
                    written = await self._client.replace_status(
                        {**cached, "status": status}, kind=kinds.CANARY
                    )
                    self._writer.remember(kinds.CANARY, written)
                    return written
                except Conflict:
                    pass
            written = await self._client.update_status(kinds.CANARY, name, namespace, mutate)
        except KubeError as error:
            raise ActionFailed(f"status of canary {name}.{namespace}: {error}", error) from error
        self._writer.remember(kinds.CANARY, written)
        return written

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
                checksum(canary),
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
