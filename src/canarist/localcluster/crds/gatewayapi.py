"""Gateway API (`gateway.networking.k8s.io`): GatewayClass, Gateway, HTTPRoute and ReferenceGrant.

GatewayClass, Gateway and HTTPRoute serve v1 (stored) and v1beta1 with the same schema; ReferenceGrant
serves v1beta1. The schemas follow the standard-channel CRDs: names, ports, weights (0-1000000), list
limits, enums and the defaults the real CRDs declare (a parentRef's group/kind, a backendRef's kind and
weight, a path match's type and value, a header match's type, a listener's allowed namespaces). CEL rules
(`x-kubernetes-validations`) are not evaluated by the local control plane and are left out.

Free-form parts, as in the real CRDs: `Gateway.spec.listeners[].tls.options` (a string map) and
`Gateway.spec.infrastructure` labels/annotations. Nothing is preserve-unknown-fields.
"""

from __future__ import annotations

from canarist.localcluster.crds._schema import (
    AGE,
    DNS_SUBDOMAIN,
    Obj,
    array,
    column,
    conditions,
    crd,
    int32,
    integer,
    label_selector,
    obj,
    port,
    root,
    string,
    string_map,
    strings,
    version,
)

GROUP = "gateway.networking.k8s.io"
VERSIONS = ("v1", "v1beta1")
CATEGORIES = ("gateway-api",)
LABELS = {"gateway.networking.k8s.io/channel": "standard"}

