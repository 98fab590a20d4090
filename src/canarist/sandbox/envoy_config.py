"""Envoy configuration from Istio objects: a pure translation, no I/O.

``envoy_config(virtual_services, destination_rules, services, endpoints, ...)`` returns the listeners,
clusters and route configurations that make one Envoy behave like the Istio data plane for the objects in
the local control plane:

* one **cluster** per Service port, named like Istio's (``outbound|9898||podinfo.test.svc.cluster.local``),
  with static endpoints (the demo apps behind the Service) and the DestinationRule's load balancer and
  outlier detection; a DestinationRule subset gets its own cluster (``outbound|9898|v1|...``) whose endpoints
  are filtered by the subset labels;
* one **service listener** per Service port (what a sidecar's outbound listener for that Service's
  ClusterIP does): it follows the VirtualServices bound to the ``mesh`` gateway (no ``gateways`` or
  ``mesh`` among them) whose hosts name the Service, else it routes everything to the Service's cluster;
* one **gateway listener** (the ingress gateway) routing by ``Host``: the VirtualServices bound to a
  non-mesh gateway by their hosts, then every Service by its names (a convenience the real gateway lacks).

Supported in HTTP routes: ``match`` (uri exact/prefix/regex, headers and cookies exact/prefix/regex,
``withoutHeaders``, method, authority, queryParams), weighted ``route`` destinations (host, port, subset),
``mirror`` with ``mirrorPercentage``, ``retries``, ``timeout``, ``rewrite``, ``headers`` set/add/remove and
``fault`` (abort and delay). TCP routes (``tcp``) become a weighted ``tcp_proxy``. Not supported: delegation,
``sourceLabels``, TLS routes, CORS, redirects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GATEWAY_LISTENER",
    "Endpoint",
    "cluster_name",
    "envoy_config",
    "listener_key",
    "parse_duration_s",
]

Obj = dict[str, Any]

GATEWAY_LISTENER = "gateway"
_TYPE = "type.googleapis.com/"
HCM_TYPE = _TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY_TYPE = _TYPE + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
ROUTER_TYPE = _TYPE + "envoy.extensions.filters.http.router.v3.Router"
FAULT_TYPE = _TYPE + "envoy.extensions.filters.http.fault.v3.HTTPFault"
LISTENER_TYPE = _TYPE + "envoy.config.listener.v3.Listener"
CLUSTER_TYPE = _TYPE + "envoy.config.cluster.v3.Cluster"
ROUTE_TYPE = _TYPE + "envoy.config.route.v3.RouteConfiguration"
DOMAIN = "svc.cluster.local"
_LB = {
    "ROUND_ROBIN": "ROUND_ROBIN",
    "LEAST_CONN": "LEAST_REQUEST",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "RANDOM": "RANDOM",
    "PASSTHROUGH": "ROUND_ROBIN",
}


@dataclass(frozen=True)
class Endpoint:
    """One pod behind a Service: where it listens and the labels of its pod template."""

    host: str
    port: int
    labels: Mapping[str, str] = field(default_factory=dict)


def listener_key(namespace: str, service: str, port: int) -> str:
    """The key of a Service port's listener in the ``ports`` mapping."""
    return f"svc|{namespace}|{service}|{port}"


def cluster_name(namespace: str, service: str, port: int, subset: str = "") -> str:
    return f"outbound|{port}|{subset}|{service}.{namespace}.{DOMAIN}"


def parse_duration_s(value: Any) -> float | None:
    """Istio durations (``5s``, ``250ms``, ``1m``, ``1h``, ``1.5s``) in seconds; ``None`` if unparsable."""
    if value is None:
        return None
    text = str(value).strip()
    total = 0.0
    matched = False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text):
        matched = True
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return total if matched else None


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


# ------------------------------------------------------------------------------------------------ helpers


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _ns(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("namespace") or "default")


