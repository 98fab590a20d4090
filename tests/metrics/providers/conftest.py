"""``vendor_server``: serve a small aiohttp application that implements a vendor's documented API on
127.0.0.1, and ``never``: an :class:`asyncio.Event` that is never set, for handlers that must not answer
(timeouts are then decided by the provider's own timeout, not by a sleep)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from tests.fixtures.capture import serve_loopback

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
VendorServer = Callable[[dict[tuple[str, str], Handler]], Awaitable[str]]


@pytest.fixture
def never() -> asyncio.Event:
    return asyncio.Event()


@pytest.fixture
async def vendor_server() -> AsyncIterator[VendorServer]:
    """``url = await vendor_server({("GET", "/api/v1/query"): handler, ...})``: the base URL (no slash)."""
    runners: list[web.AppRunner] = []

    async def make(routes: dict[tuple[str, str], Handler]) -> str:
        app = web.Application()
        for (method, path), handler in routes.items():
            app.router.add_route(method, path, handler)
        runner, port = await serve_loopback(app)
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield make
    for runner in runners:
        await runner.cleanup()
