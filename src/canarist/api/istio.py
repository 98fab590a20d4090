"""Routing shapes embedded in ``spec.service`` and ``spec.analysis`` (Istio and Gateway API types)."""

from __future__ import annotations

from typing import Any, ClassVar

from canarist.api._base import FlaggerModel, field

_INT32 = {"format": "int32"}
_DNS_SUBDOMAIN = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_KIND = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _one_of_at_most(*names: str) -> list[dict[str, Any]]:
    """oneOf branches meaning "none or exactly one of these keys"."""
    return [{"not": {"anyOf": [{"required": [n]} for n in names]}}, *({"required": [n]} for n in names)]


class StringMatch(FlaggerModel):
    """Istio StringMatch: at most one of exact, prefix, suffix (A/B header matches only), regex."""

    crd_schema: ClassVar[dict[str, Any]] = {"oneOf": _one_of_at_most("exact", "prefix", "suffix", "regex")}

    exact: str | None = field()
    prefix: str | None = field()
    suffix: str | None = field()
    regex: str | None = field(
        description="RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)."
    )


class HTTPMatchRequest(FlaggerModel):
    """Istio HTTPMatchRequest (``service.match[]`` and ``analysis.match[]``)."""

    name: str | None = field(description="The name assigned to a match.")
    uri: StringMatch | None = field()
    scheme: StringMatch | None = field()
    method: StringMatch | None = field()
    authority: StringMatch | None = field()
    headers: dict[str, StringMatch] = field(factory=dict)
    query_params: dict[str, StringMatch] = field(factory=dict, description="Query parameters for matching.")
    without_headers: dict[str, StringMatch] = field(factory=dict)
    port: int | None = field(check={"min": 0, "max": 65535})
    source_labels: dict[str, str] = field(factory=dict)
    source_namespace: str | None = field()
    gateways: list[str] = field(factory=list)
    ignore_uri_case: bool | None = field(alias="ignoreUriCase")


class HTTPRewrite(FlaggerModel):
    uri: str | None = field()
    authority: str | None = field()
    type: str | None = field(description="ReplaceFullPath (default) or ReplacePrefixMatch; Gateway API only")


class HTTPRetry(FlaggerModel):
    attempts: int | None = field(crd=_INT32, check={"min": 0})
    per_try_timeout: str | None = field(check={"duration": True})
    retry_on: str | None = field()


class HeaderOperations(FlaggerModel):
    add: dict[str, str] = field(factory=dict)
    set: dict[str, str] = field(factory=dict)
    remove: list[str] = field(factory=list)


class Headers(FlaggerModel):
    request: HeaderOperations | None = field()
    response: HeaderOperations | None = field()


class CorsPolicy(FlaggerModel):
    allow_origin: list[str] = field(factory=list)
    allow_origins: list[StringMatch] = field(factory=list)
    allow_methods: list[str] = field(factory=list)
    allow_headers: list[str] = field(factory=list)
    expose_headers: list[str] = field(factory=list)
    max_age: str | None = field(check={"duration": True})
    allow_credentials: bool | None = field()


class HTTPConnectionPool(FlaggerModel):
    h2_upgrade_policy: str | None = field(
        alias="h2UpgradePolicy", crd={"enum": ["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"]}
    )
    http1_max_pending_requests: int | None = field(alias="http1MaxPendingRequests", crd=_INT32)
    http2_max_requests: int | None = field(alias="http2MaxRequests", crd=_INT32)
    idle_timeout: str | None = field(check={"duration": True})
    max_requests_per_connection: int | None = field(crd=_INT32)
    max_retries: int | None = field(crd=_INT32)


class ConnectionPool(FlaggerModel):
    http: HTTPConnectionPool | None = field(description="HTTP connection pool settings.")


class HTTPCookie(FlaggerModel):
    name: str | None = field()
    path: str | None = field()
    ttl: str | None = field(check={"duration": True})


class ConsistentHash(FlaggerModel):
    http_header_name: str | None = field()
    http_cookie: HTTPCookie | None = field()
    use_source_ip: bool | None = field(alias="useSourceIp")
    http_query_parameter_name: str | None = field()
    minimum_ring_size: int | None = field(check={"min": 0})


class LocalityDistribute(FlaggerModel):
    from_: str | None = field(alias="from")
    to: dict[str, int] = field(factory=dict)


