"""Contour (`projectcontour.io/v1`): HTTPProxy, with a `/status` subresource.

Typed: `spec.virtualhost` (fqdn, tls), `spec.routes[]` (match conditions, weighted services with header
policies and mirroring, timeout, retry, load-balancer and path-rewrite policies, websockets, insecure
permission), `spec.includes[]` (name, namespace, conditions), `spec.ingressClassName`, and the status
(currentStatus, description, conditions with their error and warning sub-conditions, load balancer).

Free-form (`x-kubernetes-preserve-unknown-fields`), sub-trees too large to type here: the virtual host's
`corsPolicy`, `rateLimitPolicy`, `authorization`, `jwtProviders` and IP filter policies, TLS
`clientValidation`, a route's `healthCheckPolicy`, `rateLimitPolicy`, `authPolicy`,
`requestRedirectPolicy`, `directResponsePolicy`, `cookieRewritePolicies`, `jwtVerificationPolicy` and IP
filter policies, a service's upstream `validation` and `slowStartPolicy`, and `spec.tcpproxy`.
"""

from __future__ import annotations

from canarist.localcluster.crds._schema import (
    Obj,
    array,
    boolean,
    column,
    conditions,
    crd,
    free,
    int64,
    obj,
    port,
    root,
    string,
    strings,
    version,
)

GROUP = "projectcontour.io"
VERSION = "v1"


def _match_condition() -> Obj:
    header = obj(
        {
            "name": string(),
            "present": boolean(),
            "notpresent": boolean(),
            "contains": string(),
            "notcontains": string(),
            "exact": string(),
            "notexact": string(),
            "regex": string(),
            "ignoreCase": boolean(),
            "treatMissingAsEmpty": boolean(),
        },
        required=("name",),
    )
    query = obj(
        {
            "name": string(),
            "exact": string(),
            "prefix": string(),
            "suffix": string(),
            "regex": string(),
            "contains": string(),
            "ignoreCase": boolean(),
            "present": boolean(),
        },
        required=("name",),
    )
    return obj(
        {"prefix": string(), "exact": string(), "regex": string(), "header": header, "queryParameter": query}
    )


def _headers_policy() -> Obj:
    return obj(
        {
            "set": array(
                obj({"name": string(minLength=1), "value": string(minLength=1)}, required=("name", "value"))
            ),
            "remove": strings(),
        }
    )


def _service() -> Obj:
    return obj(
        {
            "name": string(),
            "port": port(),
            "protocol": string(enum=("h2", "h2c", "tls")),
            "weight": int64(minimum=0),
            "mirror": boolean(),
            "requestHeadersPolicy": _headers_policy(),
            "responseHeadersPolicy": _headers_policy(),
            "validation": free(),
            "slowStartPolicy": free(),
            "cookieRewritePolicies": array(free()),
        },
        required=("name", "port"),
    )


