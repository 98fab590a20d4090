"""The App Mesh translator: v1beta2 VirtualServices, VirtualRouters and VirtualNodes as the App Mesh
controller and the Envoy sidecars it configures apply them.

* **Mesh membership.** An object belongs to the Mesh its ``spec.meshRef`` names, else to the one Mesh whose
  ``namespaceSelector`` selects the object's Namespace (present but empty: every namespace; absent: none),
  as the controller's webhook decides at admission. An object in no mesh (or in a namespace two meshes
  select) is not programmed: the real webhook would have refused it.
* **Routing.** A VirtualService (``spec.awsName``, else ``<name>.<namespace>``, e.g. ``podinfo.test``)
  names a Service; every client's sidecar then routes requests to that Service's ports as the provider says:
  a VirtualRouter (``provider.virtualRouter.virtualRouterRef``) on the ports of its listener, or a VirtualNode
  (``provider.virtualNode.virtualNodeRef``) on the ports of the node's listeners. A Service port matches a
  listener when its ``port`` or its ``targetPort`` is the listener's port. These become ``service_routes``
  (so the gateway's per-Service host, ``podinfo.test``, routes the same way); the first VirtualService per
  Service (by namespace/name) wins.
* **Routes.** ``httpRoute`` and ``http2Route``: ``match`` (``prefix``, ``path`` exact/regex, ``headers``
  exact/prefix/suffix/regex/range with ``invert``, ``method``, ``scheme``, ``queryParameters`` exact or
  present, ``port``), ``action.weightedTargets`` (by ``virtualNodeRef``, optional ``port``), ``retryPolicy``
  (``httpRetryEvents`` server-error/gateway-error/client-error/stream-error, ``tcpRetryEvents``
  connection-error, ``maxRetries``, ``perRetryTimeout``) and ``timeout`` (``perRequest``, 15 s when unset as
  in App Mesh; ``idle``). Routes with a ``priority`` come first, lowest first; then the others, longest
  match first. A router whose listener protocol is ``tcp`` uses its first ``tcpRoute`` as a weighted
  ``tcp_proxy``.
* **Clusters.** Each target VirtualNode listener is a cluster named like the sidecar's egress cluster,
  ``cds_egress_<mesh>_<node awsName>_<protocol>_<port>`` (the node's awsName defaults to
  ``<name>_<namespace>``), over the pods behind the Service its ``serviceDiscovery.dns.hostname`` names,
  narrowed to those its ``podSelector.matchLabels`` select; without DNS discovery (Cloud Map), the pods of
  the first Service of the node's namespace that has pods matching the selector. A target that is not a
  known VirtualNode, or whose hostname names no Service, is a cluster that does not exist (Envoy answers
  503).
* **Gateway.** A VirtualService annotated ``gateway.appmesh.k8s.aws/expose: "true"`` is also a gateway
  virtual host for the domains of ``gateway.appmesh.k8s.aws/domain`` (comma separated), with the same
  routes: what the App Mesh gateway does with the annotations canarist writes for ``service.hosts``.
* **Statuses.** As the controller writes them once the object exists in App Mesh: the ARN
  (``arn:aws:appmesh:<region>:<account>:mesh/<mesh>/virtualService/<awsName>`` ... with a stand-in region
  and account), ``observedGeneration`` and the ``MeshActive`` / ``VirtualNodeActive`` /
  ``VirtualRouterActive`` / ``VirtualServiceActive`` condition, for an object in a mesh whose references
  (provider, weighted targets, backends) exist.

Not modelled: ``grpcRoute``, GatewayRoutes and VirtualGateways, the egress filter (every client may reach
every Service; App Mesh's ``DROP_ALL`` would limit a client to its node's ``backends``), the VirtualNode
listener's inbound timeouts, health checks, outlier detection, TLS, ``podSelector.matchExpressions`` in the
clusters, and the last-good configuration App Mesh keeps when an update is refused (here a missing
reference is programmed as a route to a missing cluster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canarist.kube.resources import NAMESPACE, ResourceKind
from canarist.localcluster.selectors import LabelSelector
from canarist.routers.appmesh import (
    GATEWAY_DOMAIN,
    GATEWAY_EXPOSE,
    GROUP,
    V1BETA2,
    VIRTUAL_NODE_V1BETA2,
    VIRTUAL_ROUTER_V1BETA2,
    VIRTUAL_SERVICE_V1BETA2,
)
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
    sort_key,
    spec_of,
)

__all__ = [
    "ACCOUNT",
    "DEFAULT_TIMEOUT_S",
    "MESH",
    "REGION",
    "AppMeshTranslator",
    "egress_cluster_name",
]

MESH = ResourceKind(GROUP, V1BETA2, "meshes", "Mesh", namespaced=False, status_subresource=True)
#: the stand-in AWS region and account of the ARNs in the statuses.
REGION = "us-west-2"
ACCOUNT = "000000000000"
#: App Mesh's per-request timeout when a route sets none.
DEFAULT_TIMEOUT_S = 15.0

#: App Mesh retry events as Envoy ``retry_on`` conditions (client-error is HTTP 409: a retriable status).
_HTTP_RETRY_EVENTS = {
    "server-error": "5xx",
    "gateway-error": "gateway-error",
    "stream-error": "refused-stream",
}
_TCP_RETRY_EVENTS = {"connection-error": "connect-failure"}
_CLIENT_ERROR_STATUS = 409
_STRING_MATCHES: tuple[e.MatchKind, ...] = ("exact", "prefix", "suffix", "regex")


def egress_cluster_name(mesh: str, node: str, protocol: str, port: int) -> str:
    """The sidecar's egress cluster for a VirtualNode listener: ``cds_egress_<mesh>_<node>_<proto>_<port>``
    (``node`` is the node's App Mesh name, ``<name>_<namespace>`` by default)."""
    return f"cds_egress_{mesh}_{node}_{protocol}_{port}"


# ------------------------------------------------------------------------------------------------ values


def _str(value: Any) -> str:
    return str(value) if value is not None else ""


def _at(value: Any, *path: str) -> Any:
    """The value at ``path`` in nested mappings (``None`` when missing)."""
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _ref(value: Any, namespace: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a reference (``{name, namespace?}``); the namespace defaults to the
    referring object's."""
    if not isinstance(value, Mapping) or not value.get("name"):
        return None
    return (_str(value.get("namespace")) or namespace, _str(value["name"]))


def _provider(vs: Mapping[str, Any]) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """(router reference, node reference) of a VirtualService's provider."""
    provider = _at(vs, "spec", "provider")
    namespace = namespace_of(vs)
    return (
        _ref(_at(provider, "virtualRouter", "virtualRouterRef"), namespace),
        _ref(_at(provider, "virtualNode", "virtualNodeRef"), namespace),
    )


def _duration_s(value: Any) -> float | None:
    """An App Mesh duration (``{unit: s|ms, value}``) in seconds."""
    if not isinstance(value, Mapping) or value.get("value") is None:
        return None
    number = float(value["value"])
    return number / 1000.0 if value.get("unit") == "ms" else number


def _listeners(obj: Mapping[str, Any]) -> list[tuple[int, str]]:
    """``(port, protocol)`` of each listener's ``portMapping``."""
    out: list[tuple[int, str]] = []
    for listener in spec_of(obj).get("listeners") or []:
        mapping = listener.get("portMapping") if isinstance(listener, Mapping) else None
        if isinstance(mapping, Mapping) and mapping.get("port"):
            out.append((int(mapping["port"]), _str(mapping.get("protocol")) or "http"))
    return out


def _generation(obj: Mapping[str, Any]) -> int:
    return int(meta(obj).get("generation") or 0)


# ------------------------------------------------------------------------------------------------ index


class _Mesh:
    """The objects of one translation, indexed, and the mesh each belongs to."""

    def __init__(self, objects: Mapping[ResourceKind, Sequence[Obj]]) -> None:
        self.meshes = {name_of(m): m for m in sorted(objects.get(MESH, ()), key=name_of)}
        self.namespaces = {name_of(n): n for n in objects.get(NAMESPACE, ())}
        self.nodes = {sort_key(n): n for n in objects.get(VIRTUAL_NODE_V1BETA2, ())}
        self.routers = {sort_key(r): r for r in objects.get(VIRTUAL_ROUTER_V1BETA2, ())}
        self.services = sorted(objects.get(VIRTUAL_SERVICE_V1BETA2, ()), key=sort_key)

    def mesh_of(self, obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The Mesh ``obj`` belongs to (``meshRef``, else the one Mesh selecting its namespace)."""
        ref = spec_of(obj).get("meshRef")
        if isinstance(ref, Mapping) and ref.get("name"):
            return self.meshes.get(_str(ref["name"]))
        namespace = self.namespaces.get(namespace_of(obj))
        if namespace is None:
            return None
        selecting = [
            mesh
            for mesh in self.meshes.values()
            if isinstance(spec_of(mesh).get("namespaceSelector"), Mapping)
            and LabelSelector.from_object(dict(spec_of(mesh)["namespaceSelector"])).matches(dict(namespace))
        ]
        return selecting[0] if len(selecting) == 1 else None

    def mesh_name(self, obj: Mapping[str, Any]) -> str | None:
        mesh = self.mesh_of(obj)
        return None if mesh is None else _aws_name(mesh, MESH)

    def in_mesh(self, obj: Mapping[str, Any] | None, mesh: str) -> bool:
        return obj is not None and self.mesh_name(obj) == mesh


def _aws_name(obj: Mapping[str, Any], kind: ResourceKind) -> str:
    """The App Mesh name: ``spec.awsName``, else the controller's default (Mesh ``<name>``, VirtualService
    ``<name>.<ns>``, VirtualNode and VirtualRouter ``<name>_<ns>``)."""
    explicit = _str(spec_of(obj).get("awsName"))
    if explicit:
        return explicit
    if kind == MESH:
        return name_of(obj)
    separator = "." if kind == VIRTUAL_SERVICE_V1BETA2 else "_"
    return f"{name_of(obj)}{separator}{namespace_of(obj)}"


# ------------------------------------------------------------------------------------------------ translator


class AppMeshTranslator:
    name = "appmesh"
    kinds: tuple[ResourceKind, ...] = (
        VIRTUAL_SERVICE_V1BETA2,
        VIRTUAL_ROUTER_V1BETA2,
        VIRTUAL_NODE_V1BETA2,
        MESH,
        NAMESPACE,
    )

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        index = _Mesh(objects)
        program = Program()
        for vs in index.services:
            mesh = index.mesh_name(vs)
            if mesh is None:
                continue
            target = world.resolve(_aws_name(vs, VIRTUAL_SERVICE_V1BETA2).rstrip("."), namespace_of(vs))
            if target is None:
                continue
            routed = _Routes(index, world, mesh)
            per_port = routed.for_service(vs, target)
            for key, routes in per_port.items():
                if key in program.service_routes or key in program.service_tcp:
                    continue
                if isinstance(routes, dict):
                    program.service_tcp[key] = routes
                else:
                    program.service_routes[key] = routes
            _expose(vs, target, per_port, program)
        program.statuses.extend(_statuses(index))
        return program


def _expose(
    vs: Mapping[str, Any],
    target: tuple[str, str],
    per_port: Mapping[PortKey, Obj | list[Obj]],
    program: Program,
) -> None:
    """The App Mesh gateway's virtual host for a VirtualService annotated for it."""
    annotations = meta(vs).get("annotations") or {}
    if _str(annotations.get(GATEWAY_EXPOSE)).lower() != "true":
        return
    domains = [d.strip().lower() for d in _str(annotations.get(GATEWAY_DOMAIN)).split(",") if d.strip()]
    http = [routes for key, routes in sorted(per_port.items()) if isinstance(routes, list) and routes]
    if domains and http:
        program.gateway_hosts.append(
            {"name": f"appmesh.{target[0]}.{name_of(vs)}", "domains": domains, "routes": http[0]}
        )


class _Routes:
    """Envoy routes for the VirtualServices of one mesh."""

    def __init__(self, index: _Mesh, world: World, mesh: str) -> None:
        self.index = index
        self.world = world
        self.mesh = mesh

    def for_service(self, vs: Mapping[str, Any], target: tuple[str, str]) -> dict[PortKey, Obj | list[Obj]]:
        """Per Service port: the HTTP routes (a list) or the ``tcp_proxy`` filter (a dict)."""
        namespace, service = target
        out: dict[PortKey, Obj | list[Obj]] = {}
        router_ref, node_ref = _provider(vs)
        if router_ref is not None:
            router = self.index.routers.get(router_ref)
            if not self.index.in_mesh(router, self.mesh):
                return out
            assert router is not None
            for listener_port, protocol in _listeners(router)[:1]:
                for port in self._service_ports(namespace, service, listener_port):
                    stat = f"{service}.{namespace}.{port}"
                    if protocol == "tcp":
                        tcp = self._tcp(router, stat)
                        if tcp is not None:
                            out[(namespace, service, port)] = tcp
                    else:
                        routes = self._router_routes(router, listener_port)
                        if routes:
                            out[(namespace, service, port)] = routes
        elif node_ref is not None:
            node = self.index.nodes.get(node_ref)
            if not self.index.in_mesh(node, self.mesh):
                return out
            assert node is not None
            for listener_port, protocol in _listeners(node):
                cluster = self.node_cluster(node_ref, listener_port)
                for port in self._service_ports(namespace, service, listener_port):
                    stat = f"{service}.{namespace}.{port}"
                    if protocol == "tcp":
                        out[(namespace, service, port)] = e.tcp_proxy(stat, [e.Backend(cluster)])
                    else:
                        action = e.route_action([e.Backend(cluster)], timeout=DEFAULT_TIMEOUT_S)
                        out[(namespace, service, port)] = [
                            e.route(e.route_match(), action, name=f"{name_of(node)}.{node_ref[0]}")
                        ]
        return out

    def _service_ports(self, namespace: str, service: str, listener_port: int) -> list[int]:
        """The Service's ports whose ``port`` or ``targetPort`` is the listener's port."""
        return [
            int(spec["port"])
            for spec in self.world.port_specs(namespace, service)
            if int(spec["port"]) == listener_port or _str(spec.get("targetPort")) == str(listener_port)
        ]

    # -- clusters

    def node_cluster(self, ref: tuple[str, str], port: int | None) -> str:
        """The egress cluster of a VirtualNode's listener (``port``; default: its first), declared over the
        node's pods; the name of a cluster that does not exist when the node is not known."""
        node = self.index.nodes.get(ref)
        if node is None or not self.index.in_mesh(node, self.mesh):
            return egress_cluster_name(self.mesh, f"{ref[1]}_{ref[0]}", "http", port or 0)
        listeners = _listeners(node)
        chosen = next((lst for lst in listeners if port is None or lst[0] == port), None)
        listener_port, protocol = chosen or (port or 0, "http")
        name = egress_cluster_name(self.mesh, _aws_name(node, VIRTUAL_NODE_V1BETA2), protocol, listener_port)
        backing = self._backing(node, listener_port)
        if backing is not None:
            service, service_port, labels = backing
            self.world.alias_cluster(name, ref[0], service, service_port, labels)
        return name

    def _backing(self, node: Mapping[str, Any], listener_port: int) -> tuple[str, int, dict[str, str]] | None:
        """(Service, Service port, pod labels) of the pods a VirtualNode stands for."""
        namespace = namespace_of(node)
        spec = spec_of(node)
        selector = spec.get("podSelector")
        labels = (
            {str(k): str(v) for k, v in (selector.get("matchLabels") or {}).items()}
            if isinstance(selector, Mapping)
            else {}
        )
        discovery = spec.get("serviceDiscovery")
        dns = discovery.get("dns") if isinstance(discovery, Mapping) else None
        if isinstance(dns, Mapping):
            resolved = self.world.resolve(_str(dns.get("hostname")).rstrip("."), namespace)
            if resolved is None:
                return None
            candidates = [resolved]
        else:
            if not labels:
                return None
            candidates = [
                key
                for key in sorted(self.world.services)
                if key[0] == namespace and self.world.endpoints(key[0], key[1], labels)
            ][:1]
        for svc_namespace, service in candidates:
            ports = self._service_ports(svc_namespace, service, listener_port) or self.world.ports(
                svc_namespace, service
            )
            if ports:
                return service, ports[0], labels
        return None

    def _backends(self, targets: Any, namespace: str, default_port: int) -> list[e.Backend]:
        out: list[e.Backend] = []
        for target in targets or []:
            if not isinstance(target, Mapping):
                continue
            ref = _ref(target.get("virtualNodeRef"), namespace)
            if ref is None:
                continue
            port = int(target["port"]) if target.get("port") else None
            node = self.index.nodes.get(ref)
            if port is None and (node is None or len(_listeners(node)) != 1):
                port = default_port
            out.append(e.Backend(self.node_cluster(ref, port), int(target.get("weight") or 0)))
        return out

    # -- routes

    def _router_routes(self, router: Mapping[str, Any], listener_port: int) -> list[Obj]:
        namespace = namespace_of(router)
        entries: list[tuple[tuple[int, int, int], Obj]] = []
        for index, item in enumerate(spec_of(router).get("routes") or []):
            if not isinstance(item, Mapping):
                continue
            http = next(
                (item[k] for k in ("httpRoute", "http2Route") if isinstance(item.get(k), Mapping)), None
            )
            if http is None:
                continue
            match = http.get("match") if isinstance(http.get("match"), Mapping) else {}
            assert isinstance(match, Mapping)
            if match.get("port") and int(match["port"]) != listener_port:
                continue
            action = http.get("action") if isinstance(http.get("action"), Mapping) else {}
            assert isinstance(action, Mapping)
            backends = self._backends(action.get("weightedTargets"), namespace, listener_port)
            if not backends or sum(b.weight for b in backends) <= 0:
                continue
            timeout = http.get("timeout") if isinstance(http.get("timeout"), Mapping) else {}
            assert isinstance(timeout, Mapping)
            per_request = _duration_s(timeout.get("perRequest"))
            envoy_action = e.route_action(
                backends,
                weight_header=self.world.weight_header,
                timeout=DEFAULT_TIMEOUT_S if per_request is None else per_request,
                retry=_retry(http.get("retryPolicy")),
            )
            idle = _duration_s(timeout.get("idle"))
            if idle is not None:
                envoy_action["idle_timeout"] = e.duration(idle)
            route_match, length = _route_match(match)
            name = f"{_str(item.get('name')) or index}.{name_of(router)}.{namespace}"
            priority = item.get("priority")
            order = (0, int(priority), index) if priority is not None else (1, -length, index)
            entries.append((order, e.route(route_match, envoy_action, name=name)))
        return [route for _, route in sorted(entries, key=lambda entry: entry[0])]

    def _tcp(self, router: Mapping[str, Any], stat_prefix: str) -> Obj | None:
        namespace = namespace_of(router)
        port = (_listeners(router)[:1] or [(0, "tcp")])[0][0]
        for item in spec_of(router).get("routes") or []:
            tcp = item.get("tcpRoute") if isinstance(item, Mapping) else None
            if not isinstance(tcp, Mapping) or not isinstance(tcp.get("action"), Mapping):
                continue
            backends = self._backends(tcp["action"].get("weightedTargets"), namespace, port)
            if backends and sum(b.weight for b in backends) > 0:
                return e.tcp_proxy(stat_prefix, backends)
        return None


def _route_match(match: Mapping[str, Any]) -> tuple[Obj, int]:
    """An Envoy ``RouteMatch`` for an App Mesh HTTP match, and the length of its path match (for the order of
    routes without a priority)."""
    path = match.get("path")
    if isinstance(path, Mapping) and path.get("exact"):
        path_match, length = e.path_match("exact", _str(path["exact"])), len(_str(path["exact"]))
    elif isinstance(path, Mapping) and path.get("regex"):
        path_match, length = e.path_match("regex", _str(path["regex"])), len(_str(path["regex"]))
    else:
        prefix = _str(match.get("prefix")) or "/"
        path_match, length = e.path_match("prefix", prefix), len(prefix)
    headers: list[Obj] = []
    for header in match.get("headers") or []:
        if isinstance(header, Mapping) and header.get("name"):
            headers.append(_header_match(header))
    for pseudo, key in ((":method", "method"), (":scheme", "scheme")):
        if match.get(key):
            headers.append(e.header_match(pseudo, "exact", _str(match[key])))
    query: list[Obj] = []
    for param in match.get("queryParameters") or []:
        if not isinstance(param, Mapping) or not param.get("name"):
            continue
        exact = param.get("match")
        if isinstance(exact, Mapping) and exact.get("exact") is not None:
            query.append(e.query_match(_str(param["name"]), "exact", _str(exact["exact"])))
        else:
            query.append(e.query_match(_str(param["name"])))
    return e.route_match(path_match, headers=headers, query=query), length


def _header_match(header: Mapping[str, Any]) -> Obj:
    name = _str(header["name"])
    invert = bool(header.get("invert"))
    spec = header.get("match")
    if isinstance(spec, Mapping):
        for kind in _STRING_MATCHES:
            if spec.get(kind) is not None:
                return e.header_match(name, kind, _str(spec[kind]), invert=invert)
        bounds = spec.get("range")
        if isinstance(bounds, Mapping):
            out: Obj = {
                "name": name.lower(),
                "range_match": {"start": int(bounds.get("start") or 0), "end": int(bounds.get("end") or 0)},
            }
            if invert:
                out["invert_match"] = True
            return out
    return e.header_match(name, invert=invert)


def _retry(policy: Any) -> Obj | None:
    """An Envoy ``RetryPolicy`` for an App Mesh ``retryPolicy``."""
    if not isinstance(policy, Mapping):
        return None
    retries = int(policy.get("maxRetries") or 0)
    if retries <= 0:
        return None
    conditions: list[str] = []
    codes: list[int] = []
    for event in policy.get("httpRetryEvents") or []:
        event = _str(event).strip()
        if event == "client-error":
            codes.append(_CLIENT_ERROR_STATUS)
        elif event in _HTTP_RETRY_EVENTS:
            conditions.append(_HTTP_RETRY_EVENTS[event])
    for event in policy.get("tcpRetryEvents") or []:
        if _str(event).strip() in _TCP_RETRY_EVENTS:
            conditions.append(_TCP_RETRY_EVENTS[_str(event).strip()])
    if not conditions and not codes:
        return None
    return e.retry_policy(
        list(dict.fromkeys(conditions)),
        retries,
        per_try_timeout=_duration_s(policy.get("perRetryTimeout")),
        retriable_status_codes=codes,
    )


# ------------------------------------------------------------------------------------------------ statuses


def _arn(mesh: str, kind: str = "", name: str = "") -> str:
    base = f"arn:aws:appmesh:{REGION}:{ACCOUNT}:mesh/{mesh}"
    return f"{base}/{kind}/{name}" if kind else base


def _active_status(obj: Mapping[str, Any], arn_field: str, arn: str, condition_type: str) -> dict[str, Any]:
    previous = (obj.get("status") or {}).get("conditions") or []
    active = condition(condition_type, True, "", previous=previous)
    return {
        arn_field: arn,
        "conditions": [{k: v for k, v in active.items() if v != ""}],
        "observedGeneration": _generation(obj),
    }


def _statuses(index: _Mesh) -> list[StatusWrite]:
    out: list[StatusWrite] = []
    for mesh_obj in index.meshes.values():
        arn = _arn(_aws_name(mesh_obj, MESH))
        out.append(
            StatusWrite(MESH, "", name_of(mesh_obj), _active_status(mesh_obj, "meshARN", arn, "MeshActive"))
        )

    def exists(ref: tuple[str, str] | None, objects: Mapping[tuple[str, str], Obj], mesh: str) -> bool:
        return ref is not None and index.in_mesh(objects.get(ref), mesh)

    for node in sorted(index.nodes.values(), key=sort_key):
        mesh = index.mesh_name(node)
        if mesh is None:
            continue
        services = {sort_key(s): s for s in index.services}
        backends = [
            b
            for b in spec_of(node).get("backends") or []
            if isinstance(b, Mapping) and b.get("virtualService")
        ]
        if not all(
            exists(_ref(_at(b, "virtualService", "virtualServiceRef"), namespace_of(node)), services, mesh)
            or (isinstance(b["virtualService"], Mapping) and b["virtualService"].get("virtualServiceARN"))
            for b in backends
        ):
            continue
        arn = _arn(mesh, "virtualNode", _aws_name(node, VIRTUAL_NODE_V1BETA2))
        out.append(
            StatusWrite(
                VIRTUAL_NODE_V1BETA2,
                namespace_of(node),
                name_of(node),
                _active_status(node, "virtualNodeARN", arn, "VirtualNodeActive"),
            )
        )
    for router in sorted(index.routers.values(), key=sort_key):
        mesh = index.mesh_name(router)
        if mesh is None:
            continue
        targets = [
            target
            for item in spec_of(router).get("routes") or []
            if isinstance(item, Mapping)
            for key in ("httpRoute", "http2Route", "tcpRoute")
            if isinstance(item.get(key), Mapping)
            for target in (item[key].get("action") or {}).get("weightedTargets") or []
            if isinstance(target, Mapping)
        ]
        if not all(
            exists(_ref(t.get("virtualNodeRef"), namespace_of(router)), index.nodes, mesh)
            or t.get("virtualNodeARN")
            for t in targets
        ):
            continue
        arn = _arn(mesh, "virtualRouter", _aws_name(router, VIRTUAL_ROUTER_V1BETA2))
        out.append(
            StatusWrite(
                VIRTUAL_ROUTER_V1BETA2,
                namespace_of(router),
                name_of(router),
                _active_status(router, "virtualRouterARN", arn, "VirtualRouterActive"),
            )
        )
    for vs in index.services:
        mesh = index.mesh_name(vs)
        if mesh is None:
            continue
        router_ref, node_ref = _provider(vs)
        if not (exists(router_ref, index.routers, mesh) or exists(node_ref, index.nodes, mesh)):
            continue
        arn = _arn(mesh, "virtualService", _aws_name(vs, VIRTUAL_SERVICE_V1BETA2))
        out.append(
            StatusWrite(
                VIRTUAL_SERVICE_V1BETA2,
                namespace_of(vs),
                name_of(vs),
                _active_status(vs, "virtualServiceARN", arn, "VirtualServiceActive"),
            )
        )
    return out
