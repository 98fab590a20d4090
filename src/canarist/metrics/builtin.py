"""Flagger's builtin metrics ``request-success-rate`` and ``request-duration``, one query pair per mesh.

The templates are Flagger's (``pkg/metrics/observers``), written here on one line each. Flagger keeps them as
indented multi-line strings starting with a newline, so after whitespace collapsing the query that reaches
Prometheus starts with one space (`` sum( rate( ...``); :func:`builtin_query` reproduces exactly that.

Observer selection: :func:`metrics_provider_name` turns the operator's ``-mesh-provider`` flag, the
canary's ``spec.provider`` and its target kind into Flagger's "metrics provider" string, and
:func:`observer_for` picks the observer for it. Unknown names fall back to Istio, as in Flagger
(docs/flagger-parity.md#builtin-metrics).

The ``:service`` quirk: for a ``Service`` target (not Knative) Flagger appends ``:service`` to the
provider name. The observers that are matched by prefix (``appmesh``, ``gloo``, ``gatewayapi``) still match;
every other one (``kubernetes:service``, ``nginx:service``, ``contour:service``...) falls through to the
Istio observer. canarist keeps this behaviour so that it sends the very queries Flagger sends (a drop-in
must not change what a dashboard or an alert sees); :attr:`Observer.fallback` is True in that case so the
caller can log it. Users with Service targets normally use MetricTemplates, which are unaffected
(docs/flagger-parity.md#flagger-quirks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from canarist.metrics.template import TemplateModel, collapse_whitespace, render

__all__ = [
    "REQUEST_DURATION",
    "REQUEST_SUCCESS_RATE",
    "Observer",
    "builtin_query",
    "duration_milliseconds",
    "is_builtin",
    "metrics_provider_name",
    "observer_for",
]

REQUEST_SUCCESS_RATE: Final = "request-success-rate"
REQUEST_DURATION: Final = "request-duration"


def is_builtin(metric_name: str) -> bool:
    """True for the two builtin metric names."""
    return metric_name in (REQUEST_SUCCESS_RATE, REQUEST_DURATION)


@dataclass(frozen=True)
class Observer:
    """The builtin query pair of one mesh."""

    name: str
    success_rate: str
    duration: str
    #: the duration query returns seconds (the generic HTTP observer); Flagger multiplies by 1000.
    duration_in_seconds: bool = False
    #: replace every non-word character of the model's names by ``_`` (Skipper's route names).
    encode_model: bool = False
    #: the provider name was not recognised and the Istio observer was used instead.
    fallback: bool = False


_CONTOUR_LIKE_SUCCESS = (
    'sum( rate( envoy_cluster_upstream_rq{ {selector}, envoy_response_code!~"5.*" }[{{ interval }}] ) ) / '
    "sum( rate( envoy_cluster_upstream_rq{ {selector}, }[{{ interval }}] ) ) * 100"
)
_CONTOUR_LIKE_DURATION = "histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ {selector}, }[{{ interval }}] ) ) by (le) )"


def _contour_like(name: str, selector: str) -> Observer:
    return Observer(
        name=name,
        success_rate=_CONTOUR_LIKE_SUCCESS.replace("{selector}", selector),
        duration=_CONTOUR_LIKE_DURATION.replace("{selector}", selector),
    )


ISTIO: Final = Observer(
    name="istio",
    success_rate=(
        'sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="{{ namespace }}", '
        'destination_workload=~"{{ target }}", response_code!~"5.*" }[{{ interval }}] ) ) / '
        'sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="{{ namespace }}", '
        'destination_workload=~"{{ target }}" }[{{ interval }}] ) ) * 100'
    ),
    duration=(
        "histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ "
        'reporter="destination", destination_workload_namespace="{{ namespace }}", '
        'destination_workload=~"{{ target }}" }[{{ interval }}] ) ) by (le) )'
    ),
)

LINKERD: Final = Observer(
    name="linkerd",
    success_rate=(
        'sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", '
        'classification!="failure", direction="inbound" }[{{ interval }}] ) ) / '
        'sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", '
        'direction="inbound" }[{{ interval }}] ) ) * 100'
    ),
    duration=(
        'histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="{{ namespace }}", '
        'deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) by (le) )'
    ),
)

_APPMESH_POD = (
    'kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'
)

APPMESH: Final = Observer(
    name="appmesh",
    success_rate=(
        f'sum( rate( envoy_cluster_upstream_rq{{ {_APPMESH_POD}, envoy_response_code!~"5.*" }}[{{{{ interval }}}}] ) ) / '
        f"sum( rate( envoy_cluster_upstream_rq{{ {_APPMESH_POD} }}[{{{{ interval }}}}] ) ) * 100"
    ),
    duration=(
        f"histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{{ {_APPMESH_POD} }}"
        "[{{ interval }}] ) ) by (le) )"
    ),
)

_NGINX = 'namespace="{{ namespace }}", ingress="{{ ingress }}", canary!=""'

NGINX: Final = Observer(
    name="nginx",
    success_rate=(
        f'sum( rate( nginx_ingress_controller_requests{{ {_NGINX}, status!~"5.*" }}[{{{{ interval }}}}] ) ) / '
        f"sum( rate( nginx_ingress_controller_requests{{ {_NGINX} }}[{{{{ interval }}}}] ) ) * 100"
    ),
    # a mean, not a p99 (as in Flagger)
    duration=(
        f"sum( rate( nginx_ingress_controller_response_duration_seconds_sum{{ {_NGINX} }}[{{{{ interval }}}}] ) ) / "
        f"sum( rate( nginx_ingress_controller_response_duration_seconds_count{{ {_NGINX} }}[{{{{ interval }}}}] ) ) * 1000"
    ),
)

CONTOUR: Final = _contour_like(
    "contour", 'envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"'
)
GLOO: Final = _contour_like(
    "gloo", 'envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'
)
KUMA: Final = _contour_like("kuma", 'service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"')
KNATIVE: Final = _contour_like("knative", 'envoy_cluster_name=~"{{ namespace }}/{{ route }}"')

_SKIPPER_ROUTE = (
    '{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }}'
)

SKIPPER: Final = Observer(
    name="skipper",
    success_rate=(
        'sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",code!~"5..",le="+Inf"}[{{ interval }}])) / '
        'sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",le="+Inf"}[{{ interval }}])) * 100'
    ),
    duration=(
        'sum(rate(skipper_serve_route_duration_seconds_sum{route=~"{{ $route }}"}[{{ interval }}])) / '
        'sum(rate(skipper_serve_route_duration_seconds_count{route=~"{{ $route }}"}[{{ interval }}])) * 1000'
    ),
    encode_model=True,
)

_TRAEFIK = 'service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"'

TRAEFIK: Final = Observer(
    name="traefik",
    success_rate=(
        f'sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK}, code!~"5..", le="+Inf" }}[{{{{ interval }}}}] ) ) / '
        f'sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK}, le="+Inf" }}[{{{{ interval }}}}] ) ) * 100'
    ),
    duration=(
        f"histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{{ {_TRAEFIK} }}"
        "[{{ interval }}] ) ) by (le) ) * 1000"
    ),
)

_APISIX = 'route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"'

APISIX: Final = Observer(
    name="apisix",
    success_rate=(
        f'sum( rate( apisix_http_status{{ {_APISIX}, code!~"5.." }}[{{{{ interval }}}}] ) ) / '
        f"sum( rate( apisix_http_status{{ {_APISIX} }}[{{{{ interval }}}}] ) ) * 100"
    ),
    duration=(
        f'histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{{ type=~"request", {_APISIX} }}'
        "[{{ interval }}] ) ) by (le) )"
    ),
)

_OSM = (
    'destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}"'
)

OSM: Final = Observer(
    name="osm",
    success_rate=(
        f'sum( rate( osm_request_total{{ {_OSM}, response_code!~"5.*" }}[{{{{ interval }}}}] ) ) / '
        f"sum( rate( osm_request_total{{ {_OSM} }}[{{{{ interval }}}}] ) ) * 100"
    ),
    duration=(
        f"histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{{ {_OSM} }}[{{{{ interval }}}}] ) ) by (le) )"
    ),
)

HTTP: Final = Observer(
    name="http",
    success_rate=(
        f'sum( rate( http_request_duration_seconds_count{{ {_APPMESH_POD}, status!~"5.*" }}[{{{{ interval }}}}] ) ) / '
        f"sum( rate( http_request_duration_seconds_count{{ {_APPMESH_POD} }}[{{{{ interval }}}}] ) ) * 100"
    ),
    duration=(
        f"histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{{ {_APPMESH_POD} }}"
        "[{{ interval }}] ) ) by (le) )"
    ),
    duration_in_seconds=True,
)

#: every observer, by name (for docs and tests).
OBSERVERS: Final = {
    observer.name: observer
    for observer in (
        ISTIO,
        LINKERD,
        APPMESH,
        NGINX,
        CONTOUR,
        GLOO,
        KUMA,
        KNATIVE,
        SKIPPER,
        TRAEFIK,
        APISIX,
        OSM,
        HTTP,
    )
}

_EXACT: Final = {
    "linkerd": LINKERD,
    "istio": ISTIO,
    "contour": CONTOUR,
    "nginx": NGINX,
    "kubernetes": HTTP,
    "skipper": SKIPPER,
    "traefik": TRAEFIK,
    "osm": OSM,
    "kuma": KUMA,
    "apisix": APISIX,
    "knative": KNATIVE,
}
_PREFIX: Final = (("appmesh", APPMESH), ("gloo", GLOO), ("gatewayapi", HTTP))


def metrics_provider_name(
    mesh_provider: str, canary_provider: str = "", target_kind: str = "", target_api_version: str = ""
) -> str:
    """Flagger's metrics-provider string for a canary.

    ``mesh_provider`` is the operator's ``-mesh-provider`` flag (``crossover`` when it contains
    "crossover"); the canary's ``spec.provider`` wins unless the flag contains "linkerd"; a ``Service``
    target that is not a Knative Service gets ``:service`` appended.
    """
    name = "crossover" if "crossover" in mesh_provider else mesh_provider
    if canary_provider:
        name = "linkerd" if "linkerd" in mesh_provider else canary_provider
    if target_kind == "Service" and not target_api_version.startswith("serving.knative.dev"):
        name += ":service"
    return name


def observer_for(provider: str) -> Observer:
    """The observer for a metrics-provider string; unknown names (``smi:*``, ``*:service``,
    ``crossover``...) get the Istio observer with ``fallback=True``."""
    for prefix, observer in _PREFIX:
        if provider.startswith(prefix):
            return observer
    if provider in _EXACT:
        return _EXACT[provider]
    return replace(ISTIO, fallback=provider != "istio")


_NON_WORD = re.compile(r"\W", re.ASCII)


def _encode_for_skipper(model: TemplateModel) -> TemplateModel:
    return replace(
        model,
        name=_NON_WORD.sub("_", model.name),
        namespace=_NON_WORD.sub("_", model.namespace),
        ingress=_NON_WORD.sub("_", model.ingress),
        service=_NON_WORD.sub("_", model.service),
        target=_NON_WORD.sub("_", model.target),
    )


def query_template(observer: Observer, metric_name: str) -> str:
    """The raw template (as Flagger keeps it: starting with a newline) of a builtin metric."""
    if metric_name == REQUEST_SUCCESS_RATE:
        body = observer.success_rate
    elif metric_name == REQUEST_DURATION:
        body = observer.duration
    else:
        raise ValueError(f"{metric_name!r} is not a builtin metric")
    prelude = _SKIPPER_ROUTE if observer.encode_model else ""
    return prelude + "\n\t" + body


def builtin_query(observer: Observer, metric_name: str, model: TemplateModel) -> str:
    """The whitespace-collapsed PromQL Flagger sends for a builtin metric (with its leading space)."""
    if observer.encode_model:
        model = _encode_for_skipper(model)
    return collapse_whitespace(render(query_template(observer, metric_name), model))


def duration_milliseconds(observer: Observer, value: float) -> int:
    """The duration query's value as whole milliseconds, as Flagger converts it (truncating)."""
    if observer.duration_in_seconds:
        value *= 1000
    return int(value)


