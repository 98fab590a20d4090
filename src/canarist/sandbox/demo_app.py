"""A small podinfo-like demo application that exports the series every provider's builtin queries read.

It stands in for a workload, its sidecar and (for requests that came through an ingress) the ingress
controller in tests and in the local sandbox. Every request to an application endpoint is counted and timed,
with the labels the real exporter would set, in (names and buckets in `canarist.sandbox.telemetry`,
docs/sandbox.md#telemetry-per-provider):

* Istio's destination sidecar: ``istio_requests_total``, ``istio_request_duration_milliseconds``
  (``reporter="destination"``, ``destination_workload``, ``destination_workload_namespace``,
  ``response_code``...);
* podinfo itself: ``http_request_duration_seconds`` (``method``, ``path``, ``status``) and
  ``http_requests_total`` (``status``);
* Linkerd's inbound proxy: ``response_total`` (``classification`` failure for 5xx) and ``response_latency_ms``;
* OSM: ``osm_request_total``, ``osm_request_duration_ms`` (``destination_kind="Deployment"``...);
* the App Mesh Envoy sidecar: ``envoy_cluster_upstream_rq`` (``envoy_response_code``, the local ingress
  cluster as ``envoy_cluster_name``) and ``envoy_cluster_upstream_rq_time``;
* the NGINX ingress controller, only when the request carries
  :data:`~canarist.sandbox.telemetry.INGRESS_HEADER`: ``nginx_ingress_controller_requests`` and
  ``nginx_ingress_controller_response_duration_seconds``;
* Traefik, only when the request carries :data:`~canarist.sandbox.telemetry.TRAEFIK_SERVICE_HEADER`:
  ``traefik_service_requests_total`` and ``traefik_service_request_duration_seconds`` (``service``,
  ``code``, ``method``, ``protocol``);
* Skipper, only when the request carries :data:`~canarist.sandbox.telemetry.SKIPPER_ROUTE_HEADER`:
  ``skipper_response_duration_seconds`` and ``skipper_serve_route_duration_seconds`` (``route``, ``code``,
  ``method``);
* APISIX, only when the request carries :data:`~canarist.sandbox.telemetry.APISIX_ROUTE_HEADER`:
  ``apisix_http_status`` (``code``, ``route``, ``matched_uri``, ``matched_host``, ``service``, ``consumer``,
  ``node``) and ``apisix_http_latency`` in milliseconds (``type`` request/upstream/apisix, ``route``,
  ``service``, ``consumer``, ``node``);
* the Kuma dataplane's Envoy, only when the request carries
  :data:`~canarist.sandbox.telemetry.KUMA_SERVICE_HEADER`: ``envoy_cluster_upstream_rq`` and
  ``envoy_cluster_upstream_rq_time`` with that tag as ``service`` and the inbound cluster
  (``localhost:9898``) as ``envoy_cluster_name`` (the App Mesh series have no ``service``).

so Flagger's builtin queries work against it unchanged. The app plays one pod at a time
(:meth:`DemoApp.assign`): its ``/metrics`` adds that pod's ``kubernetes_namespace``, ``kubernetes_pod_name``
and labels to every series but the NGINX, Traefik, Skipper and APISIX ones, as Prometheus' Kubernetes pod discovery would, and a new
assignment starts every series afresh (one registry per app, emptied and refilled).

Endpoints: ``GET /`` (JSON with the version), ``/version`` (``version`` and ``commit``), ``/env`` (the
process environment as ``KEY=value`` strings, as podinfo lists it), ``/status/{code}``, ``/delay/{seconds}``,
``/healthz``, ``/readyz``, ``POST /token``, ``GET|POST /knobs`` (error rate and added latency at run time) and
``/metrics``. Knobs apply to the application endpoints only (``/``, ``/status``, ``/delay``, ``/token``),
never to probes, ``/knobs`` or ``/metrics``, which are not counted either.

The error rate is applied deterministically: with rate ``r`` the n-th request fails exactly when
``floor(n*r)`` grows, so over any N requests the number of 500s is within one of ``N*r``.

>>> app = DemoApp(workload="podinfo", namespace="test", version="3.1.0")
>>> await app.start()          # 127.0.0.1, a free port
>>> app.url                    # 'http://127.0.0.1:41234'
>>> await app.stop()
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from canarist.sandbox import telemetry
from canarist.sandbox.telemetry import ISTIO_DURATION_BUCKETS_MS, PodIdentity

__all__ = ["ISTIO_DURATION_BUCKETS_MS", "DemoApp"]

_LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_service_name",
    "destination_service_namespace",
    "destination_version",
    "request_protocol",
    "response_code",
)
_HTTP_LABELS = ("method", "path", "status")
_LINKERD_LABELS = ("direction", "namespace", "deployment", "pod", "status_code", "tls")
_OSM_LABELS = (
    "source_namespace",
    "source_kind",
    "source_name",
    "destination_namespace",
    "destination_kind",
    "destination_name",
    "destination_pod",
    "response_code",
)
_NGINX_LABELS = ("namespace", "ingress", "service", "canary", "status", "method", "host", "path")
_TRAEFIK_LABELS = ("service", "code", "method", "protocol")
_SKIPPER_LABELS = ("route", "code", "method")
_APISIX_STATUS_LABELS = ("code", "route", "matched_uri", "matched_host", "service", "consumer", "node")
_APISIX_LATENCY_LABELS = ("type", "route", "service", "consumer", "node")

_UNCOUNTED = ("/metrics", "/knobs", "/healthz", "/readyz")
#: series exported at zero from the start of a fresh app (a rate then shows up one scrape after the first
#: such answer instead of two).
_FRESH_CODES = (200,)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Series:
    """Every collector of one pod assignment, registered in the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.istio_requests = Counter(
            "istio_requests_total", "Requests seen by the destination proxy", _LABELS, registry=registry
        )
        self.istio_duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration seen by the destination proxy, in milliseconds",
            _LABELS,
            buckets=ISTIO_DURATION_BUCKETS_MS,
            registry=registry,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Seconds spent serving HTTP requests.",
            _HTTP_LABELS,
            buckets=telemetry.DEFAULT_BUCKETS_S,
            registry=registry,
        )
        self.http_requests = Counter(
            "http_requests_total", "The total number of HTTP requests.", ("status",), registry=registry
        )
        self.linkerd_responses = Counter(
            "response_total",
            "Total count of HTTP responses.",
            (*_LINKERD_LABELS, "classification"),
            registry=registry,
        )
        self.linkerd_latency = Histogram(
            "response_latency_ms",
            "Elapsed times between a request's headers being received and its response stream completing",
            _LINKERD_LABELS,
            buckets=telemetry.LINKERD_LATENCY_BUCKETS_MS,
            registry=registry,
        )
        self.osm_requests = Counter(
            "osm_request_total",
            "Number of requests seen by the destination proxy",
            _OSM_LABELS,
            registry=registry,
        )
        self.osm_duration = Histogram(
            "osm_request_duration_ms",
            "Request duration seen by the destination proxy, in milliseconds",
            _OSM_LABELS,
            buckets=telemetry.ENVOY_DURATION_BUCKETS_MS,
            registry=registry,
        )
        # Envoy's counters carry no ``_total`` suffix: a gauge here, exported untyped (see _PodScrape).
        self.envoy_rq = Gauge(
            "envoy_cluster_upstream_rq",
            "Upstream requests by response code",
            ("envoy_response_code", "envoy_cluster_name", "service"),
            registry=registry,
        )
        self.envoy_rq_time = Histogram(
            "envoy_cluster_upstream_rq_time",
            "Upstream request time, in milliseconds",
            ("envoy_cluster_name", "service"),
            buckets=telemetry.ENVOY_DURATION_BUCKETS_MS,
            registry=registry,
        )
        self.nginx_requests = Gauge(
            "nginx_ingress_controller_requests",
            "The total number of client requests",
            _NGINX_LABELS,
            registry=registry,
        )
        self.nginx_duration = Histogram(
            "nginx_ingress_controller_response_duration_seconds",
            "The time spent on receiving the response from the upstream server",
            _NGINX_LABELS,
            buckets=telemetry.DEFAULT_BUCKETS_S,
            registry=registry,
        )
        self.traefik_requests = Counter(
            "traefik_service_requests_total",
            "How many HTTP requests processed on a service, partitioned by status code, protocol, and method.",
            _TRAEFIK_LABELS,
            registry=registry,
        )
        self.traefik_duration = Histogram(
            "traefik_service_request_duration_seconds",
            "How long it took to process the request on a service, partitioned by status code, protocol, and method.",
            _TRAEFIK_LABELS,
            buckets=telemetry.TRAEFIK_DURATION_BUCKETS_S,
            registry=registry,
        )
        self.skipper_response = Histogram(
            "skipper_response_duration_seconds",
            "Duration in seconds of a response.",
            _SKIPPER_LABELS,
            buckets=telemetry.DEFAULT_BUCKETS_S,
            registry=registry,
        )
        self.skipper_serve_route = Histogram(
            "skipper_serve_route_duration_seconds",
            "Duration in seconds of serving a route.",
            _SKIPPER_LABELS,
            buckets=telemetry.DEFAULT_BUCKETS_S,
            registry=registry,
        )
        # APISIX's counter carries no ``_total`` suffix: a gauge here, exported untyped (see _PodScrape).
        self.apisix_status = Gauge(
            "apisix_http_status",
            "HTTP status codes per service in APISIX",
            _APISIX_STATUS_LABELS,
            registry=registry,
        )
        self.apisix_latency = Histogram(
            "apisix_http_latency",
            "HTTP request latency in milliseconds per service in APISIX",
            _APISIX_LATENCY_LABELS,
            buckets=telemetry.APISIX_LATENCY_BUCKETS_MS,
            registry=registry,
        )

    def collectors(self) -> list[Any]:
        return list(vars(self).values())