_GROUP_NAME = string(
    maxLength=253, pattern=r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_KIND = string(minLength=1, maxLength=63, pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_NAME = string(minLength=1, maxLength=253)
_NAMESPACE = string(minLength=1, maxLength=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SECTION = string(minLength=1, maxLength=253, pattern=DNS_SUBDOMAIN)
_HOSTNAME = string(
    minLength=1,
    maxLength=253,
    pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
)
_DURATION = string(pattern=r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
_HEADER_NAME = string(minLength=1, maxLength=256, pattern=r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$")


def _parent_ref() -> Obj:
    return obj(
        {
            "group": {**_GROUP_NAME, "default": GROUP},
            "kind": {**_KIND, "default": "Gateway"},
            "namespace": _NAMESPACE,
            "name": _NAME,
            "sectionName": _SECTION,
            "port": port(),
        },
        required=("name",),
    )


def _backend_object_ref(with_weight: bool) -> Obj:
    properties: Obj = {
        "group": {**_GROUP_NAME, "default": ""},
        "kind": {**_KIND, "default": "Service"},
        "name": _NAME,
        "namespace": _NAMESPACE,
        "port": port(),
    }
    if with_weight:
        properties["weight"] = int32(minimum=0, maximum=1000000, default=1)
    return obj(properties, required=("name",))


def _header_modifier() -> Obj:
    header = obj(
        {"name": _HEADER_NAME, "value": string(minLength=1, maxLength=4096)}, required=("name", "value")
    )
    return obj(
        {
            "set": array(header, maxItems=16),
            "add": array(header, maxItems=16),
            "remove": strings(maxItems=16),
        }
    )


def _path_modifier() -> Obj:
    return obj(
        {
            "type": string(enum=("ReplaceFullPath", "ReplacePrefixMatch")),
            "replaceFullPath": string(maxLength=1024),
            "replacePrefixMatch": string(maxLength=1024),
        },
        required=("type",),
    )


def _filter() -> Obj:
    return obj(
        {
            "type": string(
                enum=(
                    "RequestHeaderModifier",
                    "ResponseHeaderModifier",
                    "RequestMirror",
                    "RequestRedirect",
                    "URLRewrite",
                    "ExtensionRef",
                    "CORS",  # the experimental channel's filter: Flagger's gatewayapi:v1 router writes it
                )
            ),
            "requestHeaderModifier": _header_modifier(),
            "responseHeaderModifier": _header_modifier(),
            "requestMirror": obj(
                {
                    "backendRef": _backend_object_ref(with_weight=False),
                    "percent": int32(minimum=0, maximum=100),
                    "fraction": obj(
                        {"numerator": int32(minimum=0), "denominator": int32(minimum=1, default=100)},
                        required=("numerator",),
                    ),
                },
                required=("backendRef",),
            ),
            "requestRedirect": obj(
                {
                    "scheme": string(enum=("http", "https")),
                    "hostname": _HOSTNAME,
                    "path": _path_modifier(),
                    "port": port(),
                    "statusCode": integer(enum=(301, 302), default=302),
                }
            ),
            "urlRewrite": obj({"hostname": _HOSTNAME, "path": _path_modifier()}),
            "cors": obj(
                {
                    "allowOrigins": strings(),
                    "allowCredentials": {"type": "boolean"},
                    "allowMethods": strings(),
                    "allowHeaders": strings(),
                    "exposeHeaders": strings(),
                    "maxAge": int32(minimum=1),
                }
            ),
            "extensionRef": obj(
                {"group": _GROUP_NAME, "kind": _KIND, "name": _NAME}, required=("group", "kind", "name")
            ),
        },
        required=("type",),
    )


def _match() -> Obj:
    value_match = obj(
        {
            "type": string(enum=("Exact", "RegularExpression"), default="Exact"),
            "name": _HEADER_NAME,
            "value": string(maxLength=4096),
        },
        required=("name", "value"),
    )
    return obj(
        {
            "path": obj(
                {
                    "type": string(enum=("Exact", "PathPrefix", "RegularExpression"), default="PathPrefix"),
                    "value": string(maxLength=1024, default="/"),
                },
                default={"type": "PathPrefix", "value": "/"},
            ),
            "headers": array(value_match, maxItems=16),
            "queryParams": array(value_match, maxItems=16),
            "method": string(
                enum=("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
            ),
        }
    )


def _rule() -> Obj:
    backend = _backend_object_ref(with_weight=True)
    backend["properties"]["filters"] = array(_filter(), maxItems=16)
    return obj(
        {
            "name": _SECTION,
            "matches": array(_match(), maxItems=64, default=[{"path": {"type": "PathPrefix", "value": "/"}}]),
            "filters": array(_filter(), maxItems=16),
            "backendRefs": array(backend, maxItems=16),
            "timeouts": obj({"request": _DURATION, "backendRequest": _DURATION}),
            "sessionPersistence": obj(
                {
                    "sessionName": string(maxLength=128),
                    "absoluteTimeout": _DURATION,
                    "idleTimeout": _DURATION,
                    "type": string(enum=("Cookie", "Header"), default="Cookie"),
                    "cookieConfig": obj({"lifetimeType": string(enum=("Permanent", "Session"))}),
                }
            ),
        }
    )


def _route_status() -> Obj:
    return obj(
        {
            "parents": array(
                obj(
                    {
                        "parentRef": _parent_ref(),
                        "controllerName": string(minLength=1, maxLength=253),
                        "conditions": conditions(minItems=1, maxItems=8),
                    },
                    required=("controllerName", "parentRef"),
                ),
                maxItems=32,
            )
        },
        required=("parents",),
    )


def httproute_schema() -> Obj:
    spec = obj(
        {
            "parentRefs": array(_parent_ref(), maxItems=32),
            "hostnames": array(_HOSTNAME, maxItems=16),
            "rules": array(
                _rule(), maxItems=16, default=[{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]
            ),
        }
    )
    return root(spec, _route_status(), required=("spec",))


def gateway_schema() -> Obj:
    secret_ref = obj(
        {
            "group": {**_GROUP_NAME, "default": ""},
            "kind": {**_KIND, "default": "Secret"},
            "name": _NAME,
            "namespace": _NAMESPACE,
        },
        required=("name",),
    )
    route_kind = obj({"group": _GROUP_NAME, "kind": _KIND}, required=("kind",))
    listener = obj(
        {
            "name": _SECTION,
            "hostname": _HOSTNAME,
            "port": port(),
            "protocol": string(minLength=1, maxLength=255),
            "tls": obj(
                {
                    "mode": string(enum=("Terminate", "Passthrough"), default="Terminate"),
                    "certificateRefs": array(secret_ref, maxItems=64),
                    "options": string_map(maxProperties=16),
                }
            ),
            "allowedRoutes": obj(
                {
                    "namespaces": obj(
                        {
                            "from": string(enum=("All", "Selector", "Same"), default="Same"),
                            "selector": label_selector(),
                        },
                        default={"from": "Same"},
                    ),
                    "kinds": array(route_kind, maxItems=8),
                },
                default={"namespaces": {"from": "Same"}},
            ),
        },
        required=("name", "port", "protocol"),
    )
    address = obj(
        {"type": string(default="IPAddress"), "value": string(minLength=1, maxLength=253)},
        required=("value",),
    )
    spec = obj(
        {
            "gatewayClassName": _NAME,
            "listeners": array(listener, minItems=1, maxItems=64),
            "addresses": array(address, maxItems=16),
            "infrastructure": obj(
                {
                    "labels": string_map(maxProperties=8),
                    "annotations": string_map(maxProperties=8),
                    "parametersRef": obj(
                        {"group": _GROUP_NAME, "kind": _KIND, "name": _NAME},
                        required=("group", "kind", "name"),
                    ),
                }
            ),
        },
        required=("gatewayClassName", "listeners"),
    )
    status = obj(
        {
            "addresses": array(address, maxItems=16),
            "conditions": conditions(maxItems=8),
            "listeners": array(
                obj(
                    {
                        "name": _SECTION,
                        "supportedKinds": array(route_kind, maxItems=8),
                        "attachedRoutes": int32(),
                        "conditions": conditions(maxItems=8),
                    },
                    required=("attachedRoutes", "conditions", "name", "supportedKinds"),
                ),
                maxItems=64,
            ),
        }
    )
    return root(spec, status, required=("spec",))


def gatewayclass_schema() -> Obj:
    spec = obj(
        {
            "controllerName": string(
                minLength=1,
                maxLength=253,
                pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$",
            ),
            "description": string(maxLength=64),
            "parametersRef": obj(
                {"group": _GROUP_NAME, "kind": _KIND, "name": _NAME, "namespace": _NAMESPACE},
                required=("group", "kind", "name"),
            ),
        },
        required=("controllerName",),
    )
    status = obj(
        {
            "conditions": conditions(maxItems=8),
            "supportedFeatures": array(obj({"name": string()}, required=("name",)), maxItems=64),
        }
    )
    return root(spec, status, required=("spec",))


def referencegrant_schema() -> Obj:
    spec = obj(
        {
            "from": array(
                obj(
                    {"group": _GROUP_NAME, "kind": _KIND, "namespace": _NAMESPACE},
                    required=("group", "kind", "namespace"),
                ),
                minItems=1,
                maxItems=16,
            ),
            "to": array(
                obj({"group": _GROUP_NAME, "kind": _KIND, "name": _NAME}, required=("group", "kind")),
                minItems=1,
                maxItems=16,
            ),
        },
        required=("from", "to"),
    )
    return root(spec)


def _served(schema: Obj, columns: list[Obj]) -> list[Obj]:
    return [version(v, schema, storage=v == "v1", status=True, columns=columns) for v in VERSIONS]


def gatewayapi_crds() -> list[Obj]:
    accepted = column("Accepted", '.status.conditions[?(@.type=="Accepted")].status')
    programmed = column("Programmed", '.status.conditions[?(@.type=="Programmed")].status')
    return [
        crd(
            GROUP,
            "GatewayClass",
            "gatewayclasses",
            _served(
                gatewayclass_schema(),
                [
                    column("Controller", ".spec.controllerName"),
                    accepted,
                    AGE,
                    column("Description", ".spec.description", priority=1),
                ],
            ),
            namespaced=False,
            short_names=("gc",),
            categories=CATEGORIES,
            labels=LABELS,
        ),
        crd(
            GROUP,
            "Gateway",
            "gateways",
            _served(
                gateway_schema(),
                [
                    column("Class", ".spec.gatewayClassName"),
                    column("Address", ".status.addresses[*].value"),
                    programmed,
                    AGE,
                ],
            ),
            short_names=("gtw",),
            categories=CATEGORIES,
            labels=LABELS,
        ),
        crd(
            GROUP,
            "HTTPRoute",
            "httproutes",
            _served(httproute_schema(), [column("Hostnames", ".spec.hostnames"), AGE]),
            categories=CATEGORIES,
            labels=LABELS,
        ),
        crd(
            GROUP,
            "ReferenceGrant",
            "referencegrants",
            [version("v1beta1", referencegrant_schema(), storage=True, columns=[AGE])],
            short_names=("refgrant",),
            categories=CATEGORIES,
            labels=LABELS,
        ),
    ]


CRDS: list[Obj] = gatewayapi_crds()
