"""The Gloo Edge translator: VirtualServices, RouteTables and Upstreams as Gloo's gateway proxy applies them.

Gloo is an ingress: it programs the gateway listener only (no Service listeners).

* A ``gateway.solo.io/v1`` **VirtualService** becomes a gateway virtual host ``gloo.<ns>.<name>`` for its
  ``virtualHost.domains`` (none: ``*``); its routes keep their order (Gloo does not sort them by default).
* A route with a **delegateAction** (``ref``, the older ``name``/``namespace``, or a ``selector`` of
  ``labels``, ``expressions`` and ``namespaces`` — default: the delegating object's namespace, ``*``: all)
  is replaced by the routes of the RouteTables it names, in place, ordered by the tables' ``weight`` (lower
  first), then namespace/name. Route tables delegate further; a cycle is an error. A child route's matchers
  combine with each of the parent's: with ``inheritablePathMatchers`` the child takes the parent's path (and
  case sensitivity), otherwise its path must start with the parent's prefix; with ``inheritableMatchers`` it
  also gets the parent's headers, query parameters and (when it has none) methods. Both flags default to the
  parent route's value (false on a VirtualService). The parent's ``options`` are the defaults of the
  child's.
* A **routeAction** to ``single`` or ``multi.destinations`` (with ``weight``) names **Upstreams**; Gloo's
  Envoy cluster for an Upstream is ``<name>_<namespace>``, so that is the name of the cluster declared over
  the ``kube`` Service port's pods (``serviceName``, ``serviceNamespace`` — default the Upstream's,
  ``servicePort``, ``selector`` as pod labels): Envoy's ``envoy_cluster_upstream_rq*`` stats then answer
  Gloo's builtin queries (``envoy_cluster_name=~"<ns>-<target>-canaryupstream-…_…"``). A ``kube`` service
  destination (``{ref: {name, namespace}, port}``) is a cluster ``kube-svc:<ns>-<name>-<port>_<ns>``. An
  Upstream's ``loadBalancerConfig`` (roundRobin, leastRequest, random) sets the cluster's load balancer.

Matchers: ``prefix`` (default ``/``), ``exact``, ``regex``, ``caseSensitive``, ``headers`` and
``queryParameters`` (``value``, ``regex``, ``invertMatch``; no value: the header is present) and
``methods``. Route ``options``: ``timeout``, ``retries``, ``prefixRewrite``, ``hostRewrite``,
``headerManipulation`` and ``faults``. A ``directResponseAction`` is answered by Envoy. Not translated:
upstream groups, static and other upstream types, redirects, TLS, virtual-host options, Gloo's Upstream
discovery.

Statuses as Gloo's gateway reports them (``status.statuses["gloo-system"]``: ``reportedBy: gateway``,
``state`` ``Accepted``, or ``Warning`` with a ``reason`` when a delegated table or an Upstream is missing, a
delegation loops or a child path escapes its parent's prefix) on every VirtualService and every RouteTable
a VirtualService reaches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canarist.kube.resources import ResourceKind, register
from canarist.routers.gloo import ROUTE_TABLE, UPSTREAM
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import (
    Obj,
    Program,
    StatusWrite,
    World,
    meta,
    name_of,
    namespace_of,
    sort_key,
    spec_of,
)

__all__ = [
    "GLOO_NAMESPACE",
    "GLOO_VIRTUAL_SERVICE",
    "GlooTranslator",
    "upstream_cluster",
]

#: Gloo Edge's VirtualService (Istio's VirtualService has the same Kind in another group).
GLOO_VIRTUAL_SERVICE = ResourceKind(
    "gateway.solo.io", "v1", "virtualservices", "VirtualService", status_subresource=True
)
register(GLOO_VIRTUAL_SERVICE)

#: The namespace Gloo runs in: the key of its entry in ``status.statuses``.
GLOO_NAMESPACE = "gloo-system"

_LB = {"roundRobin": "ROUND_ROBIN", "leastRequest": "LEAST_REQUEST", "random": "RANDOM"}


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def upstream_cluster(name: str, namespace: str) -> str:
    """Gloo's Envoy cluster name for an Upstream: ``<name>_<namespace>``."""
    return f"{name}_{namespace}"


# ------------------------------------------------------------------------------------------------ matchers


@dataclass(frozen=True)
class _Path:
    kind: str  # prefix | exact | regex
    value: str
    case_sensitive: bool = True


