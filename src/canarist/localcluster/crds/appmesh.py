"""AWS App Mesh controller CRDs (`appmesh.k8s.aws` v1beta2): Mesh (cluster-scoped), VirtualNode,
VirtualRouter, VirtualService, VirtualGateway and GatewayRoute, each with a `/status` subresource.

Typed: references (`meshRef`, `virtualNodeRef`, `virtualServiceRef`, `virtualRouterRef`,
`virtualGatewayRef`), port mappings, service discovery (DNS, Cloud Map), backends, health checks, timeouts,
retry policies, HTTP/HTTP2 route matches and weighted targets, gateway route targets and rewrites, and the
status ARNs, observedGeneration and conditions.

Free-form (`x-kubernetes-preserve-unknown-fields`), sub-trees too large to type here: every `tls` block
(listener TLS and client-policy TLS, with their file/SDS/ACM certificate sources), `connectionPool`,
`clientPolicy`, and the gRPC routes (`grpcRoute`, whose match/action mirror the HTTP ones with metadata
matchers).
"""

from __future__ import annotations

from canarist.localcluster.crds._schema import (
    AGE,
    Obj,
    array,
    boolean,
    column,
    crd,
    free,
    int64,
    integer,
    label_selector,
    obj,
    port,
    root,
    string,
    strings,
    version,
)

GROUP = "appmesh.k8s.aws"
VERSION = "v1beta2"
CATEGORIES = ("appmesh",)


def _ref(uid: bool = False) -> Obj:
    properties: Obj = {"name": string(), "namespace": string()}
    if uid:
        properties["uid"] = string()
    return obj(properties, required=("name",))


def _mesh_ref() -> Obj:
    return obj({"name": string(), "uid": string()}, required=("name", "uid"))


def _duration() -> Obj:
    return obj({"unit": string(enum=("s", "ms")), "value": int64(minimum=0)}, required=("unit", "value"))


def _port_mapping(protocols: tuple[str, ...]) -> Obj:
    return obj({"port": port(), "protocol": string(enum=protocols)}, required=("port", "protocol"))


def _health_check(protocols: tuple[str, ...]) -> Obj:
    return obj(
        {
            "healthyThreshold": int64(minimum=2, maximum=10),
            "intervalMillis": int64(minimum=5000, maximum=300000),
            "path": string(),
            "port": port(),
            "protocol": string(enum=protocols),
            "timeoutMillis": int64(minimum=2000, maximum=60000),
            "unhealthyThreshold": int64(minimum=2, maximum=10),
        },
        required=("healthyThreshold", "intervalMillis", "protocol", "timeoutMillis", "unhealthyThreshold"),
    )


def _timeouts() -> Obj:
    http = obj({"perRequest": _duration(), "idle": _duration()})
    return obj({"tcp": obj({"idle": _duration()}), "http": http, "http2": http, "grpc": http})


def _logging() -> Obj:
    return obj(
        {
            "accessLog": obj(
                {
                    "file": obj(
                        {
                            "path": string(minLength=1),
                            "format": obj(
                                {
                                    "text": string(),
                                    "json": array(
                                        obj({"key": string(), "value": string()}, required=("key", "value"))
                                    ),
                                }
                            ),
                        },
                        required=("path",),
                    )
                }
            )
        }
    )


def _string_match() -> Obj:
    return obj(
        {
            "exact": string(),
            "prefix": string(),
            "suffix": string(),
            "regex": string(),
            "range": obj({"start": int64(), "end": int64()}, required=("start", "end")),
        }
    )


def _http_match(gateway: bool) -> Obj:
    properties: Obj = {
        "prefix": string(),
        "path": obj({"exact": string(), "regex": string()}),
        "headers": array(
            obj({"name": string(), "match": _string_match(), "invert": boolean()}, required=("name",))
        ),
        "method": string(
            enum=("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")
        ),
        "queryParameters": array(
            obj({"name": string(), "match": obj({"exact": string()})}, required=("name",))
        ),
        "port": port(),
    }
    if gateway:
        properties["hostname"] = obj({"exact": string(), "suffix": string()})
    else:
        properties["scheme"] = string(enum=("http", "https"))
    return obj(properties)


