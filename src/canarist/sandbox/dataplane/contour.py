"""The Contour translator: HTTPProxies (``projectcontour.io/v1``) as Contour programs its Envoy.

* A **root** HTTPProxy (one with ``spec.virtualhost.fqdn``) becomes the gateway virtual host
  ``contour.<ns>.<name>`` for its fqdn. Its ``routes`` and, recursively, the routes of the HTTPProxies it
  ``includes`` (``name``, ``namespace`` defaulting to the includer's) are flattened into it: an include's
  conditions come before the included routes' own (prefixes joined as paths, header and query conditions
  ANDed). An fqdn claimed by two roots is programmed for neither (both invalid), as Contour does.
* Routes are ordered most specific first, as Contour orders them: exact paths, then regexes, then prefixes by
  length, then by the number of header and query conditions; otherwise in declaration order.
* Conditions: ``prefix``, ``exact``, ``regex``; ``header`` with ``present``/``notpresent``, ``exact``/
  ``notexact``, ``contains``/``notcontains``, ``regex``, ``ignoreCase``, ``treatMissingAsEmpty``;
  ``queryParameter`` with ``exact``/``prefix``/``suffix``/``contains``/``regex``/``present``, ``ignoreCase``.
* Services: weighted (a service without a weight gets 0; when no service has one, traffic is split evenly),
  each a cluster named as Contour names it in Envoy's stats, ``<namespace>_<service>_<port>``
  (`World.alias_cluster`), so Envoy's ``envoy_cluster_upstream_rq*`` series answer Contour's builtin queries.
  A service's ``requestHeadersPolicy`` (``set``, ``remove``) applies to the requests sent to it; ``mirror:
  true`` mirrors (its ``weight`` as the percentage, 100 without one). A service that does not exist, or a port
  it does not declare, makes the route answer 503 and the HTTPProxy invalid.
* Route policies: ``timeoutPolicy`` (``response``: Envoy's 15 s default unless set, ``infinity`` for none;
  ``idle``), ``retryPolicy`` (``count``, default 1; ``retryOn``, default ``5xx``; ``perTryTimeout``;
  ``retriableStatusCodes``), ``requestHeadersPolicy`` / ``responseHeadersPolicy`` (``set``, ``remove``; setting
  ``Host`` on requests rewrites the host), ``pathRewritePolicy.replacePrefix``.
* Ingress class: the sandbox's Contour runs without ``--ingress-class-name``, so it serves HTTPProxies with no
  class or the class ``contour`` (``spec.ingressClassName`` or the ``projectcontour.io/ingress.class`` /
  ``kubernetes.io/ingress.class`` annotation); others are ignored and get no status.
* Status, as Contour writes it: ``valid`` / ``Valid HTTPProxy`` for roots and for HTTPProxies reached from a
  programmed root; ``invalid`` with the first error (include not found, include cycle, a root included,
  duplicate fqdn, unresolved service) and an ``errors`` list in the ``Valid`` condition; ``orphaned`` for one
  no root includes.

Not translated: TLS, TCP proxying, websockets, CORS, rate limits, auth, health checks, load-balancer
strategies, redirects and direct responses, cookie rewrites.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canarist.kube.resources import ResourceKind
from canarist.routers.contour import HTTP_PROXY
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import (
    Obj,
    Program,
    StatusWrite,
    World,
    condition,
    meta,
    name_of,
    namespace_of,
    sort_key,
    spec_of,
)

__all__ = ["ORPHANED", "VALID", "ContourTranslator", "contour_cluster_name", "join_prefixes"]

VALID = "Valid HTTPProxy"
ORPHANED = "this HTTPProxy is not part of a delegation chain from a root HTTPProxy"
_CLASSES = ("", "contour")
_CLASS_ANNOTATIONS = ("projectcontour.io/ingress.class", "kubernetes.io/ingress.class")

_ProxyKey = tuple[str, str]
_HEADER_OPERATORS: tuple[tuple[str, e.MatchKind, bool], ...] = (
    ("exact", "exact", False),
    ("notexact", "exact", True),
    ("contains", "contains", False),
    ("notcontains", "contains", True),
    ("regex", "regex", False),
)
_QUERY_OPERATORS: tuple[e.MatchKind, ...] = ("exact", "prefix", "suffix", "contains", "regex")


def contour_cluster_name(namespace: str, service: str, port: int) -> str:
    """The name Contour's clusters carry in Envoy's stats: ``test_podinfo-canary_9898``."""
    return f"{namespace}_{service}_{port}"


def join_prefixes(prefixes: Sequence[str]) -> str:
    """Prefix conditions of an include chain joined as a path, without a trailing slash: ``["/", "/api"]`` →
    ``/api``, ``["/blog", "/"]`` → ``/blog``, ``[]`` → ``/``."""
    parts = [segment for prefix in prefixes for segment in prefix.split("/") if segment]
    return "/" + "/".join(parts)


@dataclass
class _Flat:
    """One route of a root's virtual host: its conditions (the include chain's, then its own) and where it
    was declared."""

    route: Mapping[str, Any]
    proxy: Mapping[str, Any]
    index: int
    prefixes: list[str] = field(default_factory=list)
    exact: str | None = None
    regex: str | None = None
    headers: list[Obj] = field(default_factory=list)
    query: list[Obj] = field(default_factory=list)


@dataclass
class _Errors:
    by_proxy: dict[_ProxyKey, list[tuple[str, str, str]]] = field(default_factory=dict)

    def add(self, key: _ProxyKey, type_: str, reason: str, message: str) -> None:
        found = self.by_proxy.setdefault(key, [])
        if (type_, reason, message) not in found:
            found.append((type_, reason, message))


class ContourTranslator:
    name = "contour"
    kinds: tuple[ResourceKind, ...] = (HTTP_PROXY,)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        proxies: dict[_ProxyKey, Obj] = {
            sort_key(p): p for p in sorted(objects.get(HTTP_PROXY, ()), key=sort_key) if _served(p)
        }
        errors = _Errors()
        reached: set[_ProxyKey] = set()
        program = Program()
        roots = [k for k, p in proxies.items() if _fqdn(p)]
        by_fqdn: dict[str, list[_ProxyKey]] = {}
        for key in roots:
            by_fqdn.setdefault(_fqdn(proxies[key]), []).append(key)
        for key in roots:
            proxy = proxies[key]
            fqdn = _fqdn(proxy)
            if len(by_fqdn[fqdn]) > 1:
                others = ", ".join(f"{ns}/{n}" for ns, n in by_fqdn[fqdn])
                errors.add(
                    key, "Valid", "DuplicateVhost", f'fqdn "{fqdn}" is used in multiple HTTPProxies: {others}'
                )
                continue
            reached.add(key)
            flat: list[_Flat] = []
            _flatten(proxy, _Flat({}, proxy, -1), [key], proxies, errors, reached, flat)
            built = [_envoy_route(f, world, errors) for f in flat]  # errors in declaration order
            routes = [built[i] for i in _ordered(flat)]
            program.gateway_hosts.append(
                {"name": f"contour.{key[0]}.{key[1]}", "domains": [fqdn], "routes": routes}
            )
        for key, proxy in proxies.items():
            program.statuses.append(_status(key, proxy, errors, orphaned=key not in reached))
        return program


# ------------------------------------------------------------------------------------------------ proxies


def _served(proxy: Mapping[str, Any]) -> bool:
    annotations = meta(proxy).get("annotations") or {}
    names = [str(spec_of(proxy).get("ingressClassName") or "")]
    names += [str(annotations.get(a) or "") for a in _CLASS_ANNOTATIONS if isinstance(annotations, Mapping)]
    return all(name in _CLASSES for name in names)


def _fqdn(proxy: Mapping[str, Any]) -> str:
    virtualhost = spec_of(proxy).get("virtualhost")
    return str(virtualhost.get("fqdn") or "").lower() if isinstance(virtualhost, Mapping) else ""


def _with_conditions(base: _Flat, conditions: Any) -> _Flat:
    out = _Flat(
        base.route,
        base.proxy,
        base.index,
        list(base.prefixes),
        base.exact,
        base.regex,
        list(base.headers),
        list(base.query),
    )
    for cond in conditions or []:
        if not isinstance(cond, Mapping):
            continue
        if cond.get("prefix") is not None:
            out.prefixes.append(str(cond["prefix"]))
        if cond.get("exact") is not None:
            out.exact = str(cond["exact"])
        if cond.get("regex") is not None:
            out.regex = str(cond["regex"])
        header = cond.get("header")
        if isinstance(header, Mapping) and header.get("name"):
            out.headers.append(_header_match(header))
        query = cond.get("queryParameter")
        if isinstance(query, Mapping) and query.get("name"):
            out.query.append(_query_match(query))
    return out


def _flatten(
    proxy: Mapping[str, Any],
    chain: _Flat,
    path: list[_ProxyKey],
    proxies: Mapping[_ProxyKey, Obj],
    errors: _Errors,
    reached: set[_ProxyKey],
    out: list[_Flat],
) -> None:
    """The routes of ``proxy`` under the include chain's conditions, then those of the proxies it includes."""
    key = sort_key(proxy)
    spec = spec_of(proxy)
    for index, route in enumerate(spec.get("routes") or []):
        if isinstance(route, Mapping):
            base = _Flat(
                route, proxy, index, chain.prefixes, chain.exact, chain.regex, chain.headers, chain.query
            )
            out.append(_with_conditions(base, route.get("conditions")))
    for include in spec.get("includes") or []:
        if not isinstance(include, Mapping) or not include.get("name"):
            continue
        target = (str(include.get("namespace") or key[0]), str(include["name"]))
        included = proxies.get(target)
        if included is None:
            errors.add(key, "IncludeError", "IncludeNotFound", f"include {target[0]}/{target[1]} not found")
            continue
        if target in path:
            cycle = " -> ".join(f"{ns}/{n}" for ns, n in [*path, target])
            errors.add(
                key, "IncludeError", "IncludeCreatesCycle", f"include creates an include cycle: {cycle}"
            )
            continue
        if _fqdn(included):
            errors.add(
                key,
                "IncludeError",
                "RootIncludesRoot",
                "root httpproxy cannot include another root httpproxy",
            )
            continue
        reached.add(target)
        _flatten(
            included,
            _with_conditions(chain, include.get("conditions")),
            [*path, target],
            proxies,
            errors,
            reached,
            out,
        )


