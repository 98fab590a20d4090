"""The APISIX translator: ``apisix.apache.org/v2`` ApisixRoutes as the APISIX ingress controller programs
APISIX with them.

The controller makes one APISIX route of every ``spec.http`` rule, named ``<namespace>_<ApisixRoute>_<rule>``
(`canarist.sandbox.telemetry.apisix_route_name`). Here:

* an ApisixRoute is served when its ``spec.ingressClassName`` is empty or names the translator's class
  (``apisix``);
* a rule's ``match.hosts`` become gateway virtual hosts ``apisix.<host>`` (a wildcard host such as
  ``*.example.com`` is an Envoy wildcard domain); a rule without hosts serves every host and the catch-all
  ``*``. Each of its ``match.paths`` is one Envoy route: a path ending in ``*`` matches the prefix before the
  ``*`` (``/*`` is everything), any other path only itself. ``match.methods`` restrict the method;
  ``match.exprs`` on a ``Header`` or ``Query`` subject are understood with ``Equal``, ``NotEqual``, ``In``,
  ``RegexMatch`` and ``RegexNotMatch`` (a regex searches the value, unanchored). A rule with any other
  expression is not served (APISIX would evaluate it; the sandbox cannot);
* within a host, routes are tried as APISIX's radix tree picks them: exact paths first, then the longer
  paths, then, for the same path, the higher ``priority`` (default 0), then the older ApisixRoute (then
  namespace/name) and the rule order;
* ``backends`` share the rule's traffic by ``weight`` (100 when unset; 0 gets nothing; all 0 answers
  503). A backend is a Service port (``servicePort`` number or name) in the ApisixRoute's namespace; a
  missing Service or port is a cluster that does not exist (Envoy answers 503). ``resolveGranularity`` does
  not change where a request lands; ``subset`` is not translated (the whole Service is used);
* every routed request carries :data:`~canarist.sandbox.telemetry.APISIX_ROUTE_HEADER` (the route's name)
  and :data:`~canarist.sandbox.telemetry.APISIX_URI_HEADER` (the matched path pattern), so the demo apps
  export APISIX's ``apisix_http_status`` and ``apisix_http_latency`` under that ``route``, which APISIX's
  builtin queries select (``<namespace>_<routeRef>-<target>-canary_.+``);
* the route timeout is the rule's ``timeout.read`` (APISIX's default: 60 s).

Not translated: ``upstreams`` (ApisixUpstream references), plugins, authentication, websocket, stream
rules, ``remoteAddrs``, ``filter_func`` and TLS. No status is written on ApisixRoutes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canarist.kube.resources import ResourceKind
from canarist.routers.apisix import APISIX_ROUTE
from canarist.sandbox import telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj, Program, World, meta, name_of, namespace_of, spec_of

__all__ = ["DEFAULT_TIMEOUT_S", "DEFAULT_WEIGHT", "ApisixTranslator", "ExprError", "rule_headers"]

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_WEIGHT = 100


class ExprError(ValueError):
    """A match expression the sandbox cannot express (the rule is then not served)."""


def rule_headers(match: Mapping[str, Any]) -> tuple[list[Obj], list[Obj]]:
    """The Envoy header and query-parameter matchers of a rule's ``match.methods`` and ``match.exprs``;
    raises :class:`ExprError` for an expression the sandbox does not know."""
    headers: list[Obj] = []
    query: list[Obj] = []
    methods = [str(m).upper() for m in match.get("methods") or [] if str(m).strip()]
    if methods:
        pattern = "|".join(re.escape(m) for m in methods)
        headers.append(e.header_match(":method", "regex", f"^(?:{pattern})$"))
    for expr in match.get("exprs") or []:
        if not isinstance(expr, Mapping):
            raise ExprError(f"expression {expr!r} is not an object")
        subject = _mapping(expr.get("subject"))
        scope, name = str(subject.get("scope") or ""), str(subject.get("name") or "")
        op = str(expr.get("op") or "")
        if scope not in ("Header", "Query") or not name:
            raise ExprError(f"expression subject {scope} {name!r} is not supported")
        kind: e.MatchKind
        if op == "In":
            values = [str(v) for v in expr.get("set") or []]
            kind, value, invert = "regex", "^(?:" + "|".join(re.escape(v) for v in values) + ")$", False
        elif op in ("Equal", "NotEqual"):
            kind, value, invert = "exact", str(expr.get("value") or ""), op == "NotEqual"
        elif op in ("RegexMatch", "RegexNotMatch"):
            kind, value, invert = "regex", f".*(?:{expr.get('value') or ''}).*", op == "RegexNotMatch"
        else:
            raise ExprError(f"expression operator {op!r} is not supported")
        if scope == "Header":
            headers.append(e.header_match(name, kind, value, invert=invert))
        elif invert:
            raise ExprError(f"a negated query expression on {name!r} is not supported")
        else:
            query.append(e.query_match(name, kind, value))
    return headers, query


@dataclass(frozen=True)
class _Route:
    host: str  # "" when the rule has no hosts
    path: str
    exact: bool
    priority: int
    order: tuple[int, int, int]  # (ApisixRoute age, rule index, path index)
    envoy: Obj


class ApisixTranslator:
    """``ingress_class``: the class served (the ingress controller's ``ingress_class``)."""

    name = "apisix"
    kinds: tuple[ResourceKind, ...] = (APISIX_ROUTE,)

    def __init__(self, ingress_class: str = "apisix") -> None:
        self.ingress_class = ingress_class

    def serves(self, obj: Mapping[str, Any]) -> bool:
        klass = str(spec_of(obj).get("ingressClassName") or "")
        return klass in ("", self.ingress_class)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        routes_objs = sorted((r for r in objects.get(APISIX_ROUTE, ()) if self.serves(r)), key=_age_key)
        routes: list[_Route] = []
        for age, apisix_route in enumerate(routes_objs):
            for index, rule in enumerate(spec_of(apisix_route).get("http") or []):
                if isinstance(rule, Mapping):
                    routes.extend(self._rule(apisix_route, rule, (age, index), world))
        routes.sort(key=lambda r: (0 if r.exact else 1, -len(r.path), -r.priority, r.order))
        program = Program()
        for host in sorted({r.host for r in routes if r.host}):
            program.gateway_hosts.append(
                {
                    "name": f"apisix.{host}",
                    "domains": [host],
                    "routes": [r.envoy for r in routes if r.host in (host, "")],
                }
            )
        if any(not r.host for r in routes):
            program.gateway_hosts.append(
                {"name": "apisix._", "domains": ["*"], "routes": [r.envoy for r in routes if not r.host]}
            )
        return program

    def _rule(
        self, apisix_route: Mapping[str, Any], rule: Mapping[str, Any], order: tuple[int, int], world: World
    ) -> list[_Route]:
        namespace, name = namespace_of(apisix_route), name_of(apisix_route)
        match = _mapping(rule.get("match"))
        try:
            headers, query = rule_headers(match)
        except ExprError:
            return []  # not served: its requests go to another route, or find none (404)
        route_name = telemetry.apisix_route_name(namespace, name, str(rule.get("name") or ""))
        hosts = [str(h).strip().lower() for h in match.get("hosts") or [] if str(h).strip()] or [""]
        priority = _int(rule.get("priority"), 0)
        timeout = _mapping(rule.get("timeout"))
        read = e.parse_duration_s(timeout.get("read")) if timeout.get("read") else None
        backends = [b for b in rule.get("backends") or [] if isinstance(b, Mapping) and b.get("serviceName")]
        out: list[_Route] = []
        for path_index, path in enumerate(str(p) for p in match.get("paths") or [] if str(p)):
            exact = not path.endswith("*")
            envoy_match = e.route_match(
                e.path_match("exact", path) if exact else e.path_match("prefix", path[:-1] or "/"),
                headers=headers,
                query=query,
            )
            envoy_name = f"apisix.{route_name}.{path_index}"
            weighted = [
                (backend, _int(backend.get("weight"), DEFAULT_WEIGHT))
                for backend in backends
                if _int(backend.get("weight"), DEFAULT_WEIGHT) > 0
            ]
            if not weighted:
                envoy: Obj = {"name": envoy_name, "match": envoy_match, "direct_response": {"status": 503}}
            else:
                tags = (
                    e.header_set(telemetry.APISIX_ROUTE_HEADER, route_name),
                    e.header_set(telemetry.APISIX_URI_HEADER, path),
                )
                action = e.route_action(
                    [e.Backend(_cluster(namespace, b, world), w, tags) for b, w in weighted],
                    weight_header=world.weight_header,
                    timeout=DEFAULT_TIMEOUT_S if read is None else read,
                )
                envoy = e.route(envoy_match, action, name=envoy_name)
            for host in hosts:
                out.append(_Route(host, path.rstrip("*"), exact, priority, (*order, path_index), envoy))
        return out


# ------------------------------------------------------------------------------------------------ helpers


def _age_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(meta(obj).get("creationTimestamp") or ""), namespace_of(obj), name_of(obj))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _cluster(namespace: str, backend: Mapping[str, Any], world: World) -> str:
    service = str(backend.get("serviceName"))
    raw = backend.get("servicePort")
    port = world.port(namespace, service, raw if isinstance(raw, int | str) and raw != "" else None)
    if port is None:
        return f"apisix|{namespace}-{service}-{raw}"  # no such cluster: Envoy answers 503
    return world.service_cluster(namespace, service, port)
