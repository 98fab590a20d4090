"""The controller: one worker per Canary, the wake-ups that drive them, and the tick (observe → decide → act).

Wake-ups come from the object cache: a Canary spec change, a change of its target (its status too: the
canary workload finishing its rollout starts the run's first step at once, docs/engine.md "Pacing"), of a
ConfigMap/Secret the target uses, or of the generated primary wakes that canary's worker at once. Our own status writes do
not (they do not bump `metadata.generation`), so a tick never triggers itself.

Canaries are keyed by ``(namespace, name)``. What a tick can raise is split in two: a `Permanent` problem
(an invalid spec, an unsupported provider or target kind, a spec the router cannot route, a refused
reference) is reported once per distinct message and generation — one Warning Event, one status
condition, one log line — and the canary waits for an edit; a failed write is temporary, reported as a
Warning, and retried on the next tick.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from canarist.api import Canary
from canarist.api.enums import Phase
from canarist.api.validation import parse_document
from canarist.engine.decide import decide
from canarist.engine.ledger import rfc3339
from canarist.engine.model import Check, CheckResult, Decision, EngineSettings, Initialize, NeedCheck
from canarist.kube import resources as kinds
from canarist.kube.cache import READS, ObjectCache, ReadLog
from canarist.kube.client import KubeClient, RequestRecord
from canarist.kube.events import EventRecorder
from canarist.kube.resources import ResourceKind
from canarist.operator import commands
from canarist.operator.checks import CheckRunner
from canarist.operator.executor import ActionFailed, Executor
from canarist.operator.finalizer import FINALIZER, Finalizer, is_deleting
from canarist.operator.observe import BLOCKED_CONDITION, NotSynced, Observed, Permanent, observe
from canarist.operator.settings import OperatorSettings
from canarist.operator.shards import shard_of
from canarist.operator.telemetry import Telemetry
from canarist.operator.worker import CanaryWorker, TickOutcome
from canarist.routers import registry as routers
from canarist.workloads.configs import config_refs
from canarist.workloads.targets import ALL_TARGETS, TARGETS, TargetKind

log = logging.getLogger("canarist")

Obj = dict[str, Any]
Clock = Callable[[], datetime]
CanaryKey = tuple[str, str]  # (namespace, name)

#: the kinds every canary may need; the routers add their own (`routers.registry.all_kinds`).
BASE_KINDS: tuple[ResourceKind, ...] = (
    kinds.CANARY,
    kinds.METRIC_TEMPLATE,
    kinds.ALERT_PROVIDER,
    kinds.CANARY_COMMAND,
    *(record.resource for record in TARGETS.values() if record.resource is not kinds.SERVICE),
    kinds.HORIZONTAL_POD_AUTOSCALER,
    kinds.SERVICE,
    kinds.CONFIG_MAP,
    kinds.SECRET,
)
#: kinds of CRDs a canary may refer to besides the routers': watched from the first canary that does.
#: target kinds watched on demand (a Knative Service): their changes, and their revisions', wake their canaries.
ON_DEMAND_TARGETS: tuple[TargetKind, ...] = tuple(record for record in ALL_TARGETS if record.on_demand)
ON_DEMAND_KINDS: tuple[ResourceKind, ...] = (
    kinds.SCALED_OBJECT,
    *(record.resource for record in ON_DEMAND_TARGETS),
    *(record.revisions.resource for record in ON_DEMAND_TARGETS if record.revisions is not None),
)
#: the kinds of targets that run pods (their pod templates refer to tracked ConfigMaps and Secrets).
WORKLOAD_KINDS = tuple(record.resource for record in TARGETS.values() if record.runs_pods)
# Index names.
BY_TARGET = "target"  # canaries by "<Kind>/<namespace>/<name>" of their target
BY_CONFIG = "config"  # workloads by "configmap/<namespace>/<name>" or "secret/<namespace>/<name>"
UNKNOWN_FIELD = "unknown field"
SYNC_RETRY = timedelta(milliseconds=200)  # a router's kinds are being listed for the first time
MAX_DECIDE_STEPS = 200  # a tick asks at most this many checks; more means an engine bug, not a canary
#: phases in which a tick that only reconciles depends on nothing but the cached objects it read (no clock,
#: no check): its next tick can be skipped while they are unchanged (docs/architecture.md, "Cost at rest")
QUIET_PHASES = frozenset({Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED})
MUTATING_VERBS = frozenset({"create", "update", "patch", "delete"})


def _note_write(record: RequestRecord) -> None:
    """A request hook: a write made by a tick (or a task it started) means that tick was not quiet."""
    if record.verb in MUTATING_VERBS:
        reads = READS.get()
        if reads is not None:
            reads.wrote = True


def utcnow() -> datetime:
    return datetime.now(UTC)


def watched_kinds(mesh_provider: str) -> list[ResourceKind]:
    """What the operator may watch (and its RBAC grants): the base kinds, listed at start, and the kinds
    of every registered router, each watched from the first canary that uses that router
    (`ObjectCache.watch`)."""
    del mesh_provider  # every registered router's kinds: a canary may name any provider in spec.provider
    return list(dict.fromkeys([*BASE_KINDS, *ON_DEMAND_KINDS, *routers.all_kinds()]))


def _meta(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def key_of(obj: Obj) -> CanaryKey:
    meta = _meta(obj)
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


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
    valid_version: str = ""  # the resourceVersion that last passed validation
    reported: tuple[int, str] | None = None  # (generation, message) of the permanent problem last reported
    #: the last tick's decision was at rest and only reconciled (see `QUIET_PHASES`)
    settled: bool = False
    #: what that tick read, while it still answers the same (the next tick is then skipped)
    quiet: ReadLog | None = None
    quiet_due: datetime | None = None  # ... and until when (the engine's next due time, if it named one)


class Controller:
    def __init__(
        self,
        cache: ObjectCache,
        executor: Executor,
        checks: CheckRunner,
        finalizer: Finalizer,
        recorder: EventRecorder,
        settings: OperatorSettings,
        telemetry: Telemetry,
        clock: Clock = utcnow,
    ) -> None:
        self.cache = cache
        self.executor = executor
        self.checks = checks
        self.finalizer = finalizer
        self.recorder = recorder
        self._settings = settings
        self._telemetry = telemetry
        self._clock = clock
        self._engine_settings = EngineSettings(
            min_interval_s=settings.min_analysis_interval_s, mesh_provider=settings.mesh_provider
        )
        self._canaries: dict[CanaryKey, CanaryState] = {}
        self._running = False
        #: with shards: how many, and the ones this replica holds (it runs only their canaries)
        self._shard_count = 0
        self._held: set[int] = set()
        self._housekeeping: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()
        executor.client.add_request_hook(_note_write)
        cache.add_index(kinds.CANARY, BY_TARGET, canary_target_keys)
        cache.add_index(kinds.CANARY_COMMAND, commands.BY_CANARY, commands.canary_key)
        for kind in WORKLOAD_KINDS:
            cache.add_index(kind, BY_CONFIG, workload_config_keys)

    @classmethod
    def build(
        cls,
        client: KubeClient,
        settings: OperatorSettings,
        telemetry: Telemetry,
        cache: ObjectCache,
        executor: Executor,
        clock: Clock = utcnow,
    ) -> Controller:
        """The controller with its collaborators wired to one cache."""
        recorder = executor.recorder
        checks = CheckRunner(cache, settings, telemetry)
        finalizer = Finalizer(client, cache, executor)
        return cls(cache, executor, checks, finalizer, recorder, settings, telemetry, clock)

    @property
    def synced(self) -> bool:
        return self.cache.synced

    def ticks(self, namespace: str, name: str) -> int:
        """How many ticks of this canary's worker have completed (0 for a canary without a worker).

        Tests that prove that nothing happens wait for a number of ticks, not for wall-clock time."""
        state = self._canaries.get((namespace, name))
        return state.worker.ticks if state is not None else 0

    # ------------------------------------------------------------------ lifecycle

    def shard_of(self, key: CanaryKey) -> int | None:
        """The shard of a canary (None without shards)."""
        return shard_of(key[0], key[1], self._shard_count) if self._shard_count else None

    def _owns(self, key: CanaryKey) -> bool:
        shard = self.shard_of(key)
        return shard is None or shard in self._held

    async def start_workers(self, shards: int = 0) -> None:
        """Begin acting (called when this replica leads, or at once without leader election). With
        ``shards``, act on no canary until `claim` gives this replica a shard."""
        self._shard_count = shards
        self._running = True
        self.cache.add_handler(kinds.CANARY, self._on_canary)
        self.cache.add_handler(kinds.CANARY_COMMAND, self._on_command)
        for kind in (*WORKLOAD_KINDS, kinds.SERVICE):
            self.cache.add_handler(kind, self._on_workload)
        for record in ON_DEMAND_TARGETS:
            self.cache.add_handler(record.resource, self._on_workload)
            if record.revisions is not None:
                self.cache.add_handler(record.revisions.resource, self._on_revision(record))
        for kind in (kinds.CONFIG_MAP, kinds.SECRET):
            self.cache.add_handler(kind, self._on_config)
        self._housekeeping = asyncio.create_task(self._housekeeping_loop(), name="housekeeping")

    async def stop_workers(self) -> None:
        """Stop acting: every worker finishes its tick in flight, none starts another."""
        self._running = False
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
            self._housekeeping = None
        states, self._canaries = list(self._canaries.values()), {}
        await asyncio.gather(*(state.worker.stop() for state in states), *self._stopping)

    async def stop(self) -> None:
        await self.stop_workers()

    async def claim(self, shard: int) -> None:
        """This replica now holds ``shard``: start the workers of its canaries.

        The replica that held it before may have written their statuses a moment ago, and this replica's
        watch may not have delivered those writes yet: read them from the API server first, so no step is
        decided twice. Raises `KubeError` when that read fails (the shard is then handed back and claimed
        again at the next retry)."""
        await self.cache.refresh(kinds.CANARY, keep=lambda obj: self.shard_of(key_of(obj)) == shard)
        self._held.add(shard)
        self._telemetry.shard_held.labels(shard=str(shard)).set(1)
        for obj in self.cache.list(kinds.CANARY):
            key = key_of(obj)
            if self.shard_of(key) == shard and key not in self._canaries:
                self._start(key)

    async def drop(self, shard: int) -> None:
        """This replica gives ``shard`` up: its canaries' workers finish the tick in flight and stop."""
        self._held.discard(shard)
        self._telemetry.shard_held.labels(shard=str(shard)).set(0)
        keys = [key for key in self._canaries if self.shard_of(key) == shard]
        states = [self._canaries.pop(key) for key in keys]
        await asyncio.gather(*(state.worker.stop() for state in states))

    # ------------------------------------------------------------------ wake-ups

    def _on_canary(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        if not self._running:
            return
        key = key_of(obj)
        if event_type == "DELETED":
            state = self._canaries.pop(key, None)
            if state is not None:
                log.info("Deleting %s.%s from cache", key[1], key[0], extra={"canary": f"{key[1]}.{key[0]}"})
                task = asyncio.create_task(state.worker.stop())
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
            return
        state = self._canaries.get(key)
        if state is None:
            if self._owns(key):
                self._start(key)
            return
        meta = _meta(obj)
        generation = int(meta.get("generation") or 0)
        if (
            old is None
            or generation != int(_meta(old).get("generation") or 0)
            or meta.get("deletionTimestamp")
        ):
            state.worker.wake()

    def _start(self, key: CanaryKey) -> None:
        worker = CanaryWorker(
            f"{key[1]}.{key[0]}", self._tick_for(key), self._clock, self._resync_s(), shard=self.shard_of(key)
        )
        self._canaries[key] = CanaryState(worker)
        worker.start()

    def _on_command(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        """A new CanaryCommand wakes the canary it names (its status writes do not: they are ours)."""
        if not self._running or event_type != "ADDED":
            return
        for key in commands.canary_key(obj):
            namespace, _, name = key.partition("/")
            state = self._canaries.get((namespace, name))
            if state is not None:
                state.worker.wake()

    def _tick_for(self, key: CanaryKey) -> Callable[[], Awaitable[TickOutcome]]:
        async def tick() -> TickOutcome:
            return await self.tick(key)

        return tick

    def _wake_canaries_of(self, kind: str, namespace: str, name: str) -> None:
        for canary in self.cache.by_index(kinds.CANARY, BY_TARGET, f"{kind}/{namespace}/{name}"):
            state = self._canaries.get(key_of(canary))
            if state is not None:
                state.worker.wake()

    def _on_workload(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        if not self._running:
            return
        meta = _meta(obj)
        kind, namespace, name = obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")
        # Every change, status included: the target's rollout finishing is what the first step waits for.
        self._wake_canaries_of(kind, namespace, name)
        if name.endswith("-primary"):
            # The primary's rollout moves initialization and promotion forward.
            self._wake_canaries_of(kind, namespace, name.removesuffix("-primary"))

    def _on_revision(self, record: TargetKind) -> Callable[[str, Obj, Obj | None], None]:
        """A revision of a target (a Knative Revision becoming ready) wakes the canaries of its target."""
        revisions = record.revisions
        assert revisions is not None

        def wake(event_type: str, obj: Obj, old: Obj | None) -> None:
            if self._running:
                namespace = str(_meta(obj).get("namespace") or "")
                self._wake_canaries_of(record.kind, namespace, revisions.owner(obj))

        return wake

    def _on_config(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        if not self._running or (old is not None and old.get("data") == obj.get("data")):
            return
        meta = _meta(obj)
        kind = "configmap" if obj.get("kind") == "ConfigMap" else "secret"
        key = f"{kind}/{meta.get('namespace')}/{meta.get('name')}"
        for workload_kind in WORKLOAD_KINDS:
            for workload in self.cache.by_index(workload_kind, BY_CONFIG, key):
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
        for obj in self.cache.list(kinds.CANARY):
            namespace, name = key_of(obj)
            if not self._owns((namespace, name)):
                continue  # another replica's (with shards): each counts its own, so sums add up
            per_namespace[namespace] = per_namespace.get(namespace, 0) + 1
            for target in canary_target_keys(obj):
                targets.setdefault(target, []).append(f"{name}.{namespace}")
        for namespace, count in per_namespace.items():
            self._telemetry.canary_total.labels(namespace=namespace).set(count)
        for target, owners in targets.items():
            if len(owners) > 1:
                log.error(
                    "Bad things will happen! Found more than one canary with the same target %s", target
                )

    def duplicates_of(self, canary: Canary) -> list[CanaryKey]:
        """Other canaries targeting the same workload."""
        key = f"{canary.spec.target_ref.kind}/{canary.metadata.namespace}/{canary.spec.target_ref.name}"
        return sorted(
            key_of(other)
            for other in self.cache.by_index(kinds.CANARY, BY_TARGET, key)
            if _meta(other).get("name") != canary.metadata.name
        )

    # ------------------------------------------------------------------ the tick

    async def tick(self, key: CanaryKey) -> TickOutcome:
        namespace, name = key
        state = self._canaries.get(key)
        if state is None:
            return TickOutcome()
        if state.quiet is not None:
            # At rest, and the last tick only reconciled what already was: if nothing it read has changed
            # since (a few dict lookups) and the time it named has not come, this one would decide the same
            # nothing. Skip it.
            due = state.quiet_due
            if (due is None or self._clock() < due) and state.quiet.unchanged(self.cache):
                self._telemetry.ticks_skipped.inc()
                return TickOutcome(next_due_at=due)
            state.quiet = None
        reads = ReadLog()
        token = READS.set(reads)
        state.settled = False
        try:
            obj = self.cache.get(kinds.CANARY, namespace, name)  # recorded: an edit of the canary runs a tick
            if obj is None:
                return TickOutcome()
            try:
                outcome = await self._tick(obj, state)
            except Permanent as problem:
                await self._report(obj, state, problem)
                # reported once; the same inputs would only raise it again
                state.quiet, state.quiet_due = reads, None
                return TickOutcome()
        except NotSynced:
            return TickOutcome(next_due_at=self._clock() + SYNC_RETRY)
        finally:
            READS.reset(token)
        if state.settled and not outcome.again:
            state.quiet, state.quiet_due = reads, outcome.next_due_at
        return outcome

    async def _tick(self, obj: Obj, state: CanaryState) -> TickOutcome:
        canary = self._load(obj, state)
        namespace = canary.metadata.namespace or ""
        if is_deleting(obj):
            if FINALIZER in (_meta(obj).get("finalizers") or []):
                observed = observe(canary, self.cache, self._settings, self._clock(), state.last_paced_at)
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
        oldest = self._oldest(canary, duplicates) if duplicates else key_of(obj)
        if oldest != key_of(obj):
            # Two canaries driving one workload would fight over it: only the oldest runs.
            ref = canary.spec.target_ref
            raise Permanent(
                "DuplicateTarget",
                f"{ref.kind} {ref.name}.{namespace} is already the target of canary {oldest[1]}.{oldest[0]}; "
                f"{canary.key} will not run until it targets another workload",
            )
        started = self._clock()
        observed = observe(canary, self.cache, self._settings, started, state.last_paced_at)
        pending = commands.pending_objects(self.cache, namespace, canary.metadata.name or "")
        if pending:
            observation = dataclasses.replace(
                observed.observation, commands=tuple(commands.command_of(o) for o in pending)
            )
            observed = dataclasses.replace(observed, observation=observation)
        if state.reported is not None or _blocked(obj):
            canary = await self._clear(canary, state)
        decision = await self._decide(canary, observed)
        state.settled = (
            canary.status.phase in QUIET_PHASES
            and not decision.paced
            and not decision.again
            and all(isinstance(action, Initialize) for action in decision.actions)
        )
        written = canary
        try:
            written = await self.executor.apply(canary, observed, decision.actions)
        except ActionFailed as error:
            await self.executor.event(canary, "Warning", str(error), canary.status.phase or "")
        if pending:
            # only what the Canary's status records as consumed (written, or found there from before)
            records = [c.to_dict() for c in written.status.commands]
            await commands.finish(self.executor.client, records, pending)
        elapsed = (self._clock() - started).total_seconds()
        if decision.paced:
            state.last_paced_at = started
            # Flagger observes the ticks that reach the analysis step; paced ticks are those.
            self._telemetry.duration.labels(name=canary.spec.target_ref.name, namespace=namespace).observe(
                elapsed
            )
        self._telemetry.reconcile_seconds.labels(namespace=namespace).observe(elapsed)
        return TickOutcome(again=decision.again, next_due_at=next_wake(decision, started))

    async def _decide(self, canary: Canary, observed: Observed) -> Decision:
        answers: dict[Check, CheckResult] = {}
        for _ in range(MAX_DECIDE_STEPS):
            outcome = decide(canary, observed.observation, answers, self._engine_settings)
            if not isinstance(outcome, NeedCheck):
                return outcome
            answers[outcome.check] = await self.checks.run(canary, outcome.check)
        raise RuntimeError(f"the engine asked more than {MAX_DECIDE_STEPS} checks in one tick")

    def _load(self, obj: Obj, state: CanaryState) -> Canary:
        """The typed canary; raises `Permanent` when it is invalid."""
        version = str(_meta(obj).get("resourceVersion") or "")
        if version and version == state.valid_version:
            # The schema walk is most of a tick at rest; an object that has not changed passed it already.
            return Canary.model_validate(obj)
        problems, model = parse_document(obj)
        # Fields we do not know (a newer Flagger's) are kept on write-back and do not stop a run.
        blocking = [p for p in problems if p.message != UNKNOWN_FIELD]
        if not blocking and isinstance(model, Canary):
            state.valid_version = version
            return model
        state.valid_version = ""
        namespace, name = key_of(obj)
        text = "; ".join(str(p) for p in blocking) or "cannot be read"
        raise Permanent("InvalidSpec", f"invalid canary {name}.{namespace}: {text}")

    async def _report(self, obj: Obj, state: CanaryState, problem: Permanent) -> None:
        """One Warning Event, one status condition and one log line per distinct problem and generation."""
        generation = int(_meta(obj).get("generation") or 0)
        if state.reported == (generation, problem.message):
            return
        state.reported = (generation, problem.message)
        namespace, name = key_of(obj)
        log.error(problem.message, extra={"canary": f"{name}.{namespace}"})
        await self.recorder.record(_reference(obj), "Warning", "Synced", problem.message)
        await self.executor.invalid_canary_event(obj, problem.message)
        await self.executor.set_condition(obj, _condition(problem, self._clock()))

    async def _clear(self, canary: Canary, state: CanaryState) -> Canary:
        """The problem is gone: drop the condition that reported it."""
        state.reported = None
        written = await self.executor.set_condition(canary.to_manifest(), None)
        return Canary.model_validate(written) if written is not None else canary

    def _oldest(self, canary: Canary, duplicates: list[CanaryKey]) -> CanaryKey:
        own: CanaryKey = (canary.metadata.namespace or "", canary.metadata.name or "")

        def created(key: CanaryKey) -> tuple[str, bool, CanaryKey]:
            # Creation times have one-second resolution: on a tie the canary that already runs keeps running.
            obj = self.cache.get(kinds.CANARY, *key) or {}
            not_started = not (obj.get("status") or {}).get("phase")
            return (str(_meta(obj).get("creationTimestamp", "")), not_started, key)

        return min([own, *duplicates], key=created)


def _reference(obj: Obj) -> Obj:
    meta = _meta(obj)
    return {
        "apiVersion": obj.get("apiVersion", "flagger.app/v1beta1"),
        "kind": "Canary",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion") if k in meta},
    }


def _blocked(obj: Obj) -> bool:
    return any(c.get("type") == BLOCKED_CONDITION for c in (obj.get("status") or {}).get("conditions") or [])


def _condition(problem: Permanent, now: datetime) -> Obj:
    stamp = rfc3339(now)
    return {
        "type": BLOCKED_CONDITION,
        "status": "True",
        "reason": problem.reason,
        "message": problem.message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
    }


__all__ = ["BASE_KINDS", "BLOCKED_CONDITION", "CanaryKey", "Controller", "watched_kinds"]
