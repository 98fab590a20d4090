"""The Gateway API translator: HTTPRoutes attached to Gateways (north-south) or to Services (GAMMA, east-west),
programmed the way a Gateway API implementation programs its Envoy.

Binding (every ``parentRef`` of every route, routes read through ``v1`` and ``v1beta1``, one object each):

* a parentRef to a **Gateway** (group ``gateway.networking.k8s.io``, kind ``Gateway``) that exists attaches
  the route to the Gateway's listeners picked by ``sectionName`` / ``port`` whose protocol is HTTP or HTTPS,
  whose ``allowedRoutes.kinds`` admit HTTPRoute and whose ``allowedRoutes.namespaces`` (``Same``, ``All``,
  ``Selector`` over the Namespaces' labels) admit the route's namespace. The route's hostnames are
  intersected with each listener's ``hostname`` (wildcards ``*.example.com`` included; no hostnames on
  either side: every host). Every Gateway is served by the sandbox's one gateway listener, whatever its
  class and port; the rules of all routes sharing a hostname become one Envoy virtual host, ordered by the
  Gateway API's precedence (Exact path, then the longest PathPrefix, then RegularExpression; a method
  match; more header matches; more query matches; then the oldest route, by namespace/name; then rule and
  match order);
* a parentRef to a **Service** (kind ``Service``, group ``""`` or ``core``) puts the rules on that Service's
  listeners (all its ports, or the parentRef's ``port``), as a GAMMA mesh does for clients of the Service;
  hostnames do not apply. A consumer route (in another namespace than the Service) is applied to every
  client, since the sandbox does not tell clients apart.

Rules: matches (path Exact / PathPrefix — segment-wise, ``/api`` matches ``/api/x`` not ``/apix`` — /
RegularExpression; headers and query parameters Exact / RegularExpression, the first match of a name
winning; method), weighted ``backendRefs`` (Services; weight 1 by default, weight 0 kept; all weights 0 or
no backends: 500; an unresolved backend answers 500 for its share), filters ``RequestHeaderModifier`` and
``ResponseHeaderModifier`` (on the rule or on one backendRef), ``URLRewrite`` (hostname, ReplaceFullPath,
ReplacePrefixMatch), ``RequestMirror`` (``percent`` or ``fraction``), ``RequestRedirect``, and
``timeouts.request`` (no timeout unless set). Cross-namespace backendRefs need a ReferenceGrant in the
backend's namespace. Not supported: ``timeouts.backendRequest``, ``sessionPersistence``, the ``CORS`` and
``ExtensionRef`` filters (ignored), TLS termination (an HTTPS listener is served as plain HTTP).

Statuses, as a controller named :data:`CONTROLLER_NAME` writes them: on each route one ``status.parents``
entry per parentRef it handles (entries of other controllers kept) with ``Accepted`` (``Accepted``, or
False with ``NoMatchingParent``, ``NotAllowedByListeners``, ``NoMatchingListenerHostname``) and
``ResolvedRefs`` (``ResolvedRefs``, or False with ``BackendNotFound``, ``InvalidKind``,
``RefNotPermitted``), both at the route's ``metadata.generation``; on each Gateway ``Accepted`` and
``Programmed`` and per listener ``attachedRoutes``; on each GatewayClass of this controller ``Accepted``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canarist.kube.resources import NAMESPACE, ResourceKind, register
from canarist.routers.gatewayapi import GROUP, HTTP_ROUTE_V1, HTTP_ROUTE_V1BETA1
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import (
    Obj,
    PortKey,
    Program,
    StatusWrite,
    World,
    condition,
    meta,
    name_of,
    namespace_of,
    spec_of,
)

__all__ = [
    "CONTROLLER_NAME",
    "GATEWAY_CLASS_V1",
    "GATEWAY_CLASS_V1BETA1",
    "GATEWAY_V1",
    "GATEWAY_V1BETA1",
    "REFERENCE_GRANT_V1BETA1",
    "GatewayAPITranslator",
    "hostname_intersection",
]

CONTROLLER_NAME = "canarist.dev/sandbox-gateway"

GATEWAY_V1 = ResourceKind(GROUP, "v1", "gateways", "Gateway", status_subresource=True)
GATEWAY_V1BETA1 = ResourceKind(GROUP, "v1beta1", "gateways", "Gateway", status_subresource=True)
GATEWAY_CLASS_V1 = ResourceKind(
    GROUP, "v1", "gatewayclasses", "GatewayClass", namespaced=False, status_subresource=True
)
GATEWAY_CLASS_V1BETA1 = ResourceKind(
    GROUP, "v1beta1", "gatewayclasses", "GatewayClass", namespaced=False, status_subresource=True
)
REFERENCE_GRANT_V1BETA1 = ResourceKind(GROUP, "v1beta1", "referencegrants", "ReferenceGrant")

register(GATEWAY_V1, GATEWAY_V1BETA1, GATEWAY_CLASS_V1, GATEWAY_CLASS_V1BETA1, REFERENCE_GRANT_V1BETA1)

_ROUTE_PROTOCOLS = ("HTTP", "HTTPS")
_CORE_GROUPS = ("", "core")
_REDIRECT_CODES = {301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER", 307: "TEMPORARY_REDIRECT"}


# ------------------------------------------------------------------------------------------------ helpers


def _first_version(*lists: Sequence[Obj]) -> list[tuple[int, Obj]]:
    """The objects of several served versions of one kind, each (namespace, name) once (the first list's
    copy wins), with the index of the list it came from."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[int, Obj]] = []
    for index, objects in enumerate(lists):
        for obj in objects:
            key = (namespace_of(obj), name_of(obj))
            if key not in seen:
                seen.add(key)
                out.append((index, obj))
    return out