def _route() -> Obj:
    return obj(
        {
            "conditions": array(_match_condition()),
            "services": array(_service()),
            "enableWebsockets": boolean(),
            "permitInsecure": boolean(),
            "timeoutPolicy": obj(
                {
                    "response": string(
                        pattern=r"^(((\d*(\.\d*)?h)|(\d*(\.\d*)?m)|(\d*(\.\d*)?s)|(\d*(\.\d*)?ms)|(\d*(\.\d*)?us)|(\d*(\.\d*)?µs)|(\d*(\.\d*)?ns))+|infinity|infinite)$"
                    ),
                    "idle": string(
                        pattern=r"^(((\d*(\.\d*)?h)|(\d*(\.\d*)?m)|(\d*(\.\d*)?s)|(\d*(\.\d*)?ms)|(\d*(\.\d*)?us)|(\d*(\.\d*)?µs)|(\d*(\.\d*)?ns))+|infinity|infinite)$"
                    ),
                    "idleConnection": string(),
                }
            ),
            "retryPolicy": obj(
                {
                    "count": int64(minimum=0),
                    "perTryTimeout": string(),
                    "retryOn": array(
                        string(
                            enum=(
                                "5xx",
                                "gateway-error",
                                "reset",
                                "connect-failure",
                                "retriable-4xx",
                                "refused-stream",
                                "retriable-status-codes",
                                "retriable-headers",
                                "cancelled",
                                "deadline-exceeded",
                                "internal",
                                "resource-exhausted",
                                "unavailable",
                            )
                        )
                    ),
                    "retriableStatusCodes": array(int64()),
                }
            ),
            "loadBalancerPolicy": obj({"strategy": string(), "requestHashPolicies": array(free())}),
            "pathRewritePolicy": obj(
                {
                    "replacePrefix": array(
                        obj(
                            {"prefix": string(minLength=1), "replacement": string(minLength=1)},
                            required=("replacement",),
                        )
                    )
                }
            ),
            "requestHeadersPolicy": _headers_policy(),
            "responseHeadersPolicy": _headers_policy(),
            "healthCheckPolicy": free(),
            "rateLimitPolicy": free(),
            "authPolicy": free(),
            "requestRedirectPolicy": free(),
            "directResponsePolicy": free(),
            "cookieRewritePolicies": array(free()),
            "jwtVerificationPolicy": free(),
            "ipAllowPolicy": array(free()),
            "ipDenyPolicy": array(free()),
        }
    )


def _status() -> Obj:
    sub_condition = obj(
        {"type": string(), "reason": string(), "message": string()}, required=("message", "type")
    )
    detailed = conditions()
    detailed["items"]["properties"]["errors"] = array(sub_condition)
    detailed["items"]["properties"]["warnings"] = array(sub_condition)
    address = obj(
        {
            "ip": string(),
            "hostname": string(),
            "ports": array(
                obj({"port": int64(), "protocol": string(), "error": string()}, required=("port", "protocol"))
            ),
        }
    )
    return obj(
        {
            "currentStatus": string(),
            "description": string(),
            "conditions": detailed,
            "loadBalancer": obj({"ingress": array(address)}),
        }
    )


def httpproxy_schema() -> Obj:
    virtualhost = obj(
        {
            "fqdn": string(),
            "tls": obj(
                {
                    "secretName": string(),
                    "minimumProtocolVersion": string(),
                    "maximumProtocolVersion": string(),
                    "passthrough": boolean(),
                    "enableFallbackCertificate": boolean(),
                    "clientValidation": free(),
                }
            ),
            "corsPolicy": free(),
            "rateLimitPolicy": free(),
            "authorization": free(),
            "jwtProviders": array(free()),
            "ipAllowPolicy": array(free()),
            "ipDenyPolicy": array(free()),
        },
        required=("fqdn",),
    )
    spec = obj(
        {
            "virtualhost": virtualhost,
            "routes": array(_route()),
            "includes": array(
                obj(
                    {"name": string(), "namespace": string(), "conditions": array(_match_condition())},
                    required=("name",),
                )
            ),
            "tcpproxy": free(),
            "ingressClassName": string(),
        }
    )
    return root(spec, _status(), required=("metadata", "spec"))


def contour_crds() -> list[Obj]:
    columns = [
        column("FQDN", ".spec.virtualhost.fqdn", description="Fully qualified domain name"),
        column("TLS Secret", ".spec.virtualhost.tls.secretName", description="Secret with TLS credentials"),
        column("Status", ".status.currentStatus", description="The current status of the HTTPProxy"),
        column("Status Description", ".status.description", description="Description of the current status"),
    ]
    return [
        crd(
            GROUP,
            "HTTPProxy",
            "httpproxies",
            [version(VERSION, httpproxy_schema(), storage=True, status=True, columns=columns)],
            short_names=("proxy", "proxies"),
        )
    ]


CRDS: list[Obj] = contour_crds()
