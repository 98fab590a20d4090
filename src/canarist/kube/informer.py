"""`Informer`: an in-memory cache of one kind, kept current by list + watch, with handlers and indexes.

Semantics (the same contract as client-go's shared informer):

* **List, then watch** from the list's resourceVersion; bookmarks only advance that version.
* **410 Gone** (the version fell out of the server's window) means a re-list. The new list is diffed against
  the cache and handlers see ADDED for new objects, MODIFIED for changed ones (a different
  resourceVersion) and DELETED (with the last known object) for the ones that went away while we were not
  watching.
* A **dropped stream** (network error, server restart, server-side timeout) reconnects with exponential
  backoff and resumes from the last seen resourceVersion, so no event is lost or repeated.
* **Resync** every ``resync_seconds`` replays the cache to the handlers as MODIFIED with ``old_obj is obj``
  (no API request); a handler can tell a resync by the equal resourceVersions.
* The cache is updated before handlers run, so a handler reading the cache sees the new state. Handlers run
  one event at a time, in order, on a dispatcher task (a slow handler delays later events, not the watch);
  sync and async callables are both fine, and an exception in one is logged and does not stop anything.
* Objects handed out (handlers, `get`, `list`, `by_index`) are the cached dicts themselves: treat them as
  read-only and ``copy.deepcopy`` before changing one. They are stored compacted (`canarist.kube.compact`:
  shared keys and short strings, no ``metadata.managedFields``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .client import KubeClient, Obj, Selector
from .compact import compact
from .errors import ApiError, Gone, KubeError, NotFound, TransportError
from .resources import ResourceKind

__all__ = ["ADDED", "DELETED", "MODIFIED", "Handler", "IndexFunc", "Informer", "object_key"]

log = logging.getLogger(__name__)

ADDED: Final = "ADDED"
MODIFIED: Final = "MODIFIED"
DELETED: Final = "DELETED"

Key = tuple[str, str]  # (namespace or "", name)
Handler = Callable[[str, Obj, Obj | None], Awaitable[None] | None]
IndexFunc = Callable[[Obj], Iterable[str]]


def object_key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _rv(obj: Mapping[str, Any] | None) -> str:
    if not obj:
        return ""
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


@dataclass(frozen=True, slots=True)
class _Dispatch:
    event_type: str
    obj: Obj
    old: Obj | None


@dataclass(frozen=True, slots=True)
class _AddHandler:
    handler: Handler


@dataclass(frozen=True, slots=True)
class _Synced:
    pass


_QueueItem = _Dispatch | _AddHandler | _Synced


class Informer:
    """Cache of ``kind`` objects (in ``namespace``, or all; filtered by ``label_selector``).

    ``await informer.start()`` (or ``async with informer``) starts it, ``await informer.wait_synced()`` waits
    for the initial list to be in the cache and delivered to the handlers, ``await informer.stop()`` ends it.
    """

    def __init__(
        self,
        client: KubeClient,
        kind: ResourceKind,
        namespace: str | None = None,
        label_selector: Selector = None,
        resync_seconds: float = 0.0,
        *,
        field_selector: Selector = None,
        watch_timeout_seconds: tuple[int, int] = (300, 600),
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        name: str | None = None,
    ) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace if kind.namespaced else None
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_seconds = resync_seconds
        self.name = name or (f"{kind.plural}/{self.namespace}" if self.namespace else kind.plural)
        self._watch_timeout = watch_timeout_seconds
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max

        self._cache: dict[Key, Obj] = {}
        self._handlers: list[Handler] = []
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[Key]]] = {}
        self._index_keys: dict[str, dict[Key, tuple[str, ...]]] = {}

        self._resource_version = ""
        self._queue: asyncio.Queue[_QueueItem] = asyncio.Queue()
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # Counters, for tests and the operator's own telemetry.
        self.lists = 0
        self.watches = 0
        self.reconnects = 0
        self.relists_after_gone = 0
        #: the API server answered the last list with 404: it does not serve this kind (no CRD).
        self.not_served = False

    # ------------------------------------------------------------------ configuration

    def add_handler(self, handler: Handler, *, replay: bool = True) -> None:
        """Call ``handler(event_type, obj, old_obj)`` for every change. Added to a running informer with
        ``replay`` set, it first gets the cached objects as ADDED (like client-go), then the changes after
        them, with nothing missed or doubled."""
        if replay and self._tasks:
            self._queue.put_nowait(_AddHandler(handler))
        else:
            self._handlers.append(handler)

    def add_index(self, name: str, fn: IndexFunc) -> None:
        """Maintain a secondary index: ``fn(obj)`` gives the keys under which ``obj`` is found by
        `by_index`. Indexing existing cache contents happens at once."""
        if name in self._index_funcs:
            raise ValueError(f"index {name!r} already exists")
        self._index_funcs[name] = fn
        self._indexes[name] = {}
        self._index_keys[name] = {}
        for key, obj in self._cache.items():
            self._index_one(name, key, obj)

    # ------------------------------------------------------------------ cache reads (no API calls)

    def get(self, namespace: str | None, name: str) -> Obj | None:
        """The cached object, or ``None``. ``namespace`` is ignored for cluster-scoped kinds."""
        return self._cache.get((namespace or "" if self.kind.namespaced else "", name))

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        """Cached objects, all or in one namespace."""
        if namespace is None:
            return list(self._cache.values())
        return [obj for (ns, _), obj in self._cache.items() if ns == namespace]

    def keys(self) -> builtins.list[Key]:
        return list(self._cache)

    def by_index(self, name: str, key: str) -> builtins.list[Obj]:
        """Cached objects whose index function returned ``key``."""
        try:
            index = self._indexes[name]
        except KeyError:
            raise KeyError(f"no index named {name!r}") from None
        return [self._cache[k] for k in sorted(index.get(key, ())) if k in self._cache]

    def index_keys(self, name: str) -> builtins.list[str]:
        return sorted(k for k, v in self._indexes[name].items() if v)

    @property
    def resource_version(self) -> str:
        """The last resourceVersion seen (list, event or bookmark)."""
        return self._resource_version

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def __len__(self) -> int:
        return len(self._cache)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._tasks:
            return
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._dispatch_loop(), name=f"informer-dispatch-{self.name}"),
            asyncio.create_task(self._run(), name=f"informer-{self.name}"),
        ]
        if self.resync_seconds > 0:
            self._tasks.append(asyncio.create_task(self._resync_loop(), name=f"informer-resync-{self.name}"))

    async def wait_synced(self) -> None:
        """Wait for the initial list to be cached and delivered to the handlers (wrap it in
        ``asyncio.timeout`` to bound the wait)."""
        await self._synced.wait()

    async def stop(self) -> None:
        self._stopping = True
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> Informer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ list / watch loop

    async def _run(self) -> None:
        backoff = self._backoff_initial
        need_list = True
        while not self._stopping:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    backoff = self._backoff_initial
                got_events = await self._watch()
                if got_events:
                    backoff = self._backoff_initial
                # The server ended the stream (its timeout): watch again from where we are.
                continue
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info(
                    "informer %s: resourceVersion %s expired, re-listing", self.name, self._resource_version
                )
                self.relists_after_gone += 1
                need_list = True
                continue
            except NotFound as e:
                # The kind is not served (its CRD is missing): say so once, keep checking slowly.
                self.reconnects += 1
                if not self.not_served:
                    log.warning(
                        "informer %s: the API server does not serve it (%s); checking again", self.name, e
                    )
                self.not_served = True
                backoff = self._backoff_max
            except (TransportError, ApiError) as e:
                self.reconnects += 1
                log.warning("informer %s: %s; retrying in %.1fs", self.name, e, backoff)
            except KubeError as e:
                self.reconnects += 1
                log.warning("informer %s: %s; retrying in %.1fs", self.name, e, backoff)
            except Exception as e:  # a bug; keep the informer alive rather than silently dead
                self.reconnects += 1
                log.exception("informer %s: unexpected error %r; retrying in %.1fs", self.name, e, backoff)
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self._backoff_max)

    async def _list(self) -> None:
        self.lists += 1
        result = await self.client.list(
            self.kind,
            namespace=self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh: dict[Key, Obj] = {object_key(o): compact(o) for o in result.items}
        for key, old in list(self._cache.items()):
            if key not in fresh:
                self._remove(key)
                self._emit(DELETED, old, None)
        for key, obj in fresh.items():
            old_obj = self._cache.get(key)
            if old_obj is None:
                self._store(key, obj)
                self._emit(ADDED, obj, None)
            elif _rv(old_obj) != _rv(obj):
                self._store(key, obj)
                self._emit(MODIFIED, obj, old_obj)
        self._resource_version = result.resource_version
        self.not_served = False
        if not self._synced.is_set():
            self._queue.put_nowait(_Synced())

    async def _watch(self) -> bool:
        self.watches += 1
        got = False
        timeout = random.randint(*self._watch_timeout) if self._watch_timeout[1] > 0 else None
        async for event in self.client.watch(
            self.kind,
            namespace=self.namespace,
            resource_version=self._resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            allow_bookmarks=True,
            timeout_seconds=timeout,
        ):
            got = True
            obj = compact(event.object) if event.type in (ADDED, MODIFIED) else event.object
            rv = _rv(obj)
            if event.type == "BOOKMARK":
                if rv:
                    self._resource_version = rv
                continue
            obj.setdefault("apiVersion", self.kind.api_version)
            obj.setdefault("kind", self.kind.kind)
            key = object_key(obj)
            old = self._cache.get(key)
            if event.type == DELETED:
                if old is not None:
                    self._remove(key)
                self._emit(DELETED, obj, None)
            elif event.type in (ADDED, MODIFIED):
                self._store(key, obj)
                # Trust the cache over the event label: an ADDED for a known key is an update and vice versa.
                self._emit(MODIFIED if old is not None else ADDED, obj, old)
            else:
                log.debug("informer %s: ignoring watch event %s", self.name, event.type)
            if rv:
                self._resource_version = rv
        return got

    # ------------------------------------------------------------------ cache + indexes

    def _store(self, key: Key, obj: Obj) -> None:
        self._cache[key] = obj
        for name in self._index_funcs:
            self._unindex_one(name, key)
            self._index_one(name, key, obj)

    def _remove(self, key: Key) -> None:
        self._cache.pop(key, None)
        for name in self._index_funcs:
            self._unindex_one(name, key)

    def _index_one(self, name: str, key: Key, obj: Obj) -> None:
        try:
            values = tuple(dict.fromkeys(self._index_funcs[name](obj)))
        except Exception:
            log.exception("informer %s: index function %r failed for %s/%s", self.name, name, *key)
            values = ()
        self._index_keys[name][key] = values
        index = self._indexes[name]
        for value in values:
            index.setdefault(value, set()).add(key)

    def _unindex_one(self, name: str, key: Key) -> None:
        index = self._indexes[name]
        for value in self._index_keys[name].pop(key, ()):
            members = index.get(value)
            if members is not None:
                members.discard(key)
                if not members:
                    del index[value]

    # ------------------------------------------------------------------ dispatch

    def _emit(self, event_type: str, obj: Obj, old: Obj | None) -> None:
        self._queue.put_nowait(_Dispatch(event_type, obj, old))

    async def _dispatch_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, _Synced):
                self._synced.set()
            elif isinstance(item, _AddHandler):
                # Everything queued before this marker is already in the cache, so replaying the cache
                # and then taking the events queued after it gives the new handler a consistent story.
                for obj in list(self._cache.values()):
                    await self._call(item.handler, ADDED, obj, None)
                self._handlers.append(item.handler)
            else:
                for handler in list(self._handlers):
                    await self._call(handler, item.event_type, item.obj, item.old)

    async def _call(self, handler: Handler, event_type: str, obj: Obj, old: Obj | None) -> None:
        try:
            result = handler(event_type, obj, old)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            meta = obj.get("metadata") or {}
            log.exception(
                "informer %s: handler %r failed on %s %s/%s",
                self.name,
                handler,
                event_type,
                meta.get("namespace", ""),
                meta.get("name", ""),
            )

    async def _resync_loop(self) -> None:
        await self._synced.wait()
        while True:
            await asyncio.sleep(self.resync_seconds)
            for obj in list(self._cache.values()):
                self._emit(MODIFIED, obj, obj)
