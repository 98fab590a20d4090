"""The Envoy configuration of the sandbox: every data-plane translator's program, rendered. Pure, no I/O.

``envoy_config(objects, services, endpoints, ports=…)`` runs the translators of
:mod:`canarist.sandbox.dataplane` (Istio, ...) over the watched objects and merges what they produce into the
listeners, clusters and route configurations of one Envoy:

* one **cluster** per Service port, named like Istio's (``outbound|9898||podinfo.test.svc.cluster.local``),
  with static endpoints (the pods behind the Service); then every cluster a translator declared
  (`World.alias_cluster`: DestinationRule subsets, Contour's ``test_podinfo-canary_9898``...) over its
  Service's endpoints, filtered by pod labels. A declaration under a default cluster's name sets that
  cluster's options (load balancer, outlier detection);
* one **service listener** per Service port (what a sidecar's outbound listener for that Service's
  ClusterIP does): the translators' ``service_routes`` for that port, in translator order, then the
  default route to the Service's cluster; or a translator's ``service_tcp`` filter; a port named ``tcp…``
  without one is a plain ``tcp_proxy``;
* one **gateway listener** (the ingress gateway) routing by ``Host``: the translators' ``gateway_hosts`` (a
  domain belongs to the first host claiming it), then one host per Service for its DNS names with the same
  routes as the Service's listener for its first port (a meshed ingress: a TrafficSplit or an App Mesh
  router also splits traffic entering by Service name).

The statuses the translators want written come back under ``"statuses"``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from canarist.kube.resources import ResourceKind
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane.base import (
    ClusterDecl,
    Endpoint,
    Obj,
    PortKey,
    Program,
    ServiceKey,
    StatusWrite,
    Translator,
    World,
    service_cluster_name,
)
from canarist.sandbox.dataplane.envoy import (
    CLUSTER_TYPE,
    FAULT_FILTER,
    FAULT_TYPE,
    HCM_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    ROUTER_TYPE,
    Backend,
    parse_duration_s,
    tcp_proxy,
)

__all__ = [
    "GATEWAY_LISTENER",
    "Endpoint",
    "ListenAddress",
    "cluster_name",
    "envoy_config",
    "listener_key",
    "parse_duration_s",
    "run_translators",
]

log = logging.getLogger("canarist.sandbox")

GATEWAY_LISTENER = "gateway"

cluster_name = service_cluster_name  # the Service port's default cluster


def listener_key(namespace: str, service: str, port: int) -> str:
    """The key of a Service port's listener in the ``ports`` mapping."""
    return f"svc|{namespace}|{service}|{port}"


def _default_route(namespace: str, name: str, port: int) -> Obj:
    return {
        "name": f"{name}.{namespace}.default",
        "match": {"prefix": "/"},
        "route": {"cluster": cluster_name(namespace, name, port), "timeout": "0s"},
    }


def _cluster(decl: ClusterDecl, members: Sequence[Endpoint]) -> Obj:
    cluster: Obj = {
        "@type": CLUSTER_TYPE,
        "name": decl.name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": decl.name,
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
    cluster.update(decl.options)
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
            {"name": FAULT_FILTER, "typed_config": {"@type": FAULT_TYPE}},
            {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}},
        ],
    }
    if gateway:
        config["use_remote_address"] = True
    return config


#: Where a listener binds: a local port on 127.0.0.1, or an ``(address, port)`` (a Service's ClusterIP and
#: port, as kube-proxy and a sidecar would take it).
ListenAddress = int | tuple[str, int]


def _listener(name: str, where: ListenAddress, filters: list[Obj]) -> Obj:
    address, port = where if isinstance(where, tuple) else ("127.0.0.1", where)
    return {
        "@type": LISTENER_TYPE,
        "name": name,
        "address": {"socket_address": {"address": address, "port_value": port}},
        "filter_chains": [{"filters": filters}],
    }


def _http_listener(
    key: str, port: ListenAddress, stat: str, route_name: str, routes_dir: str, gateway: bool
) -> Obj:
    filters = [
        {
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": _hcm(stat, route_name, routes_dir, gateway),
        }
    ]
    return _listener(key, port, filters)


def run_translators(
    objects: Mapping[ResourceKind, Sequence[Obj]],
    services: Sequence[Mapping[str, Any]],
    endpoints: Mapping[ServiceKey, Sequence[Endpoint]],
    *,
    weight_header: str = "",
    translators: Sequence[Translator] | None = None,
) -> list[Program]:
    """Each translator's `Program` (in order), with the clusters it declared through its `World`. A
    translator that raises is logged and left out, so one provider's bug does not take the others down."""
    programs: list[Program] = []
    for translator in dataplane.translators() if translators is None else translators:
        world = World(services, endpoints, weight_header=weight_header)
        try:
            program = translator.program(objects, world)
        except Exception:
            log.exception("data-plane translator %s failed; its objects are not applied", translator.name)
            continue
        program.clusters[:0] = list(world.declared.values())
        programs.append(program)
    return programs


