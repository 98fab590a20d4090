"""`Writer`: every write the operator makes, through one policy: *desired → write only if it differs*.

Each write's answer goes back into the cache (read-your-writes), and every failure becomes one
`WriteError` whose message names the object ("creating Service podinfo-canary.test: …").

>>> writer = Writer(client, cache)
>>> await writer.converge(kinds.CONFIG_MAP, desired)              # create, replace if it differs, or nothing
>>> await writer.converge(kinds.SERVICE, desired, merge=my_merge)  # a kind with its own merge rule

A merge takes (observed, desired) and returns the object to write over ``observed``, or None when
``observed`` already is what is wanted; the writer replaces only when the result differs from
``observed``. The default merge (`overlay`) treats fields the server added (defaults, status) as no
difference, and an empty map or list in ``desired`` as equal to a missing one (the API server drops empty
maps, so comparing them literally would rewrite the object forever).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .client import KubeClient, Obj
from .errors import AlreadyExists, KubeError
from .policy import differs, overlay
from .resources import ResourceKind

__all__ = ["Merge", "WriteError", "Writer", "differs", "overlay"]

log = logging.getLogger("canarist")

Merge = Callable[[Obj, Obj], Obj | None]


class WriteError(Exception):
    """A write did not happen; the message names the object and the API server's reason."""

    def __init__(self, message: str, cause: KubeError | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class _Remembers(Protocol):
    def get(self, kind: ResourceKind, namespace: str, name: str) -> Obj | None: ...

    def remember(self, kind: ResourceKind, obj: Obj) -> None: ...


def _name(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _label(kind: ResourceKind, obj: Mapping[str, Any]) -> str:
    namespace, name = _name(obj)
    return f"{kind.kind} {name}.{namespace}" if namespace else f"{kind.kind} {name}"


class Writer:
    """Writes through ``client``; remembers each answer in ``cache``."""

    def __init__(self, client: KubeClient, cache: _Remembers) -> None:
        self._client = client
        self._cache = cache

    def remember(self, kind: ResourceKind, obj: Obj) -> None:
        """Feed the answer of a write made elsewhere (a status PUT) to the cache."""
        self._cache.remember(kind, obj)

    async def create(self, kind: ResourceKind, obj: Obj) -> Obj | None:
        """Create ``obj``; None when it exists already (our cache lagged behind an earlier write of ours:
        the next tick compares again)."""
        try:
            created = await self._client.create(obj, kind=kind)
        except AlreadyExists:
            return None
        except KubeError as error:
            raise WriteError(f"creating {_label(kind, obj)}: {error}", error) from error
        self._cache.remember(kind, created)
        log.info("%s created", _label(kind, obj))
        return created

    async def replace(self, kind: ResourceKind, obj: Obj) -> Obj:
        try:
            replaced = await self._client.replace(obj, kind=kind)
        except KubeError as error:
            raise WriteError(f"updating {_label(kind, obj)}: {error}", error) from error
        self._cache.remember(kind, replaced)
        log.info("%s updated", _label(kind, obj))
        return replaced

    async def patch(self, kind: ResourceKind, obj: Mapping[str, Any], patch: Obj) -> Obj:
        """A merge patch of the object ``obj`` names."""
        namespace, name = _name(obj)
        try:
            patched = await self._client.patch(kind, name, patch, namespace=namespace or None)
        except KubeError as error:
            raise WriteError(f"patching {_label(kind, obj)}: {error}", error) from error
        self._cache.remember(kind, patched)
        return patched

    async def converge(self, kind: ResourceKind, desired: Obj, *, merge: Merge = overlay) -> Obj | None:
        """Create ``desired``, or replace the cached object with ``merge(observed, desired)`` when that
        differs from it. Returns what was written, or None when nothing was."""
        namespace, name = _name(desired)
        observed = self._cache.get(kind, namespace, name)
        if observed is None:
            return await self.create(kind, desired)
        merged = merge(observed, desired)
        if merged is None or merged == observed:
            return None
        return await self.replace(kind, merged)
