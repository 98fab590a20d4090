"""The Dynatrace provider against a local server implementing Dynatrace's documented Metrics API v2
(``GET /api/v2/metrics/query?metricSelector=&resolution=&from=&to=`` with ``Authorization: Api-Token``,
answering ``result[].data[].values``, errors as ``{"error": {"code", "message"}}``; ``GET /api/v2/metrics``
lists metric descriptors)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web

from canarist.metrics.providers import (
    NoValuesError,
    ProviderConfigError,
    ProviderSpec,
    QueryError,
    create_provider,
)
from canarist.metrics.providers.dynatrace import DynatraceProvider
from tests.metrics.providers.conftest import VendorServer

KEYS = {"dynatrace_token": "dt0c01.abc"}
NOW = 1_700_000_000.0


def error(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message}}, status=status)


class FakeDynatrace:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.body: Any = {}
        self.hang = False
        self.requests: list[web.Request] = []

    def denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != "Api-Token dt0c01.abc":
            return error(401, "Missing authorization parameter.")
        return None

    async def query(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.hang:
            await self.never.wait()
        if (denied := self.denied(request)) is not None:
            return denied
        if not request.query.get("metricSelector", "").startswith("builtin:"):
            return error(400, "The metric selector is invalid.")
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return web.Response(text=text, content_type="application/json")

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        if (denied := self.denied(request)) is not None:
            return denied
        return web.json_response({"totalCount": 900, "metrics": [{"metricId": "builtin:host.cpu.usage"}]})


@pytest.fixture
async def dynatrace(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeDynatrace, str]:
    fake = FakeDynatrace(never)
    url = await vendor_server(
        {("GET", "/e/env1/api/v2/metrics/query"): fake.query, ("GET", "/e/env1/api/v2/metrics"): fake.metrics}
    )
    return fake, url + "/e/env1"


def client(url: str, secret: dict[str, str] | None = None, **kw: Any) -> DynatraceProvider:
    return DynatraceProvider(
        ProviderSpec(type="dynatrace", address=url),
        KEYS if secret is None else secret,
        clock=lambda: NOW,
        **kw,
    )


def answer(*values: Any) -> dict[str, Any]:
    data = [
        {"dimensions": [f"SERVICE-{i}"], "timestamps": [1_700_000_000_000], "values": [v]}
        for i, v in enumerate(values)
    ]
    return {"totalCount": len(values), "resolution": "Inf", "result": [{"metricId": "m", "data": data}]}


async def test_request_and_value(dynatrace: tuple[FakeDynatrace, str]) -> None:
    fake, url = dynatrace
    fake.body = answer(812.5, 3.0)
    q = "builtin:service.response.time\n  :filter(eq(dt.entity.service,SERVICE-ABC)):percentile(95)"
    assert await client(url, interval="1m").query(q) == 812.5
    (request,) = fake.requests
    assert request.method == "GET"
    assert request.path == "/e/env1/api/v2/metrics/query"
    assert dict(request.query) == {
        "metricSelector": "builtin:service.response.time :filter(eq(dt.entity.service,SERVICE-ABC)):percentile(95)",
        "resolution": "Inf",
        "from": str(int(NOW * 1000) - 600_000),
        "to": str(int(NOW * 1000)),
    }
    assert request.headers["Authorization"] == "Api-Token dt0c01.abc"


@pytest.mark.parametrize(
    "body",
    [
        {"totalCount": 0, "result": []},
        {"totalCount": 0, "result": [{"metricId": "m", "data": []}]},
        answer(None),
        {"result": [{"metricId": "m", "data": [{"values": []}]}]},
    ],
)
async def test_no_values(dynatrace: tuple[FakeDynatrace, str], body: Any) -> None:
    fake, url = dynatrace
    fake.body = body
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query("builtin:x")


async def test_error_status(dynatrace: tuple[FakeDynatrace, str]) -> None:
    _, url = dynatrace
    with pytest.raises(QueryError, match=r"error response 400: .*metric selector is invalid"):
        await client(url).query("nonsense")
    with pytest.raises(QueryError, match=r"error response 401: .*Missing authorization"):
        await client(url, {"dynatrace_token": "bad"}).query("builtin:x")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{", "unmarshaling result failed"),
        ([], "unexpected answer"),
        ({"result": {"a": 1}}, "unexpected result"),
        ({"result": [{"data": [{"values": ["x"]}]}]}, "is not a number"),
    ],
)
async def test_malformed(dynatrace: tuple[FakeDynatrace, str], body: Any, message: str) -> None:
    fake, url = dynatrace
    fake.body = body
    with pytest.raises(QueryError, match=message):
        await client(url).query("builtin:x")


async def test_timeout(dynatrace: tuple[FakeDynatrace, str]) -> None:
    fake, url = dynatrace
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query("builtin:x")


async def test_is_online(dynatrace: tuple[FakeDynatrace, str]) -> None:
    _, url = dynatrace
    assert await client(url).is_online() is True
    with pytest.raises(QueryError, match="error response 401"):
        await client(url, {"dynatrace_token": "bad"}).is_online()


def test_config() -> None:
    with pytest.raises(ProviderConfigError, match="dynatrace address is not set"):
        client("")
    with pytest.raises(ProviderConfigError, match="dynatrace secret does not contain dynatrace_token"):
        client("http://127.0.0.1:9", {})
    made = create_provider(ProviderSpec(type="dynatrace", address="http://127.0.0.1:9"), KEYS)
    assert isinstance(made, DynatraceProvider)
