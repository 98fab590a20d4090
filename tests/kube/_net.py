"""Test plumbing: a TCP proxy whose connections a test can cut, and the local control plane's admin API."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

ADMIN_PREFIX = "/localcluster.canarist.dev/v1"


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `drop_all` resets every open connection (a dropped watch
    stream as a flaky network shows it), `pause` refuses new ones until `resume`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.paused = False
        self.accepted = 0
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.paused:
            writer.transport.abort()
            return
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._conns.add(pair)
        pumps = [
            asyncio.ensure_future(self._pump(reader, up_writer)),
            asyncio.ensure_future(self._pump(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            self._conns.discard(pair)
            writer.transport.abort()
            up_writer.transport.abort()

    @staticmethod
    async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()

    def drop_all(self) -> int:
        n = len(self._conns)
        for client, upstream in list(self._conns):
            client.transport.abort()
            upstream.transport.abort()
        return n

    def pause(self) -> None:
        self.paused = True
        self.drop_all()

    def resume(self) -> None:
        self.paused = False

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class ClusterControl:
    """The local control plane's admin endpoints (fault injection, history compaction), over HTTP so
    that they work whichever loop or thread the server runs on."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.url}{ADMIN_PREFIX}/{path}", json=body) as resp,
        ):
            resp.raise_for_status()
            return await resp.json()

    async def faults(self, **settings: Any) -> Any:
        """PUT fault settings in the server's spelling: failNext=[{"verb":..,"code":..,"times":..}], …"""
        return await self._call("PUT", "faults", settings)

    async def fail(self, verb: str, code: int, times: int = 1) -> Any:
        current = await self._call("GET", "faults")
        pending = [*current.get("failNext", []), {"verb": verb, "code": code, "times": times}]
        return await self.faults(failNext=pending)

    async def clear_faults(self) -> Any:
        return await self._call("DELETE", "faults")

    async def compact(self) -> str:
        out = await self._call("POST", "compact")
        return str(out.get("compactedResourceVersion", ""))