# ---------------------------------------------------------------------------------------------- comparisons

#: the observers whose success-rate query selects the workload by ``{{ target }}`` alone, so that the same
#: query with ``target`` set to ``<target>-primary`` reads the primary (docs/metrics.md, "Comparing with
#: the primary"); the others select routes or clusters named after the canary's objects.
COMPARABLE: Final = frozenset({"istio", "linkerd"})


class NotComparable(ValueError):
    """The builtin queries of this mesh cannot be run for the primary."""


def count_queries(observer: Observer, model: TemplateModel) -> tuple[str, str]:
    """The (successful requests, all requests) counts over the interval behind the success-rate query
    of ``observer``, for the workload ``model.target``: each side of its ratio with ``rate`` turned into
    ``increase``."""
    if observer.name not in COMPARABLE:
        raise NotComparable(
            f"the {observer.name} builtin queries cannot be run for the primary; compare supports "
            f"{', '.join(sorted(COMPARABLE))}"
        )
    ratio = observer.success_rate
    successes, _, rest = ratio.partition(" ) ) / ")
    total = rest.removesuffix(" ) ) * 100")
    if not successes or total == rest:
        raise NotComparable(f"the {observer.name} success-rate query is not a ratio of two sums")

    def counts(part: str) -> str:
        return collapse_whitespace(render(part.replace("rate(", "increase(", 1) + " ) )", model))

    return counts(successes), counts(total)