def _name(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _service_ports(service: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [p for p in _spec(service).get("ports") or [] if isinstance(p, Mapping) and p.get("port")]


def _sort_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    return (_ns(obj), _name(obj))


class _Services:
    """Name resolution: a host in a VirtualService to a (namespace, service)."""

    def __init__(self, services: Iterable[Mapping[str, Any]]) -> None:
        self.by_key = {(_ns(s), _name(s)): s for s in services}

    def resolve(self, host: str, namespace: str) -> tuple[str, str] | None:
        host = host.strip().lower()
        if host.endswith("." + DOMAIN):
            host = host[: -len(DOMAIN) - 1]
        if host.endswith(".svc"):
            host = host[:-4]
        parts = host.split(".")
        if len(parts) == 1:
            key = (namespace, parts[0])
        elif len(parts) == 2:
            key = (parts[1], parts[0])
        else:
            return None
        return key if key in self.by_key else None

    def port_of(self, key: tuple[str, str], number: int | None) -> int | None:
        ports = _service_ports(self.by_key[key])
        if number:
            return number
        return int(ports[0]["port"]) if ports else None


def _domains(namespace: str, name: str) -> list[str]:
    return [name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.{DOMAIN}"]


def _vs_domains(vs: Mapping[str, Any], services: _Services) -> list[str]:
    out: list[str] = []
    for host in _spec(vs).get("hosts") or []:
        resolved = services.resolve(str(host), _ns(vs))
        if resolved is not None:
            out.extend(_domains(resolved[0], resolved[1]))
        else:
            out.append(str(host).lower())
    return out


def _mesh_bound(vs: Mapping[str, Any]) -> bool:
    gateways = [str(g) for g in _spec(vs).get("gateways") or []]
    return not gateways or "mesh" in gateways


def _gateway_bound(vs: Mapping[str, Any]) -> bool:
    return any(str(g) != "mesh" for g in _spec(vs).get("gateways") or [])


# ------------------------------------------------------------------------------------------------ matches


def _string_match(spec: Any) -> Obj | None:
    if not isinstance(spec, Mapping):
        return None
    if "exact" in spec:
        return {"exact": str(spec["exact"])}
    if "prefix" in spec:
        return {"prefix": str(spec["prefix"])}
    if "regex" in spec:
        return {"safe_regex": {"regex": str(spec["regex"])}}
    return None


def _route_match(match: Mapping[str, Any] | None) -> Obj:
    out: Obj = {}
    uri = _string_match((match or {}).get("uri"))
    if uri is None:
        out["prefix"] = "/"
    elif "exact" in uri:
        out["path"] = uri["exact"]
    elif "prefix" in uri:
        out["prefix"] = uri["prefix"]
    else:
        out["safe_regex"] = uri["safe_regex"]
    if not match:
        return out
    if match.get("ignoreUriCase"):
        out["case_sensitive"] = False
    headers: list[Obj] = []
    for name, spec in sorted((match.get("headers") or {}).items()):
        string_match = _string_match(spec)
        if string_match is not None:
            headers.append({"name": str(name).lower(), "string_match": string_match})
        else:
            headers.append({"name": str(name).lower(), "present_match": True})
    for name, spec in sorted((match.get("withoutHeaders") or {}).items()):
        string_match = _string_match(spec)
        matcher: Obj = {"name": str(name).lower(), "invert_match": True}
        if string_match is not None:
            matcher["string_match"] = string_match
        else:
            matcher["present_match"] = True
        headers.append(matcher)
    for pseudo, key in ((":method", "method"), (":authority", "authority"), (":scheme", "scheme")):
        string_match = _string_match(match.get(key))
        if string_match is not None:
            headers.append({"name": pseudo, "string_match": string_match})
    if headers:
        out["headers"] = headers
    params: list[Obj] = []
    for name, spec in sorted((match.get("queryParams") or {}).items()):
        string_match = _string_match(spec)
        if string_match is not None:
            params.append({"name": str(name), "string_match": string_match})
    if params:
        out["query_parameters"] = params
    return out


# ------------------------------------------------------------------------------------------------ actions


def _destination_cluster(destination: Mapping[str, Any], namespace: str, services: _Services) -> str:
    host = str(destination.get("host") or "")
    port_spec = destination.get("port")
    number = int(port_spec.get("number") or 0) if isinstance(port_spec, Mapping) else 0
    subset = str(destination.get("subset") or "")
    resolved = services.resolve(host, namespace)
    if resolved is None:
        # An unknown host: a cluster that does not exist, so Envoy answers 503 like a mesh would.
        return f"outbound|{number or 0}|{subset}|{host}"
    port = services.port_of(resolved, number or None) or 0
    return cluster_name(resolved[0], resolved[1], port, subset)


def _weighted(route: Sequence[Any], namespace: str, services: _Services) -> list[tuple[str, int]]:
    destinations = [d for d in route if isinstance(d, Mapping) and isinstance(d.get("destination"), Mapping)]
    if len(destinations) == 1 and not destinations[0].get("weight"):
        return [(_destination_cluster(destinations[0]["destination"], namespace, services), 100)]
    out: list[tuple[str, int]] = []
    for d in destinations:
        out.append((_destination_cluster(d["destination"], namespace, services), int(d.get("weight") or 0)))
    return out


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
    if codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    policy: Obj = {"retry_on": ",".join(conditions), "num_retries": attempts}
    if codes:
        policy["retriable_status_codes"] = codes
    per_try = parse_duration_s(retries.get("perTryTimeout"))
    if per_try:
        policy["per_try_timeout"] = _duration(per_try)
    return policy


def _fraction(percentage: Any, default: float = 100.0) -> Obj:
    value = default
    if isinstance(percentage, Mapping) and percentage.get("value") is not None:
        value = float(percentage["value"])
    elif isinstance(percentage, int | float):
        value = float(percentage)
    value = min(max(value, 0.0), 100.0)
    return {"numerator": round(value * 10_000), "denominator": "MILLION"}


def _fault(fault: Mapping[str, Any]) -> Obj | None:
    out: Obj = {}
    abort = fault.get("abort")
    if isinstance(abort, Mapping) and abort.get("httpStatus"):
        out["abort"] = {
            "http_status": int(abort["httpStatus"]),
            "percentage": _fraction(abort.get("percentage")),
        }
    delay = fault.get("delay")
    if isinstance(delay, Mapping):
        fixed = parse_duration_s(delay.get("fixedDelay"))
        if fixed is not None:
            out["delay"] = {"fixed_delay": _duration(fixed), "percentage": _fraction(delay.get("percentage"))}
    return out or None


def _header_ops(spec: Any) -> tuple[list[Obj], list[str]]:
    add: list[Obj] = []
    remove: list[str] = []
    if not isinstance(spec, Mapping):
        return add, remove
    for name, value in sorted((spec.get("set") or {}).items()):
        add.append(
            {"header": {"key": str(name), "value": str(value)}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        )
    for name, value in sorted((spec.get("add") or {}).items()):
        add.append(
            {"header": {"key": str(name), "value": str(value)}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}
        )
    remove.extend(str(name) for name in spec.get("remove") or [])
    return add, remove


def _http_routes(vs: Mapping[str, Any], services: _Services, weight_header: str = "") -> list[Obj]:
    namespace = _ns(vs)
    out: list[Obj] = []
    for index, http in enumerate(_spec(vs).get("http") or []):
        if not isinstance(http, Mapping) or not http.get("route"):
            continue
        weighted = _weighted(http.get("route") or [], namespace, services)
        if not weighted:
            continue
        action: Obj = {}
        if len(weighted) == 1:
            action["cluster"] = weighted[0][0]
        else:
            action["weighted_clusters"] = {
                "clusters": [{"name": name, "weight": weight} for name, weight in weighted],
            }
            if weight_header:
                action["weighted_clusters"]["header_name"] = weight_header
        timeout = parse_duration_s(http.get("timeout"))
        action["timeout"] = _duration(timeout or 0.0)  # Istio: no route timeout unless one is set
        retries = http.get("retries")
        if isinstance(retries, Mapping):
            policy = _retry_policy(retries)
            if policy is not None:
                action["retry_policy"] = policy
        mirror = http.get("mirror")
        if isinstance(mirror, Mapping) and mirror.get("host"):
            percentage = http.get("mirrorPercentage", http.get("mirrorPercent"))
            action["request_mirror_policies"] = [
                {
                    "cluster": _destination_cluster(mirror, namespace, services),
                    "runtime_fraction": {"default_value": _fraction(percentage)},
                }
            ]
        rewrite = http.get("rewrite")
        if isinstance(rewrite, Mapping):
            if rewrite.get("uri"):
                action["prefix_rewrite"] = str(rewrite["uri"])
            if rewrite.get("authority"):
                action["host_rewrite_literal"] = str(rewrite["authority"])
        base: Obj = {"route": action}
        headers = http.get("headers")
        if isinstance(headers, Mapping):
            add, remove = _header_ops(headers.get("request"))
            if add:
                base["request_headers_to_add"] = add
            if remove:
                base["request_headers_to_remove"] = remove
            add, remove = _header_ops(headers.get("response"))
            if add:
                base["response_headers_to_add"] = add
            if remove:
                base["response_headers_to_remove"] = remove
        fault = http.get("fault")
        if isinstance(fault, Mapping):
            fault_config = _fault(fault)
            if fault_config is not None:
                base["typed_per_filter_config"] = {
                    "envoy.filters.http.fault": {"@type": FAULT_TYPE, **fault_config}
                }
        route_name = str(http.get("name") or f"{_name(vs)}.{namespace}.{index}")
        matches: list[Mapping[str, Any] | None] = [
            m for m in http.get("match") or [] if isinstance(m, Mapping)
        ]
        for match in matches or [None]:
            out.append({"name": route_name, "match": _route_match(match), **base})
    return out


def _default_route(namespace: str, name: str, port: int) -> Obj:
    return {
        "name": f"{name}.{namespace}.default",
        "match": {"prefix": "/"},
        "route": {"cluster": cluster_name(namespace, name, port), "timeout": "0s"},
    }


# ------------------------------------------------------------------------------------------------ objects


def _clusters(
    services: _Services,
    destination_rules: Sequence[Mapping[str, Any]],
    endpoints: Mapping[tuple[str, str], Sequence[Endpoint]],
) -> list[Obj]:
    rules: dict[tuple[str, str], Mapping[str, Any]] = {}
    for rule in sorted(destination_rules, key=_sort_key):
        resolved = services.resolve(str(_spec(rule).get("host") or ""), _ns(rule))
        if resolved is not None and resolved not in rules:
            rules[resolved] = rule
    out: list[Obj] = []
    for key in sorted(services.by_key):
        namespace, name = key
        service = services.by_key[key]
        rule_spec = _spec(rules[key]) if key in rules else {}
        subsets: list[tuple[str, Mapping[str, str], Mapping[str, Any]]] = [("", {}, {})]
        for subset in rule_spec.get("subsets") or []:
            if isinstance(subset, Mapping) and subset.get("name"):
                subsets.append(
                    (str(subset["name"]), subset.get("labels") or {}, subset.get("trafficPolicy") or {})
                )
        for port_spec in _service_ports(service):
            port = int(port_spec["port"])
            for subset_name, labels, subset_policy in subsets:
                policy = dict(rule_spec.get("trafficPolicy") or {})
                policy.update(subset_policy)
                members = [
                    e for e in endpoints.get(key, ()) if all(e.labels.get(k) == v for k, v in labels.items())
                ]
                out.append(_cluster(cluster_name(namespace, name, port, subset_name), members, policy))
    return out


def _cluster(name: str, members: Sequence[Endpoint], policy: Mapping[str, Any]) -> Obj:
    cluster: Obj = {
        "@type": CLUSTER_TYPE,
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": e.host, "port_value": e.port}}
                            }
                        }
                        for e in sorted(members, key=lambda e: (e.host, e.port))
                    ]
                }
            ],
        },
    }
    balancer = policy.get("loadBalancer")
    if isinstance(balancer, Mapping) and isinstance(balancer.get("simple"), str):
        cluster["lb_policy"] = _LB.get(balancer["simple"], "ROUND_ROBIN")
    outlier = policy.get("outlierDetection")
    if isinstance(outlier, Mapping):
        detection: Obj = {}
        errors = outlier.get("consecutive5xxErrors", outlier.get("consecutiveErrors"))
        if errors is not None:
            detection["consecutive_5xx"] = int(errors)
        interval = parse_duration_s(outlier.get("interval"))
        if interval:
            detection["interval"] = _duration(interval)
        ejection = parse_duration_s(outlier.get("baseEjectionTime"))
        if ejection:
            detection["base_ejection_time"] = _duration(ejection)
        if outlier.get("maxEjectionPercent") is not None:
            detection["max_ejection_percent"] = int(outlier["maxEjectionPercent"])
        if detection:
            cluster["outlier_detection"] = detection
    return cluster