@dataclass(frozen=True)
class _Matcher:
    """One Gloo matcher, parsed."""

    path: _Path
    headers: tuple[Obj, ...] = ()
    query: tuple[Obj, ...] = ()
    methods: tuple[str, ...] = ()

    def envoy(self) -> Obj:
        headers = list(self.headers)
        if len(self.methods) == 1:
            headers.append(e.header_match(":method", "exact", self.methods[0]))
        elif self.methods:
            headers.append(e.header_match(":method", "regex", "|".join(re.escape(m) for m in self.methods)))
        kind = self.path.kind
        path = e.path_match(
            "exact" if kind == "exact" else "regex" if kind == "regex" else "prefix", self.path.value
        )
        return e.route_match(
            path, headers=headers, query=list(self.query), case_sensitive=self.path.case_sensitive
        )


def _value_match(spec: Mapping[str, Any], build: Callable[..., Obj]) -> Obj | None:
    name = str(spec.get("name") or "")
    if not name:
        return None
    value = str(spec.get("value") or "")
    invert = bool(spec.get("invertMatch"))
    if not value:
        match: Obj = build(name)
    elif spec.get("regex"):
        match = build(name, "regex", value)
    else:
        match = build(name, "exact", value)
    if invert:
        match["invert_match"] = True
    return match


def _matcher(spec: Mapping[str, Any]) -> _Matcher:
    if spec.get("exact") is not None:
        path = _Path("exact", str(spec["exact"]))
    elif spec.get("regex") is not None:
        path = _Path("regex", str(spec["regex"]))
    else:
        path = _Path("prefix", str(spec.get("prefix") or "/"))
    if spec.get("caseSensitive") is False:
        path = _Path(path.kind, path.value, False)
    headers = [_value_match(h, e.header_match) for h in spec.get("headers") or [] if isinstance(h, Mapping)]
    query = [
        _value_match(q, e.query_match) for q in spec.get("queryParameters") or [] if isinstance(q, Mapping)
    ]
    return _Matcher(
        path,
        tuple(h for h in headers if h is not None),
        tuple(q for q in query if q is not None),
        tuple(str(m).upper() for m in spec.get("methods") or []),
    )


def _matchers(route: Mapping[str, Any]) -> list[_Matcher]:
    found = [_matcher(m) for m in route.get("matchers") or [] if isinstance(m, Mapping)]
    return found or [_Matcher(_Path("prefix", "/"))]


def _inherit(parent: _Matcher, child: _Matcher, *, paths: bool, rest: bool) -> tuple[_Matcher | None, str]:
    """The child's matcher under its parent's, or ``(None, reason)`` when the child's path escapes."""
    path = child.path
    if paths:
        path = parent.path
    elif parent.path.kind != "prefix":
        return (
            None,
            f"a delegating route needs a prefix matcher, not {parent.path.kind} {parent.path.value!r}",
        )
    elif not child.path.value.startswith(parent.path.value):
        return None, (
            f"child route path {child.path.value!r} does not start with the parent's prefix "
            f"{parent.path.value!r}"
        )
    if not rest:
        return _Matcher(path, child.headers, child.query, child.methods), ""
    return (
        _Matcher(
            path,
            child.headers + parent.headers,
            child.query + parent.query,
            child.methods or parent.methods,
        ),
        "",
    )


# ------------------------------------------------------------------------------------------------ options


def _options(route: Mapping[str, Any]) -> Obj:
    value = route.get("options")
    return dict(value) if isinstance(value, Mapping) else {}


def _header_values(entries: Any) -> list[Obj]:
    out: list[Obj] = []
    for entry in entries or []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("header"), Mapping):
            continue
        header = entry["header"]
        key, value = str(header.get("key") or ""), str(header.get("value") or "")
        if not key:
            continue
        append = entry.get("append")
        out.append(e.header_set(key, value) if append is False else e.header_add(key, value))
    return out


def _retry(spec: Any) -> Obj | None:
    if not isinstance(spec, Mapping):
        return None
    attempts = int(spec.get("numRetries") or 1)
    return e.retry_policy(
        str(spec.get("retryOn") or "5xx"),
        attempts,
        per_try_timeout=e.parse_duration_s(spec.get("perTryTimeout")),
    )