#: families whose counters are exported without a ``_total`` suffix (Envoy's, ingress-nginx's, APISIX's).
_UNTYPED_COUNTERS = frozenset(
    {"envoy_cluster_upstream_rq", "nginx_ingress_controller_requests", "apisix_http_status"}
)


class _PodScrape(Collector):
    """The app's registry as Prometheus stores it after a pod-discovery scrape: the pod's identity labels
    added to every series but the NGINX controller's, Traefik's, Skipper's and APISIX's (labels the series has win). ``families``: only these
    metric families; ``identity=False``: no identity labels (what the workload itself exports)."""

    def __init__(self, app: DemoApp, families: Collection[str] | None = None, identity: bool = True) -> None:
        self.app = app
        self.families = families
        self.identity = identity

    def collect(self) -> Iterable[Metric]:
        extra = self.app.pod.target_labels() if self.identity else {}
        for family in self.app.registry.collect():
            if self.families is not None and family.name not in self.families:
                continue
            typ = "unknown" if family.name in _UNTYPED_COUNTERS else family.type
            out = Metric(family.name, family.documentation, typ, family.unit)
            add = {} if family.name in telemetry.PROXY_FAMILIES else extra
            out.samples = [s._replace(labels={**add, **s.labels}) for s in family.samples]
            yield out


