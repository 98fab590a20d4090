"""The controller: informer caches, one worker per Canary, and the tick that joins observe → decide → act.

Wake-ups come from the caches: a Canary spec change, a change of its target, of a ConfigMap/Secret the
target uses, or of the generated primary wakes that canary's worker at once. Our own status writes do not
(they do not bump `metadata.generation`), so a tick never triggers itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from canarist.api import Canary
from canarist.api.validation import parse_document
from canarist.engine.decide import decide
from canarist.engine.model import Decision, EngineSettings, NeedCheck
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.events import EventRecorder
from canarist.kube.informer import Informer
from canarist.kube.resources import ResourceKind
from canarist.operator.alerts import AlertSender
from canarist.operator.checks import CheckRunner
from canarist.operator.executor import ActionFailed, Executor
from canarist.operator.finalizer import FINALIZER, Finalizer, is_deleting
from canarist.operator.observe import TARGET_KINDS, observe
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry
from canarist.operator.worker import CanaryWorker, TickOutcome
from canarist.workloads.configs import config_refs

log = logging.getLogger("canarist")

Obj = dict[str, Any]
Clock = Callable[[], datetime]

WATCHED_KINDS = (
    kinds.CANARY,
    kinds.METRIC_TEMPLATE,
    kinds.ALERT_PROVIDER,
    kinds.DEPLOYMENT,
    kinds.DAEMON_SET,
    kinds.HORIZONTAL_POD_AUTOSCALER,
    kinds.SERVICE,
    kinds.CONFIG_MAP,
    kinds.SECRET,
    kinds.VIRTUAL_SERVICE,
    kinds.DESTINATION_RULE,
)
# Index names.
BY_TARGET = "target"  # canaries by "<Kind>/<namespace>/<name>" of their target
BY_CONFIG = "config"  # workloads by "configmap/<namespace>/<name>" or "secret/<namespace>/<name>"
UNKNOWN_FIELD = "unknown field"
MAX_DECIDE_STEPS = 200  # a tick asks at most this many checks; more means an engine bug, not a canary


def utcnow() -> datetime:
    return datetime.now(UTC)


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _older(cached: Obj, written: Obj) -> bool:
    """Whether the cache still holds a version from before our write.

    resourceVersions are opaque to clients in general; every API server we know (etcd-backed ones and the
    local control plane) uses increasing integers, so compare them as such and otherwise trust the cache
    once it holds any other version than the one we replaced.
    """
    cached_rv, written_rv = (
        str(_meta(cached).get("resourceVersion", "")),
        str(_meta(written).get("resourceVersion", "")),
    )
    if cached_rv.isdigit() and written_rv.isdigit():
        return int(cached_rv) < int(written_rv)
    return False


def next_wake(decision: Decision, now: datetime) -> datetime | None:
    """When the worker must tick again on its own (changes wake it anyway).

    A due time that has already passed means the engine had its chance at paced work in this tick and
    had none to do (a canary at rest): sleep until a change or the resync instead of ticking in a loop.
    """
    if decision.next_due_at is None or decision.next_due_at <= now:
        return None
    return decision.next_due_at


def canary_target_keys(obj: Obj) -> Iterable[str]:
    ref = (obj.get("spec") or {}).get("targetRef") or {}
    namespace = _meta(obj).get("namespace", "")
    if ref.get("kind") and ref.get("name"):
        yield f"{ref['kind']}/{namespace}/{ref['name']}"


def workload_config_keys(obj: Obj) -> Iterable[str]:
    namespace = _meta(obj).get("namespace", "")
    for ref in config_refs(obj):
        yield f"{ref.kind}/{namespace}/{ref.name}"


@dataclass
class CanaryState:
    """What the controller remembers about a canary between ticks (lost on restart, by design)."""

    worker: CanaryWorker
    last_paced_at: datetime | None = None
    last_invalid: str = ""
    valid_version: str = ""  # the resourceVersion that last passed validation
    duplicate_warning: str = ""
    generation: int = 0
    problems: list[str] = field(default_factory=list)


class Controller:
    def __init__(
        self,
        client: KubeClient,
        settings: OperatorSettings,
        telemetry: Telemetry,
        alerts: AlertSender,
        clock: Clock = utcnow,
    ) -> None:
        self._client = client
        self._settings = settings
        self._telemetry = telemetry
        self._clock = clock
        namespace = settings.namespace or None
        self.informers: dict[ResourceKind, Informer] = {
            kind: Informer(
                client,
                kind,
                namespace=namespace,
                label_selector=settings.label_selector or None if kind == kinds.CANARY else None,
                resync_seconds=0,
            )
            for kind in WATCHED_KINDS
        }
        self.recorder = EventRecorder(client, component="flagger")
        self.checks = CheckRunner(self, settings, telemetry)
        self.executor = Executor(client, self, self.recorder, settings, telemetry, alerts)
        self._engine_settings = EngineSettings(
            min_interval_s=settings.min_analysis_interval_s,
            mesh_provider=settings.mesh_provider,
            cluster_name=settings.cluster_name,
        )
        self._canaries: dict[str, CanaryState] = {}
        self._running = False
        self._housekeeping: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        self._written: dict[tuple[str, str, str], Obj] = {}
        self.executor.on_write = self.remember_write
        self.finalizer = Finalizer(client, self, self.executor)

    # ------------------------------------------------------------------ ObjectStore

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None:
        """The cached object, or our own newer write of it that the watch has not delivered yet.

        Without this read-your-writes overlay a tick right after a Promote could see the old, ready
        primary and move traffic back before the new pods rolled out.
        """
        informer = self.informers.get(kind)
        cached = informer.get(namespace, name) if informer is not None else None
        written = self._written.get((kind.plural, namespace, name))
        if written is None:
            return cached
        if cached is not None and not _older(cached, written):
            del self._written[(kind.plural, namespace, name)]
            return cached
        return written

    def _forget_write_handler(self, kind: ResourceKind) -> Callable[[str, Obj, Obj | None], None]:
        def forget(event_type: str, obj: Obj, old: Obj | None) -> None:
            key = (kind.plural, str(_meta(obj).get("namespace") or ""), str(_meta(obj).get("name") or ""))
            written = self._written.get(key)
            if written is not None and (event_type == "DELETED" or not _older(obj, written)):
                del self._written[key]

        return forget

    def remember_write(self, kind: ResourceKind, obj: Obj) -> None:
        meta = _meta(obj)
        if meta.get("name") and meta.get("resourceVersion"):
            self._written[(kind.plural, str(meta.get("namespace") or ""), str(meta["name"]))] = obj

    # ------------------------------------------------------------------ lifecycle

    @property
    def synced(self) -> bool:
        return all(informer.synced for informer in self.informers.values())

    async def start_caches(self) -> None:
        """Start the informers and wait for their first list: a tick must never see a half-filled cache."""
        self.informers[kinds.CANARY].add_index(BY_TARGET, canary_target_keys)
        for kind in (kinds.DEPLOYMENT, kinds.DAEMON_SET):
            self.informers[kind].add_index(BY_CONFIG, workload_config_keys)
        for kind, informer in self.informers.items():
            informer.add_handler(self._forget_write_handler(kind))
        await asyncio.gather(*(informer.start() for informer in self.informers.values()))
        await asyncio.gather(*(informer.wait_synced() for informer in self.informers.values()))

    async def start_workers(self) -> None:
        """Begin acting (called when this replica leads, or at once without leader election)."""
        self._running = True
        self.informers[kinds.CANARY].add_handler(self._on_canary)
        for kind in (kinds.DEPLOYMENT, kinds.DAEMON_SET, kinds.SERVICE):
            self.informers[kind].add_handler(self._on_workload)
        for kind in (kinds.CONFIG_MAP, kinds.SECRET):
            self.informers[kind].add_handler(self._on_config)
        self._housekeeping = asyncio.create_task(self._housekeeping_loop(), name="housekeeping")

    async def stop(self) -> None:
        self._running = False
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
        await asyncio.gather(*(state.worker.stop() for state in self._canaries.values()))
        self._canaries.clear()
        await asyncio.gather(*(informer.stop() for informer in self.informers.values()))

    def ticks(self, namespace: str, name: str) -> int:
        """How many ticks of this canary's worker have completed (0 for a canary without a worker).

        Tests that prove that nothing happens wait for a number of ticks, not for wall-clock time."""
        state = self._canaries.get(f"{name}.{namespace}")
        return state.worker.ticks if state is not None else 0

    # ------------------------------------------------------------------ wake-ups

    def _on_canary(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        meta = _meta(obj)
        key = f"{meta.get('name')}.{meta.get('namespace')}"
        if event_type == "DELETED":
            state = self._canaries.pop(key, None)
            if state is not None:
                log.info("Deleting %s from cache", key, extra={"canary": key})
                task = asyncio.create_task(state.worker.stop())
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
            return
        state = self._canaries.get(key)
        if state is None:
            state = CanaryState(CanaryWorker(key, self._tick_for(key), self._clock, self._resync_s()))
            self._canaries[key] = state
            state.worker.start()
            return
        generation = int(meta.get("generation") or 0)
        if (
            old is None
            or generation != int(_meta(old).get("generation") or 0)
            or meta.get("deletionTimestamp")
        ):
            state.worker.wake()

    def _tick_for(self, key: str) -> Callable[[], Awaitable[TickOutcome]]:
        async def tick() -> TickOutcome:
            return await self.tick(key)

        return tick

    def _wake_canaries_of(self, kind: str, namespace: str, name: str) -> None:
        for canary in self.informers[kinds.CANARY].by_index(BY_TARGET, f"{kind}/{namespace}/{name}"):
            state = self._canaries.get(f"{_meta(canary).get('name')}.{namespace}")
            if state is not None:
                state.worker.wake()

    def _on_workload(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        if not self._running:
            return
        meta = _meta(obj)
        kind, namespace, name = obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")
        self._wake_canaries_of(kind, namespace, name)
        if name.endswith("-primary"):
            # The primary's rollout moves initialization and promotion forward.
            self._wake_canaries_of(kind, namespace, name.removesuffix("-primary"))

    def _on_config(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        if not self._running or (old is not None and old.get("data") == obj.get("data")):
            return
        meta = _meta(obj)
        kind = "configmap" if obj.get("kind") == "ConfigMap" else "secret"
        key = f"{kind}/{meta.get('namespace')}/{meta.get('name')}"
        for workload_kind in (kinds.DEPLOYMENT, kinds.DAEMON_SET):
            for workload in self.informers[workload_kind].by_index(BY_CONFIG, key):
                wmeta = _meta(workload)
                self._wake_canaries_of(workload_kind.kind, wmeta.get("namespace", ""), wmeta.get("name", ""))

    def _resync_s(self) -> float:
        return self._settings.control_loop_interval_s

    # ------------------------------------------------------------------ housekeeping (Flagger's control loop)

    async def _housekeeping_loop(self) -> None:
        while True:
            self._count_canaries()
            await asyncio.sleep(self._settings.control_loop_interval_s)

    def _count_canaries(self) -> None:
        per_namespace: dict[str, int] = {}
        targets: dict[str, list[str]] = {}
        for obj in self.informers[kinds.CANARY].list():
            meta = _meta(obj)
            per_namespace[meta.get("namespace", "")] = per_namespace.get(meta.get("namespace", ""), 0) + 1
            for target in canary_target_keys(obj):
                targets.setdefault(target, []).append(f"{meta.get('name')}.{meta.get('namespace')}")
        for namespace, count in per_namespace.items():
            self._telemetry.canary_total.labels(namespace=namespace).set(count)
        for target, owners in targets.items():
            if len(owners) > 1:
                log.error(
                    "Bad things will happen! Found more than one canary with the same target %s", target
                )

    def duplicates_of(self, canary: Canary) -> list[str]:
        """Other canaries targeting the same workload."""
        key = f"{canary.spec.target_ref.kind}/{canary.metadata.namespace}/{canary.spec.target_ref.name}"
        others = self.informers[kinds.CANARY].by_index(BY_TARGET, key)
        return sorted(
            f"{_meta(o).get('name')}.{_meta(o).get('namespace')}"
            for o in others
            if _meta(o).get("name") != canary.metadata.name
        )

    # ------------------------------------------------------------------ the tick

    async def tick(self, key: str) -> TickOutcome:
        name, _, namespace = key.partition(".")
        obj = self.get(kinds.CANARY, namespace, name)
        state = self._canaries.get(key)
        if obj is None or state is None:
            return TickOutcome()
        canary = await self._load(obj, state)
        if canary is None:
            return TickOutcome()
        if is_deleting(obj):
            if FINALIZER in (_meta(obj).get("finalizers") or []):
                observed = observe(canary, self, self._settings, self._clock(), state.last_paced_at)
                try:
                    await self.finalizer.finalize(canary, observed)
                except ActionFailed as error:
                    await self.executor.event(canary, "Warning", str(error), canary.status.phase or "")
            return TickOutcome()
        try:
            await self.finalizer.sync_finalizer(obj, canary)
        except ActionFailed as error:
            await self.executor.event(canary, "Warning", str(error), canary.status.phase or "")
        duplicates = self.duplicates_of(canary)
        oldest = self._oldest(canary, duplicates) if duplicates else canary.key
        if oldest != canary.key:
            # Two canaries driving one workload would fight over it: only the oldest runs; say so once.
            message = (
                f"{canary.spec.target_ref.kind} {canary.spec.target_ref.name}.{namespace} is already the target of "
                f"canary {oldest}; {canary.key} will not run until it targets another workload"
            )
            if state.duplicate_warning != message:
                state.duplicate_warning = message
                log.error(message, extra={"canary": canary.key})
                await self.executor.event(canary, "Warning", message, canary.status.phase or "")
            return TickOutcome()
        started = self._clock()
        observed = observe(canary, self, self._settings, started, state.last_paced_at)
        decision = await self._decide(canary, observed)
        try:
            await self.executor.apply(canary, observed, decision.actions)
        except ActionFailed as error:
            await self.executor.event(canary, "Warning", str(error), canary.status.phase or "")
        elapsed = (self._clock() - started).total_seconds()
        if decision.paced:
            state.last_paced_at = started
            # Flagger observes the ticks that reach the analysis step; paced ticks are those.
            self._telemetry.duration.labels(name=canary.spec.target_ref.name, namespace=namespace).observe(
                elapsed
            )
        self._telemetry.reconcile_seconds.labels(namespace=namespace).observe(elapsed)
        return TickOutcome(again=decision.again, next_due_at=next_wake(decision, started))

    async def _decide(self, canary: Canary, observed: Any) -> Decision:
        answers: dict[Any, Any] = {}
        for _ in range(MAX_DECIDE_STEPS):
            outcome = decide(canary, observed.observation, answers, self._engine_settings)
            if not isinstance(outcome, NeedCheck):
                return outcome
            answers[outcome.check] = await self.checks.run(canary, outcome.check)
        raise RuntimeError(f"the engine asked more than {MAX_DECIDE_STEPS} checks in one tick")

    async def _load(self, obj: Obj, state: CanaryState) -> Canary | None:
        """The typed canary, or None (with one Warning per distinct problem) when it is invalid."""
        version = str(_meta(obj).get("resourceVersion") or "")
        if version and version == state.valid_version:
            # The schema walk is most of a tick at rest; an object that has not changed passed it already.
            return Canary.model_validate(obj)
        problems, model = parse_document(obj)
        # Fields we do not know (a newer Flagger's) are kept on write-back and do not stop a run.
        blocking = [p for p in problems if p.message != UNKNOWN_FIELD]
        if not blocking and isinstance(model, Canary):
            state.last_invalid = ""
            state.valid_version = version
            return model
        state.valid_version = ""
        text = "; ".join(str(p) for p in blocking) or "cannot be read"
        meta = _meta(obj)
        message = f"invalid canary {meta.get('name')}.{meta.get('namespace')}: {text}"
        if message != state.last_invalid:
            state.last_invalid = message
            log.error(message, extra={"canary": f"{meta.get('name')}.{meta.get('namespace')}"})
            await self.recorder.record(obj, "Warning", "Synced", message)
            await self.executor.invalid_canary_event(obj, message)
        return None

    def _oldest(self, canary: Canary, duplicates: list[str]) -> str:
        candidates = [canary.key, *duplicates]

        def created(key: str) -> tuple[str, bool, str]:
            # Creation times have one-second resolution: on a tie the canary that already runs keeps running.
            name, _, namespace = key.partition(".")
            obj = self.get(kinds.CANARY, namespace, name) or {}
            not_started = not (obj.get("status") or {}).get("phase")
            return (str(_meta(obj).get("creationTimestamp", "")), not_started, key)

        return min(candidates, key=created)


__all__ = ["TARGET_KINDS", "Controller"]
