"""Small raw-HTTP helpers for the local control plane conformance tests (aiohttp client, JSON)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

Obj = dict[str, Any]


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Obj]:
    data = None if body is None else (body if isinstance(body, bytes | str) else json.dumps(body))
    all_headers = {"Content-Type": content_type, **(headers or {})}
    async with session.request(method, url, data=data, headers=all_headers) as response:
        text = await response.text()
        return response.status, (json.loads(text) if text.strip().startswith(("{", "[")) else {"raw": text})


async def watch_events(
    session: aiohttp.ClientSession, url: str, count: int, read_timeout: float = 10.0
) -> list[Obj]:
    """Read `count` watch events (or until the server ends the stream)."""
    events: list[Obj] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_read=read_timeout)
    async with session.get(url, timeout=timeout) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("application/json")
        async for line in response.content:
            if line.strip():
                events.append(json.loads(line))
            if len(events) >= count:
                break
    return events


def configmap(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {}}
