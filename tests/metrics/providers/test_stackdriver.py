"""The Stackdriver provider against local servers implementing Google Cloud Monitoring's documented
``projects.timeSeries.query`` method (``POST /v3/projects/<project>/timeSeries:query`` with ``{"query": MQL}``,
answering ``timeSeriesData[].pointData[].values[]`` with ``doubleValue``/``int64Value``; errors as
``{"error": {"code", "message", "status"}}``) and the GCE metadata server's documented access token endpoint
(``/computeMetadata/v1/instance/service-accounts/default/token`` with ``Metadata-Flavor: Google``)."""

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
from canarist.metrics.providers.stackdriver import StackdriverProvider
from tests.metrics.providers.conftest import VendorServer

MQL = "fetch k8s_container\n| metric 'istio.io/service/server/response_latencies'\n| every 1m"


def gerror(code: int, status: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, "status": status}}, status=code)


class FakeGoogle:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.body: Any = {
            "timeSeriesData": [{"labelValues": [], "pointData": [{"values": [{"doubleValue": 0.25}]}]}]
        }
        self.hang = False
        self.token_requests = 0
        self.queries: list[tuple[web.Request, Any]] = []

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", "/computeMetadata/v1/instance/service-accounts/default/token"): self.token,
            ("POST", "/v3/projects/{project}/timeSeries:query"): self.query,
            ("GET", "/v3/projects/{project}/metricDescriptors"): self.descriptors,
        }

    async def token(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header.")
        self.token_requests += 1
        return web.json_response({"access_token": "ya29.tok", "expires_in": 3599, "token_type": "Bearer"})

    def denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != "Bearer ya29.tok":
            return gerror(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if request.match_info["project"] != "my-proj":
            return gerror(403, "PERMISSION_DENIED", "Permission monitoring.timeSeries.list denied")
        return None

    async def query(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.queries.append((request, body))
        if self.hang:
            await self.never.wait()
        if (denied := self.denied(request)) is not None:
            return denied
        if not body.get("query", "").startswith("fetch"):
            return gerror(400, "INVALID_ARGUMENT", "Line 1, Col 1: unknown table operation")
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return web.Response(text=text, content_type="application/json")

    async def descriptors(self, request: web.Request) -> web.StreamResponse:
        if (denied := self.denied(request)) is not None:
            return denied
        return web.json_response({"metricDescriptors": [{"type": "x"}]})


@pytest.fixture
async def google(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeGoogle, str]:
    fake = FakeGoogle(never)
    return fake, await vendor_server(fake.routes())


def client(url: str, project: str = "my-proj", **kw: Any) -> StackdriverProvider:
    spec = ProviderSpec(type="stackdriver", address=url)
    return StackdriverProvider(spec, {"project": project}, metadata_host=url.removeprefix("http://"), **kw)


async def test_request_and_first_value(google: tuple[FakeGoogle, str]) -> None:
    fake, url = google
    provider = client(url)
    assert await provider.query(MQL) == 0.25
    fake.body = {
        "timeSeriesData": [
            {"pointData": [{"values": [{"int64Value": "42"}]}, {"values": [{"int64Value": "1"}]}]}
        ]
    }
    assert await provider.query(MQL) == 42.0
    request, body = fake.queries[0]
    assert request.method == "POST"
    assert request.path == "/v3/projects/my-proj/timeSeries:query"
    assert body == {"query": MQL}
    assert request.headers["Authorization"] == "Bearer ya29.tok"
    assert fake.token_requests == 1  # cached until shortly before it expires


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"timeSeriesData": []},
        {"timeSeriesData": [{"pointData": []}]},
        {"timeSeriesData": [{"pointData": [{"values": []}]}]},
    ],
)
async def test_no_values(google: tuple[FakeGoogle, str], body: Any) -> None:
    fake, url = google
    fake.body = body
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query(MQL)


async def test_error_status(google: tuple[FakeGoogle, str]) -> None:
    _, url = google
    with pytest.raises(QueryError, match=r"error response 400: .*unknown table operation"):
        await client(url).query("nonsense")
    with pytest.raises(QueryError, match=r"error response 403: .*PERMISSION_DENIED"):
        await client(url, project="other").query(MQL)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>", "unmarshaling result failed"),
        ({"timeSeriesData": {"a": 1}}, "unexpected timeSeriesData"),
        ({"timeSeriesData": [{"pointData": [{"values": [{"stringValue": "x"}]}]}]}, "value is not a number"),
        ({"timeSeriesData": [{"pointData": [{"values": [{"int64Value": "x"}]}]}]}, "is not a number"),
    ],
)
async def test_malformed(google: tuple[FakeGoogle, str], body: Any, message: str) -> None:
    fake, url = google
    fake.body = body
    with pytest.raises(QueryError, match=message):
        await client(url).query(MQL)


async def test_timeout(google: tuple[FakeGoogle, str]) -> None:
    fake, url = google
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query(MQL)


async def test_is_online(google: tuple[FakeGoogle, str]) -> None:
    _, url = google
    assert await client(url).is_online() is True
    with pytest.raises(QueryError, match="error response 403"):
        await client(url, project="other").is_online()


async def test_metadata_server_failure(google: tuple[FakeGoogle, str], vendor_server: VendorServer) -> None:
    _, url = google

    async def no_token(request: web.Request) -> web.Response:
        return web.json_response({"error": "no service account"}, status=404)

    metadata = await vendor_server(
        {("GET", "/computeMetadata/v1/instance/service-accounts/default/token"): no_token}
    )
    spec = ProviderSpec(type="stackdriver", address=url)
    provider = StackdriverProvider(
        spec, {"project": "my-proj"}, metadata_host=metadata.removeprefix("http://")
    )
    with pytest.raises(QueryError, match="error response 404"):
        await provider.query(MQL)


def test_config(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProviderConfigError, match="needs a secretRef with project"):
        StackdriverProvider(ProviderSpec(type="stackdriver"), None)
    with pytest.raises(ProviderConfigError, match="serviceAccountKey is not supported yet"):
        StackdriverProvider(ProviderSpec(type="stackdriver"), {"project": "p", "serviceAccountKey": "{}"})
    with pytest.raises(ProviderConfigError, match="invalid stackdriver project"):
        StackdriverProvider(ProviderSpec(type="stackdriver"), {"project": "a/b"})
    made = create_provider(ProviderSpec(type="stackdriver"), {"project": "p"})
    assert isinstance(made, StackdriverProvider)
    assert made.address == "https://monitoring.googleapis.com"
