"""`ObjectCache`: the informers of every kind the operator reads, their indexes, and a read-your-writes overlay.

Built first and passed down: the controller, the executor, the check runner, the finalizer and the alert
sender all read through one cache and write through one `Writer`, so none of them needs another.

>>> cache = ObjectCache(client, [kinds.CANARY, kinds.DEPLOYMENT])
>>> await cache.start()
>>> cache.get(kinds.DEPLOYMENT, "test", "podinfo")

Kinds given at construction are listed before `start` returns. Others are watched on demand:
`watch(kind)` starts an informer for a kind the first time a caller needs it (a router's objects, when a
canary first names that router) and says whether it is `SYNCED`, still `PENDING`, or `MISSING` (the API
server does not serve it: its CRD is not installed). An operator on Istio never lists Gateway API
routes, and one whose cluster lacks a provider's CRDs is not stuck waiting for them at start.

`StaticCache` holds plain dicts with the same read interface: pure code and unit tests read from it.

A `ReadLog` set in `READS` records what a piece of work read (each object's resourceVersion or its absence,
each index and list answer, each kind's state); `ReadLog.unchanged` later says, in a few dict lookups,
whether the same reads would give the same answers. The controller uses it to skip the resync of a canary
at rest whose inputs have not changed (docs/architecture.md, "Cost at rest").
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, Literal, Protocol

from .client import KubeClient, Obj
from .informer import Handler, IndexFunc, Informer
from .resources import ResourceKind

__all__ = [
    "MISSING",
    "PENDING",
    "READS",
    "SYNCED",
    "KindState",
    "ObjectCache",
    "ObjectStore",
    "ReadLog",
    "StaticCache",
]

KindState = Literal["synced", "pending", "missing"]
SYNCED: KindState = "synced"
PENDING: KindState = "pending"
MISSING: KindState = "missing"


class ObjectStore(Protocol):
    """Read access to cached objects (what observe, the builders' readers and the check runner need)."""

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None: ...

    def list(self, kind: ResourceKind) -> builtins.list[Obj]: ...

    def by_index(self, kind: ResourceKind, index: str, key: str) -> builtins.list[Obj]: ...

    def watch(self, kind: ResourceKind) -> KindState:
        """Make sure ``kind`` is watched; whether its objects can be read yet."""
        ...


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _older(cached: Mapping[str, Any], written: Mapping[str, Any]) -> bool:
    """Whether the cache still holds a version from before our write.

    resourceVersions are opaque to clients in general; every API server we know (etcd-backed ones and the
    local control plane) uses increasing integers, so compare them as such and otherwise trust the cache
    once it holds any other version than the one we replaced.
    """
    cached_rv = str(_meta(cached).get("resourceVersion", ""))
    written_rv = str(_meta(written).get("resourceVersion", ""))
    if cached_rv.isdigit() and written_rv.isdigit():
        return int(cached_rv) < int(written_rv)
    return False


_Key = tuple[str, str, str]  # (group_resource, namespace, name)


def _version(obj: Obj | None) -> str | None:
    return None if obj is None else str(_meta(obj).get("resourceVersion") or "")


def _versions(objs: Iterable[Obj]) -> tuple[tuple[str, str, str | None], ...]:
    return tuple(
        sorted(
            (str(_meta(o).get("namespace") or ""), str(_meta(o).get("name") or ""), _version(o)) for o in objs
        )
    )


class ReadLog:
    """What was read from an `ObjectCache` while this log was set in `READS`, and whether anything was
    written meanwhile (`wrote`, set by whoever sees the writes)."""

    __slots__ = ("reads", "wrote")

    def __init__(self) -> None:
        self.reads: dict[tuple[str, ...], object] = {}
        self.wrote = False

    def unchanged(self, cache: ObjectCache) -> bool:
        """True when every recorded read would answer the same now (and nothing was written)."""
        if self.wrote:
            return False
        token = READS.set(None)
        try:
            return all(_answer(cache, read) == answer for read, answer in self.reads.items())
        finally:
            READS.reset(token)


#: the log of the work in progress in this task (None: reads are not recorded)
READS: ContextVar[ReadLog | None] = ContextVar("canarist_cache_reads", default=None)


def _answer(cache: ObjectCache, read: tuple[str, ...]) -> object:
    op, resource = read[0], read[1]
    kind = cache.kind_named(resource)
    if kind is None:
        return ("unknown kind", resource)
    if op == "get":
        return _version(cache.get(kind, read[2], read[3]))
    if op == "index":
        return _versions(cache.by_index(kind, read[2], read[3]))
    if op == "list":
        return _versions(cache.list(kind))
    return cache.watch(kind)


class ObjectCache:
    """One informer per kind, started together, plus the overlay of our own writes the watch has not
    delivered yet (without it, a tick right after a Promote could read the old, ready primary and move
    traffic back before the new pods rolled out)."""

    def __init__(
        self,
        client: KubeClient,
        kinds: Iterable[ResourceKind],
        *,
        namespace: str | None = None,
        label_selectors: Mapping[ResourceKind, str] | None = None,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._selectors = dict(label_selectors or {})
        self._started = False
        self._pending_starts: set[asyncio.Future[None]] = set()
        self.informers: dict[ResourceKind, Informer] = {}
        self._written: dict[_Key, Obj] = {}
        self._by_resource: dict[str, ResourceKind] = {}
        #: handlers of kinds not watched yet: attached when `watch` starts them
        self._later: dict[ResourceKind, builtins.list[Handler]] = {}
        self._initial = list(dict.fromkeys(kinds))
        for kind in self._initial:
            self._add(kind)

    def _add(self, kind: ResourceKind) -> Informer:
        informer = Informer(
            self._client,
            kind,
            namespace=self._namespace,
            label_selector=self._selectors.get(kind) or None,
            resync_seconds=0,
        )
        informer.add_handler(self._forget_handler(kind))
        for handler in self._later.pop(kind, []):
            informer.add_handler(handler)
        self.informers[kind] = informer
        self._by_resource[kind.group_resource] = kind
        return informer

    # -- reads ----------------------------------------------------------------------------------------------

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None:
        """The cached object, or our own newer write of it."""
        found = self._get(kind, namespace, name)
        log = READS.get()
        if log is not None:
            log.reads[("get", kind.group_resource, namespace, name)] = _version(found)
        return found

    def _get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None:
        informer = self.informers.get(kind)
        cached = informer.get(namespace, name) if informer is not None else None
        key = (kind.group_resource, namespace, name)
        written = self._written.get(key)
        if written is None:
            return cached
        if cached is not None and not _older(cached, written):
            del self._written[key]
            return cached
        return written

    def list(self, kind: ResourceKind) -> builtins.list[Obj]:
        informer = self.informers.get(kind)
        found = informer.list() if informer is not None else []
        log = READS.get()
        if log is not None:
            log.reads[("list", kind.group_resource)] = _versions(found)
        return found

    def by_index(self, kind: ResourceKind, index: str, key: str) -> builtins.list[Obj]:
        informer = self.informers.get(kind)
        found = informer.by_index(index, key) if informer is not None else []
        log = READS.get()
        if log is not None:
            log.reads[("index", kind.group_resource, index, key)] = _versions(found)
        return found

    def kind_named(self, group_resource: str) -> ResourceKind | None:
        """The watched kind of ``group_resource`` (``services``, ``services.serving.knative.dev``: two kinds
        may share a plural, so everything here is keyed by group and plural)."""
        return self._by_resource.get(group_resource)

    def watches(self, kind: ResourceKind) -> bool:
        return kind in self.informers

    def watch(self, kind: ResourceKind) -> KindState:
        """Start watching ``kind`` if nobody has yet (on demand, after `start`); its state now."""
        informer = self.informers.get(kind)
        if informer is None:
            informer = self._add(kind)
            if self._started:
                self._pending_starts.add(asyncio.ensure_future(informer.start()))
                self._pending_starts = {t for t in self._pending_starts if not t.done()}
        state: KindState = SYNCED if informer.synced else MISSING if informer.not_served else PENDING
        log = READS.get()
        if log is not None:
            log.reads[("watch", kind.group_resource)] = state
        return state

    # -- writes we made -------------------------------------------------------------------------------------

    def remember(self, kind: ResourceKind, obj: Obj) -> None:
        """Keep the API server's answer to our write until the watch delivers that version or a newer one."""
        meta = _meta(obj)
        if meta.get("name") and meta.get("resourceVersion"):
            self._written[(kind.group_resource, str(meta.get("namespace") or ""), str(meta["name"]))] = obj

    async def refresh(self, kind: ResourceKind, keep: Callable[[Obj], bool] = lambda obj: True) -> int:
        """Read ``kind`` from the API server now and serve every object newer than the cached one (for which
        ``keep`` is true) until the watch catches up, as if it were our own write. A replica that takes
        over canaries another one was running calls it first, so it never decides on a status older than
        the last one the other replica wrote. Returns how many objects were newer; raises `KubeError`."""
        fresh = await self._client.list(
            kind, namespace=self._namespace, label_selector=self._selectors.get(kind) or None
        )
        newer = 0
        for obj in fresh.items:
            if not keep(obj):
                continue
            meta = _meta(obj)
            cached = self.get(kind, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            if cached is None or _older(cached, obj):
                self.remember(kind, obj)
                newer += 1
        return newer

    def _forget_handler(self, kind: ResourceKind) -> Callable[[str, Obj, Obj | None], None]:
        def forget(event_type: str, obj: Obj, old: Obj | None) -> None:
            key = (
                kind.group_resource,
                str(_meta(obj).get("namespace") or ""),
                str(_meta(obj).get("name") or ""),
            )
            written = self._written.get(key)
            if written is not None and (event_type == "DELETED" or not _older(obj, written)):
                del self._written[key]

        return forget

    # -- indexes, handlers, lifecycle -------------------------------------------------------------------

    def add_index(self, kind: ResourceKind, name: str, fn: IndexFunc) -> None:
        self.informers[kind].add_index(name, fn)

    def add_handler(self, kind: ResourceKind, handler: Handler) -> None:
        """Call ``handler`` on every change of ``kind``; for a kind watched on demand (`watch`) and not
        watched yet, from the moment it is."""
        informer = self.informers.get(kind)
        if informer is None:
            self._later.setdefault(kind, []).append(handler)
            return
        informer.add_handler(handler)

    @property
    def synced(self) -> bool:
        """The kinds given at construction are listed (the on-demand ones report through `watch`)."""
        return all(self.informers[kind].synced for kind in self._initial)

    async def start(self) -> None:
        """Start every informer and wait for their first lists: a tick must never see a half-filled cache."""
        self._started = True
        initial = [self.informers[kind] for kind in self._initial]
        await asyncio.gather(*(informer.start() for informer in initial))
        await asyncio.gather(*(informer.wait_synced() for informer in initial))

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*self._pending_starts, return_exceptions=True)
        self._pending_starts.clear()
        await asyncio.gather(*(informer.stop() for informer in self.informers.values()))


class StaticCache:
    """Plain objects behind the `ObjectStore` interface: for pure callers and unit tests.

    Indexes are computed on demand from the functions given (the same functions the informers use).
    """

    def __init__(
        self,
        objects: Iterable[tuple[ResourceKind, Obj]] = (),
        indexes: Mapping[tuple[ResourceKind, str], IndexFunc] | None = None,
    ) -> None:
        self._objects: dict[_Key, Obj] = {}
        self._kinds: dict[str, ResourceKind] = {}
        self._indexes = dict(indexes or {})
        for kind, obj in objects:
            self.put(kind, obj)

    def put(self, kind: ResourceKind, obj: Obj) -> None:
        meta = _meta(obj)
        self._kinds[kind.group_resource] = kind
        self._objects[
            (kind.group_resource, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        ] = obj

    def remove(self, kind: ResourceKind, namespace: str, name: str) -> None:
        self._objects.pop((kind.group_resource, namespace, name), None)

    def remember(self, kind: ResourceKind, obj: Obj) -> None:
        self.put(kind, obj)

    def watch(self, kind: ResourceKind) -> KindState:
        return SYNCED

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None:
        return self._objects.get((kind.group_resource, namespace, name))

    def list(self, kind: ResourceKind) -> builtins.list[Obj]:
        return [obj for (plural, _, _), obj in self._objects.items() if plural == kind.group_resource]

    def by_index(self, kind: ResourceKind, index: str, key: str) -> builtins.list[Obj]:
        fn = self._indexes.get((kind, index))
        if fn is None:
            return []
        return [obj for obj in self.list(kind) if key in set(fn(obj))]