class DemoApp:
    """One demo workload instance with its own Prometheus registry."""

    def __init__(
        self,
        workload: str = "podinfo",
        namespace: str = "test",
        version: str = "3.1.0",
        *,
        service: str = "",
        error_rate: float = 0.0,
        latency_ms: float = 0.0,
        message: str = "",
        pod: PodIdentity | None = None,
    ) -> None:
        self.error_rate = 0.0
        self.latency_ms = 0.0
        self.set_knobs(error_rate=error_rate, latency_ms=latency_ms)
        self.registry = CollectorRegistry(auto_describe=True)
        self._series: _Series | None = None
        #: requests counted by this app, over its whole life.
        self.served = 0
        #: requests counted by ``(namespace, workload, source workload)``, over every assignment.
        self.tally: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._counted = 0
        self._runner: web.AppRunner | None = None
        self._url = ""
        #: what ``/metrics`` exports: every family (None) or only these, with the pod's identity or not
        self.metrics_families: Collection[str] | None = None
        self.metrics_identity = True
        #: called after each counted request, before its answer is sent
        self.on_counted: Callable[[], None] | None = None
        self.assign(namespace=namespace, workload=workload, version=version, service=service, pod=pod)
        if message:
            self.message = message

    # -- pod assignment ---------------------------------------------------------------------------------

    def assign(
        self,
        *,
        namespace: str,
        workload: str,
        version: str,
        service: str = "",
        pod: PodIdentity | None = None,
        fresh_codes: Iterable[int] = _FRESH_CODES,
    ) -> None:
        """Play a new pod of ``workload``: new identity, every series started afresh (the previous pod's are
        gone from the next scrape), the deterministic error sequence restarted. ``fresh_codes``: response
        codes whose series are exported at zero at once. ``served`` and ``tally`` keep counting."""
        self.workload = workload
        self.namespace = namespace
        self.version = version
        self.service = service or workload
        self.message = f"greetings from {workload} v{version}"
        self.pod = pod or PodIdentity()
        self.hostname = self.pod.name or f"{workload}-{secrets.token_hex(4)}"
        self._counted = 0
        if self._series is not None:
            for collector in self._series.collectors():
                self.registry.unregister(collector)
        self._series = _Series(self.registry)
        for code in fresh_codes:
            self._touch(code)

    @property
    def series(self) -> _Series:
        assert self._series is not None
        return self._series

    @property
    def requests_total(self) -> Counter:
        """``istio_requests_total`` of the current assignment."""
        return self.series.istio_requests

    @property
    def request_duration(self) -> Histogram:
        """``istio_request_duration_milliseconds`` of the current assignment."""
        return self.series.istio_duration

    def _touch(self, code: int) -> None:
        """Export the series of an answer ``code`` to an unlabelled caller at zero."""
        s = self.series
        histograms = code == 200
        labels = self._labels(code)
        s.istio_requests.labels(**labels)
        s.http_duration.labels("GET", "root", str(code))
        s.http_requests.labels(str(code))
        s.linkerd_responses.labels(**self._linkerd_labels(code), classification=_classification(code))
        s.osm_requests.labels(**self._osm_labels(code))
        s.envoy_rq.labels(str(code), self.appmesh_cluster, "")
        if histograms:
            s.istio_duration.labels(**labels)
            s.linkerd_latency.labels(**self._linkerd_labels(code))
            s.osm_duration.labels(**self._osm_labels(code))
            s.envoy_rq_time.labels(self.appmesh_cluster, "")

    @property
    def appmesh_cluster(self) -> str:
        return telemetry.appmesh_cluster_name(self.workload, self.namespace)

    # -- knobs ------------------------------------------------------------------------------------------

    def set_knobs(self, *, error_rate: float | None = None, latency_ms: float | None = None) -> None:
        """Change the error rate (0..1) and the added latency (ms) of application endpoints."""
        if error_rate is not None:
            if not 0.0 <= error_rate <= 1.0 or math.isnan(error_rate):
                raise ValueError(f"error_rate must be within [0, 1], got {error_rate}")
            self.error_rate = float(error_rate)
        if latency_ms is not None:
            if latency_ms < 0 or math.isnan(latency_ms):
                raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
            self.latency_ms = float(latency_ms)

    def knobs(self) -> dict[str, float]:
        return {"error_rate": self.error_rate, "latency_ms": self.latency_ms}

    def _should_fail(self) -> bool:
        before = math.floor(self._counted * self.error_rate + 1e-9)
        self._counted += 1
        return math.floor(self._counted * self.error_rate + 1e-9) > before

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the demo app is not started")
        return self._url

    @property
    def metrics_target(self) -> str:
        """``host:port`` to scrape."""
        return self.url.removeprefix("http://")

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/", self._index)
        app.router.add_get("/version", self._version)
        app.router.add_get("/env", self._env)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_route("*", "/delay/{seconds}", self._delay)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/readyz", self._health)
        app.router.add_post("/token", self._token)
        app.router.add_get("/knobs", self._get_knobs)
        app.router.add_post("/knobs", self._post_knobs)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = a free port); returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("the demo app is already started")
        runner = web.AppRunner(self.application(), access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self._url = f"http://{shown}:{bound_port}"
        return self._url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DemoApp:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- request handling -------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in _UNCOUNTED:
            return await handler(request)
        started = time.perf_counter()
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)
        response: web.StreamResponse
        if self._should_fail():
            response = web.json_response({"error": "injected failure", "code": 500}, status=500)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as err:
                response = web.json_response({"error": err.reason, "code": err.status}, status=err.status)
        self.served += 1
        self._record(request, response.status, time.perf_counter() - started)
        if self.on_counted is not None:
            self.on_counted()
        return response

    def _labels(
        self, status: int, source: str = "unknown", source_namespace: str = "unknown"
    ) -> dict[str, str]:
        return {
            "reporter": "destination",
            "source_workload": source,
            "source_workload_namespace": source_namespace,
            "destination_workload": self.workload,
            "destination_workload_namespace": self.namespace,
            "destination_service_name": self.service,
            "destination_service_namespace": self.namespace,
            "destination_version": self.version,
            "request_protocol": "http",
            "response_code": str(status),
        }

    def _linkerd_labels(self, status: int) -> dict[str, str]:
        return {
            "direction": "inbound",
            "namespace": self.namespace,
            "deployment": self.workload,
            "pod": self.hostname,
            "status_code": str(status),
            "tls": "true",
        }

    def _osm_labels(
        self, status: int, source: str = "unknown", source_namespace: str = "unknown"
    ) -> dict[str, str]:
        return {
            "source_namespace": source_namespace,
            "source_kind": "Deployment",
            "source_name": source,
            "destination_namespace": self.namespace,
            "destination_kind": "Deployment",
            "destination_name": self.workload,
            "destination_pod": self.hostname,
            "response_code": str(status),
        }

    def _record(self, request: web.Request, status: int, elapsed_s: float) -> None:
        source = request.headers.get("X-Source-Workload", "unknown")
        source_namespace = request.headers.get("X-Source-Namespace", "unknown")
        self.tally[(self.namespace, self.workload, source)] += 1
        elapsed_ms = elapsed_s * 1000
        code = str(status)
        s = self.series
        labels = self._labels(status, source, source_namespace)
        s.istio_requests.labels(**labels).inc()
        s.istio_duration.labels(**labels).observe(elapsed_ms)
        s.http_duration.labels(request.method, _route_label(request), code).observe(elapsed_s)
        s.http_requests.labels(code).inc()
        linkerd = self._linkerd_labels(status)
        s.linkerd_responses.labels(**linkerd, classification=_classification(status)).inc()
        s.linkerd_latency.labels(**linkerd).observe(elapsed_ms)
        osm = self._osm_labels(status, source, source_namespace)
        s.osm_requests.labels(**osm).inc()
        s.osm_duration.labels(**osm).observe(elapsed_ms)
        s.envoy_rq.labels(code, self.appmesh_cluster, "").inc()
        s.envoy_rq_time.labels(self.appmesh_cluster, "").observe(elapsed_ms)
        kuma_service = request.headers.get(telemetry.KUMA_SERVICE_HEADER, "")
        if kuma_service:
            inbound = telemetry.kuma_inbound_cluster_name()
            s.envoy_rq.labels(code, inbound, kuma_service).inc()
            s.envoy_rq_time.labels(inbound, kuma_service).observe(elapsed_ms)
        ingress = request.headers.get(telemetry.INGRESS_HEADER, "")
        if ingress:
            namespace, _, name = ingress.rpartition("/")
            nginx = {
                "namespace": namespace or self.namespace,
                "ingress": name,
                "service": request.headers.get(telemetry.INGRESS_SERVICE_HEADER, "") or self.service,
                "canary": request.headers.get(telemetry.INGRESS_CANARY_HEADER, ""),
                "status": code,
                "method": request.method,
                "host": request.host.rsplit(":", 1)[0] if request.host else "",
                "path": request.headers.get(telemetry.INGRESS_PATH_HEADER, "") or "/",
            }
            s.nginx_requests.labels(**nginx).inc()
            s.nginx_duration.labels(**nginx).observe(elapsed_s)
        traefik_service = request.headers.get(telemetry.TRAEFIK_SERVICE_HEADER, "")
        if traefik_service:
            traefik = {"service": traefik_service, "code": code, "method": request.method, "protocol": "http"}
            s.traefik_requests.labels(**traefik).inc()
            s.traefik_duration.labels(**traefik).observe(elapsed_s)
        skipper_route = request.headers.get(telemetry.SKIPPER_ROUTE_HEADER, "")
        if skipper_route:
            skipper = {"route": skipper_route, "code": code, "method": request.method}
            s.skipper_response.labels(**skipper).observe(elapsed_s)
            s.skipper_serve_route.labels(**skipper).observe(elapsed_s)
        apisix_route = request.headers.get(telemetry.APISIX_ROUTE_HEADER, "")
        if apisix_route:
            host = request.host.rsplit(":", 1)[0] if request.host else ""
            path = request.headers.get(telemetry.APISIX_URI_HEADER, "")
            s.apisix_status.labels(code, apisix_route, path, host, "", "", "").inc()
            for kind in ("request", "upstream"):
                s.apisix_latency.labels(kind, apisix_route, "", "", "").observe(elapsed_ms)
            s.apisix_latency.labels("apisix", apisix_route, "", "", "").observe(0.0)

    def exposition(self, families: Collection[str] | None = None, identity: bool = True) -> bytes:
        """The registry with the pod's identity labels (see :class:`_PodScrape`); ``families`` and
        ``identity`` narrow it as for ``/metrics``."""
        return generate_latest(_PodScrape(self, families, identity))

    def scraped(self) -> Iterator[Metric]:
        """The metric families as ``/metrics`` exposes them (with the pod's identity labels)."""
        yield from _PodScrape(self).collect()

    def _info(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "version": self.version,
            "message": self.message,
            "workload": self.workload,
            "namespace": self.namespace,
        }

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._info())

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"commit": "", "version": self.version})

    async def _env(self, request: web.Request) -> web.StreamResponse:
        return web.json_response([f"{key}={value}" for key, value in os.environ.items()])

    async def _status(self, request: web.Request) -> web.StreamResponse:
        try:
            code = int(request.match_info["code"])
        except ValueError:
            return web.json_response({"error": "status code must be a number"}, status=400)
        if not 100 <= code <= 599:
            return web.json_response({"error": "status code must be within 100..599"}, status=400)
        if code < 200 or code in (204, 304):
            return web.Response(status=code)
        return web.json_response({"status": code}, status=code)

    async def _delay(self, request: web.Request) -> web.StreamResponse:
        try:
            seconds = float(request.match_info["seconds"])
        except ValueError:
            return web.json_response({"error": "delay must be a number of seconds"}, status=400)
        if not 0 <= seconds <= 60:
            return web.json_response({"error": "delay must be within 0..60 seconds"}, status=400)
        await asyncio.sleep(seconds)
        return web.json_response({"delay": seconds})

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "OK"})

    async def _token(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"token": secrets.token_urlsafe(24), "expiresAt": int(time.time()) + 60})

    async def _get_knobs(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.knobs())

    async def _post_knobs(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        try:
            self.set_knobs(
                error_rate=_number(body.get("error_rate")),
                latency_ms=_number(body.get("latency_ms")),
            )
        except (TypeError, ValueError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response(self.knobs())

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        body = self.exposition(self.metrics_families, self.metrics_identity)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _classification(status: int) -> str:
    """Linkerd's default response classification: 5xx are failures."""
    return "failure" if status >= 500 else "success"


def _route_label(request: web.Request) -> str:
    """podinfo's ``path`` label: the matched route's template, else the request path."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    return telemetry.podinfo_path_label(route)