def _retry_policy() -> Obj:
    return obj(
        {
            "httpRetryEvents": strings(),
            "tcpRetryEvents": strings(),
            "maxRetries": int64(minimum=0),
            "perRetryTimeout": _duration(),
        },
        required=("maxRetries", "perRetryTimeout"),
    )


def _weighted_targets() -> Obj:
    target = obj(
        {
            "virtualNodeRef": _ref(),
            "virtualNodeARN": string(),
            "weight": int64(minimum=0, maximum=100),
            "port": port(),
        },
        required=("weight",),
    )
    return array(target, minItems=1, maxItems=10)


def _router_http_route() -> Obj:
    return obj(
        {
            "match": _http_match(gateway=False),
            "action": obj({"weightedTargets": _weighted_targets()}, required=("weightedTargets",)),
            "retryPolicy": _retry_policy(),
            "timeout": obj({"perRequest": _duration(), "idle": _duration()}),
        },
        required=("action", "match"),
    )


def _status(arn: str) -> Obj:
    condition = obj(
        {
            "type": string(),
            "status": string(enum=("True", "False", "Unknown")),
            "lastTransitionTime": string(format="date-time"),
            "reason": string(),
            "message": string(),
        },
        required=("status", "type"),
    )
    return obj({arn: string(), "observedGeneration": int64(), "conditions": array(condition)})


def mesh_schema() -> Obj:
    spec = obj(
        {
            "awsName": string(),
            "namespaceSelector": label_selector(),
            "egressFilter": obj({"type": string(enum=("ALLOW_ALL", "DROP_ALL"))}, required=("type",)),
            "meshServiceDiscovery": obj(
                {"ipPreference": string(enum=("IPv4_PREFERRED", "IPv6_PREFERRED", "IPv4_ONLY", "IPv6_ONLY"))}
            ),
            "meshOwner": string(),
        }
    )
    return root(spec, _status("meshARN"))


def virtualnode_schema() -> Obj:
    protocols = ("grpc", "http", "http2", "tcp")
    listener = obj(
        {
            "portMapping": _port_mapping(protocols),
            "healthCheck": _health_check(protocols),
            "outlierDetection": obj(
                {
                    "maxEjectionPercent": int64(minimum=0, maximum=100),
                    "maxServerErrors": int64(minimum=1),
                    "interval": _duration(),
                    "baseEjectionDuration": _duration(),
                },
                required=("baseEjectionDuration", "interval", "maxEjectionPercent", "maxServerErrors"),
            ),
            "timeout": _timeouts(),
            "tls": free(),
            "connectionPool": free(),
        },
        required=("portMapping",),
    )
    backend = obj(
        {
            "virtualService": obj(
                {"virtualServiceRef": _ref(), "virtualServiceARN": string(), "clientPolicy": free()}
            )
        },
        required=("virtualService",),
    )
    spec = obj(
        {
            "awsName": string(),
            "podSelector": label_selector(),
            "listeners": array(listener, minItems=0, maxItems=1),
            "serviceDiscovery": obj(
                {
                    "awsCloudMap": obj(
                        {
                            "namespaceName": string(minLength=1, maxLength=1024),
                            "serviceName": string(minLength=1, maxLength=1024),
                            "attributes": array(
                                obj({"key": string(), "value": string()}, required=("key", "value"))
                            ),
                        },
                        required=("namespaceName", "serviceName"),
                    ),
                    "dns": obj(
                        {
                            "hostname": string(),
                            "responseType": string(enum=("LOADBALANCER", "ENDPOINTS")),
                            "ipPreference": string(),
                        },
                        required=("hostname",),
                    ),
                }
            ),
            "backends": array(backend),
            "backendGroups": array(_ref()),
            "backendDefaults": obj({"clientPolicy": free()}),
            "logging": _logging(),
            "meshRef": _mesh_ref(),
        }
    )
    return root(spec, _status("virtualNodeARN"))


