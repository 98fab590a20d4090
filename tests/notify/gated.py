"""A webhook server on 127.0.0.1 that holds every request until the test lets it go.

``srv.arrived(n)`` waits until ``n`` requests came in; ``srv.holding`` counts those still unanswered;
``srv.release()`` answers them all (and every later one at once) with ``status``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from tests.fixtures.capture import serve_loopback


class GatedServer:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[Any] = []
        self.holding = 0
        self._gate = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/s3cr3t-path"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(json.loads(body) if body else None)
        self.holding += 1
        async with self._changed:
            self._changed.notify_all()
        try:
            await self._gate.wait()
        finally:
            self.holding -= 1
        return web.Response(status=self.status, text="ok")

    async def arrived(self, count: int, timeout_s: float = 10.0) -> None:
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: len(self.bodies) >= count)
        except TimeoutError:
            pytest.fail(f"gated server got {len(self.bodies)} requests, expected {count}")

    def release(self) -> None:
        self._gate.set()

    async def start(self) -> GatedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve_loopback(app)
        return self

    async def stop(self) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
