"""The New Relic provider against a local server implementing New Relic's documented Insights query API
(``GET /v1/accounts/{accountId}/query?nrql=...`` authenticated by the ``X-Query-Key`` header, answering
``{"results": [{"count": 42}], "metadata": {...}}``, and a 400 with ``{"error": ...}`` for bad NRQL)."""

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
from canarist.metrics.providers.newrelic import NewRelicProvider
from tests.metrics.providers.conftest import VendorServer

KEYS = {"newrelic_account_id": "100", "newrelic_query_key": "NRIQ-abc"}


class FakeNewRelic:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.body: Any = {"results": [{"count": 1}]}
        self.hang = False
        self.requests: list[web.Request] = []

    async def query(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.hang:
            await self.never.wait()
        if request.headers.get("X-Query-Key") != "NRIQ-abc" or request.match_info["account"] != "100":
            return web.json_response({"error": "Invalid query key"}, status=403)
        if "SELECT" not in request.query.get("nrql", ""):
            return web.json_response({"error": "NRQL Syntax Error: Error at line 1"}, status=400)
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return web.Response(text=text, content_type="application/json")


@pytest.fixture
async def newrelic(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeNewRelic, str]:
    fake = FakeNewRelic(never)
    url = await vendor_server({("GET", "/v1/accounts/{account}/query"): fake.query})
    return fake, url


def client(url: str, secret: dict[str, str] | None = None, **kw: Any) -> NewRelicProvider:
    return NewRelicProvider(
        ProviderSpec(type="newrelic", address=url), KEYS if secret is None else secret, **kw
    )


async def test_request_and_value(newrelic: tuple[FakeNewRelic, str]) -> None:
    fake, url = newrelic
    fake.body = {"results": [{"percentage": 98.5}], "metadata": {"eventTypes": ["Transaction"]}}
    q = "SELECT percentage(count(*), WHERE httpResponseCode != '500')\n  FROM Transaction WHERE appName = 'x' "
    assert await client(url, interval="2m").query(q) == 98.5
    (request,) = fake.requests
    assert request.method == "GET"
    assert request.path == "/v1/accounts/100/query"
    assert dict(request.query) == {
        "nrql": "SELECT percentage(count(*), WHERE httpResponseCode != '500') FROM Transaction WHERE "
        "appName = 'x' SINCE 120 seconds ago"
    }
    assert request.headers["X-Query-Key"] == "NRIQ-abc"


@pytest.mark.parametrize("body", [{"results": []}, {"results": [{}]}, {"results": [{"average": None}]}, {}])
async def test_no_values(newrelic: tuple[FakeNewRelic, str], body: Any) -> None:
    fake, url = newrelic
    fake.body = body
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query("SELECT count(*) FROM Transaction")


async def test_error_status(newrelic: tuple[FakeNewRelic, str]) -> None:
    _, url = newrelic
    with pytest.raises(QueryError, match=r"error response 400: .*NRQL Syntax Error"):
        await client(url).query("count(*)")
    with pytest.raises(QueryError, match=r"error response 403: .*Invalid query key"):
        await client(url, {"newrelic_account_id": "100", "newrelic_query_key": "bad"}).query("SELECT 1")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "unmarshaling result failed"),
        ({"results": [{"count": 1}, {"count": 2}]}, "query returned 2 results, want exactly one"),
        ({"results": [{"percentiles": {"99": 0.3}}]}, "is not a number"),
        ({"results": "x"}, "unexpected results"),
    ],
)
async def test_malformed(newrelic: tuple[FakeNewRelic, str], body: Any, message: str) -> None:
    fake, url = newrelic
    fake.body = body
    with pytest.raises(QueryError, match=message):
        await client(url).query("SELECT count(*) FROM Transaction")


async def test_timeout(newrelic: tuple[FakeNewRelic, str]) -> None:
    fake, url = newrelic
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query("SELECT 1")


async def test_is_online(newrelic: tuple[FakeNewRelic, str]) -> None:
    fake, url = newrelic
    assert await client(url).is_online() is True
    assert fake.requests[0].query["nrql"] == "SELECT count(*) FROM Metric SINCE 60 seconds ago"
    with pytest.raises(QueryError, match="error response 403"):
        await client(url, {"newrelic_account_id": "7", "newrelic_query_key": "NRIQ-abc"}).is_online()


def test_config() -> None:
    assert client("").address == "https://insights-api.newrelic.com"
    with pytest.raises(ProviderConfigError, match="newrelic secret does not contain newrelic_query_key"):
        client("", {"newrelic_account_id": "1"})
    with pytest.raises(ProviderConfigError, match="needs a secretRef"):
        NewRelicProvider(ProviderSpec(type="newrelic"), None)
    assert isinstance(create_provider(ProviderSpec(type="newrelic"), KEYS), NewRelicProvider)
