"""A small podinfo-like demo application that exports Istio-named metrics.

It stands in for a workload and its Istio sidecar in tests and in the local sandbox: every request to an
application endpoint is counted in ``istio_requests_total`` and timed in
``istio_request_duration_milliseconds`` with the labels the destination sidecar would set
(``reporter="destination"``, ``destination_workload``, ``destination_workload_namespace``,
``response_code``...), so Flagger's builtin Istio queries work against it unchanged.

Endpoints: ``GET /`` (JSON with the version), ``/status/{code}``, ``/delay/{seconds}``, ``/healthz``,
``/readyz``, ``POST /token``, ``GET|POST /knobs`` (error rate and added latency at run time) and
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
import json
import math
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["ISTIO_DURATION_BUCKETS_MS", "DemoApp"]

#: Istio's default request-duration buckets, in milliseconds.
ISTIO_DURATION_BUCKETS_MS = (
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

_UNCOUNTED = ("/metrics", "/knobs", "/healthz", "/readyz")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
    ) -> None:
        self.workload = workload
        self.namespace = namespace
        self.version = version
        self.service = service or workload
        self.message = message or f"greetings from {workload} v{version}"
        self.error_rate = 0.0
        self.latency_ms = 0.0
        self.set_knobs(error_rate=error_rate, latency_ms=latency_ms)
        self.hostname = f"{workload}-{secrets.token_hex(4)}"
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests_total = Counter(
            "istio_requests_total", "Requests seen by the destination proxy", _LABELS, registry=self.registry
        )
        self.request_duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration seen by the destination proxy, in milliseconds",
            _LABELS,
            buckets=ISTIO_DURATION_BUCKETS_MS,
            registry=self.registry,
        )
        # Export the success series at zero from the start: the first requests then show up as a rate after
        # one scrape instead of two, so an analysis right after the first weight step sees them.
        self.requests_total.labels(**self._labels(200))
        self.request_duration.labels(**self._labels(200))
        self.served = 0
        self._counted = 0
        self._runner: web.AppRunner | None = None
        self._url = ""

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
        app.router.add_get("/version", self._index)
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
        self._record(request, response.status, (time.perf_counter() - started) * 1000)
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

    def _record(self, request: web.Request, status: int, elapsed_ms: float) -> None:
        labels = self._labels(
            status,
            request.headers.get("X-Source-Workload", "unknown"),
            request.headers.get("X-Source-Namespace", "unknown"),
        )
        self.requests_total.labels(**labels).inc()
        self.request_duration.labels(**labels).observe(elapsed_ms)

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
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)
