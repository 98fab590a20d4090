"""The watcher that keeps Envoy's files in line with the local control plane.

It caches every kind a data-plane translator reads (`canarist.sandbox.dataplane.watched_kinds`, through
`canarist.kube.Informer`; a kind the API server does not serve is skipped with one log line), takes Services
and endpoints from the `PodManager`, and on any change rebuilds the configuration with
:func:`canarist.sandbox.envoy_config.envoy_config` and writes the files (only those that changed). The
statuses the translators produce are written to the objects' ``/status`` when they differ from the cached
ones.

With a `ClusterNetwork` (the sandbox's way), a Service port's listener binds the Service's own
``clusterIP:port`` (what kube-proxy and a sidecar give a pod), and every rebuild also rewrites the network's
hosts files from the cached Services, after Envoy's files, so a name resolves once its listener is
configured. The gateway listener binds ``gateway`` (the ClusterIP and HTTP port of the provider's ingress
Service, which then gets no listeners of its own), else a free port of 127.0.0.1. Without a network (the data
plane's own tests), each Service port's listener gets a local port, allocated once and kept (`reserve`).
`address` is where a Service port is reached either way.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canarist.kube.client import KubeClient
from canarist.kube.errors import NotFound
from canarist.kube.informer import Informer
from canarist.kube.resources import ResourceKind
from canarist.sandbox import dataplane
from canarist.sandbox.cluster_net import ClusterNetwork, port_restriction, service_addresses
from canarist.sandbox.dataplane import ServiceKey, StatusWrite, Translator
from canarist.sandbox.envoy import EnvoyFiles
from canarist.sandbox.envoy_config import (
    GATEWAY_LISTENER,
    ListenAddress,
    envoy_config,
    listener_key,
)
from canarist.sandbox.lifecycle import cancel_task
from canarist.sandbox.pods import PodManager
from canarist.sandbox.prometheus import free_port

__all__ = ["WEIGHT_HEADER", "MeshWatcher", "RouteWrite"]

log = logging.getLogger("canarist.sandbox")

WEIGHT_HEADER = "x-canarist-sequence"

_StatusKey = tuple[ResourceKind, str, str]


@dataclass(frozen=True)
class RouteWrite:
    """When the files were rewritten, and the routes then.

    ``weights`` has the weighted clusters of the first weighted route of every virtual host (key
    ``<route config>/<virtual host>``); ``routes`` are the route configurations written (by name:
    ``gateway``, ``svc.<ns>.<name>.<port>``) and ``cluster_services`` maps every cluster name (a Service
    port's default cluster, subset and alias clusters) to the Service whose pods it reaches, so
    `service_weights` tells, without knowing the provider, where a request would go.
    """

    at: float  # time.monotonic()
    weights: dict[str, list[tuple[str, int]]]
    routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cluster_services: Mapping[str, ServiceKey] = field(default_factory=dict)

    def service_weights(
        self,
        host: str,
        headers: Mapping[str, str] | None = None,
        *,
        path: str = "/",
        method: str = "GET",
        route_config: str = GATEWAY_LISTENER,
    ) -> dict[ServiceKey, int] | None:
        """Percent of requests per destination Service for ``method path`` with ``Host: host`` (and
        ``headers``) on the listener of ``route_config`` (the gateway's by default): Envoy's choice of
        virtual host (exact domain, then ``*.suffix``, ``prefix*``, ``*``) and of the first route whose
        match the request meets. ``None`` when no virtual host or route takes it, or the route does not
        forward to clusters (redirect, direct response)."""
        config = self.routes.get(route_config)
        if config is None:
            return None
        vhost = _virtual_host(config.get("virtual_hosts") or [], host)
        if vhost is None:
            return None
        request = {k.lower(): v for k, v in (headers or {}).items()}
        request.update({":authority": host, "host": host, ":path": path, ":method": method.upper()})
        for route in vhost.get("routes") or []:
            if _route_matches(route.get("match") or {}, path, request):
                return _destinations(route, self.cluster_services)
        return None


class MeshWatcher:
    """``translators`` defaults to the registry's (`canarist.sandbox.dataplane.translators`)."""

    def __init__(
        self,
        client: KubeClient,
        pods: PodManager,
        files: EnvoyFiles,
        *,
        translators: Sequence[Translator] | None = None,
        cluster_net: ClusterNetwork | None = None,
        gateway: tuple[str, int] | None = None,
        gateway_service: tuple[str, str] | None = None,
        port_check: Callable[[int], str | None] = port_restriction,
    ) -> None:
        self.client = client
        self.cluster_net = cluster_net
        #: where the gateway listener listens: the ingress Service's ClusterIP and port, else 127.0.0.1:free
        self.gateway: tuple[str, int] = gateway or ("127.0.0.1", free_port())
        #: (namespace, name) of that Service: no listeners of its own (the gateway listener is on its address)
        self.gateway_service = gateway_service
        #: why Envoy cannot listen on a Service port (None: it can); `cluster_net.port_restriction` by default
        self.port_check = port_check
        #: with cluster networking: each Service port's listener key -> (ClusterIP, port), from the cache
        self.cluster_listeners: dict[str, tuple[str, int]] = {}
        self._refused: set[str] = set()  # Service ports this user cannot listen on (logged once)
        self.pods = pods
        self.files = files
        self.translators = tuple(dataplane.translators() if translators is None else translators)
        kinds = tuple(dict.fromkeys(kind for t in self.translators for kind in t.kinds))
        self.informers: dict[ResourceKind, Informer] = {
            kind: Informer(client, kind, name=f"sandbox-{kind.plural}") for kind in kinds
        }
        self.skipped: list[ResourceKind] = []  # kinds the API server does not serve
        #: without a cluster network: each Service port's listener key -> its local port on 127.0.0.1
        self.ports: dict[str, int] = {}
        self.writes: list[RouteWrite] = []
        self.status_writes = 0
        self.on_write: Callable[[RouteWrite], None] | None = None
        self._statuses: list[StatusWrite] = []
        self._written: dict[_StatusKey, Mapping[str, Any]] = {}
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def gateway_port(self) -> int:
        return self.gateway[1]

    @property
    def gateway_address(self) -> str:
        return self.gateway[0]

    def reserve(self, namespace: str, service: str, port: int) -> int:
        """The local port of the listener for ``service.namespace:port`` (allocated on first use)."""
        key = listener_key(namespace, service, port)
        if key not in self.ports:
            self.ports[key] = free_port()
            self._dirty.set()
        return self.ports[key]

    def address(self, namespace: str, service: str, port: int) -> str:
        """``host:port`` where ``service.namespace:port`` is reached: its ClusterIP and port with cluster
        networking (the Service must exist), else the local port of its listener (`reserve`)."""
        if self.cluster_net is None:
            return f"127.0.0.1:{self.reserve(namespace, service, port)}"
        for svc in self.pods.services.list():
            meta = svc.get("metadata") or {}
            if (str(meta.get("namespace") or "default"), str(meta.get("name"))) == (namespace, service):
                return f"{(svc.get('spec') or {}).get('clusterIP')}:{port}"
        raise LookupError(f"no Service {namespace}/{service}")

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

    def _cluster_ports(self, services: Sequence[Mapping[str, Any]]) -> None:
        """The listeners on the Services' ClusterIPs (a port this user may not bind is left out, logged)."""
        listeners: dict[str, tuple[str, int]] = {}
        for service in services:
            meta = service.get("metadata") or {}
            spec = service.get("spec") or {}
            ip = spec.get("clusterIP")
            if not isinstance(ip, str) or ip in ("", "None") or spec.get("type") == "ExternalName":
                continue
            namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
            if (namespace, name) == self.gateway_service:
                continue  # the gateway listener is on its address
            for port in spec.get("ports") or []:
                if not port.get("port"):
                    continue
                key = listener_key(namespace, name, int(port["port"]))
                why = self.port_check(int(port["port"]))
                if why is not None:
                    if key not in self._refused:
                        self._refused.add(key)
                        log.warning("sandbox data plane: no listener for %s/%s: %s", namespace, name, why)
                    continue
                listeners[key] = (ip, int(port["port"]))
        self.cluster_listeners = listeners

    def rebuild(self) -> bool:
        services = self.pods.services.list()
        if self.cluster_net is not None:
            self._cluster_ports(services)
        for service in services if self.cluster_net is None else ():
            meta = service.get("metadata") or {}
            for port in (service.get("spec") or {}).get("ports") or []:
                if port.get("port"):
                    self.reserve(
                        str(meta.get("namespace") or "default"), str(meta.get("name")), int(port["port"])
                    )
        self._dirty.clear()
        objects, endpoints = self.objects(), self.pods.endpoints()
        listen: dict[str, ListenAddress] = {
            **self.ports,
            **self.cluster_listeners,
            GATEWAY_LISTENER: self.gateway,
        }
        config = envoy_config(
            objects,
            services,
            endpoints,
            ports=listen,
            routes_dir=str(self.files.routes_dir),
            weight_header=WEIGHT_HEADER,
            translators=self.translators,
        )
        self._statuses = list(config["statuses"])
        changed = self.files.write(config)
        if self.cluster_net is not None:
            self.cluster_net.update(service_addresses(services))
        if changed:
            write = RouteWrite(
                time.monotonic(), _weights(config), config["routes"], config["cluster_services"]
            )
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


def _virtual_host(hosts: Sequence[Mapping[str, Any]], host: str) -> Mapping[str, Any] | None:
    """The virtual host Envoy picks for ``host``: an exact domain, then the longest ``*.suffix``, then the
    longest ``prefix*``, then ``*``."""
    host = host.lower()
    if not host.startswith("["):
        host = host.rsplit(":", 1)[0]  # the listeners strip any port
    best: tuple[int, int] | None = None
    chosen: Mapping[str, Any] | None = None
    for vhost in hosts:
        for domain in (str(d).lower() for d in vhost.get("domains") or []):
            if domain == host:
                rank = (0, 0)
            elif domain == "*":
                rank = (3, 0)
            elif domain.startswith("*") and host.endswith(domain[1:]) and len(host) > len(domain) - 1:
                rank = (1, -len(domain))
            elif domain.endswith("*") and host.startswith(domain[:-1]) and len(host) > len(domain) - 1:
                rank = (2, -len(domain))
            else:
                continue
            if best is None or rank < best:
                best, chosen = rank, vhost
    return chosen


def _string_matches(matcher: Mapping[str, Any], value: str) -> bool:
    """An Envoy ``StringMatcher`` (exact, prefix, suffix, contains, safe_regex; ignore_case)."""
    ignore_case = bool(matcher.get("ignore_case"))
    subject = value.lower() if ignore_case else value

    def norm(text: Any) -> str:
        return str(text).lower() if ignore_case else str(text)

    if "exact" in matcher:
        return subject == norm(matcher["exact"])
    if "prefix" in matcher:
        return subject.startswith(norm(matcher["prefix"]))
    if "suffix" in matcher:
        return subject.endswith(norm(matcher["suffix"]))
    if "contains" in matcher:
        return norm(matcher["contains"]) in subject
    if "safe_regex" in matcher:
        return re.fullmatch(str((matcher["safe_regex"] or {}).get("regex") or ""), value) is not None
    return False


def _header_matches(matcher: Mapping[str, Any], request: Mapping[str, str]) -> bool:
    """An Envoy ``HeaderMatcher`` against the request's headers."""
    value = request.get(str(matcher.get("name") or "").lower())
    if value is None and matcher.get("treat_missing_header_as_empty"):
        value = ""
    if "present_match" in matcher:
        result = (value is not None) == bool(matcher["present_match"])
    elif value is None:
        result = False
    elif "string_match" in matcher:
        result = _string_matches(matcher["string_match"] or {}, value)
    elif "exact_match" in matcher:
        result = value == str(matcher["exact_match"])
    elif "prefix_match" in matcher:
        result = value.startswith(str(matcher["prefix_match"]))
    elif "suffix_match" in matcher:
        result = value.endswith(str(matcher["suffix_match"]))
    elif "contains_match" in matcher:
        result = str(matcher["contains_match"]) in value
    elif "safe_regex_match" in matcher:
        regex = str((matcher["safe_regex_match"] or {}).get("regex") or "")
        result = re.fullmatch(regex, value) is not None
    elif "range_match" in matcher:
        bounds = matcher["range_match"] or {}
        try:
            result = int(bounds.get("start", 0)) <= int(value) < int(bounds.get("end", 0))
        except ValueError:
            result = False
    else:
        result = True  # no value specifier: the header is present
    return result != bool(matcher.get("invert_match"))


def _route_matches(match: Mapping[str, Any], path: str, request: Mapping[str, str]) -> bool:
    """An Envoy ``RouteMatch`` against a request without a query string (grpc and TLS-context matches
    never match it; a runtime fraction is taken as met)."""
    case_sensitive = match.get("case_sensitive") is not False
    subject = path if case_sensitive else path.lower()

    def norm(text: Any) -> str:
        return str(text) if case_sensitive else str(text).lower()

    if "prefix" in match:
        path_ok = subject.startswith(norm(match["prefix"]))
    elif "path" in match:
        path_ok = subject == norm(match["path"])
    elif "path_separated_prefix" in match:
        prefix = norm(match["path_separated_prefix"])
        path_ok = subject == prefix or subject.startswith(prefix.rstrip("/") + "/")
    elif "safe_regex" in match:
        path_ok = re.fullmatch(str((match["safe_regex"] or {}).get("regex") or ""), path) is not None
    else:
        path_ok = False  # connect_matcher, path_match_policy
    if not path_ok or match.get("grpc") is not None or match.get("tls_context") is not None:
        return False
    if match.get("query_parameters"):
        return False  # the request has no query string
    return all(_header_matches(h or {}, request) for h in match.get("headers") or [])


def _destinations(
    route: Mapping[str, Any], cluster_services: Mapping[str, ServiceKey]
) -> dict[ServiceKey, int] | None:
    action = route.get("route")
    if not isinstance(action, Mapping):
        return None
    if action.get("cluster"):
        service = cluster_services.get(str(action["cluster"]))
        return {service: 100} if service is not None else {}
    weighted = action.get("weighted_clusters")
    if not isinstance(weighted, Mapping):
        return None
    clusters = [(str(c.get("name")), int(c.get("weight") or 0)) for c in weighted.get("clusters") or []]
    total = sum(w for _, w in clusters)
    out: dict[ServiceKey, int] = {}
    for name, weight in clusters:
        service = cluster_services.get(name)
        if service is not None:
            out[service] = out.get(service, 0) + weight
    return {s: round(100 * w / total) if total else 0 for s, w in out.items()}
