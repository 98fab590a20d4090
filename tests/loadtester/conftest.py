from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from canarist.loadtester import LoadTester, LoadTesterConfig


@dataclass
class Client:
    tester: LoadTester
    session: aiohttp.ClientSession

    async def post(
        self, path: str, payload: Any = None, *, token: str | None = None, raw: bytes | None = None
    ) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else json.dumps(payload).encode()
        async with self.session.post(self.tester.url.rstrip("/") + path, data=data, headers=headers) as r:
            return r.status, await r.text()

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.tester.url.rstrip("/") + path) as r:
            return r.status, await r.text()


def hook(name: str = "podinfo", namespace: str = "test", **metadata: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "namespace": namespace, "phase": "Progressing", "checksum": "x"}
    if metadata:
        body["metadata"] = metadata
    return body


@pytest.fixture
async def loadtester() -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    made: list[Client] = []

    async def make(**options: Any) -> Client:
        config = LoadTesterConfig(host="127.0.0.1", port=0, **options)
        tester = LoadTester(config)
        await tester.start()
        client = Client(tester, aiohttp.ClientSession())
        made.append(client)
        return client

    yield make
    for client in made:
        await client.session.close()
        await client.tester.stop()


@pytest.fixture(scope="session")
def hey_binary() -> str:
    path = shutil.which("hey")
    if path is None:
        pytest.fail("hey is not installed: apt-get install -y --no-install-recommends hey")
    return path
