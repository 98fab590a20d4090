"""The NGINX ingress translator: ``networking.k8s.io/v1`` Ingresses as ingress-nginx serves them.

ingress-nginx turns every Ingress of its class into nginx ``server`` blocks (one per host) with one
``location`` per rule path, and attaches a *canary* Ingress (``<prefix>/canary: "true"``) to the location of
the main Ingress with the same host, path and pathType as that location's alternative backend. Here:

* each host of a main Ingress becomes a gateway virtual host ``ingress.<host>`` (a rule without a host: the
  catch-all ``*``); each of its paths a set of routes, Exact paths first, then the longer paths first
  (nginx's longest-prefix choice). ``Prefix`` is element-wise (``/api`` matches ``/api/x``, not ``/apix``),
  ``Exact`` is the exact path, ``ImplementationSpecific`` a plain character prefix (nginx's ``location``).
  The first Ingress (oldest, then by namespace/name) to claim a host+path+pathType keeps it, as in
  ingress-nginx;
* a location with a canary Ingress decides per request, in ingress-nginx's order: ``canary-by-header``
  (with ``canary-by-header-value``: that exact value goes to the canary, any other value falls through;
  else with ``canary-by-header-pattern``: a value the regex finds a match in goes to the canary; else
  ``always`` goes to the canary and ``never`` to the main backend), then ``canary-by-cookie`` (cookie value
  ``always``/``never``), then ``canary-weight`` out of ``canary-weight-total`` (default 100; only a larger
  total counts, as in ingress-nginx) at random. A canary Ingress whose host+path has no main location is
  ignored; the first canary Ingress per location wins;
* backends are the Service ports' clusters (``service.port.number`` or ``.name``); a missing Service or port
  is a cluster that does not exist (Envoy answers 503, as nginx does for an upstream without endpoints);
* every routed request carries the telemetry headers of :mod:`canarist.sandbox.telemetry`
  (``INGRESS_HEADER`` = ``<ns>/<main Ingress>``, the main backend's Service, the rule's path) and, only on the
  canary backend, ``INGRESS_CANARY_HEADER`` = the canary upstream ``<ns>-<service>-<port>`` (ingress-nginx's
  ``$proxy_alternative_upstream_name``), so the demo apps export the controller's series under the main
  Ingress's name, as ingress-nginx does;
* the route timeout is ``<prefix>/proxy-read-timeout`` of the main Ingress (seconds; default 60, nginx's);
* every Ingress served gets ``status.loadBalancer.ingress: [{ip: ...}]``: the ClusterIP of the controller's
  Service (``ingress-nginx-controller`` in ``ingress-nginx``, as ingress-nginx publishes its Service's
  address), else 127.0.0.1 (the gateway's local address, when the sandbox has no such Service).

The class: an Ingress is served when ``spec.ingressClassName`` or the ``kubernetes.io/ingress.class``
annotation names the translator's class (``nginx``), or when it has neither (as with ingress-nginx's
``--watch-ingress-without-class``; the sandbox has one ingress controller). IngressClass objects are not
read. Not supported: ``spec.defaultBackend``, TLS, ``use-regex`` paths, rewrites, nginx's
``proxy_next_upstream`` retries, ``canary-by-header`` values taken from more than the first header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canarist.kube.resources import INGRESS, ResourceKind
from canarist.sandbox import telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import (
    Obj,
    Program,
    StatusWrite,
    World,
    meta,
    name_of,
    namespace_of,
    spec_of,
)

__all__ = [
    "CLASS_ANNOTATION",
    "DEFAULT_ANNOTATIONS_PREFIX",
    "DEFAULT_READ_TIMEOUT_S",
    "GATEWAY_ADDRESS",
    "NginxTranslator",
    "upstream_name",
]

DEFAULT_ANNOTATIONS_PREFIX = "nginx.ingress.kubernetes.io"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_READ_TIMEOUT_S = 60.0
GATEWAY_ADDRESS = "127.0.0.1"
#: the Service whose address the controller publishes on the Ingresses it serves (ingress-nginx's Helm chart)
CONTROLLER_SERVICE = ("ingress-nginx", "ingress-nginx-controller")

_PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")


def upstream_name(namespace: str, service: str, port: int | str) -> str:
    """ingress-nginx's upstream name: ``<namespace>-<service>-<port>`` (the port as the Ingress gives it)."""
    return f"{namespace}-{service}-{port}"


@dataclass(frozen=True)
class _Backend:
    service: str
    port: int | str  # as written in the Ingress (number or name)


@dataclass
class _Location:
    """One main Ingress path (nginx ``location``) and the canary attached to it."""

    ingress: Mapping[str, Any]
    host: str
    path: str
    path_type: str
    backend: _Backend
    canary: Mapping[str, Any] | None = None
    canary_backend: _Backend | None = None