def _percent(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 100.0


def _fault(spec: Any) -> Obj | None:
    if not isinstance(spec, Mapping):
        return None
    abort, delay = _map(spec.get("abort")), _map(spec.get("delay"))
    return e.fault_config(
        abort_status=int(abort["httpStatus"]) if abort.get("httpStatus") else None,
        abort_percent=_percent(abort.get("percentage")),
        delay_s=e.parse_duration_s(delay.get("fixedDelay")) if delay else None,
        delay_percent=_percent(delay.get("percentage")),
    )


# ------------------------------------------------------------------------------------------------ program


@dataclass
class _Report:
    """Problems found while flattening one VirtualService, per object (``(kind, ns, name)``)."""

    reached: list[tuple[ResourceKind, str, str]] = field(default_factory=list)
    problems: dict[tuple[ResourceKind, str, str], list[str]] = field(default_factory=dict)

    def reach(self, key: tuple[ResourceKind, str, str]) -> None:
        if key not in self.reached:
            self.reached.append(key)

    def problem(self, key: tuple[ResourceKind, str, str], text: str) -> None:
        found = self.problems.setdefault(key, [])
        if text not in found:
            found.append(text)


def _selected(
    selector: Mapping[str, Any], namespace: str, tables: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    namespaces = [str(n) for n in selector.get("namespaces") or []] or [namespace]
    labels = {str(k): str(v) for k, v in (selector.get("labels") or {}).items()}
    expressions = [x for x in selector.get("expressions") or [] if isinstance(x, Mapping)]
    out = []
    for table in tables:
        if "*" not in namespaces and namespace_of(table) not in namespaces:
            continue
        have = {str(k): str(v) for k, v in (meta(table).get("labels") or {}).items()}
        if any(have.get(k) != v for k, v in labels.items()):
            continue
        if all(_expression(x, have) for x in expressions):
            out.append(table)
    return out


def _expression(spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = str(spec.get("key") or "")
    operator = str(spec.get("operator") or "Equals")
    values = [str(v) for v in spec.get("values") or []]
    have = labels.get(key)
    if operator in ("Equals", "=", "=="):
        return have is not None and have in values
    if operator in ("NotEquals", "!=", "NotIn", "notin"):
        return have is None or have not in values
    if operator in ("In", "in"):
        return have is not None and have in values
    if operator in ("Exists", "exists"):
        return have is not None
    if operator in ("DoesNotExist", "!"):
        return have is None
    if operator in ("GreaterThan", "gt", "LessThan", "lt"):
        try:
            number, bound = int(have or ""), int(values[0])
        except (ValueError, IndexError):
            return False
        return number > bound if operator in ("GreaterThan", "gt") else number < bound
    return False


class GlooTranslator:
    name = "gloo"
    kinds: tuple[ResourceKind, ...] = (GLOO_VIRTUAL_SERVICE, ROUTE_TABLE, UPSTREAM)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        tables = sorted(objects.get(ROUTE_TABLE, ()), key=sort_key)
        upstreams = {(namespace_of(u), name_of(u)): u for u in objects.get(UPSTREAM, ())}
        program = Program()
        rt_problems: dict[tuple[str, str], list[str]] = {}
        rt_reached: list[tuple[str, str]] = []
        for vs in sorted(objects.get(GLOO_VIRTUAL_SERVICE, ()), key=sort_key):
            flat = _Flattener(world, tables, upstreams)
            vs_key = (GLOO_VIRTUAL_SERVICE, namespace_of(vs), name_of(vs))
            host = spec_of(vs).get("virtualHost")
            host = host if isinstance(host, Mapping) else {}
            routes: list[Obj] = []
            for index, route in enumerate(host.get("routes") or []):
                if isinstance(route, Mapping):
                    routes += flat.route(
                        route,
                        vs_key,
                        f"gloo.{namespace_of(vs)}.{name_of(vs)}.{index}",
                        parents=None,
                        options={},
                        chain=(vs_key,),
                    )
            domains = [str(d).lower() for d in host.get("domains") or []] or ["*"]
            program.gateway_hosts.append(
                {"name": f"gloo.{namespace_of(vs)}.{name_of(vs)}", "domains": domains, "routes": routes}
            )
            # The VirtualService reports its own problems and, as a warning, those of its tables.
            reasons = list(flat.report.problems.get(vs_key, []))
            for key in flat.report.reached:
                if key[0] is ROUTE_TABLE:
                    table = (key[1], key[2])
                    if table not in rt_reached:
                        rt_reached.append(table)
                    found = flat.report.problems.get(key, [])
                    merged = rt_problems.setdefault(table, [])
                    merged += [p for p in found if p not in merged]
                    reasons += [f"RouteTable {key[1]}.{key[2]}: {p}" for p in found]
            program.statuses.append(
                StatusWrite(GLOO_VIRTUAL_SERVICE, vs_key[1], vs_key[2], _status(reasons, "Warning"))
            )
        for namespace, name in rt_reached:
            program.statuses.append(
                StatusWrite(
                    ROUTE_TABLE,
                    namespace,
                    name,
                    _status(rt_problems.get((namespace, name), []), "Warning"),
                )
            )
        return program


def _status(reasons: Iterable[str], bad: str) -> Obj:
    found = list(reasons)
    entry: Obj = {"reportedBy": "gateway", "state": bad if found else "Accepted"}
    if found:
        entry["reason"] = "; ".join(found)
    return {"statuses": {GLOO_NAMESPACE: entry}}


class _Flattener:
    """Flattens one VirtualService's routes (delegation resolved) into Envoy routes."""

    def __init__(
        self,
        world: World,
        tables: Sequence[Mapping[str, Any]],
        upstreams: Mapping[tuple[str, str], Mapping[str, Any]],
    ) -> None:
        self.world = world
        self.tables = tables
        self.upstreams = upstreams
        self.report = _Report()

    def route(
        self,
        route: Mapping[str, Any],
        owner: tuple[ResourceKind, str, str],
        name: str,
        *,
        parents: list[_Matcher] | None,
        options: Mapping[str, Any],
        chain: tuple[tuple[ResourceKind, str, str], ...],
        inherit_paths: bool = False,
        inherit_rest: bool = False,
    ) -> list[Obj]:
        """The Envoy routes of one Gloo route of ``owner`` under the ``parents`` matchers (None: top level)."""
        self.report.reach(owner)
        if route.get("inheritablePathMatchers") is not None:
            inherit_paths = bool(route["inheritablePathMatchers"])
        if route.get("inheritableMatchers") is not None:
            inherit_rest = bool(route["inheritableMatchers"])
        own = _matchers(route)
        if parents is None:
            matchers = own
        else:
            matchers = []
            for parent in parents:
                for child in own:
                    combined, reason = _inherit(parent, child, paths=inherit_paths, rest=inherit_rest)
                    if combined is None:
                        self.report.problem(owner, reason)
                    else:
                        matchers.append(combined)
        if not matchers:
            return []
        merged = {**options, **_options(route)}
        namespace = owner[1]
        delegate = route.get("delegateAction")
        if isinstance(delegate, Mapping):
            out: list[Obj] = []
            for table in self._delegates(delegate, namespace, owner):
                key = (ROUTE_TABLE, namespace_of(table), name_of(table))
                if key in chain:
                    self.report.problem(owner, f"delegation cycle through RouteTable {key[1]}.{key[2]}")
                    continue
                for index, child in enumerate(spec_of(table).get("routes") or []):
                    if isinstance(child, Mapping):
                        out += self.route(
                            child,
                            key,
                            f"gloo.{key[1]}.{key[2]}.{index}",
                            parents=matchers,
                            options=merged,
                            chain=(*chain, key),
                            inherit_paths=inherit_paths,
                            inherit_rest=inherit_rest,
                        )
            return out
        return [self._envoy_route(m, route, merged, owner, name) for m in matchers]

    def _delegates(
        self, delegate: Mapping[str, Any], namespace: str, owner: tuple[ResourceKind, str, str]
    ) -> list[Mapping[str, Any]]:
        selector = delegate.get("selector")
        if isinstance(selector, Mapping):
            found = _selected(selector, namespace, self.tables)
            if not found:
                self.report.problem(owner, "no RouteTable matches the delegateAction selector")
        else:
            ref = _map(delegate.get("ref")) or delegate
            name = str(ref.get("name") or "")
            ns = str(ref.get("namespace") or namespace)
            found = [t for t in self.tables if (namespace_of(t), name_of(t)) == (ns, name)]
            if not found:
                self.report.problem(owner, f"RouteTable {ns}.{name} not found")
        return sorted(found, key=lambda t: (int(spec_of(t).get("weight") or 0), *sort_key(t)))

    def _cluster(
        self, destination: Mapping[str, Any], namespace: str, owner: tuple[ResourceKind, str, str]
    ) -> str:
        kube = destination.get("kube")
        if isinstance(kube, Mapping):
            kube_ref = _map(kube.get("ref"))
            service, ns = str(kube_ref.get("name") or ""), str(kube_ref.get("namespace") or namespace)
            number = int(kube.get("port") or 0)
            cluster = f"kube-svc:{ns}-{service}-{number}_{ns}"
            if self.world.service(ns, service) is None:
                self.report.problem(owner, f"Service {ns}.{service} not found")
            return self.world.alias_cluster(
                cluster, ns, service, self.world.port(ns, service, number) or number
            )
        ref = _map(destination.get("upstream"))
        name, ns = str(ref.get("name") or ""), str(ref.get("namespace") or namespace)
        cluster = upstream_cluster(name, ns)
        upstream = self.upstreams.get((ns, name))
        spec = spec_of(upstream) if upstream is not None else {}
        upstream_kube = spec.get("kube")
        if upstream is None or not isinstance(upstream_kube, Mapping):
            what = "not found" if upstream is None else "not a kube Upstream"
            self.report.problem(owner, f"Upstream {ns}.{name} {what}")
            return cluster  # no such cluster: Envoy answers 503
        service = str(upstream_kube.get("serviceName") or "")
        service_ns = str(upstream_kube.get("serviceNamespace") or ns)
        port = self.world.port(service_ns, service, upstream_kube.get("servicePort"))
        selector = {str(k): str(v) for k, v in (upstream_kube.get("selector") or {}).items()}
        options: Obj = {}
        balancer = spec.get("loadBalancerConfig")
        if isinstance(balancer, Mapping):
            chosen = next((_LB[k] for k in _LB if k in balancer), None)
            if chosen is not None:
                options["lb_policy"] = chosen
        return self.world.alias_cluster(
            cluster,
            service_ns,
            service,
            port or int(upstream_kube.get("servicePort") or 0),
            selector,
            options=options,
        )

    def _envoy_route(
        self,
        matcher: _Matcher,
        route: Mapping[str, Any],
        options: Mapping[str, Any],
        owner: tuple[ResourceKind, str, str],
        name: str,
    ) -> Obj:
        route_name = str(route.get("name") or name)
        direct = route.get("directResponseAction")
        if isinstance(direct, Mapping):
            response: Obj = {"status": int(direct.get("status") or 200)}
            if direct.get("body"):
                response["body"] = {"inline_string": str(direct["body"])}
            return {"name": route_name, "match": matcher.envoy(), "direct_response": response}
        action = route.get("routeAction")
        action = action if isinstance(action, Mapping) else {}
        backends: list[e.Backend] = []
        single = action.get("single")
        multi = action.get("multi")
        if isinstance(single, Mapping):
            backends = [e.Backend(self._cluster(single, owner[1], owner), 100)]
        elif isinstance(multi, Mapping):
            for entry in multi.get("destinations") or []:
                if isinstance(entry, Mapping) and isinstance(entry.get("destination"), Mapping):
                    cluster = self._cluster(entry["destination"], owner[1], owner)
                    backends.append(e.Backend(cluster, int(entry.get("weight") or 0)))
        if not backends or sum(b.weight for b in backends) <= 0:
            what = "no destination" if not backends else "destinations whose weights add up to 0"
            self.report.problem(owner, f"route {route_name} has {what}")
            return {"name": route_name, "match": matcher.envoy(), "direct_response": {"status": 503}}
        headers = options.get("headerManipulation")
        headers = headers if isinstance(headers, Mapping) else {}
        timeout = e.parse_duration_s(options.get("timeout"))
        host_rewrite = options.get("hostRewrite")
        return e.route(
            matcher.envoy(),
            e.route_action(
                backends,
                weight_header=self.world.weight_header,
                timeout=timeout,
                retry=_retry(options.get("retries")),
                prefix_rewrite=str(options["prefixRewrite"])
                if options.get("prefixRewrite") is not None
                else None,
                host_rewrite=str(host_rewrite) if host_rewrite else None,
            ),
            name=route_name,
            request_headers_to_add=_header_values(headers.get("requestHeadersToAdd")),
            request_headers_to_remove=[str(h) for h in headers.get("requestHeadersToRemove") or []],
            response_headers_to_add=_header_values(headers.get("responseHeadersToAdd")),
            response_headers_to_remove=[str(h) for h in headers.get("responseHeadersToRemove") or []],
            fault=_fault(options.get("faults")),
        )
