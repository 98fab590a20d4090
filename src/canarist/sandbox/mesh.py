"""The watcher that keeps Envoy's files in line with the local control plane.

It caches VirtualServices and DestinationRules (`canarist.kube.Informer`), takes Services and endpoints from
the `PodManager`, and on any change rebuilds the configuration with
:func:`canarist.sandbox.envoy_config.envoy_config` and writes the files (only those that changed). Listener
ports are allocated once per Service port and kept, so a URL handed out (for example in a rewritten webhook
command) stays valid; `reserve` allocates one before the Service even exists.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.informer import Informer
from canarist.sandbox.envoy import EnvoyFiles
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, envoy_config, listener_key
from canarist.sandbox.lifecycle import cancel_task
from canarist.sandbox.pods import PodManager
from canarist.sandbox.prometheus import free_port

__all__ = ["WEIGHT_HEADER", "MeshWatcher", "RouteWrite"]

log = logging.getLogger("canarist.sandbox")

WEIGHT_HEADER = "x-canarist-sequence"


@dataclass(frozen=True)
class RouteWrite:
    """When the files were rewritten, and the weights of every weighted route then."""

    at: float  # time.monotonic()
    weights: dict[str, list[tuple[str, int]]]


class MeshWatcher:
    def __init__(self, client: KubeClient, pods: PodManager, files: EnvoyFiles) -> None:
        self.client = client
        self.pods = pods
        self.files = files
        self.virtual_services = Informer(client, kinds.VIRTUAL_SERVICE, name="sandbox-virtualservices")
        self.destination_rules = Informer(client, kinds.DESTINATION_RULE, name="sandbox-destinationrules")
        self.ports: dict[str, int] = {GATEWAY_LISTENER: free_port()}
        self.writes: list[RouteWrite] = []
        self.on_write: Callable[[RouteWrite], None] | None = None
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
        for informer in (self.virtual_services, self.destination_rules):
            informer.add_handler(self._on_event)
            await informer.start()
        async with asyncio.timeout(30):
            await self.virtual_services.wait_synced()
            await self.destination_rules.wait_synced()
        self.pods.listeners.append(self.mark_dirty)
        self.rebuild()
        self._task = asyncio.create_task(self._loop(), name="sandbox-mesh")

    async def stop(self) -> None:
        await cancel_task(self._task)
        await self.virtual_services.stop()
        await self.destination_rules.stop()

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
            self.virtual_services.list(),
            self.destination_rules.list(),
            services,
            self.pods.endpoints(),
            ports=self.ports,
            routes_dir=str(self.files.routes_dir),
            weight_header=WEIGHT_HEADER,
        )
        changed = self.files.write(config)
        if changed:
            write = RouteWrite(time.monotonic(), _weights(config))
            self.writes.append(write)
            if self.on_write is not None:
                self.on_write(write)
        return changed


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
