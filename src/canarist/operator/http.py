"""The operator's HTTP endpoint: `/metrics` (Prometheus), `/healthz` (alive) and `/readyz`
(caches synced; a standby replica is ready too, it just does not act)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from canarist.operator.telemetry import Telemetry


class OperatorHttp:
    def __init__(self, telemetry: Telemetry, readiness: Callable[[], tuple[bool, str]]) -> None:
        self._telemetry = telemetry
        self._readiness = readiness
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self._telemetry.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, detail = self._readiness()
        return web.Response(text=detail or ("OK" if ready else "not ready"), status=200 if ready else 503)