def _generation(obj: Mapping[str, Any]) -> int:
    return int(meta(obj).get("generation") or 0)


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value or [] if isinstance(v, Mapping)] if isinstance(value, list) else []


def _labels_match(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A ``LabelSelector`` (``matchLabels`` and ``matchExpressions``) against ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(str(key)) != str(value):
            return False
    for expression in _list(selector.get("matchExpressions")):
        key = str(expression.get("key") or "")
        values = [str(v) for v in expression.get("values") or []]
        operator = expression.get("operator")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def hostname_intersection(listener: str | None, route: Sequence[str]) -> list[str]:
    """The hostnames a route answers on a listener: the route's hostnames that the listener's hostname
    admits (the more specific of the two when one is a wildcard); all the route's without a listener
    hostname; the listener's without route hostnames; ``*`` when neither has any."""
    names = [h.lower() for h in route]
    if not listener:
        return names or ["*"]
    listener = listener.lower()
    if not names:
        return [listener]

    def covers(wildcard: str, host: str) -> bool:
        return wildcard.startswith("*.") and host.endswith(wildcard[1:]) and host != wildcard[2:]

    out: list[str] = []
    for host in names:
        if host == listener or covers(listener, host):
            out.append(host)
        elif covers(host, listener):
            out.append(listener)
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------------ state


@dataclass
class _Listener:
    gateway: tuple[str, str]
    name: str
    port: int
    protocol: str
    hostname: str | None
    allowed: Mapping[str, Any]
    attached: set[tuple[str, str]] = field(default_factory=set)

    def admits_kind(self) -> bool:
        if self.protocol not in _ROUTE_PROTOCOLS:
            return False
        kinds = _list(self.allowed.get("kinds"))
        return not kinds or any(
            str(k.get("kind")) == "HTTPRoute" and str(k.get("group") or GROUP) == GROUP for k in kinds
        )


@dataclass(frozen=True)
class _Entry:
    """One Envoy route (a rule's match) with its precedence among the routes of one host or Service."""

    precedence: tuple[Any, ...]
    route: Obj


class _State:
    def __init__(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> None:
        self.world = world
        self.namespaces: dict[str, Mapping[str, str]] = {
            name_of(ns): dict(meta(ns).get("labels") or {}) for ns in objects.get(NAMESPACE, ())
        }
        self.gateways: dict[tuple[str, str], tuple[int, Obj]] = {
            (namespace_of(gw), name_of(gw)): (index, gw)
            for index, gw in _first_version(objects.get(GATEWAY_V1, ()), objects.get(GATEWAY_V1BETA1, ()))
        }
        self.classes = _first_version(
            objects.get(GATEWAY_CLASS_V1, ()), objects.get(GATEWAY_CLASS_V1BETA1, ())
        )
        self.grants = list(objects.get(REFERENCE_GRANT_V1BETA1, ()))
        self.listeners: dict[tuple[str, str], list[_Listener]] = {}
        for key, (_, gateway) in self.gateways.items():
            self.listeners[key] = [
                _Listener(
                    key,
                    str(listener.get("name") or ""),
                    int(listener.get("port") or 0),
                    str(listener.get("protocol") or "").upper(),
                    str(listener["hostname"]) if listener.get("hostname") else None,
                    listener.get("allowedRoutes") or {},
                )
                for listener in _list(spec_of(gateway).get("listeners"))
            ]

    def namespace_allowed(self, listener: _Listener, namespace: str) -> bool:
        namespaces = listener.allowed.get("namespaces") or {}
        source = str(namespaces.get("from") or "Same")
        if source == "All":
            return True
        if source == "Selector":
            selector = namespaces.get("selector") or {}
            return namespace in self.namespaces and _labels_match(selector, self.namespaces[namespace])
        return namespace == listener.gateway[0]

    def granted(self, from_namespace: str, to_namespace: str, kind: str, name: str) -> bool:
        """Whether a ReferenceGrant in ``to_namespace`` lets HTTPRoutes of ``from_namespace`` refer to the
        core object ``kind/name``."""
        for grant in self.grants:
            if namespace_of(grant) != to_namespace:
                continue
            spec = spec_of(grant)
            froms = any(
                str(f.get("group") or "") == GROUP
                and f.get("kind") == "HTTPRoute"
                and f.get("namespace") == from_namespace
                for f in _list(spec.get("from"))
            )
            tos = any(
                str(t.get("group") or "") in _CORE_GROUPS
                and t.get("kind") == kind
                and (not t.get("name") or t.get("name") == name)
                for t in _list(spec.get("to"))
            )
            if froms and tos:
                return True
        return False


# ------------------------------------------------------------------------------------------------ translator


class GatewayAPITranslator:
    name = "gatewayapi"
    kinds: tuple[ResourceKind, ...] = (
        HTTP_ROUTE_V1,
        HTTP_ROUTE_V1BETA1,
        GATEWAY_V1,
        GATEWAY_V1BETA1,
        GATEWAY_CLASS_V1,
        GATEWAY_CLASS_V1BETA1,
        REFERENCE_GRANT_V1BETA1,
        NAMESPACE,
    )

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        state = _State(objects, world)
        program = Program()
        routes = sorted(
            _first_version(objects.get(HTTP_ROUTE_V1, ()), objects.get(HTTP_ROUTE_V1BETA1, ())),
            key=lambda item: (
                str(meta(item[1]).get("creationTimestamp") or ""),
                namespace_of(item[1]),
                name_of(item[1]),
            ),
        )
        by_domain: dict[str, list[_Entry]] = {}
        by_port: dict[PortKey, list[_Entry]] = {}
        for order, (version, route) in enumerate(routes):
            namespace = namespace_of(route)
            entries, resolved = _rule_entries(route, order, state)
            parents: list[Obj] = []
            previous = {
                _ref_key(p.get("parentRef") or {}, namespace): p
                for p in _list((route.get("status") or {}).get("parents"))
                if p.get("controllerName") == CONTROLLER_NAME
            }
            handled: set[tuple[Any, ...]] = set()
            for ref in _list(spec_of(route).get("parentRefs")):
                key = _ref_key(ref, namespace)
                if key in handled:
                    continue
                handled.add(key)
                group, kind, ref_namespace, ref_name = key[:4]
                if group == GROUP and kind == "Gateway":
                    reason = self._attach_gateway(route, ref, state, entries, by_domain)
                elif group in _CORE_GROUPS and kind == "Service":
                    reason = self._attach_service(ref_namespace, ref_name, ref, state, entries, by_port)
                else:
                    continue  # not a parent this controller implements
                old = previous.get(key) or {}
                conditions = list(_list(old.get("conditions")))
                generation = _generation(route)
                parents.append(
                    {
                        "parentRef": dict(ref),
                        "controllerName": CONTROLLER_NAME,
                        "conditions": [
                            condition(
                                "Accepted",
                                reason == "Accepted",
                                reason,
                                _ACCEPTED_MESSAGES[reason],
                                generation=generation,
                                previous=conditions,
                            ),
                            condition(
                                "ResolvedRefs",
                                resolved[0] == "ResolvedRefs",
                                resolved[0],
                                resolved[1],
                                generation=generation,
                                previous=conditions,
                            ),
                        ],
                    }
                )
            if not parents and not previous:
                continue
            others = [
                p
                for p in _list((route.get("status") or {}).get("parents"))
                if p.get("controllerName") != CONTROLLER_NAME
            ]
            kind = HTTP_ROUTE_V1 if version == 0 else HTTP_ROUTE_V1BETA1
            program.statuses.append(
                StatusWrite(kind, namespace, name_of(route), {"parents": [*others, *parents]})
            )
        program.gateway_hosts.extend(_virtual_hosts(by_domain))
        for port_key, port_entries in sorted(by_port.items()):
            program.service_routes[port_key] = [
                entry.route for entry in sorted(port_entries, key=_by_precedence)
            ]
        program.statuses.extend(_gateway_statuses(state))
        return program

    def _attach_gateway(
        self,
        route: Mapping[str, Any],
        ref: Mapping[str, Any],
        state: _State,
        entries: list[_Entry],
        by_domain: dict[str, list[_Entry]],
    ) -> str:
        namespace = namespace_of(route)
        gateway = (str(ref.get("namespace") or namespace), str(ref.get("name") or ""))
        if gateway not in state.gateways:
            return "NoMatchingParent"
        picked = [
            listener
            for listener in state.listeners.get(gateway, [])
            if (not ref.get("sectionName") or listener.name == ref.get("sectionName"))
            and (not ref.get("port") or listener.port == int(ref["port"]))
        ]
        if not picked:
            return "NoMatchingParent"
        allowed = [
            listener
            for listener in picked
            if listener.admits_kind() and state.namespace_allowed(listener, namespace)
        ]
        if not allowed:
            return "NotAllowedByListeners"
        hostnames = [str(h) for h in spec_of(route).get("hostnames") or []]
        domains: list[str] = []
        for listener in allowed:
            names = hostname_intersection(listener.hostname, hostnames)
            if names:
                listener.attached.add((namespace, name_of(route)))
                domains.extend(names)
        if not domains:
            return "NoMatchingListenerHostname"
        for domain in dict.fromkeys(domains):
            bucket = by_domain.setdefault(domain, [])
            bucket.extend(entry for entry in entries if entry not in bucket)
        return "Accepted"

    def _attach_service(
        self,
        namespace: str,
        name: str,
        ref: Mapping[str, Any],
        state: _State,
        entries: list[_Entry],
        by_port: dict[PortKey, list[_Entry]],
    ) -> str:
        if state.world.service(namespace, name) is None:
            return "NoMatchingParent"
        ports = state.world.ports(namespace, name)
        if ref.get("port"):
            ports = [p for p in ports if p == int(ref["port"])]
            if not ports:
                return "NoMatchingParent"
        for port in ports:
            bucket = by_port.setdefault((namespace, name, port), [])
            bucket.extend(entry for entry in entries if entry not in bucket)
        return "Accepted"


_ACCEPTED_MESSAGES = {
    "Accepted": "Accepted by the sandbox gateway",
    "NoMatchingParent": "the parent does not exist or has no matching listener or port",
    "NotAllowedByListeners": "no listener of the Gateway allows this route",
    "NoMatchingListenerHostname": "no hostname of the route matches a listener of the Gateway",
}


def _ref_key(ref: Mapping[str, Any], namespace: str) -> tuple[Any, ...]:
    """A parentRef with its defaults: (group, kind, namespace, name, sectionName, port)."""
    group = ref.get("group")
    return (
        GROUP if group is None else str(group),
        str(ref.get("kind") or "Gateway"),
        str(ref.get("namespace") or namespace),
        str(ref.get("name") or ""),
        ref.get("sectionName") or None,
        int(ref["port"]) if ref.get("port") else None,
    )


def _by_precedence(entry: _Entry) -> tuple[Any, ...]:
    return entry.precedence


def _virtual_hosts(by_domain: Mapping[str, list[_Entry]]) -> list[Obj]:
    """One virtual host per set of domains sharing the same ordered routes."""
    groups: dict[tuple[int, ...], list[str]] = {}
    ordered: dict[tuple[int, ...], list[_Entry]] = {}
    for domain in sorted(by_domain):
        entries = sorted(by_domain[domain], key=_by_precedence)
        key = tuple(id(entry) for entry in entries)
        groups.setdefault(key, []).append(domain)
        ordered[key] = entries
    return [
        {
            "name": f"httproute.{domains[0]}",
            "domains": domains,
            "routes": [entry.route for entry in ordered[key]],
        }
        for key, domains in groups.items()
    ]


# ------------------------------------------------------------------------------------------------ rules


@dataclass
class _Resolution:
    """The first backend reference problem found: (reason, message)."""

    reason: str = "ResolvedRefs"
    message: str = "all references resolved"

    def fail(self, reason: str, message: str) -> None:
        if self.reason == "ResolvedRefs":
            self.reason, self.message = reason, message


def _backend_cluster(
    ref: Mapping[str, Any], route_namespace: str, state: _State, resolution: _Resolution
) -> str | None:
    """The cluster of a backendRef, or ``None`` when it does not resolve (recorded in ``resolution``)."""
    group = str(ref.get("group") or "")
    kind = str(ref.get("kind") or "Service")
    name = str(ref.get("name") or "")
    namespace = str(ref.get("namespace") or route_namespace)
    if group not in _CORE_GROUPS or kind != "Service":
        resolution.fail("InvalidKind", f"backendRef {group}/{kind} {name}: only Services are supported")
        return None
    if namespace != route_namespace and not state.granted(route_namespace, namespace, "Service", name):
        resolution.fail("RefNotPermitted", f"backendRef {namespace}/{name}: no ReferenceGrant allows it")
        return None
    if state.world.service(namespace, name) is None:
        resolution.fail("BackendNotFound", f"backendRef Service {namespace}/{name} not found")
        return None
    if not ref.get("port"):
        resolution.fail("UnsupportedValue", f"backendRef Service {namespace}/{name}: port is required")
        return None
    port = state.world.port(namespace, name, int(ref["port"]))
    if port is None:
        resolution.fail("BackendNotFound", f"backendRef Service {namespace}/{name} has no port {ref['port']}")
        return None
    return state.world.service_cluster(namespace, name, port)


def _missing_cluster(ref: Mapping[str, Any]) -> str:
    """A cluster name no cluster has: Envoy answers its share with the route's not-found code (500)."""
    return (
        f"gatewayapi-unresolved|{ref.get('namespace') or ''}|{ref.get('name') or ''}|{ref.get('port') or ''}"
    )


def _header_ops(modifier: Any) -> tuple[list[Obj], list[str]]:
    if not isinstance(modifier, Mapping):
        return [], []
    add = [e.header_set(str(h.get("name")), str(h.get("value") or "")) for h in _list(modifier.get("set"))]
    add += [e.header_add(str(h.get("name")), str(h.get("value") or "")) for h in _list(modifier.get("add"))]
    return add, [str(name) for name in modifier.get("remove") or []]


def _path_match(match: Mapping[str, Any]) -> tuple[Obj, tuple[int, int], str | None]:
    """The Envoy path match, its precedence (rank, -length) and the prefix (for ReplacePrefixMatch)."""
    path = _map(match.get("path"))
    kind = str(path.get("type") or "PathPrefix")
    value = str(path.get("value") or "/")
    if kind == "Exact":
        return e.path_match("exact", value), (0, -len(value)), None
    if kind == "RegularExpression":
        return e.path_match("regex", value), (2, -len(value)), None
    return e.path_match("path_separated_prefix", value), (1, -len(value.rstrip("/") or "/")), value


def _value_matches(values: Any, build: Any) -> list[Obj]:
    out: list[Obj] = []
    seen: set[str] = set()
    for spec in _list(values):
        name = str(spec.get("name") or "")
        if not name or name.lower() in seen:
            continue  # the first match of a name wins
        seen.add(name.lower())
        kind = "regex" if spec.get("type") == "RegularExpression" else "exact"
        out.append(build(name, kind, str(spec.get("value") or "")))
    return out


def _prefix_rewrite(prefix: str, replacement: str) -> tuple[str, str]:
    """ReplacePrefixMatch as an Envoy regex rewrite (path segments kept apart: ``/`` → ``/v2`` makes
    ``/x`` into ``/v2/x``)."""
    p = prefix.rstrip("/")
    r = replacement.rstrip("/")
    if not r:
        return f"^{re.escape(p)}/?", "/"
    return f"^{re.escape(p)}", r


def _redirect(spec: Mapping[str, Any], prefix: str | None) -> Obj:
    out: Obj = {}
    if spec.get("scheme"):
        out["scheme_redirect"] = str(spec["scheme"])
    if spec.get("hostname"):
        out["host_redirect"] = str(spec["hostname"])
    if spec.get("port"):
        out["port_redirect"] = int(spec["port"])
    path = _map(spec.get("path"))
    if path.get("type") == "ReplaceFullPath":
        out["path_redirect"] = str(path.get("replaceFullPath") or "/")
    elif path.get("type") == "ReplacePrefixMatch" and prefix is not None:
        out["prefix_rewrite"] = str(path.get("replacePrefixMatch") or "/")
    out["response_code"] = _REDIRECT_CODES.get(int(spec.get("statusCode") or 302), "FOUND")
    return out


def _mirror_percent(spec: Mapping[str, Any]) -> float:
    if spec.get("percent") is not None:
        return float(spec["percent"])
    fraction = spec.get("fraction")
    if isinstance(fraction, Mapping) and fraction.get("numerator") is not None:
        return 100.0 * float(fraction["numerator"]) / float(fraction.get("denominator") or 100)
    return 100.0


def _rule_entries(
    route: Mapping[str, Any], order: int, state: _State
) -> tuple[list[_Entry], tuple[str, str]]:
    """The Envoy routes of every rule and match of an HTTPRoute, and its ResolvedRefs (reason, message)."""
    namespace = namespace_of(route)
    resolution = _Resolution()
    entries: list[_Entry] = []
    route_id = (str(meta(route).get("creationTimestamp") or ""), namespace, name_of(route))
    for rule_index, rule in enumerate(_list(spec_of(route).get("rules"))):
        filters = _list(rule.get("filters"))
        request_add: list[Obj] = []
        request_remove: list[str] = []
        response_add: list[Obj] = []
        response_remove: list[str] = []
        mirrors: list[Obj] = []
        rewrite: Mapping[str, Any] = {}
        redirect: Mapping[str, Any] | None = None
        for f in filters:
            kind = f.get("type")
            if kind == "RequestHeaderModifier":
                add, remove = _header_ops(f.get("requestHeaderModifier"))
                request_add += add
                request_remove += remove
            elif kind == "ResponseHeaderModifier":
                add, remove = _header_ops(f.get("responseHeaderModifier"))
                response_add += add
                response_remove += remove
            elif kind == "RequestMirror":
                spec = f.get("requestMirror") or {}
                ref = spec.get("backendRef") or {}
                cluster = _backend_cluster(ref, namespace, state, resolution)
                if cluster is not None:
                    mirrors.append(e.mirror_policy(cluster, _mirror_percent(spec)))
            elif kind == "URLRewrite":
                rewrite = f.get("urlRewrite") or {}
            elif kind == "RequestRedirect":
                redirect = f.get("requestRedirect") or {}
        backends: list[e.Backend] = []
        backend_response: list[tuple[list[Obj], list[str]]] = []
        for ref in _list(rule.get("backendRefs")):
            cluster = _backend_cluster(ref, namespace, state, resolution) or _missing_cluster(ref)
            weight = 1 if ref.get("weight") is None else int(ref["weight"])
            b_request_add: list[Obj] = []
            b_request_remove: list[str] = []
            b_response: tuple[list[Obj], list[str]] = ([], [])
            for f in _list(ref.get("filters")):
                if f.get("type") == "RequestHeaderModifier":
                    add, remove = _header_ops(f.get("requestHeaderModifier"))
                    b_request_add += add
                    b_request_remove += remove
                elif f.get("type") == "ResponseHeaderModifier":
                    add, remove = _header_ops(f.get("responseHeaderModifier"))
                    b_response = (b_response[0] + add, b_response[1] + remove)
            backends.append(e.Backend(cluster, weight, tuple(b_request_add), tuple(b_request_remove)))
            backend_response.append(b_response)
        timeouts = _map(rule.get("timeouts"))
        timeout = e.parse_duration_s(timeouts.get("request")) or 0.0
        matches = _list(rule.get("matches")) or [{"path": {"type": "PathPrefix", "value": "/"}}]
        for match_index, match in enumerate(matches):
            path, path_rank, prefix = _path_match(match)
            headers = _value_matches(match.get("headers"), e.header_match)
            query = _value_matches(match.get("queryParams"), e.query_match)
            if match.get("method"):
                headers.append(e.header_match(":method", "exact", str(match["method"])))
            envoy_match = e.route_match(path, headers=headers, query=query)
            name = f"httproute.{namespace}.{name_of(route)}.rule.{rule_index}.match.{match_index}"
            out = _envoy_route(
                envoy_match,
                name,
                backends,
                backend_response,
                weight_header=state.world.weight_header,
                timeout=timeout,
                mirrors=mirrors,
                rewrite=rewrite,
                redirect=redirect,
                prefix=prefix,
                request=(request_add, request_remove),
                response=(response_add, response_remove),
            )
            precedence = (
                *path_rank,
                0 if match.get("method") else 1,
                -len(_list(match.get("headers"))),
                -len(_list(match.get("queryParams"))),
                order,
                route_id,
                rule_index,
                match_index,
            )
            entries.append(_Entry(precedence, out))
    return entries, (resolution.reason, resolution.message)


def _envoy_route(
    match: Obj,
    name: str,
    backends: Sequence[e.Backend],
    backend_response: Sequence[tuple[list[Obj], list[str]]],
    *,
    weight_header: str,
    timeout: float,
    mirrors: Sequence[Obj],
    rewrite: Mapping[str, Any],
    redirect: Mapping[str, Any] | None,
    prefix: str | None,
    request: tuple[list[Obj], list[str]],
    response: tuple[list[Obj], list[str]],
) -> Obj:
    response_add, response_remove = list(response[0]), list(response[1])
    if redirect is not None:
        out: Obj = {"name": name, "match": match, "redirect": _redirect(redirect, prefix)}
        if response_add:
            out["response_headers_to_add"] = response_add
        return out
    if not backends or sum(b.weight for b in backends) <= 0:
        # no backend to send to: the Gateway API's 500
        action: Obj | None = None
    else:
        path_rewrite = _map(rewrite.get("path"))
        regex_rewrite: tuple[str, str] | None = None
        if path_rewrite.get("type") == "ReplaceFullPath":
            regex_rewrite = ("^.*$", str(path_rewrite.get("replaceFullPath") or "/"))
        elif path_rewrite.get("type") == "ReplacePrefixMatch" and prefix is not None:
            regex_rewrite = _prefix_rewrite(prefix, str(path_rewrite.get("replacePrefixMatch") or "/"))
        action = e.route_action(
            backends,
            weight_header=weight_header,
            timeout=timeout,
            mirrors=mirrors,
            regex_rewrite=regex_rewrite,
            host_rewrite=str(rewrite["hostname"]) if rewrite.get("hostname") else None,
        )
        action["cluster_not_found_response_code"] = "INTERNAL_SERVER_ERROR"
        weighted = action.get("weighted_clusters")
        for index, (add, remove) in enumerate(backend_response):
            if not add and not remove:
                continue
            if weighted is not None:
                entry = weighted["clusters"][index]
                if add:
                    entry["response_headers_to_add"] = list(add)
                if remove:
                    entry["response_headers_to_remove"] = list(remove)
            else:  # one backend: its response headers are the route's
                response_add += add
                response_remove += remove
    if action is None:
        out = {"name": name, "match": match, "direct_response": {"status": 500}}
        if response_add:
            out["response_headers_to_add"] = response_add
        if response_remove:
            out["response_headers_to_remove"] = response_remove
        return out
    return e.route(
        match,
        action,
        name=name,
        request_headers_to_add=request[0],
        request_headers_to_remove=request[1],
        response_headers_to_add=response_add,
        response_headers_to_remove=response_remove,
    )


# ------------------------------------------------------------------------------------------------ statuses


def _gateway_statuses(state: _State) -> Iterable[StatusWrite]:
    for key, (version, gateway) in sorted(state.gateways.items()):
        generation = _generation(gateway)
        status = _map(gateway.get("status"))
        previous = _list(status.get("conditions"))
        old_listeners = {str(entry.get("name")): entry for entry in _list(status.get("listeners"))}
        listeners: list[Obj] = []
        for listener in state.listeners.get(key, []):
            supported = listener.protocol in _ROUTE_PROTOCOLS
            old = _list((old_listeners.get(listener.name) or {}).get("conditions"))
            reason = "Accepted" if supported else "UnsupportedProtocol"
            listeners.append(
                {
                    "name": listener.name,
                    "supportedKinds": [{"group": GROUP, "kind": "HTTPRoute"}] if supported else [],
                    "attachedRoutes": len(listener.attached),
                    "conditions": [
                        condition("Accepted", supported, reason, generation=generation, previous=old),
                        condition(
                            "Programmed",
                            supported,
                            "Programmed" if supported else "Invalid",
                            generation=generation,
                            previous=old,
                        ),
                        condition("ResolvedRefs", True, "ResolvedRefs", generation=generation, previous=old),
                    ],
                }
            )
        out: Obj = {
            "conditions": [
                condition("Accepted", True, "Accepted", generation=generation, previous=previous),
                condition("Programmed", True, "Programmed", generation=generation, previous=previous),
            ],
            "listeners": listeners,
        }
        if status.get("addresses"):
            out["addresses"] = status["addresses"]
        kind = GATEWAY_V1 if version == 0 else GATEWAY_V1BETA1
        yield StatusWrite(kind, key[0], key[1], out)
    for version, gateway_class in state.classes:
        if spec_of(gateway_class).get("controllerName") != CONTROLLER_NAME:
            continue
        status = _map(gateway_class.get("status"))
        kind = GATEWAY_CLASS_V1 if version == 0 else GATEWAY_CLASS_V1BETA1
        yield StatusWrite(
            kind,
            "",
            name_of(gateway_class),
            {
                "conditions": [
                    condition(
                        "Accepted",
                        True,
                        "Accepted",
                        generation=_generation(gateway_class),
                        previous=_list(status.get("conditions")),
                    )
                ]
            },
        )