def _ordered(flat: list[_Flat]) -> list[int]:
    """The indexes of ``flat`` most specific route first."""

    def rank(item: tuple[int, _Flat]) -> tuple[int, int, int, int]:
        index, f = item
        if f.exact is not None:
            kind, length = 0, len(join_prefixes(f.prefixes).rstrip("/") + f.exact)
        elif f.regex is not None:
            kind, length = 1, 0
        else:
            kind, length = 2, len(join_prefixes(f.prefixes))
        return (kind, -length, -(len(f.headers) + len(f.query)), index)

    return [index for index, _ in sorted(enumerate(flat), key=rank)]


# ------------------------------------------------------------------------------------------------ matches


def _header_match(header: Mapping[str, Any]) -> Obj:
    name = str(header["name"])
    match: Obj
    if header.get("present"):
        match = e.header_match(name)
    elif header.get("notpresent"):
        match = e.header_match(name, invert=True)
    else:
        match = e.header_match(name)  # a condition without an operator: the header is there
        for key, kind, invert in _HEADER_OPERATORS:
            if header.get(key) is not None:
                match = e.header_match(name, kind, str(header[key]), invert=invert)
                if header.get("ignoreCase") and kind != "regex":
                    match["string_match"]["ignore_case"] = True
                break
    if header.get("treatMissingAsEmpty"):
        match["treat_missing_header_as_empty"] = True
    return match


