"""The Graphite provider against a local server implementing graphite-web's documented render API
(``GET /render?target=...&from=...&format=json`` answering ``[{"target", "datapoints": [[value|null, ts]]}]``,
HTTP Basic auth in front of it as a reverse proxy would add)."""

from __future__ import annotations

import asyncio
import base64
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
from canarist.metrics.providers.graphite import GraphiteProvider
from tests.metrics.providers.conftest import VendorServer

KEYS = {"username": "graphite", "password": "pw:1"}


class FakeGraphite:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.body: Any = []
        self.hang = False
        self.requests: list[web.Request] = []

    async def render(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.hang:
            await self.never.wait()
        expected = "Basic " + base64.b64encode(b"graphite:pw:1").decode()
        if request.headers.get("Authorization") != expected:
            return web.Response(status=401, text="Unauthorized")
        if request.query.get("format") != "json":
            return web.Response(status=400, text="format must be json here")
        target = request.query.getall("target", [])
        if target == ["constantLine(1)"]:
            return web.json_response([{"target": "1", "datapoints": [[1, 100], [1, 160]]}])
        if any(t.count("(") != t.count(")") for t in target):
            return web.Response(status=500, text="ParseException: Expected ')'")
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return web.Response(text=text, content_type="application/json")


@pytest.fixture
async def graphite(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeGraphite, str]:
    fake = FakeGraphite(never)
    url = await vendor_server({("GET", "/prefix/render"): fake.render})
    return fake, url + "/prefix"


def client(url: str, secret: dict[str, str] | None = None, **kw: Any) -> GraphiteProvider:
    return GraphiteProvider(
        ProviderSpec(type="graphite", address=url), KEYS if secret is None else secret, **kw
    )


def series(*points: list[Any]) -> list[dict[str, Any]]:
    return [{"target": "sumSeries(app.*.errors)", "tags": {}, "datapoints": list(points)}]


async def test_request_and_last_non_null(graphite: tuple[FakeGraphite, str]) -> None:
    fake, url = graphite
    fake.body = series([1.5, 100], [4.25, 160], [None, 220])
    q = "target=sumSeries(app.*.errors,\n  app.*.timeouts)&from=-5min&format=raw"
    assert await client(url).query(q) == 4.25
    (request,) = fake.requests
    assert request.method == "GET"
    assert request.path == "/prefix/render"
    assert list(request.query.items()) == [
        ("target", "sumSeries(app.*.errors, app.*.timeouts)"),
        ("from", "-5min"),
        ("format", "json"),  # forced
    ]


@pytest.mark.parametrize("body", [[], series(), series([None, 100], [None, 160])])
async def test_no_values(graphite: tuple[FakeGraphite, str], body: Any) -> None:
    fake, url = graphite
    fake.body = body
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query("target=a.b&from=-1min")


async def test_error_status(graphite: tuple[FakeGraphite, str]) -> None:
    _, url = graphite
    with pytest.raises(QueryError, match=r"error response 500: ParseException"):
        await client(url).query("target=sumSeries(a.b")
    with pytest.raises(QueryError, match=r"error response 401: Unauthorized"):
        await client(url, {"username": "graphite", "password": "no"}).query("target=a")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>oops</html>", "unmarshaling result failed"),
        ({"target": "x"}, "unexpected answer"),
        (series([1, 100]) + series([2, 100]), "query returned 2 series, want one"),
        ([{"target": "x"}], "unexpected series"),
        (series([1]), "unexpected datapoint"),
        (series(["x", 100]), "is not a number"),
    ],
)
async def test_malformed(graphite: tuple[FakeGraphite, str], body: Any, message: str) -> None:
    fake, url = graphite
    fake.body = body
    with pytest.raises(QueryError, match=message):
        await client(url).query("target=a.b")


async def test_query_without_target(graphite: tuple[FakeGraphite, str]) -> None:
    _, url = graphite
    with pytest.raises(QueryError, match="has no target"):
        await client(url).query("from=-1min")


async def test_timeout(graphite: tuple[FakeGraphite, str]) -> None:
    fake, url = graphite
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query("target=a")


async def test_is_online(graphite: tuple[FakeGraphite, str]) -> None:
    fake, url = graphite
    assert await client(url).is_online() is True
    assert list(fake.requests[0].query.items()) == [
        ("target", "constantLine(1)"),
        ("from", "-1min"),
        ("format", "json"),
    ]
    with pytest.raises(QueryError, match="error response 401"):
        await client(url, {"username": "x", "password": "y"}).is_online()


def test_config() -> None:
    with pytest.raises(ProviderConfigError, match="graphite address is not set"):
        client("")
    with pytest.raises(ProviderConfigError, match='both "username" and "password"'):
        client("http://127.0.0.1:9", {"username": "u"})
    assert isinstance(
        create_provider(ProviderSpec(type="graphite", address="http://127.0.0.1:9")), GraphiteProvider
    )
