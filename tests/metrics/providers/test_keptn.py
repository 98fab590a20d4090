"""The Keptn provider against a local server implementing the Kubernetes REST API for Keptn's
``metrics.keptn.sh/v1beta1`` resources as documented by Keptn (``KeptnMetric`` with ``status.value``;
``Analysis`` with ``spec.analysisDefinition``, ``spec.timeframe.recent``, ``spec.args`` and
``status.state``/``status.pass``; create with ``generateName``, get, delete; errors as ``Status``)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from aiohttp import web

from canarist.metrics.providers import NoValuesError, ProviderSpec, QueryError, create_provider
from canarist.metrics.providers.keptn import KeptnProvider
from tests.metrics.providers.conftest import VendorServer

API = "/apis/metrics.keptn.sh/v1beta1"


def status(code: int, message: str) -> web.Response:
    return web.json_response(
        {"kind": "Status", "status": "Failure", "message": message, "code": code}, status=code
    )


class FakeKeptn:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.metrics: dict[tuple[str, str], Any] = {
            ("demo", "rps"): {"value": "12.5", "rawValue": "MTIuNQ=="}
        }
        self.analyses: dict[tuple[str, str], dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.deleted: list[str] = []
        self.gets_until_done = 2
        self.verdict = True
        self.hang = False
        self.names = itertools.count(1)

    def routes(self) -> dict[tuple[str, str], Any]:
        return {
            ("GET", API + "/namespaces/{ns}/keptnmetrics/{name}"): self.get_metric,
            ("POST", API + "/namespaces/{ns}/analyses"): self.create,
            ("GET", API + "/namespaces/{ns}/analyses/{name}"): self.get_analysis,
            ("DELETE", API + "/namespaces/{ns}/analyses/{name}"): self.delete,
        }

    def denied(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != "Bearer k-tok":
            return status(401, "Unauthorized")
        return None

    async def get_metric(self, request: web.Request) -> web.StreamResponse:
        if self.hang:
            await self.never.wait()
        if (denied := self.denied(request)) is not None:
            return denied
        key = (request.match_info["ns"], request.match_info["name"])
        if key[1] == "broken":
            return web.Response(text="<html>proxy error</html>", content_type="text/html")
        if key not in self.metrics:
            return status(404, f'keptnmetrics.metrics.keptn.sh "{key[1]}" not found')
        obj = {"apiVersion": "metrics.keptn.sh/v1beta1", "kind": "KeptnMetric", "metadata": {"name": key[1]}}
        if self.metrics[key] is not None:
            obj["status"] = self.metrics[key]
        return web.json_response(obj)

    async def create(self, request: web.Request) -> web.StreamResponse:
        if (denied := self.denied(request)) is not None:
            return denied
        obj = await request.json()
        self.created.append(obj)
        name = obj["metadata"]["generateName"] + f"x{next(self.names)}"
        obj["metadata"]["name"] = name
        obj["status"] = {"state": "Pending"}
        obj["gets"] = 0
        self.analyses[(request.match_info["ns"], name)] = obj
        return web.json_response(obj, status=201)

    async def get_analysis(self, request: web.Request) -> web.StreamResponse:
        obj = self.analyses.get((request.match_info["ns"], request.match_info["name"]))
        if obj is None:
            return status(404, "analysis not found")
        obj["gets"] += 1
        if obj["gets"] >= self.gets_until_done:
            obj["status"] = {"state": "Completed", "pass": self.verdict, "raw": "{}"}
        return web.json_response(obj)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        self.deleted.append(request.match_info["name"])
        self.analyses.pop((request.match_info["ns"], request.match_info["name"]), None)
        return web.json_response({"kind": "Status", "status": "Success"})


@pytest.fixture
async def keptn(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeKeptn, str]:
    fake = FakeKeptn(never)
    return fake, await vendor_server(fake.routes())


def client(url: str, token: str = "k-tok", **kw: Any) -> KeptnProvider:
    return KeptnProvider(ProviderSpec(type="keptn", address=url), {"token": token}, poll_interval=0.01, **kw)


async def test_keptn_metric(keptn: tuple[FakeKeptn, str]) -> None:
    _, url = keptn
    assert await client(url).query("keptnmetric/demo/rps\n") == 12.5


async def test_analysis_pass_and_fail(keptn: tuple[FakeKeptn, str]) -> None:
    fake, url = keptn
    assert await client(url).query("analysis/demo/response-time/5m/service=podinfo;stage=dev") == 1.0
    (created,) = fake.created
    assert created["kind"] == "Analysis"
    assert created["apiVersion"] == "metrics.keptn.sh/v1beta1"
    assert created["spec"] == {
        "analysisDefinition": {"name": "response-time", "namespace": "demo"},
        "timeframe": {"recent": "5m"},
        "args": {"service": "podinfo", "stage": "dev"},
    }
    assert fake.deleted == ["canarist-analysis-x1"]
    assert fake.analyses == {}
    fake.verdict = False
    assert await client(url).query("analysis/demo/response-time") == 0.0
    assert fake.created[1]["spec"]["timeframe"] == {"recent": "1m"}  # the default duration
    assert fake.created[1]["spec"]["args"] == {}


async def test_analysis_that_never_completes_is_deleted(keptn: tuple[FakeKeptn, str]) -> None:
    fake, url = keptn
    fake.gets_until_done = 10**9
    with pytest.raises(QueryError, match=r"did not complete within 0\.05s"):
        await client(url, analysis_timeout=0.05).query("analysis/demo/response-time")
    assert fake.deleted == ["canarist-analysis-x1"]


async def test_no_values(keptn: tuple[FakeKeptn, str]) -> None:
    fake, url = keptn
    fake.metrics[("demo", "fresh")] = None  # not reconciled yet: no status
    fake.metrics[("demo", "empty")] = {"value": ""}
    for name in ("fresh", "empty"):
        with pytest.raises(NoValuesError, match=r"^no values found$"):
            await client(url).query(f"keptnmetric/demo/{name}")


async def test_error_status(keptn: tuple[FakeKeptn, str]) -> None:
    _, url = keptn
    with pytest.raises(
        QueryError, match=r'error response 404: .*keptnmetrics.metrics.keptn.sh \\"nope\\" not found'
    ):
        await client(url).query("keptnmetric/demo/nope")
    with pytest.raises(QueryError, match="error response 401"):
        await client(url, token="bad").query("analysis/demo/x")


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("keptnmetric/demo", "invalid keptn query"),
        ("prometheus/demo/x", "invalid keptn query"),
        ("keptnmetric/Demo/x", "invalid namespace 'Demo'"),
        ("analysis/demo/x/1m/novalue", "invalid analysis argument 'novalue'"),
    ],
)
async def test_malformed_queries(keptn: tuple[FakeKeptn, str], q: str, message: str) -> None:
    _, url = keptn
    with pytest.raises(QueryError, match=message):
        await client(url).query(q)


async def test_malformed_value(keptn: tuple[FakeKeptn, str]) -> None:
    fake, url = keptn
    fake.metrics[("demo", "odd")] = {"value": "twelve"}
    with pytest.raises(QueryError, match="is not a number"):
        await client(url).query("keptnmetric/demo/odd")
    with pytest.raises(QueryError, match="unmarshaling result failed"):
        await client(url).query("keptnmetric/demo/broken")


async def test_timeout(keptn: tuple[FakeKeptn, str]) -> None:
    fake, url = keptn
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query("keptnmetric/demo/rps")


async def test_is_online_and_registry(keptn: tuple[FakeKeptn, str]) -> None:
    _, url = keptn
    assert await client(url, token="bad").is_online() is True  # as in Flagger: always
    made = create_provider(ProviderSpec(type="keptn", address=url), {"token": "k-tok"})
    assert isinstance(made, KeptnProvider)