def _query_match(query: Mapping[str, Any]) -> Obj:
    name = str(query["name"])
    for key in _QUERY_OPERATORS:
        if query.get(key) is not None:
            match = e.query_match(name, key, str(query[key]))
            if query.get("ignoreCase") and key != "regex":
                match["string_match"]["ignore_case"] = True
            return match
    return e.query_match(name)


def _route_match(f: _Flat) -> Obj:
    prefix = join_prefixes(f.prefixes)
    if f.exact is not None:
        path = e.path_match(
            "exact", prefix.rstrip("/") + (f.exact if f.exact.startswith("/") else "/" + f.exact)
        )
    elif f.regex is not None:
        path = e.path_match("regex", f.regex)
    else:
        path = e.path_match("prefix", prefix)
    return e.route_match(path, headers=f.headers, query=f.query)


# ------------------------------------------------------------------------------------------------ actions


def _headers_policy(policy: Any) -> tuple[list[Obj], list[str], str | None]:
    """``set`` / ``remove`` of a headers policy; a ``Host`` in ``set`` comes back as the host rewrite."""
    if not isinstance(policy, Mapping):
        return [], [], None
    add: list[Obj] = []
    host: str | None = None
    for item in policy.get("set") or []:
        if isinstance(item, Mapping) and item.get("name"):
            if str(item["name"]).lower() == "host":
                host = str(item.get("value") or "")
            else:
                add.append(e.header_set(str(item["name"]), str(item.get("value") or "")))
    return add, [str(name) for name in policy.get("remove") or []], host


def _timeout(value: Any) -> float | None:
    if value is None:
        return None
    if str(value).strip() in ("infinity", "infinite"):
        return 0.0
    return e.parse_duration_s(value)


def _retry(policy: Any) -> Obj | None:
    if not isinstance(policy, Mapping):
        return None
    count = int(policy.get("count") or 1)
    retry_on = [str(r) for r in policy.get("retryOn") or []] or ["5xx"]
    return e.retry_policy(
        retry_on,
        count,
        per_try_timeout=e.parse_duration_s(policy.get("perTryTimeout")),
        retriable_status_codes=[int(c) for c in policy.get("retriableStatusCodes") or []],
    )


