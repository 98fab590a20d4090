"""The Traefik translator: IngressRoutes and TraefikServices (``traefik.io/v1alpha1``) as Traefik's
Kubernetes CRD provider serves them on its ``web`` entry point.

* An IngressRoute whose ``entryPoints`` is empty or names ``web`` (the sandbox's gateway listener plays that
  entry point) contributes its routes. Each route's ``match`` rule is parsed (Traefik's rule language:
  ``Host``, ``Path``, ``PathPrefix``, ``PathRegexp``, ``Method``, ``Header``/``Headers``,
  ``HeaderRegexp``/``HeadersRegexp``, ``Query``, joined by ``&&``, ``||`` and parentheses; ``!`` before a
  header matcher) into alternatives: each becomes an Envoy route in the gateway virtual host of its
  ``Host`` (``traefik.<host>``; an alternative without a host goes to every host and to the catch-all
  ``*``). Several values in one ``Host``/``Method`` (the v2 syntax) are alternatives too. Regexps search,
  as Go's do (unanchored). Routes are ordered by ``priority``, which defaults to the length of the rule, as
  Traefik orders them.
* A route's ``services`` are load-balanced by ``weight`` (1 when unset). A ``kind: Service`` entry is a
  Kubernetes Service port (``port`` number or name; the only port when unset) in the IngressRoute's
  namespace; a ``kind: TraefikService`` entry is resolved recursively: ``weighted.services`` multiply their
  weights down to the Services (an entry without ``weight`` gets 1, an explicit 0 gets nothing), and
  ``mirroring`` sends to its main service and mirrors ``percent`` % of the requests to each mirror Service.
  References to another namespace are refused (Traefik's default, ``allowCrossNamespace: false``), as are
  missing Services, ports, TraefikServices and cycles: Traefik then skips the whole IngressRoute, so its
  requests find no route (404). Weights adding up to 0 answer 503.
* Each Service port is a cluster named as Traefik names the service in its metrics,
  ``<namespace>-<service>-<port>@kubernetescrd`` (`canarist.sandbox.telemetry.traefik_service_name`), and
  the requests sent to it carry that name in :data:`~canarist.sandbox.telemetry.TRAEFIK_SERVICE_HEADER`, so
  the demo apps export Traefik's ``traefik_service_request_duration_seconds`` under it, which Traefik's
  builtin queries select (``<namespace>-<target>-canary-[0-9a-zA-Z-]+@kubernetescrd``).
* No timeout (Traefik's ``responseHeaderTimeout`` is 0 by default); the Host header is passed on.

Not translated: TLS, middlewares, ``HostRegexp``, ``ClientIP``, sticky sessions, server transports,
health checks, IngressRouteTCP/UDP. Traefik writes no status on these objects, and neither does this.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from canarist.kube.resources import ResourceKind, register
from canarist.routers.traefik import TRAEFIK_SERVICE
from canarist.sandbox import telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj, Program, World, name_of, namespace_of, sort_key, spec_of

__all__ = [
    "ENTRY_POINT",
    "INGRESS_ROUTE",
    "RuleError",
    "TraefikTranslator",
    "parse_rule",
]

INGRESS_ROUTE = ResourceKind("traefik.io", "v1alpha1", "ingressroutes", "IngressRoute")
register(INGRESS_ROUTE)

#: the entry point the sandbox's gateway listener plays (Traefik's Helm chart: ``web``, port 80).
ENTRY_POINT = "web"
_MAX_DEPTH = 16


class RuleError(ValueError):
    """A rule, or a service reference, Traefik would refuse (or one this translator cannot express)."""


# ------------------------------------------------------------------------------------------------ rules

_TOKEN = re.compile(r"\s*(?:(&&)|(\|\|)|(!)|(\()|(\))|(,)|`([^`]*)`|\"((?:[^\"\\]|\\.)*)\"|([A-Za-z]+))")


@dataclass(frozen=True)
class Matcher:
    """One matcher of a rule: ``name`` (``Host``, ``PathPrefix``...), its arguments, negated or not."""

    name: str
    args: tuple[str, ...]
    negated: bool = False


#: a rule as alternatives (OR) of conjunctions (AND) of matchers.
Alternatives = list[list[Matcher]]


def _tokens(rule: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(rule):
        if rule[pos:].strip() == "":
            break
        m = _TOKEN.match(rule, pos)
        if m is None:
            raise RuleError(f"cannot parse rule {rule!r} at {rule[pos:]!r}")
        pos = m.end()
        kinds = ("and", "or", "not", "(", ")", ",", "str", "str", "ident")
        for kind, value in zip(kinds, m.groups(), strict=True):
            if value is not None:
                out.append((kind, value))
                break
    return out


class _Parser:
    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.tokens = _tokens(rule)
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else ""

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            raise RuleError(f"cannot parse rule {self.rule!r}: expected {kind}")
        value = self.tokens[self.pos][1]
        self.pos += 1
        return value

    def parse(self) -> Alternatives:
        out = self.disjunction()
        if self.pos != len(self.tokens):
            raise RuleError(f"cannot parse rule {self.rule!r}: unexpected {self.tokens[self.pos][1]!r}")
        return out

    def disjunction(self) -> Alternatives:
        out = self.conjunction()
        while self.peek() == "or":
            self.take("or")
            out = out + self.conjunction()
        return out

    def conjunction(self) -> Alternatives:
        out = self.unary()
        while self.peek() == "and":
            self.take("and")
            right = self.unary()
            out = [left + r for left in out for r in right]
        return out

    def unary(self) -> Alternatives:
        if self.peek() == "not":
            self.take("not")
            inner = self.unary()
            if len(inner) != 1 or len(inner[0]) != 1:
                raise RuleError(f"rule {self.rule!r}: only a single matcher can be negated here")
            m = inner[0][0]
            return [[Matcher(m.name, m.args, not m.negated)]]
        if self.peek() == "(":
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return inner
        name = self.take("ident")
        self.take("(")
        args: list[str] = []
        while self.peek() != ")":
            args.append(self.take("str"))
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return _expand(Matcher(name, tuple(args)))


def _expand(m: Matcher) -> Alternatives:
    """``Host(`a`, `b`)`` and ``Method(`GET`, `POST`)`` (v2 syntax) as alternatives."""
    if m.name in ("Host", "Method") and len(m.args) > 1:
        return [[Matcher(m.name, (arg,))] for arg in m.args]
    return [[m]]


def parse_rule(rule: str) -> Alternatives:
    """A ``match`` rule as alternatives of conjunctions of matchers (`RuleError` when it cannot be parsed)."""
    return _Parser(rule).parse()


def _search(pattern: str) -> str:
    """A Go regexp search (unanchored) as an Envoy full match."""
    return f".*(?:{pattern}).*"


@dataclass
class _Match:
    host: str = ""
    path: Obj | None = None
    headers: list[Obj] = field(default_factory=list)
    query: list[Obj] = field(default_factory=list)


def _envoy_match(conjunction: Sequence[Matcher]) -> _Match:
    out = _Match()
    for m in conjunction:
        args = m.args
        if m.negated and m.name not in ("Header", "Headers", "HeaderRegexp", "HeadersRegexp", "Method"):
            raise RuleError(f"!{m.name} cannot be expressed")
        if m.name == "Host" and len(args) == 1:
            if out.host and out.host != args[0].lower():
                raise RuleError("two different Host matchers in one alternative")
            out.host = args[0].lower()
        elif m.name in ("Path", "PathPrefix", "PathRegexp") and len(args) == 1:
            if out.path is not None:
                raise RuleError("two path matchers in one alternative")
            value = args[0]
            if m.name == "Path":
                out.path = e.path_match("exact", value)
            elif m.name == "PathPrefix":
                out.path = e.path_match("prefix", value)
            else:
                out.path = e.path_match("regex", _search(value))
        elif m.name == "Method" and len(args) == 1:
            out.headers.append(e.header_match(":method", "exact", args[0].upper(), invert=m.negated))
        elif m.name in ("Header", "Headers") and len(args) == 2:
            out.headers.append(e.header_match(args[0], "exact", args[1], invert=m.negated))
        elif m.name in ("HeaderRegexp", "HeadersRegexp") and len(args) == 2:
            out.headers.append(e.header_match(args[0], "regex", _search(args[1]), invert=m.negated))
        elif m.name == "Query" and len(args) in (1, 2):
            out.query.append(
                e.query_match(args[0]) if len(args) == 1 else e.query_match(args[0], "exact", args[1])
            )
        else:
            raise RuleError(f"matcher {m.name}({', '.join(args)}) is not supported")
    return out


# ------------------------------------------------------------------------------------------------ services


@dataclass
class _Resolved:
    """A route's destinations: Service clusters with exact weights, and mirrors (cluster, percent)."""

    backends: dict[str, Fraction] = field(default_factory=dict)
    mirrors: list[tuple[str, float]] = field(default_factory=list)


