"""The watcher that keeps Envoy's files in line with the local control plane.

It caches every kind a data-plane translator reads (`canarist.sandbox.dataplane.watched_kinds`, through
`canarist.kube.Informer`; a kind the API server does not serve is skipped with one log line), takes Services
and endpoints from the `PodManager`, and on any change rebuilds the configuration with
:func:`canarist.sandbox.envoy_config.envoy_config` and writes the files (only those that changed). The
statuses the translators produce are written to the objects' ``/status`` when they differ from the cached
ones. Listener ports are allocated once per Service port and kept, so a URL handed out (for example in a
rewritten webhook command) stays valid; `reserve` allocates one before the Service even exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canarist.kube.client import KubeClient
from canarist.kube.errors import NotFound
from canarist.kube.informer import Informer
from canarist.kube.resources import ResourceKind
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane import StatusWrite, Translator
from canarist.sandbox.envoy import EnvoyFiles
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, envoy_config, listener_key
from canarist.sandbox.lifecycle import cancel_task
from canarist.sandbox.pods import PodManager
from canarist.sandbox.prometheus import free_port

__all__ = ["WEIGHT_HEADER", "MeshWatcher", "RouteWrite"]

log = logging.getLogger("canarist.sandbox")

WEIGHT_HEADER = "x-canarist-sequence"

_StatusKey = tuple[ResourceKind, str, str]


@dataclass(frozen=True)
class RouteWrite:
    """When the files were rewritten, and the weights of every weighted route then."""

    at: float  # time.monotonic()
    weights: dict[str, list[tuple[str, int]]]


class MeshWatcher:
    """``translators`` defaults to the registry's (`canarist.sandbox.dataplane.translators`)."""

    def __init__(
        self,
        client: KubeClient,
        pods: PodManager,
        files: EnvoyFiles,
        *,
        translators: Sequence[Translator] | None = None,
    ) -> None:
        self.client = client
        self.pods = pods
        self.files = files
        self.translators = tuple(dataplane.translators() if translators is None else translators)
        kinds = tuple(dict.fromkeys(kind for t in self.translators for kind in t.kinds))
        self.informers: dict[ResourceKind, Informer] = {
            kind: Informer(client, kind, name=f"sandbox-{kind.plural}") for kind in kinds
        }
        self.skipped: list[ResourceKind] = []  # kinds the API server does not serve
        self.ports: dict[str, int] = {GATEWAY_LISTENER: free_port()}
        self.writes: list[RouteWrite] = []
        self.status_writes = 0
        self.on_write: Callable[[RouteWrite], None] | None = None
        self._statuses: list[StatusWrite] = []
        self._written: dict[_StatusKey, Mapping[str, Any]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def gateway_port(self) -> int:
        return self.ports[GATEWAY_LISTENER]

    def reserve(self, namespace: str, service: str, port: int) -> int:
        """The local port of the listener for ``service.namespace:port`` (allocated on first use)."""
        key = listener_key(namespace, service, port)
        if key not in self.ports:
            self.ports[key] = free_port()
            self._dirty.set()
        return self.ports[key]

    def mark_dirty(self) -> None:
        self._dirty.set()

    async def start(self) -> None:
        for kind, informer in list(self.informers.items()):
            try:
                await self.client.list(kind, limit=1)
            except NotFound:
                log.info("sandbox data plane: the API server does not serve %s; not watching it", kind)
                del self.informers[kind]
                self.skipped.append(kind)
                continue
            informer.add_handler(self._on_event)
            await informer.start()
        async with asyncio.timeout(30):
            for informer in self.informers.values():
                await informer.wait_synced()
        self.pods.listeners.append(self.mark_dirty)
        self.rebuild()
        await self.write_statuses()
        self._task = asyncio.create_task(self._loop(), name="sandbox-mesh")

    async def stop(self) -> None:
        await cancel_task(self._task)
        for informer in self.informers.values():
            await informer.stop()

    def _on_event(self, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._dirty.set()

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(0.01)  # coalesce a burst of events into one write
            self._dirty.clear()
            try:
                self.rebuild()
            except Exception:
                log.exception("rebuilding the Envoy configuration failed")
            await self.write_statuses()

    def objects(self) -> dict[ResourceKind, list[dict[str, Any]]]:
        """The cached objects of every watched kind."""
        return {kind: informer.list() for kind, informer in self.informers.items()}

    def rebuild(self) -> bool:
        services = self.pods.services.list()
        for service in services:
            meta = service.get("metadata") or {}
            for port in (service.get("spec") or {}).get("ports") or []:
                if port.get("port"):
                    self.reserve(
                        str(meta.get("namespace") or "default"), str(meta.get("name")), int(port["port"])
                    )
        self._dirty.clear()
        config = envoy_config(
            self.objects(),
            services,
            self.pods.endpoints(),
            ports=self.ports,
            routes_dir=str(self.files.routes_dir),
            weight_header=WEIGHT_HEADER,
            translators=self.translators,
        )
        self._statuses = list(config["statuses"])
        changed = self.files.write(config)
        if changed:
            write = RouteWrite(time.monotonic(), _weights(config))
            self.writes.append(write)
            if self.on_write is not None:
                self.on_write(write)
        return changed

    async def write_statuses(self) -> None:
        """Write each status of the last rebuild that differs from the object's (cached) one."""
        for item in self._statuses:
            if item.kind in self.skipped:
                continue
            key = (item.kind, item.namespace, item.name)
            desired = dict(item.status)
            informer = self.informers.get(item.kind)
            cached = informer.get(item.namespace, item.name) if informer is not None else None
            if cached is not None:
                if cached.get("status") == desired:
                    self._written[key] = desired
                    continue
            elif informer is not None or self._written.get(key) == desired:
                continue  # not (or no longer) in the cache; or unwatched and already written

            def mutate(obj: dict[str, Any], desired: dict[str, Any] = desired) -> None:
                obj["status"] = desired

            try:
                await self.client.update_status(item.kind, item.name, item.namespace, mutate)
            except NotFound:
                continue
            except Exception as e:
                log.warning(
                    "writing the status of %s %s/%s: %s", item.kind.kind, item.namespace, item.name, e
                )
                continue
            self._written[key] = desired
            self.status_writes += 1


def _weights(config: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for name, route_config in config["routes"].items():
        for host in route_config.get("virtual_hosts") or []:
            for route in host.get("routes") or []:
                weighted = (route.get("route") or {}).get("weighted_clusters")
                if weighted and f"{name}/{host['name']}" not in out:
                    out[f"{name}/{host['name']}"] = [
                        (c["name"], int(c["weight"])) for c in weighted["clusters"]
                    ]
    return out