class NginxTranslator:
    """``annotations_prefix``: ingress-nginx's ``--annotations-prefix`` (canarist's
    ``-ingress-annotations-prefix``); ``ingress_class``: the class served."""

    name = "nginx"
    kinds: tuple[ResourceKind, ...] = (INGRESS,)

    def __init__(
        self,
        annotations_prefix: str = DEFAULT_ANNOTATIONS_PREFIX,
        ingress_class: str = "nginx",
    ) -> None:
        self.prefix = annotations_prefix.rstrip("/") or DEFAULT_ANNOTATIONS_PREFIX
        self.ingress_class = ingress_class

    # -- annotations -------------------------------------------------------------------------------

    def annotation(self, obj: Mapping[str, Any], suffix: str) -> str:
        """The value of ``<prefix>/<suffix>`` on ``obj`` (``""`` when unset)."""
        annotations = meta(obj).get("annotations")
        if not isinstance(annotations, Mapping):
            return ""
        return str(annotations.get(f"{self.prefix}/{suffix}") or "").strip()

    def is_canary(self, obj: Mapping[str, Any]) -> bool:
        return self.annotation(obj, "canary").lower() == "true"

    def serves(self, obj: Mapping[str, Any]) -> bool:
        """The Ingress is of this controller's class (or of none)."""
        annotations = meta(obj).get("annotations")
        by_annotation = annotations.get(CLASS_ANNOTATION) if isinstance(annotations, Mapping) else None
        if by_annotation:
            return str(by_annotation) == self.ingress_class
        by_spec = spec_of(obj).get("ingressClassName")
        return not by_spec or str(by_spec) == self.ingress_class

    # -- program -----------------------------------------------------------------------------------

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        ingresses = sorted((i for i in objects.get(INGRESS, ()) if self.serves(i)), key=_age_key)
        locations: dict[tuple[str, str, str], _Location] = {}
        for ingress in ingresses:
            if self.is_canary(ingress):
                continue
            for host, path, path_type, backend in _paths(ingress):
                locations.setdefault(
                    (host, path, path_type), _Location(ingress, host, path, path_type, backend)
                )
        for ingress in ingresses:
            if not self.is_canary(ingress):
                continue
            for host, path, path_type, backend in _paths(ingress):
                location = locations.get((host, path, path_type))
                if location is None or location.canary is not None:
                    continue
                if namespace_of(location.ingress) != namespace_of(ingress):
                    continue  # a canary's backend is a Service of its own namespace
                location.canary = ingress
                location.canary_backend = backend

        program = Program()
        hosts: dict[str, list[_Location]] = {}
        for location in locations.values():
            hosts.setdefault(location.host, []).append(location)
        for host in sorted(hosts):
            ordered = sorted(hosts[host], key=_location_order)
            routes = [r for index, loc in enumerate(ordered) for r in self._routes(loc, index, world)]
            program.gateway_hosts.append(
                {"name": f"ingress.{host or '_'}", "domains": [host or "*"], "routes": routes}
            )
        address = _controller_address(world)
        for ingress in ingresses:
            program.statuses.append(
                StatusWrite(
                    INGRESS,
                    namespace_of(ingress),
                    name_of(ingress),
                    {"loadBalancer": {"ingress": [{"ip": address}]}},
                )
            )
        return program

    # -- routes ------------------------------------------------------------------------------------

    def _routes(self, location: _Location, index: int, world: World) -> list[Obj]:
        ingress = location.ingress
        namespace = namespace_of(ingress)
        main = e.Backend(
            _cluster(namespace, location.backend, world),
            100,
            request_headers_to_remove=(telemetry.INGRESS_CANARY_HEADER,),
        )
        path = _path_match(location.path, location.path_type)
        timeout = _seconds(self.annotation(ingress, "proxy-read-timeout"), DEFAULT_READ_TIMEOUT_S)
        route_name = f"ingress.{namespace}.{name_of(ingress)}.{index}"
        headers = [
            e.header_set(telemetry.INGRESS_HEADER, f"{namespace}/{name_of(ingress)}"),
            e.header_set(telemetry.INGRESS_SERVICE_HEADER, location.backend.service),
            e.header_set(telemetry.INGRESS_PATH_HEADER, location.path),
        ]

        def to(backends: Sequence[e.Backend], suffix: str, matchers: Sequence[Obj] = ()) -> Obj:
            return e.route(
                e.route_match(path, headers=matchers),
                e.route_action(backends, weight_header=world.weight_header, timeout=timeout),
                name=f"{route_name}.{suffix}",
                request_headers_to_add=headers,
            )

        if location.canary is None or location.canary_backend is None:
            return [to([main], "main")]
        canary_ingress = location.canary
        target = location.canary_backend
        canary = e.Backend(
            _cluster(namespace, target, world),
            100,
            request_headers_to_add=(
                e.header_set(
                    telemetry.INGRESS_CANARY_HEADER, upstream_name(namespace, target.service, target.port)
                ),
            ),
        )
        out: list[Obj] = []
        header = self.annotation(canary_ingress, "canary-by-header")
        if header:
            value = self.annotation(canary_ingress, "canary-by-header-value")
            pattern = self.annotation(canary_ingress, "canary-by-header-pattern")
            if value:
                out.append(to([canary], "by-header", [e.header_match(header, "exact", value)]))
            elif pattern:
                # nginx searches the value (ngx.re.match is unanchored); Envoy's regex must match all of it.
                regex = f".*(?:{pattern}).*"
                out.append(to([canary], "by-header", [e.header_match(header, "regex", regex)]))
            else:
                out.append(to([canary], "by-header", [e.header_match(header, "exact", "always")]))
                out.append(to([main], "by-header-never", [e.header_match(header, "exact", "never")]))
        cookie = self.annotation(canary_ingress, "canary-by-cookie")
        if cookie:
            out.append(to([canary], "by-cookie", [_cookie_match(cookie, "always")]))
            out.append(to([main], "by-cookie-never", [_cookie_match(cookie, "never")]))
        weight = _int(self.annotation(canary_ingress, "canary-weight"), 0)
        total = max(_int(self.annotation(canary_ingress, "canary-weight-total"), 100), 100)
        weight = min(max(weight, 0), total)
        if weight <= 0:
            out.append(to([main], "main"))
        elif weight >= total:
            out.append(to([canary], "weight"))
        else:
            split = [
                e.Backend(main.cluster, total - weight, (), main.request_headers_to_remove),
                e.Backend(canary.cluster, weight, canary.request_headers_to_add),
            ]
            out.append(to(split, "weight"))
        return out


