"""The Istio translator: VirtualServices and DestinationRules as Istio's sidecars and gateway apply them.

* A VirtualService bound to the ``mesh`` gateway (no ``gateways``, or ``mesh`` among them) programs the
  listeners of the Services its hosts name (the first such VirtualService per Service, by namespace/name): its
  ``http`` routes go before the Service's default route; a VirtualService with only ``tcp`` routes makes the
  listener a weighted ``tcp_proxy``.
* A VirtualService bound to another gateway becomes a gateway virtual host ``vs.<ns>.<name>`` for its hosts
  (short Service names expanded to the Service's DNS names).
* A DestinationRule (the first per Service host) sets the load balancer and outlier detection of the Service's
  clusters, and each subset becomes a cluster ``outbound|port|subset|fqdn`` over the pods with the subset's
  labels.

Supported in HTTP routes: ``match`` (uri exact/prefix/regex, headers and cookies exact/prefix/regex,
``withoutHeaders``, method, authority, scheme, queryParams, ``ignoreUriCase``), weighted ``route``
destinations (host, port, subset), ``mirror`` with ``mirrorPercentage``, ``retries``, ``timeout`` (none unless
set), ``rewrite``, ``headers`` set/add/remove and ``fault`` (abort and delay). Not supported: delegation,
``sourceLabels``, TLS routes, CORS, redirects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from canarist.kube.resources import DESTINATION_RULE, VIRTUAL_SERVICE, ResourceKind
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj, Program, World, name_of, namespace_of, sort_key, spec_of

__all__ = ["IstioTranslator"]

_LB = {
    "ROUND_ROBIN": "ROUND_ROBIN",
    "LEAST_CONN": "LEAST_REQUEST",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "RANDOM": "RANDOM",
    "PASSTHROUGH": "ROUND_ROBIN",
}


class IstioTranslator:
    name = "istio"
    kinds: tuple[ResourceKind, ...] = (VIRTUAL_SERVICE, DESTINATION_RULE)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        virtual_services = sorted(objects.get(VIRTUAL_SERVICE, ()), key=sort_key)
        _declare_clusters(sorted(objects.get(DESTINATION_RULE, ()), key=sort_key), world)
        program = Program()
        for namespace, name in sorted(world.services):
            bound = next(
                (
                    vs
                    for vs in virtual_services
                    if _mesh_bound(vs)
                    and any(
                        world.resolve(str(h), namespace_of(vs)) == (namespace, name)
                        for h in spec_of(vs).get("hosts") or []
                    )
                ),
                None,
            )
            if bound is None:
                continue
            for port in world.ports(namespace, name):
                key = (namespace, name, port)
                if not spec_of(bound).get("http"):
                    tcp = _tcp_proxy(bound, world, f"{name}.{namespace}.{port}")
                    if tcp is not None:
                        program.service_tcp[key] = tcp
                        continue
                routes = _http_routes(bound, world)
                if routes:
                    program.service_routes[key] = routes
        for vs in virtual_services:
            if not _gateway_bound(vs):
                continue
            program.gateway_hosts.append(
                {
                    "name": f"vs.{namespace_of(vs)}.{name_of(vs)}",
                    "domains": list(dict.fromkeys(_vs_domains(vs, world))),
                    "routes": _http_routes(vs, world),
                }
            )
        return program


# ------------------------------------------------------------------------------------------------ binding


def _vs_domains(vs: Mapping[str, Any], world: World) -> list[str]:
    out: list[str] = []
    for host in spec_of(vs).get("hosts") or []:
        resolved = world.resolve(str(host), namespace_of(vs))
        if resolved is not None:
            out.extend(world.domains(*resolved))
        else:
            out.append(str(host).lower())
    return out


def _mesh_bound(vs: Mapping[str, Any]) -> bool:
    gateways = [str(g) for g in spec_of(vs).get("gateways") or []]
    return not gateways or "mesh" in gateways


def _gateway_bound(vs: Mapping[str, Any]) -> bool:
    return any(str(g) != "mesh" for g in spec_of(vs).get("gateways") or [])


# ------------------------------------------------------------------------------------------------ matches


_Kind = Literal["exact", "prefix", "regex"]
_KINDS: tuple[_Kind, ...] = ("exact", "prefix", "regex")


def _istio_kind(spec: Any) -> tuple[_Kind, str] | None:
    """An Istio ``StringMatch`` (``{exact|prefix|regex: value}``) as (kind, value)."""
    if isinstance(spec, Mapping):
        for kind in _KINDS:
            if kind in spec:
                return kind, str(spec[kind])
    return None


def _route_match(match: Mapping[str, Any] | None) -> Obj:
    uri = _istio_kind((match or {}).get("uri"))
    path = e.path_match(uri[0], uri[1]) if uri is not None else None
    if not match:
        return e.route_match(path)
    headers: list[Obj] = []
    for name, spec in sorted((match.get("headers") or {}).items()):
        kind = _istio_kind(spec)
        headers.append(e.header_match(str(name), *kind) if kind else e.header_match(str(name)))
    for name, spec in sorted((match.get("withoutHeaders") or {}).items()):
        kind = _istio_kind(spec)
        headers.append(
            e.header_match(str(name), *kind, invert=True) if kind else e.header_match(str(name), invert=True)
        )
    for pseudo, key in ((":method", "method"), (":authority", "authority"), (":scheme", "scheme")):
        kind = _istio_kind(match.get(key))
        if kind is not None:
            headers.append(e.header_match(pseudo, *kind))
    params: list[Obj] = []
    for name, spec in sorted((match.get("queryParams") or {}).items()):
        kind = _istio_kind(spec)
        if kind is not None:
            params.append(e.query_match(str(name), *kind))
    return e.route_match(path, headers=headers, query=params, case_sensitive=not match.get("ignoreUriCase"))


# ------------------------------------------------------------------------------------------------ actions


def _destination_cluster(destination: Mapping[str, Any], namespace: str, world: World) -> str:
    host = str(destination.get("host") or "")
    port_spec = destination.get("port")
    number = int(port_spec.get("number") or 0) if isinstance(port_spec, Mapping) else 0
    subset = str(destination.get("subset") or "")
    resolved = world.resolve(host, namespace)
    if resolved is None:
        # An unknown host: a cluster that does not exist, so Envoy answers 503 like a mesh would.
        return f"outbound|{number or 0}|{subset}|{host}"
    port = world.port(resolved[0], resolved[1], number or None) or 0
    return world.service_cluster(resolved[0], resolved[1], port, subset)


def _backends(route: Sequence[Any], namespace: str, world: World) -> list[e.Backend]:
    destinations = [d for d in route if isinstance(d, Mapping) and isinstance(d.get("destination"), Mapping)]
    if len(destinations) == 1 and not destinations[0].get("weight"):
        return [e.Backend(_destination_cluster(destinations[0]["destination"], namespace, world), 100)]
    return [
        e.Backend(_destination_cluster(d["destination"], namespace, world), int(d.get("weight") or 0))
        for d in destinations
    ]


def _retry_policy(retries: Mapping[str, Any]) -> Obj | None:
    attempts = int(retries.get("attempts") or 0)
    if attempts <= 0:
        return None
    conditions: list[str] = []
    codes: list[int] = []
    for part in str(retries.get("retryOn") or "connect-failure,refused-stream,5xx").split(","):
        part = part.strip()
        if part.isdigit():
            codes.append(int(part))
        elif part:
            conditions.append(part)
    return e.retry_policy(
        conditions,
        attempts,
        per_try_timeout=e.parse_duration_s(retries.get("perTryTimeout")),
        retriable_status_codes=codes,
    )


def _percent(percentage: Any, default: float = 100.0) -> float:
    if isinstance(percentage, Mapping) and percentage.get("value") is not None:
        return float(percentage["value"])
    if isinstance(percentage, int | float):
        return float(percentage)
    return default


def _fault(fault: Mapping[str, Any]) -> Obj | None:
    abort = fault.get("abort")
    delay = fault.get("delay")
    abort_status = (
        int(abort["httpStatus"]) if isinstance(abort, Mapping) and abort.get("httpStatus") else None
    )
    delay_s = e.parse_duration_s(delay.get("fixedDelay")) if isinstance(delay, Mapping) else None
    return e.fault_config(
        abort_status=abort_status,
        abort_percent=_percent(abort.get("percentage")) if isinstance(abort, Mapping) else 100.0,
        delay_s=delay_s,
        delay_percent=_percent(delay.get("percentage")) if isinstance(delay, Mapping) else 100.0,
    )


def _header_ops(spec: Any) -> tuple[list[Obj], list[str]]:
    if not isinstance(spec, Mapping):
        return [], []
    add = [e.header_set(str(k), str(v)) for k, v in sorted((spec.get("set") or {}).items())]
    add += [e.header_add(str(k), str(v)) for k, v in sorted((spec.get("add") or {}).items())]
    return add, [str(name) for name in spec.get("remove") or []]


def _http_routes(vs: Mapping[str, Any], world: World) -> list[Obj]:
    namespace = namespace_of(vs)
    out: list[Obj] = []
    for index, http in enumerate(spec_of(vs).get("http") or []):
        if not isinstance(http, Mapping) or not http.get("route"):
            continue
        backends = _backends(http.get("route") or [], namespace, world)
        if not backends:
            continue
        retries = http.get("retries")
        mirror = http.get("mirror")
        mirrors: list[Obj] = []
        if isinstance(mirror, Mapping) and mirror.get("host"):
            percentage = http.get("mirrorPercentage", http.get("mirrorPercent"))
            mirrors.append(
                e.mirror_policy(_destination_cluster(mirror, namespace, world), _percent(percentage))
            )
        rewrite = http.get("rewrite")
        rewrite = rewrite if isinstance(rewrite, Mapping) else {}
        action = e.route_action(
            backends,
            weight_header=world.weight_header,
            timeout=e.parse_duration_s(http.get("timeout")) or 0.0,  # Istio: no route timeout unless set
            retry=_retry_policy(retries) if isinstance(retries, Mapping) else None,
            mirrors=mirrors,
            prefix_rewrite=str(rewrite["uri"]) if rewrite.get("uri") else None,
            host_rewrite=str(rewrite["authority"]) if rewrite.get("authority") else None,
        )
        headers = http.get("headers")
        headers = headers if isinstance(headers, Mapping) else {}
        request_add, request_remove = _header_ops(headers.get("request"))
        response_add, response_remove = _header_ops(headers.get("response"))
        fault = http.get("fault")
        route_name = str(http.get("name") or f"{name_of(vs)}.{namespace}.{index}")
        matches: list[Mapping[str, Any] | None] = [
            m for m in http.get("match") or [] if isinstance(m, Mapping)
        ]
        for match in matches or [None]:
            out.append(
                e.route(
                    _route_match(match),
                    action,
                    name=route_name,
                    request_headers_to_add=request_add,
                    request_headers_to_remove=request_remove,
                    response_headers_to_add=response_add,
                    response_headers_to_remove=response_remove,
                    fault=_fault(fault) if isinstance(fault, Mapping) else None,
                )
            )
    return out


def _tcp_proxy(vs: Mapping[str, Any], world: World, stat_prefix: str) -> Obj | None:
    for tcp in spec_of(vs).get("tcp") or []:
        if not isinstance(tcp, Mapping):
            continue
        backends = _backends(tcp.get("route") or [], namespace_of(vs), world)
        if backends:
            return e.tcp_proxy(stat_prefix, backends)
    return None


# ------------------------------------------------------------------------------------------------ clusters


def _declare_clusters(rules: Sequence[Mapping[str, Any]], world: World) -> None:
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        resolved = world.resolve(str(spec_of(rule).get("host") or ""), namespace_of(rule))
        if resolved is None or resolved in seen:
            continue
        seen.add(resolved)
        namespace, name = resolved
        rule_spec = spec_of(rule)
        base_policy = rule_spec.get("trafficPolicy") or {}
        for port in world.ports(namespace, name):
            world.alias_cluster(
                world.service_cluster(namespace, name, port),
                namespace,
                name,
                port,
                options=_options(base_policy),
            )
            for subset in rule_spec.get("subsets") or []:
                if not isinstance(subset, Mapping) or not subset.get("name"):
                    continue
                policy = dict(base_policy)
                policy.update(subset.get("trafficPolicy") or {})
                world.alias_cluster(
                    world.service_cluster(namespace, name, port, str(subset["name"])),
                    namespace,
                    name,
                    port,
                    {str(k): str(v) for k, v in (subset.get("labels") or {}).items()},
                    options=_options(policy),
                )


def _options(policy: Mapping[str, Any]) -> Obj:
    """Envoy ``Cluster`` fields for an Istio ``trafficPolicy`` (load balancer, outlier detection)."""
    out: Obj = {}
    balancer = policy.get("loadBalancer")
    if isinstance(balancer, Mapping) and isinstance(balancer.get("simple"), str):
        out["lb_policy"] = _LB.get(balancer["simple"], "ROUND_ROBIN")
    outlier = policy.get("outlierDetection")
    if isinstance(outlier, Mapping):
        detection: Obj = {}
        errors = outlier.get("consecutive5xxErrors", outlier.get("consecutiveErrors"))
        if errors is not None:
            detection["consecutive_5xx"] = int(errors)
        interval = e.parse_duration_s(outlier.get("interval"))
        if interval:
            detection["interval"] = e.duration(interval)
        ejection = e.parse_duration_s(outlier.get("baseEjectionTime"))
        if ejection:
            detection["base_ejection_time"] = e.duration(ejection)
        if outlier.get("maxEjectionPercent") is not None:
            detection["max_ejection_percent"] = int(outlier["maxEjectionPercent"])
        if detection:
            out["outlier_detection"] = detection
    return out
