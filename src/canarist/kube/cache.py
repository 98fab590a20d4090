"""`ObjectCache`: the informers of every kind the operator reads, their indexes, and a read-your-writes overlay.

Built first and passed down: the controller, the executor, the check runner, the finalizer and the alert
sender all read through one cache and write through one `Writer`, so none of them needs another.

>>> cache = ObjectCache(client, [kinds.CANARY, kinds.DEPLOYMENT])
>>> await cache.start()
>>> cache.get(kinds.DEPLOYMENT, "test", "podinfo")

`StaticCache` holds plain dicts with the same read interface: pure code and unit tests read from it.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from .client import KubeClient, Obj
from .informer import Handler, IndexFunc, Informer
from .resources import ResourceKind

__all__ = ["ObjectCache", "ObjectStore", "StaticCache"]


class ObjectStore(Protocol):
    """Read access to cached objects (what observe, the builders' readers and the check runner need)."""

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None: ...

    def list(self, kind: ResourceKind) -> builtins.list[Obj]: ...

    def by_index(self, kind: ResourceKind, index: str, key: str) -> builtins.list[Obj]: ...


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


_Key = tuple[str, str, str]  # (plural, namespace, name)


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
        selectors = label_selectors or {}
        self.informers: dict[ResourceKind, Informer] = {
            kind: Informer(
                client,
                kind,
                namespace=namespace,
                label_selector=selectors.get(kind) or None,
                resync_seconds=0,
            )
            for kind in dict.fromkeys(kinds)
        }
        self._written: dict[_Key, Obj] = {}
        for kind, informer in self.informers.items():
            informer.add_handler(self._forget_handler(kind))

    # -- reads ----------------------------------------------------------------------------------------------

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None:
        """The cached object, or our own newer write of it."""
        informer = self.informers.get(kind)
        cached = informer.get(namespace, name) if informer is not None else None
        key = (kind.plural, namespace, name)
        written = self._written.get(key)
        if written is None:
            return cached
        if cached is not None and not _older(cached, written):
            del self._written[key]
            return cached
        return written

    def list(self, kind: ResourceKind) -> builtins.list[Obj]:
        informer = self.informers.get(kind)
        return informer.list() if informer is not None else []

    def by_index(self, kind: ResourceKind, index: str, key: str) -> builtins.list[Obj]:
        informer = self.informers.get(kind)
        return informer.by_index(index, key) if informer is not None else []

    def watches(self, kind: ResourceKind) -> bool:
        return kind in self.informers

    # -- writes we made -------------------------------------------------------------------------------------

    def remember(self, kind: ResourceKind, obj: Obj) -> None:
        """Keep the API server's answer to our write until the watch delivers that version or a newer one."""
        meta = _meta(obj)
        if meta.get("name") and meta.get("resourceVersion"):
            self._written[(kind.plural, str(meta.get("namespace") or ""), str(meta["name"]))] = obj

    def _forget_handler(self, kind: ResourceKind) -> Callable[[str, Obj, Obj | None], None]:
        def forget(event_type: str, obj: Obj, old: Obj | None) -> None:
            key = (kind.plural, str(_meta(obj).get("namespace") or ""), str(_meta(obj).get("name") or ""))
            written = self._written.get(key)
            if written is not None and (event_type == "DELETED" or not _older(obj, written)):
                del self._written[key]

        return forget

    # -- indexes, handlers, lifecycle -------------------------------------------------------------------

    def add_index(self, kind: ResourceKind, name: str, fn: IndexFunc) -> None:
        self.informers[kind].add_index(name, fn)

    def add_handler(self, kind: ResourceKind, handler: Handler) -> None:
        self.informers[kind].add_handler(handler)

    @property
    def synced(self) -> bool:
        return all(informer.synced for informer in self.informers.values())

    async def start(self) -> None:
        """Start every informer and wait for their first lists: a tick must never see a half-filled cache."""
        await asyncio.gather(*(informer.start() for informer in self.informers.values()))
        await asyncio.gather(*(informer.wait_synced() for informer in self.informers.values()))

    async def stop(self) -> None:
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
        self._kinds[kind.plural] = kind
        self._objects[(kind.plural, str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = obj

    def remove(self, kind: ResourceKind, namespace: str, name: str) -> None:
        self._objects.pop((kind.plural, namespace, name), None)

    def remember(self, kind: ResourceKind, obj: Obj) -> None:
        self.put(kind, obj)

    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None:
        return self._objects.get((kind.plural, namespace, name))

    def list(self, kind: ResourceKind) -> builtins.list[Obj]:
        return [obj for (plural, _, _), obj in self._objects.items() if plural == kind.plural]

    def by_index(self, kind: ResourceKind, index: str, key: str) -> builtins.list[Obj]:
        fn = self._indexes.get((kind, index))
        if fn is None:
            return []
        return [obj for obj in self.list(kind) if key in set(fn(obj))]