# ------------------------------------------------------------------------------------------------ helpers


def _age_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """Oldest first (RFC 3339 timestamps sort as strings), then namespace/name: ingress-nginx's order."""
    return (str(meta(obj).get("creationTimestamp") or ""), namespace_of(obj), name_of(obj))


def _paths(ingress: Mapping[str, Any]) -> list[tuple[str, str, str, _Backend]]:
    """``(host, path, pathType, backend)`` of every rule path with a Service backend."""
    out: list[tuple[str, str, str, _Backend]] = []
    for rule in spec_of(ingress).get("rules") or []:
        if not isinstance(rule, Mapping):
            continue
        host = str(rule.get("host") or "").strip().lower()
        http = rule.get("http")
        for item in (http.get("paths") if isinstance(http, Mapping) else None) or []:
            if not isinstance(item, Mapping):
                continue
            backend = item.get("backend")
            service = backend.get("service") if isinstance(backend, Mapping) else None
            if not isinstance(service, Mapping) or not service.get("name"):
                continue
            port_spec = service.get("port")
            port: int | str = 0
            if isinstance(port_spec, Mapping):
                if port_spec.get("number"):
                    port = int(port_spec["number"])
                elif port_spec.get("name"):
                    port = str(port_spec["name"])
            path_type = str(item.get("pathType") or "ImplementationSpecific")
            if path_type not in _PATH_TYPES:
                continue
            path = str(item.get("path") or "/")
            out.append((host, path, path_type, _Backend(str(service["name"]), port)))
    return out


def _location_order(location: _Location) -> tuple[int, int, str]:
    """Exact locations first, then the longest path first (nginx picks the longest matching prefix)."""
    return (0 if location.path_type == "Exact" else 1, -len(location.path), location.path_type)


def _path_match(path: str, path_type: str) -> Obj:
    if path_type == "Exact":
        return e.path_match("exact", path)
    if path_type == "Prefix":
        return e.path_match("path_separated_prefix", path)
    return e.path_match("prefix", path)


def _cluster(namespace: str, backend: _Backend, world: World) -> str:
    port = world.port(namespace, backend.service, backend.port or None)
    if port is None:
        # No such Service (or port): a cluster that does not exist, so Envoy answers 503.
        return f"ingress|{upstream_name(namespace, backend.service, backend.port)}"
    return world.service_cluster(namespace, backend.service, port)


def _cookie_match(name: str, value: str) -> Obj:
    """The ``cookie`` header carries ``<name>=<value>`` as one of its ``;``-separated pairs."""
    regex = rf"(?:.*;)?\s*{re.escape(name)}={re.escape(value)}\s*(?:;.*)?"
    return e.header_match("cookie", "regex", regex)


def _int(text: str, default: int) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def _seconds(text: str, default: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value > 0 else default


def _controller_address(world: World) -> str:
    """The controller Service's ClusterIP (what ingress-nginx writes into the Ingresses' status), else the
    gateway's local address."""
    service = world.services.get(CONTROLLER_SERVICE) or {}
    cluster_ip = str((service.get("spec") or {}).get("clusterIP") or "")
    return cluster_ip if cluster_ip and cluster_ip != "None" else GATEWAY_ADDRESS