def _hcm(stat_prefix: str, route_name: str, routes_dir: str, gateway: bool) -> Obj:
    config: Obj = {
        "@type": HCM_TYPE,
        "stat_prefix": stat_prefix,
        "strip_any_host_port": True,
        "rds": {
            "route_config_name": route_name,
            "config_source": {
                "path_config_source": {"path": f"{routes_dir}/{route_name}.json"},
                "resource_api_version": "V3",
            },
        },
        "http_filters": [
            {"name": "envoy.filters.http.fault", "typed_config": {"@type": FAULT_TYPE}},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
        ],
    }
    if gateway:
        config["use_remote_address"] = True
    return config


def _listener(name: str, port: int, filters: list[Obj]) -> Obj:
    return {
        "@type": LISTENER_TYPE,
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": filters}],
    }


def _tcp_proxy(vs: Mapping[str, Any], services: _Services, stat_prefix: str) -> Obj | None:
    for tcp in _spec(vs).get("tcp") or []:
        if not isinstance(tcp, Mapping):
            continue
        weighted = _weighted(tcp.get("route") or [], _ns(vs), services)
        if not weighted:
            continue
        config: Obj = {"@type": TCP_PROXY_TYPE, "stat_prefix": stat_prefix}
        if len(weighted) == 1:
            config["cluster"] = weighted[0][0]
        else:
            config["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in weighted]}
        return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}
    return None


