"""The InfluxDB provider against a local server implementing InfluxDB 2.x's documented query API
(``POST /api/v2/query?org=<org>`` with ``Authorization: Token <token>``, ``Content-Type:
application/vnd.flux`` and the Flux program as the body, answering annotated CSV; errors are JSON
``{"code", "message"}`` with a 4xx status, or an in-band ``error,reference`` CSV table)."""

from __future__ import annotations

import asyncio
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
from canarist.metrics.providers.influxdb import ONLINE_QUERY, InfluxDBProvider
from tests.metrics.providers.conftest import VendorServer

KEYS = {"token": "tok-1", "org": "acme"}

ANNOTATED = (
    "#group,false,false,true,true,false,false,true,true\r\n"
    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string\r\n"
    "#default,count,,,,,,,\r\n"
    ",result,table,_start,_stop,_time,_value,_field,_measurement\r\n"
    ",,0,2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,2026-01-01T00:10:00Z,12.5,counter,istio_requests_total\r\n"
    ",,0,2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,2026-01-01T00:20:00Z,99,counter,istio_requests_total\r\n"
    "\r\n"
    "#group,false,false,true,true,false,false,true,true\r\n"
    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string\r\n"
    "#default,count,,,,,,,\r\n"
    ",result,table,_start,_stop,_time,_value,_field,_measurement\r\n"
    ",,1,2026-01-01T00:00:00Z,2026-01-01T01:00:00Z,2026-01-01T00:10:00Z,7,gauge,other\r\n"
    "\r\n"
)
PLAIN = ",result,table,_value\r\n,_result,0,3\r\n\r\n"
ERROR_TABLE = (
    "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n"
    ',"type error: missing required argument bucket",\r\n\r\n'
)


class FakeInflux:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.body = ANNOTATED
        self.hang = False
        self.requests: list[tuple[web.Request, str]] = []

    async def query(self, request: web.Request) -> web.StreamResponse:
        flux = await request.text()
        self.requests.append((request, flux))
        if self.hang:
            await self.never.wait()
        if request.headers.get("Authorization") != "Token tok-1":
            return web.json_response({"code": "unauthorized", "message": "unauthorized access"}, status=401)
        if request.query.get("org") != "acme":
            return web.json_response(
                {"code": "not found", "message": "organization name not found"}, status=404
            )
        if request.content_type != "application/vnd.flux":
            return web.json_response({"code": "invalid", "message": "unsupported content type"}, status=400)
        if "from(" not in flux and "buckets()" not in flux:
            return web.json_response({"code": "invalid", "message": "compilation failed"}, status=400)
        return web.Response(text=self.body, content_type="text/csv")


@pytest.fixture
async def influx(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeInflux, str]:
    fake = FakeInflux(never)
    url = await vendor_server({("POST", "/api/v2/query"): fake.query})
    return fake, url


def client(url: str, secret: dict[str, str] | None = None, **kw: Any) -> InfluxDBProvider:
    return InfluxDBProvider(
        ProviderSpec(type="influxdb", address=url), KEYS if secret is None else secret, **kw
    )


FLUX = 'from(bucket: "default")\n  |> range(start: -2h)\n  |> count()\n  |> yield(name: "count")\n'


async def test_request_and_first_record(influx: tuple[FakeInflux, str]) -> None:
    fake, url = influx
    assert await client(url).query(FLUX) == 12.5
    ((request, flux),) = fake.requests
    assert request.method == "POST"
    assert request.path == "/api/v2/query"
    assert dict(request.query) == {"org": "acme"}
    assert request.headers["Authorization"] == "Token tok-1"
    assert request.headers["Accept"] == "application/csv"
    assert flux == FLUX  # the Flux program is sent as written (not whitespace-collapsed)
    fake.body = PLAIN
    assert await client(url).query(FLUX) == 3.0


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\r\n",
        ",result,table,_value\r\n\r\n",
        ",result,table,_value\r\n,_result,0,\r\n",
        PLAIN.replace("3", "NaN"),
    ],
)
async def test_no_values(influx: tuple[FakeInflux, str], body: str) -> None:
    fake, url = influx
    fake.body = body
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query(FLUX)


async def test_error_status(influx: tuple[FakeInflux, str]) -> None:
    _, url = influx
    with pytest.raises(QueryError, match=r"error response 400: .*compilation failed"):
        await client(url).query("nonsense")
    with pytest.raises(QueryError, match=r"error response 401: .*unauthorized access"):
        await client(url, {"token": "bad", "org": "acme"}).query(FLUX)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (ERROR_TABLE, "query failed: .*missing required argument bucket"),
        (",result,table,_value\r\n,_result,0\r\n", "malformed CSV answer"),
        (",result,table,count\r\n,_result,0,4\r\n", "answer has no _value column"),
        (",result,table,_value\r\n,_result,0,abc\r\n", "is not a number"),
    ],
)
async def test_malformed(influx: tuple[FakeInflux, str], body: str, message: str) -> None:
    fake, url = influx
    fake.body = body
    with pytest.raises(QueryError, match=message):
        await client(url).query(FLUX)


async def test_timeout(influx: tuple[FakeInflux, str]) -> None:
    fake, url = influx
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query(FLUX)


async def test_is_online(influx: tuple[FakeInflux, str]) -> None:
    fake, url = influx
    fake.body = ""
    assert await client(url).is_online() is True
    assert fake.requests[0][1] == ONLINE_QUERY
    with pytest.raises(QueryError, match="error response 404"):
        await client(url, {"token": "tok-1", "org": "other"}).is_online()


def test_config() -> None:
    with pytest.raises(ProviderConfigError, match="influxdb address is not set"):
        client("")
    with pytest.raises(ProviderConfigError, match="influxdb secret does not contain org"):
        client("http://127.0.0.1:9", {"token": "t"})
    assert isinstance(
        InfluxDBProvider(ProviderSpec(type="influxdb", address="http://127.0.0.1:9")), InfluxDBProvider
    )
    made = create_provider(ProviderSpec(type="influxdb", address="http://127.0.0.1:9"), KEYS)
    assert isinstance(made, InfluxDBProvider)
