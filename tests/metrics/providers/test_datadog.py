"""The Datadog provider against a local server implementing Datadog's documented "Query timeseries points"
API (``GET /api/v1/query`` with ``from``/``to`` in Unix seconds and ``query``, authenticated by the
``DD-API-KEY`` and ``DD-APPLICATION-KEY`` headers, answering ``series[].pointlist``) and its "Validate API
key" endpoint (``GET /api/v1/validate`` → ``{"valid": true}``)."""

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
from canarist.metrics.providers.datadog import DatadogProvider
from tests.metrics.providers.conftest import VendorServer

KEYS = {"datadog_api_key": "api-123", "datadog_application_key": "app-456"}
NOW = 1_700_000_000


class FakeDatadog:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.status = 200
        self.body: Any = {}
        self.hang = False
        self.requests: list[web.Request] = []

    def authorised(self, request: web.Request) -> bool:
        return request.headers.get("DD-API-KEY") == "api-123"

    async def query(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.hang:
            await self.never.wait()
        if not self.authorised(request) or request.headers.get("DD-APPLICATION-KEY") != "app-456":
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return web.Response(status=self.status, text=text, content_type="application/json")

    async def validate(self, request: web.Request) -> web.StreamResponse:
        if not self.authorised(request):
            return web.json_response({"errors": ["Forbidden"]}, status=403)
        return web.json_response({"valid": True})


@pytest.fixture
async def datadog(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeDatadog, str]:
    fake = FakeDatadog(never)
    url = await vendor_server(
        {("GET", "/api/v1/query"): fake.query, ("GET", "/api/v1/validate"): fake.validate}
    )
    return fake, url


def client(url: str, secret: dict[str, str] | None = None, **kw: Any) -> DatadogProvider:
    return DatadogProvider(
        ProviderSpec(type="datadog", address=url), KEYS if secret is None else secret, clock=lambda: NOW, **kw
    )


def series(*pointlists: list[list[Any]]) -> dict[str, Any]:
    return {"status": "ok", "series": [{"metric": "m", "pointlist": p} for p in pointlists]}


async def test_request_and_first_point_of_first_series(datadog: tuple[FakeDatadog, str]) -> None:
    fake, url = datadog
    fake.body = series([[NOW * 1000.0, 2.5], [NOW * 1000.0 + 1, 9.0]], [[NOW * 1000.0, 7.0]])
    provider = client(url, interval="30s")
    assert await provider.query("sum:trace.http.request.errors{service:podinfo}.as_count()\n  / 2") == 2.5
    (request,) = fake.requests
    assert request.method == "GET"
    assert request.path == "/api/v1/query"
    assert dict(request.query) == {
        "from": str(NOW - 300),  # ten intervals back
        "to": str(NOW),
        "query": "sum:trace.http.request.errors{service:podinfo}.as_count() / 2",
    }
    assert request.headers["DD-API-KEY"] == "api-123"
    assert request.headers["DD-APPLICATION-KEY"] == "app-456"


@pytest.mark.parametrize(
    "body",
    [series(), {"status": "ok"}, series([]), series([[NOW * 1000.0, None]])],
)
async def test_no_values(datadog: tuple[FakeDatadog, str], body: Any) -> None:
    fake, url = datadog
    fake.body = body
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query("q")


async def test_error_status(datadog: tuple[FakeDatadog, str]) -> None:
    _, url = datadog
    with pytest.raises(QueryError, match=r"error response 403: .*Forbidden"):
        await client(url, {"datadog_api_key": "wrong", "datadog_application_key": "x"}).query("q")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>", "unmarshaling result failed"),
        ({"status": "error", "error": "Rule 'x' is invalid"}, "query failed: Rule 'x' is invalid"),
        ({"status": "ok", "series": [{"pointlist": [[1, "x"]]}]}, "is not a number"),
        ({"status": "ok", "series": "nope"}, "unexpected series"),
    ],
)
async def test_malformed(datadog: tuple[FakeDatadog, str], body: Any, message: str) -> None:
    fake, url = datadog
    fake.body = body
    with pytest.raises(QueryError, match=message):
        await client(url).query("q")


async def test_timeout(datadog: tuple[FakeDatadog, str]) -> None:
    fake, url = datadog
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query("q")


async def test_is_online(datadog: tuple[FakeDatadog, str]) -> None:
    _, url = datadog
    assert await client(url).is_online() is True
    with pytest.raises(QueryError, match="error response 403"):
        await client(url, {"datadog_api_key": "bad", "datadog_application_key": "x"}).is_online()


def test_config() -> None:
    assert client("").address == "https://api.datadoghq.com"
    with pytest.raises(ProviderConfigError, match="datadog secret does not contain datadog_application_key"):
        client("", {"datadog_api_key": "a"})
    with pytest.raises(ProviderConfigError, match="needs a secretRef"):
        DatadogProvider(ProviderSpec(type="datadog"), None)
    with pytest.raises(ProviderConfigError, match="error parsing metric interval"):
        client("", interval="")
    assert isinstance(create_provider(ProviderSpec(type="datadog"), KEYS), DatadogProvider)
