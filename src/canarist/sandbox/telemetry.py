"""Names and constants shared by the sandbox's telemetry: what each provider's builtin queries read.

The demo app (`canarist.sandbox.demo_app`) exports, per counted request, the series that the builtin
``request-success-rate`` / ``request-duration`` queries of `canarist.metrics.builtin` select for every
provider the sandbox can route for (docs/sandbox.md#telemetry-per-provider):

* Istio: ``istio_requests_total`` / ``istio_request_duration_milliseconds`` (destination sidecar);
* podinfo itself (the ``kubernetes`` and ``gatewayapi`` observers): ``http_request_duration_seconds``;
* Linkerd (inbound proxy): ``response_total`` / ``response_latency_ms``;
* OSM: ``osm_request_total`` / ``osm_request_duration_ms``;
* App Mesh (the pod's Envoy sidecar): ``envoy_cluster_upstream_rq`` / ``envoy_cluster_upstream_rq_time``;
* NGINX ingress controller, only for requests that came through an ingress (the gateway says so with
  :data:`INGRESS_HEADER` and, for the canary Ingress's backend, :data:`INGRESS_CANARY_HEADER`):
  ``nginx_ingress_controller_requests`` / ``nginx_ingress_controller_response_duration_seconds``;
* Traefik, only for requests it routed to a Kubernetes Service (the gateway names that service with
  :data:`TRAEFIK_SERVICE_HEADER`): ``traefik_service_requests_total`` /
  ``traefik_service_request_duration_seconds``;
* Skipper, only for requests it routed (the gateway names the Skipper route with :data:`SKIPPER_ROUTE_HEADER`):
  ``skipper_response_duration_seconds`` / ``skipper_serve_route_duration_seconds``;
* APISIX, only for requests it routed (the gateway names the APISIX route with :data:`APISIX_ROUTE_HEADER`):
  ``apisix_http_status`` / ``apisix_http_latency``;
* Kuma (the pod's dataplane Envoy), only for requests sent to a Kuma service tag (the sidecar names it with
  :data:`KUMA_SERVICE_HEADER`): ``envoy_cluster_upstream_rq`` / ``envoy_cluster_upstream_rq_time`` with the
  dataplane's tag as ``service`` and its inbound cluster (`kuma_inbound_cluster_name`) as ``envoy_cluster_name``.

Pod identity: Kubernetes pod discovery adds ``kubernetes_namespace``, ``kubernetes_pod_name`` and (with a
``labelmap`` of ``__meta_kubernetes_pod_label_(.+)``) the pod's labels at scrape time. The sandbox's pods are
apps from a pool that Prometheus already scrapes through file discovery, which forwards new targets only
every 5 s, so the app carries that identity itself: :meth:`PodIdentity.target_labels` is added to every
series of the app's ``/metrics`` except the NGINX controller's, Traefik's, Skipper's and APISIX's (which the proxy's pod exports,
not the workload's pod). A label the series already has wins, as with ``honor_labels: true``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from canarist.podnames import POD_TEMPLATE_HASH_LABEL, pod_name, pod_template_hash

__all__ = [
    "APISIX_FAMILIES",
    "APISIX_LATENCY_BUCKETS_MS",
    "APISIX_ROUTE_HEADER",
    "APISIX_URI_HEADER",
    "APPMESH_MESH",
    "APP_PORT",
    "DEFAULT_BUCKETS_S",
    "ENVOY_DURATION_BUCKETS_MS",
    "INGRESS_CANARY_HEADER",
    "INGRESS_HEADER",
    "INGRESS_PATH_HEADER",
    "INGRESS_SERVICE_HEADER",
    "ISTIO_DURATION_BUCKETS_MS",
    "KUMA_SERVICE_HEADER",
    "LINKERD_LATENCY_BUCKETS_MS",
    "NGINX_FAMILIES",
    "POD_TEMPLATE_HASH_LABEL",
    "PROXY_FAMILIES",
    "SKIPPER_FAMILIES",
    "SKIPPER_ROUTE_HEADER",
    "TRAEFIK_DURATION_BUCKETS_S",
    "TRAEFIK_FAMILIES",
    "TRAEFIK_SERVICE_HEADER",
    "PodIdentity",
    "apisix_route_name",
    "appmesh_cluster_name",
    "kuma_inbound_cluster_name",
    "pod_name",
    "pod_template_hash",
    "podinfo_path_label",
    "sanitize_label_name",
    "traefik_service_name",
]

# -- ingress headers (set by the sandbox's Envoy gateway on requests it routes for an Ingress) ---------------

#: ``<namespace>/<ingress name>`` of the (main) Ingress that admitted the request. Its presence is what makes
#: a request count for the NGINX controller series.
INGRESS_HEADER: Final = "x-canarist-ingress"
#: the upstream name ``<namespace>-<service>-<port>`` when the request went to the canary Ingress's backend
#: (ingress-nginx's ``$proxy_alternative_upstream_name``, its metrics' ``canary`` label); absent otherwise.
INGRESS_CANARY_HEADER: Final = "x-canarist-ingress-canary"
#: optional: the main Ingress's backend Service (the ``service`` label); default: the pod's Service.
INGRESS_SERVICE_HEADER: Final = "x-canarist-ingress-service"
#: optional: the Ingress rule's path (the ``path`` label); default ``/``.
INGRESS_PATH_HEADER: Final = "x-canarist-ingress-path"

#: metric families the NGINX controller exports: they do not get the pod's identity labels.
NGINX_FAMILIES: Final = frozenset(
    {"nginx_ingress_controller_requests", "nginx_ingress_controller_response_duration_seconds"}
)

#: the Traefik service a request was sent to, as Traefik names it in its metrics
#: (``<namespace>-<service>-<port>@kubernetescrd``: `traefik_service_name`). Its presence is what makes a
#: request count for the Traefik series.
TRAEFIK_SERVICE_HEADER: Final = "x-canarist-traefik-service"
#: metric families Traefik exports (as ``prometheus_client`` names them: the counter without ``_total``).
TRAEFIK_FAMILIES: Final = frozenset({"traefik_service_requests", "traefik_service_request_duration_seconds"})
#: the id of the Skipper route that served a request (``kube_<ns>__<ingress>__<host>__<path>__<service>``,
#: as Skipper's Kubernetes data client names its routes): the ``route`` label of Skipper's series. Its
#: presence is what makes a request count for them.
SKIPPER_ROUTE_HEADER: Final = "x-canarist-skipper-route"
#: metric families Skipper exports.
SKIPPER_FAMILIES: Final = frozenset(
    {"skipper_response_duration_seconds", "skipper_serve_route_duration_seconds"}
)
#: the name of the APISIX route that served a request (``<namespace>_<ApisixRoute>_<rule>``, as the APISIX
#: ingress controller names the routes it makes of an ApisixRoute's http rules: `apisix_route_name`): the
#: ``route`` label of APISIX's series. Its presence is what makes a request count for them.
APISIX_ROUTE_HEADER: Final = "x-canarist-apisix-route"
#: the path pattern of the APISIX route that served a request (``/*``): the ``matched_uri`` label.
APISIX_URI_HEADER: Final = "x-canarist-apisix-uri"
#: the Kuma service tag a request was sent to (``podinfo-canary_test_svc_9898``): the ``service`` label Kuma's
#: Prometheus discovery gives the series of the destination's dataplane. Its presence is what makes a request
#: count for Kuma's series.
KUMA_SERVICE_HEADER: Final = "x-canarist-kuma-service"
#: metric families APISIX's prometheus plugin exports (its counter has no ``_total`` suffix).
APISIX_FAMILIES: Final = frozenset({"apisix_http_status", "apisix_http_latency"})
#: families a proxy exports, not the workload: they do not get the pod's identity labels.
PROXY_FAMILIES: Final = NGINX_FAMILIES | TRAEFIK_FAMILIES | SKIPPER_FAMILIES | APISIX_FAMILIES

# -- buckets ----------------------------------------------------------------------------------------------

#: Envoy's default histogram buckets, in milliseconds (Istio's request duration, OSM, the App Mesh sidecar).
ENVOY_DURATION_BUCKETS_MS: Final = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)
#: Istio's default request-duration buckets (Envoy's).
ISTIO_DURATION_BUCKETS_MS: Final = ENVOY_DURATION_BUCKETS_MS
#: the Linkerd proxy's ``response_latency_ms`` bounds.
LINKERD_LATENCY_BUCKETS_MS: Final = (
    1,
    2,
    3,
    4,
    5,
    10,
    20,
    30,
    40,
    50,
    100,
    200,
    300,
    400,
    500,
    1000,
    2000,
    3000,
    4000,
    5000,
    10000,
    20000,
    30000,
    40000,
    50000,
)
#: Prometheus' default buckets (Go client ``prometheus.DefBuckets``), in seconds: podinfo's
#: ``http_request_duration_seconds`` and ingress-nginx's duration histograms use them.
DEFAULT_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Traefik's default buckets for its request-duration histograms, in seconds.
TRAEFIK_DURATION_BUCKETS_S: Final = (0.1, 0.3, 1.2, 5.0)

#: the default buckets of APISIX's ``apisix_http_latency`` histogram, in milliseconds.
APISIX_LATENCY_BUCKETS_MS: Final = (
    1.0,
    2.0,
    5.0,
    10.0,
    20.0,
    50.0,
    100.0,
    200.0,
    500.0,
    1000.0,
    2000.0,
    5000.0,
    10000.0,
    30000.0,
    60000.0,
)

# -- names ------------------------------------------------------------------------------------------------

#: podinfo's HTTP port (the App Mesh listener's port in the ingress cluster name).
APP_PORT: Final = 9898
#: the App Mesh mesh the sandbox's virtual nodes belong to.
APPMESH_MESH: Final = "canarist"
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_INVALID_PATH_CHARS = re.compile(r"[^a-zA-Z0-9]+")


def sanitize_label_name(name: str) -> str:
    """A Kubernetes label key as Prometheus' discovery names it (``app.kubernetes.io/name`` ->
    ``app_kubernetes_io_name``)."""
    return _INVALID_LABEL_CHARS.sub("_", name)


def appmesh_cluster_name(deployment: str, namespace: str, port: int = APP_PORT) -> str:
    """The App Mesh sidecar's local ingress cluster (``cds_ingress_<mesh>_<virtual node>_http_<port>``;
    the controller names the virtual node ``<name>_<namespace>``)."""
    return f"cds_ingress_{APPMESH_MESH}_{deployment}_{namespace}_http_{port}"


def kuma_inbound_cluster_name(port: int = APP_PORT) -> str:
    """The Kuma dataplane's inbound cluster for the app's port, as its Envoy's stats name it:
    ``localhost:9898``."""
    return f"localhost:{port}"


def traefik_service_name(namespace: str, service: str, port: int | str) -> str:
    """The name Traefik's Kubernetes CRD provider gives a Service port in its metrics:
    ``test-podinfo-canary-80@kubernetescrd``."""
    return f"{namespace}-{service}-{port}@kubernetescrd"


def apisix_route_name(namespace: str, route: str, rule: str) -> str:
    """The name the APISIX ingress controller gives the route of an ApisixRoute's http rule, which APISIX's
    series carry as ``route``: ``test_podinfo-podinfo-canary_rule1``."""
    return f"{namespace}_{route}_{rule}"


def podinfo_path_label(route: str) -> str:
    """podinfo's ``path`` label for a route template: non-alphanumerics become ``_``, trimmed, lower case;
    ``/`` is ``root`` (``/status/{code}`` -> ``status_code``)."""
    label = _INVALID_PATH_CHARS.sub("_", route).strip("_").lower()
    return label or "root"


@dataclass(frozen=True)
class PodIdentity:
    """The pod an app plays, as Prometheus' Kubernetes pod discovery would label its targets."""

    namespace: str = ""
    name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    def target_labels(self) -> dict[str, str]:
        """``kubernetes_namespace``, ``kubernetes_pod_name`` and the pod's labels (``labelmap``); empty for an
        idle app."""
        if not self.name:
            return {}
        out = {sanitize_label_name(k): str(v) for k, v in sorted(self.labels.items())}
        out["kubernetes_namespace"] = self.namespace
        out["kubernetes_pod_name"] = self.name
        return out