def _weight(ref: Mapping[str, Any]) -> Fraction:
    weight = ref.get("weight")
    return Fraction(1) if weight is None else Fraction(max(int(weight), 0))


class _Resolver:
    def __init__(self, services: Mapping[tuple[str, str], Obj], world: World) -> None:
        self.services = services
        self.world = world

    def service_cluster(self, namespace: str, ref: Mapping[str, Any]) -> str:
        name = str(ref.get("name") or "")
        if self.world.service(namespace, name) is None:
            raise RuleError(f"service {namespace}/{name} not found")
        raw = ref.get("port")
        port = self.world.port(namespace, name, raw if raw not in (None, "") else None)
        if port is None or port not in self.world.ports(namespace, name):
            raise RuleError(f"service {namespace}/{name}: port {raw} not found")
        label = telemetry.traefik_service_name(namespace, name, port)
        return self.world.alias_cluster(label, namespace, name, port)

    def resolve(
        self,
        namespace: str,
        ref: Mapping[str, Any],
        scale: Fraction,
        out: _Resolved,
        path: tuple[tuple[str, str], ...],
    ) -> None:
        ref_namespace = str(ref.get("namespace") or namespace)
        if ref_namespace != namespace:
            raise RuleError(f"{ref.get('name')}: a reference to namespace {ref_namespace} is not allowed")
        kind = str(ref.get("kind") or "Service")
        if kind == "Service":
            cluster = self.service_cluster(namespace, ref)
            out.backends[cluster] = out.backends.get(cluster, Fraction(0)) + scale
            return
        if kind != "TraefikService":
            raise RuleError(f"{ref.get('name')}: unknown kind {kind}")
        key = (namespace, str(ref.get("name") or ""))
        if key in path or len(path) > _MAX_DEPTH:
            raise RuleError(f"TraefikService {key[0]}/{key[1]}: a reference cycle")
        found = self.services.get(key)
        if found is None:
            raise RuleError(f"TraefikService {key[0]}/{key[1]} not found")
        spec = spec_of(found)
        weighted, mirroring = spec.get("weighted"), spec.get("mirroring")
        if isinstance(weighted, Mapping):
            children = [c for c in weighted.get("services") or [] if isinstance(c, Mapping)]
            total = sum((_weight(c) for c in children), Fraction(0))
            for child in children:
                share = _weight(child) / total if total else Fraction(0)
                self.resolve(namespace, child, scale * share, out, (*path, key))
        elif isinstance(mirroring, Mapping):
            self.resolve(namespace, mirroring, scale, out, (*path, key))
            for mirror in mirroring.get("mirrors") or []:
                if isinstance(mirror, Mapping):
                    if str(mirror.get("kind") or "Service") != "Service":
                        raise RuleError(f"TraefikService {key[1]}: only Services can be mirrors here")
                    if str(mirror.get("namespace") or namespace) != namespace:
                        raise RuleError(f"TraefikService {key[1]}: a mirror in another namespace")
                    out.mirrors.append(
                        (self.service_cluster(namespace, mirror), float(mirror.get("percent") or 0))
                    )
        else:
            raise RuleError(f"TraefikService {key[0]}/{key[1]} has neither weighted nor mirroring")