def envoy_config(
    virtual_services: Iterable[Mapping[str, Any]],
    destination_rules: Iterable[Mapping[str, Any]],
    services: Iterable[Mapping[str, Any]],
    endpoints: Mapping[tuple[str, str], Sequence[Endpoint]],
    *,
    ports: Mapping[str, int] | None = None,
    routes_dir: str = "routes",
    weight_header: str = "",
) -> dict[str, Any]:
    """The Envoy resources for these objects.

    ``endpoints`` maps ``(namespace, service)`` to the pods behind it. ``ports`` maps listener keys
    (:data:`GATEWAY_LISTENER` and :func:`listener_key` of each Service port) to local ports; a listener
    without a port is left out. Returns ``{"listeners": [...], "clusters": [...], "routes": {name: rc}}``
    where each route configuration is meant for the file ``{routes_dir}/{name}.json`` that its listener's
    RDS ``path_config_source`` names. With ``weight_header``, a request carrying that header (an integer)
    has its weighted destination picked by that number instead of a random one (Envoy's
    ``weighted_clusters.header_name``), so a client sending 0, 1, 2... is split exactly by the weights.
    """
    ports = ports or {}
    vs_list = sorted(virtual_services, key=_sort_key)
    svc = _Services(services)
    clusters = _clusters(svc, sorted(destination_rules, key=_sort_key), endpoints)
    listeners: list[Obj] = []
    routes: dict[str, Obj] = {}

    # Service listeners: the sidecar's view of each Service port.
    for namespace, name in sorted(svc.by_key):
        for port_spec in _service_ports(svc.by_key[(namespace, name)]):
            port = int(port_spec["port"])
            key = listener_key(namespace, name, port)
            if key not in ports:
                continue
            bound = [
                vs
                for vs in vs_list
                if _mesh_bound(vs)
                and any(
                    svc.resolve(str(h), _ns(vs)) == (namespace, name) for h in _spec(vs).get("hosts") or []
                )
            ]
            stat = f"{name}.{namespace}.{port}"
            route_name = f"svc.{namespace}.{name}.{port}"
            tcp = _tcp_proxy(bound[0], svc, stat) if bound and not _spec(bound[0]).get("http") else None
            if tcp is not None or str(port_spec.get("name") or "").startswith("tcp"):
                filt = tcp or {
                    "name": "envoy.filters.network.tcp_proxy",
                    "typed_config": {
                        "@type": TCP_PROXY_TYPE,
                        "stat_prefix": stat,
                        "cluster": cluster_name(namespace, name, port),
                    },
                }
                listeners.append(_listener(key, ports[key], [filt]))
                continue
            http_routes = _http_routes(bound[0], svc, weight_header) if bound else []
            http_routes.append(_default_route(namespace, name, port))
            routes[route_name] = {
                "@type": ROUTE_TYPE,
                "name": route_name,
                "virtual_hosts": [{"name": route_name, "domains": ["*"], "routes": http_routes}],
            }
            filters = [
                {
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": _hcm(stat, route_name, routes_dir, gateway=False),
                }
            ]
            listeners.append(_listener(key, ports[key], filters))

    # The gateway listener: routes by Host.
    if GATEWAY_LISTENER in ports:
        claimed: set[str] = set()
        hosts: list[Obj] = []
        for vs in vs_list:
            if not _gateway_bound(vs):
                continue
            domains = [d for d in dict.fromkeys(_vs_domains(vs, svc)) if d not in claimed]
            http_routes = _http_routes(vs, svc, weight_header)
            if not domains or not http_routes:
                continue
            claimed.update(domains)
            hosts.append({"name": f"vs.{_ns(vs)}.{_name(vs)}", "domains": domains, "routes": http_routes})
        for namespace, name in sorted(svc.by_key):
            ports_of = _service_ports(svc.by_key[(namespace, name)])
            domains = [d for d in _domains(namespace, name) if d not in claimed]
            if not ports_of or not domains:
                continue
            claimed.update(domains)
            hosts.append(
                {
                    "name": f"svc.{namespace}.{name}",
                    "domains": domains,
                    "routes": [_default_route(namespace, name, int(ports_of[0]["port"]))],
                }
            )
        routes[GATEWAY_LISTENER] = {"@type": ROUTE_TYPE, "name": GATEWAY_LISTENER, "virtual_hosts": hosts}
        filters = [
            {
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": _hcm(GATEWAY_LISTENER, GATEWAY_LISTENER, routes_dir, gateway=True),
            }
        ]
        listeners.append(_listener(GATEWAY_LISTENER, ports[GATEWAY_LISTENER], filters))

    return {"listeners": listeners, "clusters": clusters, "routes": routes}
