"""The external metrics provider against a local server implementing the Kubernetes external metrics API
(``external.metrics.k8s.io/v1beta1``: ``GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>
?labelSelector=`` answering an ``ExternalMetricValueList`` whose values are resource quantities; the group's
discovery document is an ``APIResourceList``; errors are ``Status`` objects), over plain HTTP with an
explicit address and over TLS as the in-cluster API server with a service account token and CA."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
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
from canarist.metrics.providers.externalmetrics import ExternalMetricsProvider, parse_quantity
from tests.fixtures.capture import serve_loopback
from tests.metrics.providers.conftest import VendorServer

GROUP = "/apis/external.metrics.k8s.io/v1beta1"


def status(code: int, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    return web.json_response(body, status=code)


class FakeAdapter:
    def __init__(self, never: asyncio.Event, token: str = "kube-tok") -> None:
        self.never = never
        self.token = token
        self.items: Any = [
            {"metricName": "m", "metricLabels": {}, "timestamp": "2026-01-01T00:00:00Z", "value": "250m"}
        ]
        self.body: str | None = None
        self.hang = False
        self.requests: list[web.Request] = []

    def routes(self) -> dict[tuple[str, str], Any]:
        return {("GET", GROUP + "/namespaces/{ns}/{metric}"): self.metric, ("GET", GROUP): self.discovery}

    async def metric(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        if self.hang:
            await self.never.wait()
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized")
        if request.match_info["metric"] == "missing":
            return status(404, 'the server could not find the metric "missing"')
        if self.body is not None:
            return web.Response(text=self.body, content_type="application/json")
        body = {
            "kind": "ExternalMetricValueList",
            "apiVersion": "external.metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": self.items,
        }
        return web.json_response(body)

    async def discovery(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized")
        return web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": "external.metrics.k8s.io/v1beta1",
                "resources": [],
            }
        )


@pytest.fixture
async def adapter(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeAdapter, str]:
    fake = FakeAdapter(never)
    return fake, await vendor_server(fake.routes())


def client(url: str, token: str | None = "kube-tok", **kw: Any) -> ExternalMetricsProvider:
    secret = None if token is None else {"token": token}
    return ExternalMetricsProvider(ProviderSpec(type="externalmetrics", address=url), secret, **kw)


async def test_request_and_first_item(adapter: tuple[FakeAdapter, str]) -> None:
    fake, url = adapter
    fake.items.append({"metricName": "m", "value": "9"})
    q = "keda/s0-prometheus-http_requests?labelSelector=scaledobject.keda.sh%2Fname%3Dpodinfo"
    assert await client(url).query(q) == 0.25
    (request,) = fake.requests
    assert request.method == "GET"
    assert request.path == GROUP + "/namespaces/keda/s0-prometheus-http_requests"
    assert dict(request.query) == {"labelSelector": "scaledobject.keda.sh/name=podinfo"}
    assert request.headers["Authorization"] == "Bearer kube-tok"
    await client(url).query("queue_length")
    assert fake.requests[1].path == GROUP + "/namespaces/default/queue_length"  # namespace default
    assert dict(fake.requests[1].query) == {}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250m", 0.25),
        ("3", 3.0),
        ("2k", 2000.0),
        ("1Ki", 1024.0),
        ("1e3", 1000.0),
        ("-1.5", -1.5),
        ("5n", 5e-9),
    ],
)
def test_quantities(text: str, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


async def test_no_values(adapter: tuple[FakeAdapter, str]) -> None:
    fake, url = adapter
    fake.items = []
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query("ns/m")


async def test_error_status(adapter: tuple[FakeAdapter, str]) -> None:
    _, url = adapter
    with pytest.raises(QueryError, match=r'error response 404: .*could not find the metric \\"missing'):
        await client(url).query("ns/missing")
    with pytest.raises(QueryError, match=r"error response 401: .*Unauthorized"):
        await client(url, token=None).query("ns/m")


@pytest.mark.parametrize(
    ("items", "body", "message"),
    [
        ([{"value": "12 apples"}], None, "invalid quantity"),
        ([{"metricName": "m"}], None, "unexpected item"),
        ([], "{oops", "unmarshaling result failed"),
        ([], '{"kind": "PodList", "items": []}', "unexpected answer"),
    ],
)
async def test_malformed(
    adapter: tuple[FakeAdapter, str], items: Any, body: str | None, message: str
) -> None:
    fake, url = adapter
    fake.items, fake.body = items, body
    with pytest.raises(QueryError, match=message):
        await client(url).query("ns/m")


async def test_bad_queries(adapter: tuple[FakeAdapter, str]) -> None:
    _, url = adapter
    with pytest.raises(QueryError, match="invalid external metric query"):
        client(url).url_for("a/b/")
    with pytest.raises(QueryError, match="unknown parameters"):
        client(url).url_for("ns/m?selector=x")


async def test_timeout(adapter: tuple[FakeAdapter, str]) -> None:
    fake, url = adapter
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query("ns/m")


async def test_is_online(adapter: tuple[FakeAdapter, str]) -> None:
    _, url = adapter
    assert await client(url).is_online() is True
    with pytest.raises(QueryError, match="error response 401"):
        await client(url, token="bad").is_online()


@pytest.fixture
async def in_cluster(
    self_signed_cert: tuple[Path, Path], never: asyncio.Event, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FakeAdapter, Path]]:
    """The adapter behind TLS as the in-cluster API server, with a service account directory."""
    fake = FakeAdapter(never, token="sa-token-1")
    app = web.Application()
    for (method, path), handler in fake.routes().items():
        app.router.add_route(method, path, handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(self_signed_cert[0]), str(self_signed_cert[1]))
    runner, port = await serve_loopback(app, ssl_context=context)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("sa-token-1\n")
    (account / "ca.crt").write_text(self_signed_cert[0].read_text())
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(port))
    yield fake, account
    await runner.cleanup()


async def test_in_cluster_service_account(in_cluster: tuple[FakeAdapter, Path]) -> None:
    fake, account = in_cluster
    provider = ExternalMetricsProvider(ProviderSpec(type="externalmetrics"), None, service_account=account)
    assert provider.address.startswith("https://127.0.0.1:")
    assert await provider.query("ns/m") == 0.25  # verified against the service account CA
    assert await provider.is_online() is True
    (account / "token").write_text("sa-token-2")  # a rotated token is read at the next request
    fake.token = "sa-token-2"
    assert await provider.query("ns/m") == 0.25
    no_ca = ExternalMetricsProvider(
        ProviderSpec(type="externalmetrics"), {"token": "sa-token-2"}, service_account=account / "none"
    )
    with pytest.raises(QueryError, match="failed"):  # no CA file: the system store does not trust it
        await no_ca.query("ns/m")
    no_token = ExternalMetricsProvider(
        ProviderSpec(type="externalmetrics"), None, service_account=account / "none"
    )
    with pytest.raises(QueryError, match="cannot read the service account token"):
        await no_token.query("ns/m")


def test_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ProviderConfigError, match="not running in a cluster"):
        ExternalMetricsProvider(ProviderSpec(type="externalmetrics"), None)
    made = create_provider(ProviderSpec(type="externalmetrics", address="http://127.0.0.1:9"), None)
    assert isinstance(made, ExternalMetricsProvider)
    assert json.dumps(made.address) == '"http://127.0.0.1:9"'