def virtualrouter_schema() -> Obj:
    route = obj(
        {
            "name": string(),
            "httpRoute": _router_http_route(),
            "http2Route": _router_http_route(),
            "grpcRoute": free(),
            "tcpRoute": obj(
                {
                    "action": obj({"weightedTargets": _weighted_targets()}, required=("weightedTargets",)),
                    "timeout": obj({"idle": _duration()}),
                },
                required=("action",),
            ),
            "priority": int64(minimum=0, maximum=1000),
        },
        required=("name",),
    )
    spec = obj(
        {
            "awsName": string(),
            "listeners": array(
                obj(
                    {"portMapping": _port_mapping(("grpc", "http", "http2", "tcp"))},
                    required=("portMapping",),
                ),
                minItems=1,
                maxItems=1,
            ),
            "routes": array(route),
            "meshRef": _mesh_ref(),
        }
    )
    return root(spec, _status("virtualRouterARN"))


def virtualservice_schema() -> Obj:
    spec = obj(
        {
            "awsName": string(),
            "provider": obj(
                {
                    "virtualNode": obj({"virtualNodeRef": _ref(), "virtualNodeARN": string()}),
                    "virtualRouter": obj({"virtualRouterRef": _ref(), "virtualRouterARN": string()}),
                }
            ),
            "meshRef": _mesh_ref(),
        }
    )
    return root(spec, _status("virtualServiceARN"))


def virtualgateway_schema() -> Obj:
    protocols = ("grpc", "http", "http2")
    listener = obj(
        {
            "portMapping": _port_mapping(protocols),
            "healthCheck": _health_check(protocols),
            "tls": free(),
            "connectionPool": free(),
        },
        required=("portMapping",),
    )
    spec = obj(
        {
            "awsName": string(),
            "namespaceSelector": label_selector(),
            "gatewayRouteSelector": label_selector(),
            "podSelector": label_selector(),
            "listeners": array(listener, minItems=0, maxItems=1),
            "logging": _logging(),
            "backendDefaults": obj({"clientPolicy": free()}),
            "meshRef": _mesh_ref(),
        }
    )
    return root(spec, _status("virtualGatewayARN"))


def gatewayroute_schema() -> Obj:
    http_route = obj(
        {
            "match": _http_match(gateway=True),
            "action": obj(
                {
                    "target": obj(
                        {
                            "virtualService": obj(
                                {"virtualServiceRef": _ref(), "virtualServiceARN": string()}
                            ),
                            "port": port(),
                        },
                        required=("virtualService",),
                    ),
                    "rewrite": obj(
                        {
                            "prefix": obj(
                                {"defaultPrefix": string(enum=("ENABLED", "DISABLED")), "value": string()}
                            ),
                            "hostname": obj({"defaultTargetHostname": string(enum=("ENABLED", "DISABLED"))}),
                            "path": obj({"exact": string()}),
                        }
                    ),
                },
                required=("target",),
            ),
        },
        required=("action", "match"),
    )
    spec = obj(
        {
            "awsName": string(),
            "httpRoute": http_route,
            "http2Route": http_route,
            "grpcRoute": free(),
            "priority": integer(minimum=0, maximum=1000),
            "virtualGatewayRef": _ref(uid=True),
            "meshRef": _mesh_ref(),
        }
    )
    return root(spec, _status("gatewayRouteARN"))


_KINDS = (
    ("Mesh", "meshes", False, "meshARN", mesh_schema),
    ("VirtualNode", "virtualnodes", True, "virtualNodeARN", virtualnode_schema),
    ("VirtualRouter", "virtualrouters", True, "virtualRouterARN", virtualrouter_schema),
    ("VirtualService", "virtualservices", True, "virtualServiceARN", virtualservice_schema),
    ("VirtualGateway", "virtualgateways", True, "virtualGatewayARN", virtualgateway_schema),
    ("GatewayRoute", "gatewayroutes", True, "gatewayRouteARN", gatewayroute_schema),
)


def appmesh_crds() -> list[Obj]:
    crds = []
    for kind, plural, namespaced, arn, schema in _KINDS:
        columns = [
            column("ARN", f".status.{arn}", description=f"The AppMesh {kind} object's Amazon Resource Name"),
            AGE,
        ]
        crds.append(
            crd(
                GROUP,
                kind,
                plural,
                [version(VERSION, schema(), storage=True, status=True, columns=columns)],
                namespaced=namespaced,
                categories=CATEGORIES,
            )
        )
    return crds


CRDS: list[Obj] = appmesh_crds()
