"""The Prometheus provider against a capture server (canned answers, observed requests) and against the
real Prometheus scraping a demo app."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from canarist.metrics.builtin import REQUEST_DURATION, REQUEST_SUCCESS_RATE, builtin_query, observer_for
from canarist.metrics.providers import (
    FLAGGER_PROVIDER_TYPES,
    NoValuesError,
    PrometheusProvider,
    ProviderConfigError,
    ProviderSpec,
    QueryError,
    create_provider,
    supported_types,
)
from canarist.metrics.template import TemplateModel
from tests.fixtures.demo_app import load, requests_in_window, slowest_bucket_edge


def vector(*values: str) -> str:
    result = [{"metric": {"i": str(i)}, "value": [1700000000.0, v]} for i, v in enumerate(values)]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


def answer(result_type: str, result: Any) -> str:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}})


def provider(url: str, secret: dict[str, str] | None = None, **spec: Any) -> PrometheusProvider:
    return PrometheusProvider(ProviderSpec(address=url, **spec), secret)


async def test_request_shape_bearer_and_headers(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("42")])
    client = provider(
        srv.url + "prefix/",
        {"token": "s3cret"},
        headers={"X-Scope-OrgID": ["tenant-a"], "X-One": "1"},
    )
    query = '\n  sum(rate(x_bucket{le="+Inf", a=~"b.*"}[1m]))\n  / 2 '
    assert await client.query(query) == 42.0
    (request,) = srv.requests
    assert request.method == "GET"
    assert request.path == "/prefix/api/v1/query"
    assert request.query == {"query": ' sum(rate(x_bucket{le="+Inf", a=~"b.*"}[1m])) / 2 '}
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["x-scope-orgid"] == "tenant-a"
    assert request.headers["x-one"] == "1"


async def test_basic_auth(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("1")])
    await provider(srv.url, {"username": "alice", "password": "pw:x"}).query("up")
    expected = "Basic " + base64.b64encode(b"alice:pw:x").decode()
    assert srv.requests[0].headers["authorization"] == expected


def test_secret_without_credentials_is_a_config_error() -> None:
    with pytest.raises(ProviderConfigError, match='"token", or both "username" and "password"'):
        provider("http://127.0.0.1:9", {"username": "alice"})
    with pytest.raises(ProviderConfigError, match="address is not set"):
        provider("")
    with pytest.raises(ProviderConfigError, match="invalid prometheus address"):
        provider("ftp://example")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (vector("1", "2", "3.5"), 3.5),  # the last series wins, as in Flagger
        (answer("scalar", [1700000000.0, "7.25"]), 7.25),
        (vector("+Inf"), float("inf")),
    ],
)
async def test_values(capture_server: Any, body: str, expected: float) -> None:
    srv = await capture_server(bodies=[body])
    assert await provider(srv.url).query("q") == expected


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (200, vector(), NoValuesError, "no values found"),
        (200, vector("NaN"), NoValuesError, "no values found"),
        (200, vector("1", "NaN"), NoValuesError, "no values found"),
        (
            200,
            answer("matrix", [{"metric": {}, "values": [[1, "1"], [2, "2"]]}]),
            QueryError,
            "query returned multiple values",
        ),
        (200, answer("string", [1, "x"]), QueryError, "unsupported result type 'string'"),
        (200, "not json", QueryError, "unmarshaling result failed"),
        (
            200,
            json.dumps({"status": "error", "errorType": "bad_data", "error": "boom"}),
            QueryError,
            "bad_data: boom",
        ),
        (
            400,
            '{"status":"error","error":"parse error"}',
            QueryError,
            'error response 400: {"status":"error","error":"parse error"}',
        ),
        (503, "unavailable", QueryError, "error response 503: unavailable"),
    ],
)
async def test_failures(
    capture_server: Any, status: int, body: str, error: type[Exception], message: str
) -> None:
    srv = await capture_server(statuses=[status], bodies=[body])
    with pytest.raises(error) as caught:
        await provider(srv.url).query("q")
    assert message in str(caught.value)
    if error is NoValuesError:
        assert str(caught.value) == "no values found"


async def test_timeout(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("1")], delay_s=2.0)
    client = PrometheusProvider(ProviderSpec(address=srv.url), timeout=0.2)
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client.query("q")


async def test_unreachable_server_is_a_query_error() -> None:
    import socket

    with socket.socket() as sock:  # a port that is certainly closed: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(QueryError, match="failed"):
            await provider(f"http://127.0.0.1:{port}").is_online()


async def test_insecure_skip_verify(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("1")], tls=True)
    with pytest.raises(QueryError):
        await provider(srv.url).query("q")
    assert await provider(srv.url, insecure_skip_verify=True).query("q") == 1.0


async def test_is_online(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("1"), vector("0")])
    assert await provider(srv.url).is_online() is True
    assert srv.requests[0].query == {"query": "vector(1)"}
    assert await provider(srv.url).is_online() is False


def test_registry() -> None:
    assert isinstance(
        create_provider(ProviderSpec(type="prometheus", address="http://127.0.0.1:9")), PrometheusProvider
    )
    assert supported_types() == sorted(FLAGGER_PROVIDER_TYPES)  # every Flagger type has an implementation


def test_unknown_type_falls_back_to_prometheus_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    made = create_provider(ProviderSpec(type="victoria", address="http://127.0.0.1:9"))
    assert isinstance(made, PrometheusProvider)
    assert "unknown metric provider type 'victoria'" in caplog.text


# --- the real Prometheus ----------------------------------------------------------------------------


ENOUGH_REQUESTS = 600  # a p99 that 6 slow requests cannot move


async def test_real_prometheus_istio_queries(prometheus_server: Any, demo_app_factory: Any) -> None:
    app = await demo_app_factory(workload="provider-rate", namespace="metrics", error_rate=0.1, latency_ms=30)
    prometheus_server.add_target(app.metrics_target)
    client = provider(prometheus_server.url)
    model = TemplateModel(name="provider-rate", namespace="metrics", target="provider-rate", interval="30s")
    istio = observer_for("istio")
    success_q = builtin_query(istio, REQUEST_SUCCESS_RATE, model)
    duration_q = builtin_query(istio, REQUEST_DURATION, model)

    assert await client.is_online()
    with pytest.raises(NoValuesError):  # nothing scraped yet
        await client.query(success_q)

    statuses: dict[int, int] = {}

    async def traffic() -> None:
        for _ in range(60):  # bounded: at most 60 x 40 requests
            for status, count in (await load(app.url + "/", 40, concurrency=4)).items():
                statuses[status] = statuses.get(status, 0) + count

    task = asyncio.create_task(traffic())
    try:
        # Query only once the 30 s window holds enough requests: over the first scrape or two (a hundred
        # requests) one slow request is already 1 % and moves the p99 into the next bucket.
        await prometheus_server.wait_for_value(
            requests_in_window(app), accept=lambda n: n >= ENOUGH_REQUESTS, timeout_s=60
        )
        success = await client.query(success_q)
        p99 = await client.query(duration_q)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert 87.0 <= success <= 93.0, success  # configured error rate 10 %
    assert 500 in statuses
    assert 200 in statuses
    # 30 ms of added latency puts every request above Istio's 25 ms bucket edge, so the p99 (in ms, not s)
    # is above it. It is at most the upper edge of the bucket of the slowest request the app recorded: 50 ms
    # when every request took (25, 50] ms, as on an idle machine; a loaded one may serve some slower, and
    # the p99 may then rightly be in a later bucket.
    slowest = slowest_bucket_edge(app)
    assert 25.0 <= p99 <= slowest, (p99, slowest)

    with pytest.raises(NoValuesError):
        await client.query('sum(rate(istio_requests_total{destination_workload="nobody"}[30s]))')
    with pytest.raises(NoValuesError):
        await client.query("vector(0) / vector(0)")  # NaN
    with pytest.raises(QueryError, match="error response 400"):
        await client.query("sum(rate(")
    with pytest.raises(QueryError, match="query returned multiple values"):
        await client.query("istio_requests_total[10s]")
    assert await client.query("scalar(vector(3))") == 3.0