def _integer_weights(backends: Mapping[str, Fraction]) -> list[tuple[str, int]]:
    """Exact fractions as integer weights (their common denominator)."""
    denominator = math.lcm(*(w.denominator for w in backends.values())) if backends else 1
    return [(cluster, int(w * denominator)) for cluster, w in backends.items()]


# ------------------------------------------------------------------------------------------------ program


@dataclass
class _Route:
    priority: int
    order: int
    host: str
    envoy: Obj


def _served(route_obj: Mapping[str, Any]) -> bool:
    entry_points = spec_of(route_obj).get("entryPoints") or []
    return not entry_points or ENTRY_POINT in [str(p) for p in entry_points]


class TraefikTranslator:
    name = "traefik"
    kinds: tuple[ResourceKind, ...] = (INGRESS_ROUTE, TRAEFIK_SERVICE)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        services = {sort_key(s): s for s in objects.get(TRAEFIK_SERVICE, ())}
        resolver = _Resolver(services, world)
        routes: list[_Route] = []
        for ingress_route in sorted(objects.get(INGRESS_ROUTE, ()), key=sort_key):
            if _served(ingress_route):
                try:
                    routes.extend(self._routes(ingress_route, resolver, world, len(routes)))
                except RuleError:
                    continue  # Traefik skips an IngressRoute with an error: its requests find no route
        routes.sort(key=lambda r: (-r.priority, r.order))
        program = Program()
        hosts = sorted({r.host for r in routes if r.host})
        for host in hosts:
            program.gateway_hosts.append(
                {
                    "name": f"traefik.{host}",
                    "domains": [host],
                    "routes": [r.envoy for r in routes if r.host in (host, "")],
                }
            )
        if any(not r.host for r in routes):
            program.gateway_hosts.append(
                {"name": "traefik._", "domains": ["*"], "routes": [r.envoy for r in routes if not r.host]}
            )
        return program

    def _routes(self, ingress_route: Obj, resolver: _Resolver, world: World, start: int) -> list[_Route]:
        namespace, name = namespace_of(ingress_route), name_of(ingress_route)
        out: list[_Route] = []
        for index, route in enumerate(spec_of(ingress_route).get("routes") or []):
            if not isinstance(route, Mapping):
                continue
            rule = str(route.get("match") or "")
            alternatives = parse_rule(rule)
            resolved = _Resolved()
            refs = [r for r in route.get("services") or [] if isinstance(r, Mapping)]
            total = sum((_weight(r) for r in refs), Fraction(0))
            for ref in refs:
                share = _weight(ref) / total if total else Fraction(0)
                resolver.resolve(namespace, ref, share, resolved, ())
            priority = int(route.get("priority") or 0) or len(rule)
            for n, conjunction in enumerate(alternatives):
                match = _envoy_match(conjunction)
                envoy_match = e.route_match(match.path, headers=match.headers, query=match.query)
                route_name = f"traefik.{namespace}.{name}.{index}.{n}"
                weights = _integer_weights(resolved.backends)
                if not weights or sum(w for _, w in weights) <= 0:
                    envoy: Obj = {
                        "name": route_name,
                        "match": envoy_match,
                        "direct_response": {"status": 503},
                    }
                else:
                    backends = [
                        e.Backend(cluster, weight, (e.header_set(telemetry.TRAEFIK_SERVICE_HEADER, cluster),))
                        for cluster, weight in weights
                    ]
                    action = e.route_action(
                        backends,
                        weight_header=world.weight_header,
                        timeout=0.0,
                        mirrors=[e.mirror_policy(c, p) for c, p in resolved.mirrors],
                    )
                    envoy = e.route(envoy_match, action, name=route_name)
                out.append(_Route(priority, start + len(out), match.host, envoy))
        return out