def _prefix_rewrite(route: Mapping[str, Any], prefix: str) -> str | None:
    policy = route.get("pathRewritePolicy")
    entries = policy.get("replacePrefix") if isinstance(policy, Mapping) else None
    fallback: str | None = None
    for entry in entries or []:
        if not isinstance(entry, Mapping) or entry.get("replacement") is None:
            continue
        if entry.get("prefix") is None:
            fallback = fallback if fallback is not None else str(entry["replacement"])
        elif str(entry["prefix"]).rstrip("/") == prefix.rstrip("/"):
            return str(entry["replacement"])
    return fallback


def _envoy_route(f: _Flat, world: World, errors: _Errors) -> Obj:
    route, namespace = f.route, namespace_of(f.proxy)
    name = f"contour.{namespace}.{name_of(f.proxy)}.{f.index}"
    match = _route_match(f)
    backends: list[tuple[Mapping[str, Any], str]] = []
    mirrors: list[Obj] = []
    unresolved = False
    for service in route.get("services") or []:
        if not isinstance(service, Mapping) or not service.get("name"):
            continue
        svc, port = str(service["name"]), int(service.get("port") or 0)
        if world.service(namespace, svc) is None or port not in world.ports(namespace, svc):
            problem = "not found" if world.service(namespace, svc) is None else f"port {port} not defined"
            errors.add(
                sort_key(f.proxy),
                "ServiceError",
                "ServiceUnresolvedReference",
                f'Spec.Routes unresolved service reference: service "{namespace}/{svc}" {problem}',
            )
            unresolved = True
            continue
        cluster = world.alias_cluster(contour_cluster_name(namespace, svc, port), namespace, svc, port)
        if service.get("mirror"):
            mirrors.append(e.mirror_policy(cluster, float(service.get("weight") or 100)))
        else:
            backends.append((service, cluster))
    if unresolved or not backends:
        return {"name": name, "match": match, "direct_response": {"status": 503}}
    weights = [int(s.get("weight") or 0) for s, _ in backends]
    if sum(weights) <= 0:
        weights = [1] * len(backends)  # no weights: an even split
    clusters: list[e.Backend] = []
    for (service, cluster), weight in zip(backends, weights, strict=True):
        add, remove, _ = _headers_policy(service.get("requestHeadersPolicy"))
        clusters.append(e.Backend(cluster, weight, tuple(add), tuple(remove)))
    request_add, request_remove, host = _headers_policy(route.get("requestHeadersPolicy"))
    response_add, response_remove, _ = _headers_policy(route.get("responseHeadersPolicy"))
    timeouts = route.get("timeoutPolicy")
    timeouts = timeouts if isinstance(timeouts, Mapping) else {}
    action = e.route_action(
        clusters,
        weight_header=world.weight_header,
        timeout=_timeout(timeouts.get("response")),
        retry=_retry(route.get("retryPolicy")),
        mirrors=mirrors,
        prefix_rewrite=_prefix_rewrite(route, join_prefixes(f.prefixes)),
        host_rewrite=host or None,
    )
    idle = _timeout(timeouts.get("idle"))
    if idle is not None:
        action["idle_timeout"] = e.duration(idle)
    return e.route(
        match,
        action,
        name=name,
        request_headers_to_add=request_add,
        request_headers_to_remove=request_remove,
        response_headers_to_add=response_add,
        response_headers_to_remove=response_remove,
    )


# ------------------------------------------------------------------------------------------------ status


def _status(key: _ProxyKey, proxy: Mapping[str, Any], errors: _Errors, *, orphaned: bool) -> StatusWrite:
    generation = int(meta(proxy).get("generation") or 0) or None
    status = proxy.get("status")
    previous = (status.get("conditions") if isinstance(status, Mapping) else None) or []
    found = errors.by_proxy.get(key, [])
    if found:
        current, description = "invalid", found[0][2]
        valid = condition(
            "Valid",
            False,
            "ErrorPresent",
            "At least one error present, see Errors for details",
            generation=generation,
            previous=previous,
        )
        valid["errors"] = [{"type": t, "reason": r, "message": m} for t, r, m in found]
    elif orphaned:
        current, description = "orphaned", ORPHANED
        valid = condition("Valid", False, "Orphaned", ORPHANED, generation=generation, previous=previous)
    else:
        current, description = "valid", VALID
        valid = condition("Valid", True, "Valid", VALID, generation=generation, previous=previous)
    return StatusWrite(
        HTTP_PROXY,
        key[0],
        key[1],
        {"currentStatus": current, "description": description, "conditions": [valid]},
    )