class LocalityFailover(FlaggerModel):
    from_: str | None = field(alias="from")
    to: str | None = field()


class LocalityLbSetting(FlaggerModel):
    distribute: list[LocalityDistribute] = field(factory=list)
    failover: list[LocalityFailover] = field(factory=list)
    enabled: bool | None = field()


class LoadBalancer(FlaggerModel):
    crd_schema: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {"required": ["simple"]},
            {
                "properties": {
                    "consistentHash": {
                        "oneOf": [
                            {"required": ["httpHeaderName"]},
                            {"required": ["httpCookie"]},
                            {"required": ["useSourceIp"]},
                            {"required": ["httpQueryParameterName"]},
                        ]
                    }
                },
                "required": ["consistentHash"],
            },
        ]
    }

    simple: str | None = field(
        crd={"enum": ["ROUND_ROBIN", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "LEAST_REQUEST"]}
    )
    consistent_hash: ConsistentHash | None = field()
    locality_lb_setting: LocalityLbSetting | None = field(alias="localityLbSetting")
    warmup_duration_secs: str | None = field(check={"duration": True})


class OutlierDetection(FlaggerModel):
    consecutive_errors: int | None = field(crd=_INT32, check={"min": 0})
    consecutive5xx_errors: int | None = field(alias="consecutive5xxErrors", check={"min": 0})
    consecutive_gateway_errors: int | None = field(crd=_INT32, check={"min": 0})
    consecutive_local_origin_failures: int | None = field(crd=_INT32, check={"min": 0})
    split_external_local_origin_errors: bool | None = field()
    interval: str | None = field(check={"duration": True})
    base_ejection_time: str | None = field(check={"duration": True})
    max_ejection_percent: int | None = field(crd=_INT32, check={"min": 0, "max": 100})
    min_health_percent: int | None = field(crd=_INT32, check={"min": 0, "max": 100})


class ClientTLS(FlaggerModel):
    mode: str | None = field(crd={"enum": ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]})
    client_certificate: str | None = field()
    private_key: str | None = field()
    ca_certificates: str | None = field()
    sni: str | None = field()
    subject_alt_names: list[str] = field(factory=list)


class TrafficPolicy(FlaggerModel):
    """Istio DestinationRule traffic policy, copied into both generated DestinationRules."""

    connection_pool: ConnectionPool | None = field()
    load_balancer: LoadBalancer | None = field()
    outlier_detection: OutlierDetection | None = field()
    tls: ClientTLS | None = field()


class ParentReference(FlaggerModel):
    """Gateway API parentRef (``service.gatewayRefs[]``)."""

    group: str | None = field(
        crd={"default": "gateway.networking.k8s.io", "maxLength": 253, "pattern": _DNS_SUBDOMAIN}
    )
    kind: str | None = field(crd={"default": "Gateway", "maxLength": 63, "minLength": 1, "pattern": _KIND})
    name: str = field("", crd={"required": True, "maxLength": 253, "minLength": 1})
    namespace: str | None = field(crd={"maxLength": 63, "minLength": 1, "pattern": _DNS_LABEL})
    section_name: str | None = field(
        crd={"maxLength": 253, "minLength": 1, "pattern": _DNS_SUBDOMAIN.removeprefix("^$|")}
    )
    port: int | None = field(crd={"format": "int32", "minimum": 1, "maximum": 65535})


class BackendObjectReference(FlaggerModel):
    group: str | None = field(crd={"default": "", "maxLength": 253, "pattern": _DNS_SUBDOMAIN})
    kind: str | None = field(crd={"default": "Service", "maxLength": 63, "minLength": 1, "pattern": _KIND})
    name: str = field("", crd={"required": True, "maxLength": 253, "minLength": 1})
    namespace: str | None = field(crd={"maxLength": 63, "minLength": 1, "pattern": _DNS_LABEL})
    port: int | None = field(crd={"format": "int32", "minimum": 1, "maximum": 65535})

    crd_schema: ClassVar[dict[str, Any]] = {
        "x-kubernetes-validations": [
            {
                "message": "Must have port for Service reference",
                "rule": "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true",
            }
        ]
    }


class HTTPRequestMirror(FlaggerModel):
    """Gateway API HTTPRequestMirrorFilter (``service.mirror[]``)."""

    backend_ref: BackendObjectReference = field(factory=BackendObjectReference, crd={"required": True})