def envoy_config(
    objects: Mapping[ResourceKind, Sequence[Obj]],
    services: Iterable[Mapping[str, Any]],
    endpoints: Mapping[ServiceKey, Sequence[Endpoint]],
    *,
    ports: Mapping[str, ListenAddress] | None = None,
    routes_dir: str = "routes",
    weight_header: str = "",
    translators: Sequence[Translator] | None = None,
) -> dict[str, Any]:
    """The Envoy resources for these objects.

    ``objects`` maps each watched kind to its objects (see `canarist.sandbox.dataplane.watched_kinds`);
    ``endpoints`` maps ``(namespace, service)`` to the pods behind it; ``translators`` defaults to the
    registry's. ``ports`` maps listener keys (:data:`GATEWAY_LISTENER` and :func:`listener_key` of each
    Service port) to local ports on 127.0.0.1, or to ``(address, port)`` pairs (a Service's ClusterIP and
    port); a listener without an entry is left out. Returns ``{"listeners": [...],
    "clusters": [...], "routes": {name: rc}, "statuses": [StatusWrite...], "cluster_services": {cluster:
    (namespace, service)}}`` where each route configuration
    is meant for the file ``{routes_dir}/{name}.json`` that its listener's RDS ``path_config_source`` names.
    ``weight_header`` is handed to the translators for ``weighted_clusters.header_name``: a request carrying
    it (an integer) has its weighted destination picked by that number instead of a random one.
    """
    ports = ports or {}
    service_list = list(services)
    programs = run_translators(
        objects, service_list, endpoints, weight_header=weight_header, translators=translators
    )
    world = World(service_list, endpoints, weight_header=weight_header)
    service_keys = sorted(world.services)

    # Clusters: the default one per Service port (a declaration of the same name sets its options), then the
    # declared ones by name. The first declaration of a name wins.
    declared: dict[str, ClusterDecl] = {}
    for program in programs:
        for decl in program.clusters:
            declared.setdefault(decl.name, decl)
    clusters: list[Obj] = []
    #: every cluster's Service (the default ones and the declared ones), for readers of the configuration
    cluster_services: dict[str, ServiceKey] = {}
    for program in programs:
        for decl in program.clusters:
            cluster_services.setdefault(decl.name, (decl.namespace, decl.service))
    for namespace, name in service_keys:
        for port in world.ports(namespace, name):
            default = cluster_name(namespace, name, port)
            cluster_services[default] = (namespace, name)
            decl = (
                declared.pop(default) if default in declared else ClusterDecl(default, namespace, name, port)
            )
            clusters.append(_cluster(decl, world.endpoints(decl.namespace, decl.service, decl.labels)))
    for cluster_decl in sorted(declared.values(), key=lambda d: d.name):
        clusters.append(
            _cluster(
                cluster_decl,
                world.endpoints(cluster_decl.namespace, cluster_decl.service, cluster_decl.labels),
            )
        )

    def service_routes(key: PortKey) -> list[Obj]:
        out = [r for program in programs for r in program.service_routes.get(key, ())]
        out.append(_default_route(*key))
        return out

    listeners: list[Obj] = []
    routes: dict[str, Obj] = {}

    # Service listeners: the sidecar's view of each Service port.
    for namespace, name in service_keys:
        for port_spec in world.port_specs(namespace, name):
            port = int(port_spec["port"])
            key = listener_key(namespace, name, port)
            if key not in ports:
                continue
            stat = f"{name}.{namespace}.{port}"
            route_name = f"svc.{namespace}.{name}.{port}"
            tcp = next(
                (
                    p.service_tcp[(namespace, name, port)]
                    for p in programs
                    if (namespace, name, port) in p.service_tcp
                ),
                None,
            )
            if tcp is not None or str(port_spec.get("name") or "").startswith("tcp"):
                filt = tcp or tcp_proxy(stat, [Backend(cluster_name(namespace, name, port))])
                listeners.append(_listener(key, ports[key], [filt]))
                continue
            routes[route_name] = {
                "@type": ROUTE_TYPE,
                "name": route_name,
                "virtual_hosts": [
                    {"name": route_name, "domains": ["*"], "routes": service_routes((namespace, name, port))}
                ],
            }
            listeners.append(_http_listener(key, ports[key], stat, route_name, routes_dir, gateway=False))

    # The gateway listener: routes by Host.
    if GATEWAY_LISTENER in ports:
        claimed: set[str] = set()
        hosts: list[Obj] = []
        for program in programs:
            for host in program.gateway_hosts:
                domains = [str(d).lower() for d in host.get("domains") or []]
                domains = [d for d in dict.fromkeys(domains) if d not in claimed]
                if not domains or not host.get("routes"):
                    continue
                claimed.update(domains)
                hosts.append({**host, "domains": domains})
        for namespace, name in service_keys:
            service_ports = world.ports(namespace, name)
            domains = [d for d in world.domains(namespace, name) if d not in claimed]
            if not service_ports or not domains:
                continue
            claimed.update(domains)
            hosts.append(
                {
                    "name": f"svc.{namespace}.{name}",
                    "domains": domains,
                    "routes": service_routes((namespace, name, service_ports[0])),
                }
            )
        routes[GATEWAY_LISTENER] = {"@type": ROUTE_TYPE, "name": GATEWAY_LISTENER, "virtual_hosts": hosts}
        listeners.append(
            _http_listener(
                GATEWAY_LISTENER,
                ports[GATEWAY_LISTENER],
                GATEWAY_LISTENER,
                GATEWAY_LISTENER,
                routes_dir,
                gateway=True,
            )
        )

    statuses: list[StatusWrite] = [s for program in programs for s in program.statuses]
    return {
        "listeners": listeners,
        "clusters": clusters,
        "routes": routes,
        "statuses": statuses,
        "cluster_services": cluster_services,
    }
