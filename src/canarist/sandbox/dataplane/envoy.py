"""Small builders of Envoy route pieces, shared by the translators (plain dicts in Envoy's v3 JSON).

Matchers (`string_match`, `path_match`, `header_match`, `query_match`, `route_match`), actions
(`Backend`, `route_action` with weights, the weight header, mirrors, retries, timeout and rewrites), header
operations (`header_set`, `header_add`), `fault_config`, `route`, `tcp_proxy` and `parse_duration_s`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from canarist.sandbox.dataplane.base import Obj

__all__ = [
    "CLUSTER_TYPE",
    "FAULT_FILTER",
    "FAULT_TYPE",
    "HCM_TYPE",
    "LISTENER_TYPE",
    "ROUTER_TYPE",
    "ROUTE_TYPE",
    "TCP_PROXY_FILTER",
    "TCP_PROXY_TYPE",
    "Backend",
    "MatchKind",
    "duration",
    "fault_config",
    "fraction",
    "header_add",
    "header_match",
    "header_set",
    "mirror_policy",
    "parse_duration_s",
    "path_match",
    "query_match",
    "retry_policy",
    "route",
    "route_action",
    "route_match",
    "string_match",
    "tcp_proxy",
]

_TYPE = "type.googleapis.com/"
HCM_TYPE = _TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TCP_PROXY_TYPE = _TYPE + "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
ROUTER_TYPE = _TYPE + "envoy.extensions.filters.http.router.v3.Router"
FAULT_TYPE = _TYPE + "envoy.extensions.filters.http.fault.v3.HTTPFault"
LISTENER_TYPE = _TYPE + "envoy.config.listener.v3.Listener"
CLUSTER_TYPE = _TYPE + "envoy.config.cluster.v3.Cluster"
ROUTE_TYPE = _TYPE + "envoy.config.route.v3.RouteConfiguration"
FAULT_FILTER = "envoy.filters.http.fault"  # every HTTP listener has it; configure it per route
TCP_PROXY_FILTER = "envoy.filters.network.tcp_proxy"

MatchKind = Literal["exact", "prefix", "suffix", "contains", "regex", "present"]


# ------------------------------------------------------------------------------------------------ values


def parse_duration_s(value: Any) -> float | None:
    """Durations like ``5s``, ``250ms``, ``1m``, ``1h``, ``1m30s``, ``1.5s`` in seconds; ``None`` if
    unparsable."""
    if value is None:
        return None
    text = str(value).strip()
    total = 0.0
    matched = False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text):
        matched = True
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return total if matched else None


def duration(seconds: float) -> str:
    """An Envoy duration (``"1.500s"``)."""
    return f"{seconds:.3f}s"


def fraction(percent: float) -> Obj:
    """A ``FractionalPercent`` of ``percent`` (clamped to 0..100)."""
    value = min(max(float(percent), 0.0), 100.0)
    return {"numerator": round(value * 10_000), "denominator": "MILLION"}


# ------------------------------------------------------------------------------------------------ matches


def string_match(kind: MatchKind, value: str = "", *, ignore_case: bool = False) -> Obj:
    """An Envoy ``StringMatcher`` (``present`` is not one: use it with `header_match`/`query_match`)."""
    if kind == "regex":
        return {"safe_regex": {"regex": value}}
    if kind == "present":
        raise ValueError("'present' is not a string match")
    out: Obj = {kind: value}
    if ignore_case:
        out["ignore_case"] = True
    return out


def path_match(kind: Literal["exact", "prefix", "regex", "path_separated_prefix"], value: str) -> Obj:
    """The path part of a ``RouteMatch``: ``{"path": …}``, ``{"prefix": …}``, ``{"safe_regex": …}`` or
    ``{"path_separated_prefix": …}`` (Gateway API's ``PathPrefix``: ``/api`` matches ``/api/x``, not
    ``/apix``)."""
    if kind == "exact":
        return {"path": value}
    if kind == "regex":
        return {"safe_regex": {"regex": value}}
    if kind == "path_separated_prefix":
        value = value.rstrip("/")
        return {"path_separated_prefix": value} if value else {"prefix": "/"}
    return {"prefix": value}


def header_match(name: str, kind: MatchKind = "present", value: str = "", *, invert: bool = False) -> Obj:
    """A ``HeaderMatcher``; ``kind="present"`` matches the header being there, ``invert`` negates."""
    out: Obj = {"name": name.lower() if not name.startswith(":") else name}
    if invert:
        out["invert_match"] = True
    if kind == "present":
        out["present_match"] = True
    else:
        out["string_match"] = string_match(kind, value)
    return out


def query_match(name: str, kind: MatchKind = "present", value: str = "") -> Obj:
    """A ``QueryParameterMatcher``."""
    if kind == "present":
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": string_match(kind, value)}


def route_match(
    path: Mapping[str, Any] | None = None,
    *,
    headers: Sequence[Obj] = (),
    query: Sequence[Obj] = (),
    case_sensitive: bool = True,
) -> Obj:
    """A ``RouteMatch``: ``path`` from `path_match` (default: prefix ``/``), then headers and query
    parameters (all must match)."""
    out: Obj = dict(path) if path else {"prefix": "/"}
    if not case_sensitive:
        out["case_sensitive"] = False
    if headers:
        out["headers"] = list(headers)
    if query:
        out["query_parameters"] = list(query)
    return out


# ------------------------------------------------------------------------------------------------ actions


@dataclass(frozen=True)
class Backend:
    """One destination of a route: a cluster, its weight, and header operations applied only to requests
    sent to it (Envoy's per-``ClusterWeight`` ``request_headers_to_add``/``_remove``)."""

    cluster: str
    weight: int = 1
    request_headers_to_add: tuple[Obj, ...] = ()
    request_headers_to_remove: tuple[str, ...] = ()


def mirror_policy(cluster: str, percent: float = 100.0) -> Obj:
    """A ``RequestMirrorPolicy`` copying ``percent`` % of requests to ``cluster``."""
    return {"cluster": cluster, "runtime_fraction": {"default_value": fraction(percent)}}


def retry_policy(
    retry_on: str | Sequence[str],
    num_retries: int,
    *,
    per_try_timeout: float | None = None,
    retriable_status_codes: Sequence[int] = (),
) -> Obj:
    """A ``RetryPolicy``; with status codes, ``retriable-status-codes`` is added to ``retry_on``."""
    conditions = [c.strip() for c in (retry_on.split(",") if isinstance(retry_on, str) else retry_on)]
    conditions = [c for c in conditions if c]
    if retriable_status_codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    policy: Obj = {"retry_on": ",".join(conditions), "num_retries": int(num_retries)}
    if retriable_status_codes:
        policy["retriable_status_codes"] = [int(c) for c in retriable_status_codes]
    if per_try_timeout:
        policy["per_try_timeout"] = duration(per_try_timeout)
    return policy


def route_action(
    backends: Sequence[Backend],
    *,
    weight_header: str = "",
    timeout: float | None = None,
    retry: Obj | None = None,
    mirrors: Sequence[Obj] = (),
    prefix_rewrite: str | None = None,
    regex_rewrite: tuple[str, str] | None = None,
    host_rewrite: str | None = None,
) -> Obj:
    """A ``RouteAction``. One backend without header operations is a plain ``cluster``; otherwise
    ``weighted_clusters`` with ``header_name = weight_header`` (a request carrying that header, an integer,
    picks its destination by that number instead of at random, so a client sending 0, 1, 2... is split
    exactly by the weights). ``timeout`` in seconds (``0``: none; ``None``: Envoy's default, 15 s);
    ``regex_rewrite`` is ``(pattern, substitution)``."""
    action: Obj = {}
    if (
        len(backends) == 1
        and not backends[0].request_headers_to_add
        and not backends[0].request_headers_to_remove
    ):
        action["cluster"] = backends[0].cluster
    else:
        clusters: list[Obj] = []
        for backend in backends:
            entry: Obj = {"name": backend.cluster, "weight": int(backend.weight)}
            if backend.request_headers_to_add:
                entry["request_headers_to_add"] = list(backend.request_headers_to_add)
            if backend.request_headers_to_remove:
                entry["request_headers_to_remove"] = list(backend.request_headers_to_remove)
            clusters.append(entry)
        action["weighted_clusters"] = {"clusters": clusters}
        if weight_header:
            action["weighted_clusters"]["header_name"] = weight_header
    if timeout is not None:
        action["timeout"] = duration(timeout)
    if retry is not None:
        action["retry_policy"] = retry
    if mirrors:
        action["request_mirror_policies"] = list(mirrors)
    if prefix_rewrite is not None:
        action["prefix_rewrite"] = prefix_rewrite
    if regex_rewrite is not None:
        action["regex_rewrite"] = {"pattern": {"regex": regex_rewrite[0]}, "substitution": regex_rewrite[1]}
    if host_rewrite is not None:
        action["host_rewrite_literal"] = host_rewrite
    return action


def header_set(name: str, value: str) -> Obj:
    """A ``HeaderValueOption`` replacing the header (or adding it)."""
    return {"header": {"key": name, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}


def header_add(name: str, value: str) -> Obj:
    """A ``HeaderValueOption`` appending a value to the header (or adding it)."""
    return {"header": {"key": name, "value": value}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}


def fault_config(
    *,
    abort_status: int | None = None,
    abort_percent: float = 100.0,
    delay_s: float | None = None,
    delay_percent: float = 100.0,
) -> Obj | None:
    """The per-route config of the fault filter (for ``typed_per_filter_config[FAULT_FILTER]``), or ``None``
    when there is neither an abort nor a delay."""
    out: Obj = {}
    if abort_status:
        out["abort"] = {"http_status": int(abort_status), "percentage": fraction(abort_percent)}
    if delay_s is not None:
        out["delay"] = {"fixed_delay": duration(delay_s), "percentage": fraction(delay_percent)}
    return {"@type": FAULT_TYPE, **out} if out else None


def route(
    match: Mapping[str, Any],
    action: Mapping[str, Any],
    *,
    name: str = "",
    request_headers_to_add: Sequence[Obj] = (),
    request_headers_to_remove: Sequence[str] = (),
    response_headers_to_add: Sequence[Obj] = (),
    response_headers_to_remove: Sequence[str] = (),
    fault: Obj | None = None,
) -> Obj:
    """A ``Route``: ``match`` (from `route_match`), ``action`` (from `route_action`) and route-level header
    operations and fault (from `fault_config`)."""
    out: Obj = {}
    if name:
        out["name"] = name
    out["match"] = dict(match)
    out["route"] = dict(action)
    if request_headers_to_add:
        out["request_headers_to_add"] = list(request_headers_to_add)
    if request_headers_to_remove:
        out["request_headers_to_remove"] = list(request_headers_to_remove)
    if response_headers_to_add:
        out["response_headers_to_add"] = list(response_headers_to_add)
    if response_headers_to_remove:
        out["response_headers_to_remove"] = list(response_headers_to_remove)
    if fault is not None:
        out["typed_per_filter_config"] = {FAULT_FILTER: fault}
    return out


def tcp_proxy(stat_prefix: str, backends: Sequence[Backend]) -> Obj:
    """A ``tcp_proxy`` network filter to one cluster or weighted clusters."""
    config: Obj = {"@type": TCP_PROXY_TYPE, "stat_prefix": stat_prefix}
    if len(backends) == 1:
        config["cluster"] = backends[0].cluster
    else:
        config["weighted_clusters"] = {
            "clusters": [{"name": b.cluster, "weight": int(b.weight)} for b in backends]
        }
    return {"name": TCP_PROXY_FILTER, "typed_config": config}
