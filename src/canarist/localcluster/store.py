"""In-memory object storage: one global resourceVersion counter, a bounded event history and watchers."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canarist.localcluster.resources import StorageKey

Obj = dict[str, Any]
ObjKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped


@dataclass
class WatchEvent:
    """A change: stored objects are never mutated after being stored, so `obj` is a safe snapshot."""

    type: str  # ADDED, MODIFIED, DELETED
    rv: int
    key: StorageKey
    obj: Obj
    old: Obj | None = None
    lines: dict[str, bytes] = field(default_factory=dict)  # serialized per apiVersion


class Watcher:
    """One open watch: a queue fed by the store, filtered by namespace here and by selectors at the edge."""

    def __init__(self, key: StorageKey, namespace: str | None) -> None:
        self.key = key
        self.namespace = namespace
        self.queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()

    def offer(self, event: WatchEvent) -> None:
        if self.namespace is not None and _namespace(event.obj) != self.namespace:
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        self.queue.put_nowait(None)


def _namespace(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def obj_key(obj: Obj) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


class Store:
    """Objects by storage key, the global resourceVersion, the recent history and the open watches."""

    def __init__(self, history_size: int = 10_000) -> None:
        self.objects: dict[StorageKey, dict[ObjKey, Obj]] = {}
        self.uids: dict[str, tuple[StorageKey, ObjKey]] = {}
        self.rv = 0
        self.history: deque[WatchEvent] = deque(maxlen=max(1, history_size))
        self.compacted_rv = 0  # events with rv <= this are no longer replayable
        self.watchers: dict[StorageKey, set[Watcher]] = {}
        self.listeners: list[Callable[[WatchEvent], None]] = []

    # -- reads

    def get(self, key: StorageKey, ns: str, name: str) -> Obj | None:
        return self.objects.get(key, {}).get((ns, name))

    def scan(self, key: StorageKey, ns: str | None = None) -> list[Obj]:
        bucket = self.objects.get(key, {})
        if ns is None:
            return [bucket[k] for k in sorted(bucket)]
        return [bucket[k] for k in sorted(bucket) if k[0] == ns]

    def by_uid(self, uid: str) -> Obj | None:
        where = self.uids.get(uid)
        if where is None:
            return None
        return self.objects.get(where[0], {}).get(where[1])

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    # -- writes (the caller has already set metadata.resourceVersion to a fresh next_rv())

    def put(self, key: StorageKey, obj: Obj) -> WatchEvent:
        okey = obj_key(obj)
        bucket = self.objects.setdefault(key, {})
        old = bucket.get(okey)
        bucket[okey] = obj
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self.uids[str(uid)] = (key, okey)
        return self._emit("MODIFIED" if old is not None else "ADDED", key, obj, old)

    def remove(self, key: StorageKey, obj: Obj) -> WatchEvent:
        okey = obj_key(obj)
        old = self.objects.get(key, {}).pop(okey, None)
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self.uids.pop(str(uid), None)
        return self._emit("DELETED", key, obj, old)

    def _emit(self, kind: str, key: StorageKey, obj: Obj, old: Obj | None) -> WatchEvent:
        rv = int((obj.get("metadata") or {}).get("resourceVersion") or self.rv)
        event = WatchEvent(kind, rv, key, obj, old)
        if len(self.history) == self.history.maxlen and self.history:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for watcher in list(self.watchers.get(key, ())):
            watcher.offer(event)
        for listener in list(self.listeners):
            listener(event)
        return event

    def compact(self) -> None:
        """Forget the whole event history (a watch from any older resourceVersion then gets 410 Gone)."""
        self.history.clear()
        self.compacted_rv = self.rv

    # -- watches

    def add_watcher(self, watcher: Watcher) -> None:
        self.watchers.setdefault(watcher.key, set()).add(watcher)

    def remove_watcher(self, watcher: Watcher) -> None:
        self.watchers.get(watcher.key, set()).discard(watcher)

    def events_since(self, key: StorageKey, rv: int) -> list[WatchEvent] | None:
        """Events of this storage key after rv, or None when rv is older than the kept history."""
        if rv < self.compacted_rv:
            return None
        return [e for e in self.history if e.rv > rv and e.key == key]

    def close_watchers(self) -> None:
        for watchers in self.watchers.values():
            for watcher in watchers:
                watcher.close()
