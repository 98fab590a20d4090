"""Metric checks with Flagger's exact messages, against a real HTTP server answering canned
``/api/v1/query`` JSON, and one end-to-end run against the real Prometheus."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from canarist.api import Canary, CanaryMetric, MetricTemplate
from canarist.metrics.checks import NO_USABLE_METRIC, CheckResult, evaluate_metric
from canarist.metrics.gofmt import go_duration_ms, go_float
from tests.fixtures.canaries import canary_model
from tests.fixtures.demo_app import load, requests_in_window, slowest_bucket_edge


def vector(value: str) -> str:
    return json.dumps(
        {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, value]}]},
        }
    )


EMPTY = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}})


def canary(provider: str = "", metrics_server: str = "") -> Canary:
    """A canary without an autoscaler, deadline, metrics or webhooks: each check gets its metric."""
    return canary_model(
        provider=provider,
        metrics_server=metrics_server,
        progress_deadline_s=None,
        autoscaler=None,
        service={"port": 9898},
        analysis={"interval": "1m", "threshold": 5, "stepWeight": 10},
    )


def metric(**fields: Any) -> CanaryMetric:
    return CanaryMetric.model_validate(fields)


def template(
    query: str, address: str, ptype: str = "prometheus", secret: str = "", **provider: Any
) -> MetricTemplate:
    spec_provider: dict[str, Any] = {"type": ptype, "address": address, **provider}
    if secret:
        spec_provider["secretRef"] = {"name": secret}
    return MetricTemplate.model_validate(
        {
            "metadata": {"name": "tpl", "namespace": "test"},
            "spec": {"provider": spec_provider, "query": query},
        }
    )


async def run(server: Any, body: str, m: CanaryMetric, status: int = 200, **kw: Any) -> CheckResult:
    srv = await server(statuses=[status], bodies=[body])
    kw.setdefault("metrics_server", srv.url)
    c = kw.pop("canary", None) or canary()
    return await evaluate_metric(c, m, **kw)


# --- builtin request-success-rate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fields", "ok", "message"),
    [
        (
            "69.1745",
            {"thresholdRange": {"min": 99}},
            False,
            "Halt podinfo.test advancement success rate 69.17% < 99%",
        ),
        ("99.5", {"thresholdRange": {"min": 99}}, True, ""),
        (
            "99.5",
            {"thresholdRange": {"max": 99.25}},
            False,
            "Halt podinfo.test advancement success rate 99.50% > 99.25%",
        ),
        ("98", {"threshold": 99}, False, "Halt podinfo.test advancement success rate 98.00% < 99%"),
        ("100", {"threshold": 99}, True, ""),
        ("0", {}, True, ""),  # no threshold: nothing to miss
    ],
)
async def test_builtin_success_rate(
    capture_server: Any, value: str, fields: dict[str, Any], ok: bool, message: str
) -> None:
    result = await run(
        capture_server, vector(value), metric(name="request-success-rate", interval="1m", **fields)
    )
    assert result.ok is ok
    assert result.message == message
    assert result.value == float(value)
    assert result.no_data is False
    assert result.severity == ("info" if ok else "warning")


async def test_builtin_sends_the_istio_query(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("100")])
    await evaluate_metric(
        canary(), metric(name="request-success-rate", interval="30s"), metrics_server=srv.url
    )
    assert srv.requests[0].query["query"] == (
        ' sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="test", '
        'destination_workload=~"podinfo", response_code!~"5.*" }[30s] ) ) / sum( rate( istio_requests_total{ '
        'reporter="destination", destination_workload_namespace="test", destination_workload=~"podinfo" }[30s] ) ) * 100'
    )


async def test_canary_metrics_server_wins(capture_server: Any) -> None:
    used = await capture_server(bodies=[vector("100")])
    result = await evaluate_metric(
        canary(metrics_server=used.url),
        metric(name="request-success-rate"),
        metrics_server="http://127.0.0.1:1",
    )
    assert result.ok
    assert len(used.requests) == 1
    assert "[1m]" in used.requests[0].query["query"]  # the 1m default interval


async def test_builtin_no_values(capture_server: Any) -> None:
    result = await run(capture_server, EMPTY, metric(name="request-success-rate", thresholdRange={"min": 99}))
    assert result == CheckResult(
        ok=False,
        value=None,
        message="Halt advancement no values found for istio metric request-success-rate probably podinfo.test "
        "is not receiving traffic: running query failed: no values found",
        no_data=True,
        severity="warning",
        query=result.query,
        provider=result.provider,
        threshold_min=99.0,
        unit="%",
    )
    assert result.provider.startswith("prometheus http://127.0.0.1:")
    nan = await run(
        capture_server, vector("NaN"), metric(name="request-duration", thresholdRange={"max": 500})
    )
    assert nan.ok is False
    assert nan.no_data is True
    assert nan.message == (
        "Halt advancement no values found for istio metric request-duration probably podinfo.test is not receiving traffic"
    )


async def test_builtin_query_error(capture_server: Any) -> None:
    result = await run(capture_server, "boom", metric(name="request-success-rate"), status=500)
    assert result.ok is False
    assert result.no_data is False
    assert result.severity == "error"
    assert result.message == "Prometheus query failed: running query failed: error response 500: boom"


async def test_builtin_bad_metrics_server() -> None:
    result = await evaluate_metric(canary(), metric(name="request-success-rate"), metrics_server="")
    assert result.message == "Error building Prometheus client for  prometheus address is not set"
    assert result.severity == "error"


# --- builtin request-duration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "value", "fields", "ok", "message"),
    [
        (
            "istio",
            "1515.9",
            {"thresholdRange": {"max": 500}},
            False,
            "Halt podinfo.test advancement request duration 1.515s > 500ms",
        ),
        ("istio", "499.99", {"thresholdRange": {"max": 500}}, True, ""),
        ("istio", "500.7", {"thresholdRange": {"max": 500}}, True, ""),  # truncated to 500ms, as Go does
        (
            "istio",
            "12",
            {"thresholdRange": {"min": 50, "max": 500}},
            False,
            "Halt podinfo.test advancement request duration 12ms < 50ms",
        ),
        (
            "istio",
            "61500",
            {"threshold": 60000},
            False,
            "Halt podinfo.test advancement request duration 1m1.5s > 1m0s",
        ),
        ("istio", "250", {"threshold": 500}, True, ""),
        (
            "istio",
            "3",
            {},
            False,
            "Halt podinfo.test advancement request duration 3ms > 0s",
        ),  # Flagger: unset threshold is 0
        (
            "kubernetes",
            "1.5159",
            {"thresholdRange": {"max": 500}},
            False,
            "Halt podinfo.test advancement request duration 1.515s > 500ms",
        ),
        ("kubernetes", "0.25", {"thresholdRange": {"max": 500}}, True, ""),
    ],
)
async def test_builtin_duration(
    capture_server: Any, provider: str, value: str, fields: dict[str, Any], ok: bool, message: str
) -> None:
    result = await run(
        capture_server,
        vector(value),
        metric(name="request-duration", **fields),
        canary=canary(provider=provider),
    )
    assert result.ok is ok
    assert result.message == message
    assert result.value is not None
    if ok:
        assert result.metric_value == result.value / 1000  # flagger_canary_metric_analysis uses seconds


async def test_http_observer_query_for_kubernetes_provider(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("0.1")])
    await evaluate_metric(
        canary(provider="kubernetes"), metric(name="request-duration", threshold=500), metrics_server=srv.url
    )
    assert (
        srv.requests[0]
        .query["query"]
        .startswith(" histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{")
    )


# --- inline query -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fields", "ok", "message"),
    [
        ("5.123", {"thresholdRange": {"max": 2}}, False, "Halt podinfo.test advancement errors 5.12 > 2"),
        ("0.5", {"thresholdRange": {"min": 1.5}}, False, "Halt podinfo.test advancement errors 0.50 < 1.5"),
        ("1", {"thresholdRange": {"min": 1, "max": 2}}, True, ""),
        ("3", {"threshold": 2}, False, "Halt podinfo.test advancement errors 3.00 > 2"),
        ("2", {"threshold": 2}, True, ""),
    ],
)
async def test_inline_query(
    capture_server: Any, value: str, fields: dict[str, Any], ok: bool, message: str
) -> None:
    srv = await capture_server(bodies=[vector(value)])
    m = metric(
        name="errors",
        interval="2m",
        query='sum(rate(errors{ns="{{ namespace }}"}[{{ interval }}]))',
        **fields,
    )
    result = await evaluate_metric(canary(), m, metrics_server=srv.url)
    assert (result.ok, result.message) == (ok, message)
    assert srv.requests[0].query["query"] == 'sum(rate(errors{ns="test"}[2m]))'


async def test_inline_no_values_and_errors(capture_server: Any) -> None:
    m = metric(name="errors", query="sum(x)", thresholdRange={"max": 1})
    empty = await run(capture_server, EMPTY, m)
    assert (empty.ok, empty.no_data, empty.message) == (
        False,
        True,
        "Halt advancement no values found for metric: errors",
    )
    failed = await run(capture_server, "bad", m, status=422)
    assert failed.message == "Prometheus query failed for errors: error response 422: bad"
    assert failed.severity == "error"


async def test_no_usable_metric() -> None:
    result = await evaluate_metric(canary(), metric(name="something"), metrics_server="http://127.0.0.1:1")
    assert (result.ok, result.message, result.severity) == (False, NO_USABLE_METRIC, "error")


# --- templateRef ---------------------------------------------------------------------------------------


async def test_template_pass_fail_and_request(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("0.75"), vector("1.25")])
    tpl = template(
        'sum(rate(x{app="{{ target }}", svc="{{ service }}", ing="{{ ingress }}", route="{{ route }}", '
        'dir="{{ variables.direction }}"}[{{ interval }}]))',
        srv.url,
        secret="creds",
        headers={"X-Tenant": ["t1"]},
    )
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"token": base64.b64encode(b"tkn").decode()}}
    m = metric(
        name="latency-ratio",
        templateRef={"name": "tpl"},
        templateVariables={"direction": "inbound"},
        thresholdRange={"max": 1},
    )
    ok = await evaluate_metric(canary(), m, metrics_server="", template=tpl, secret=secret)
    assert (ok.ok, ok.value, ok.message) == (True, 0.75, "")
    bad = await evaluate_metric(canary(), m, metrics_server="", template=tpl, secret=secret)
    assert bad.message == "Halt podinfo.test advancement latency-ratio 1.25 > 1"
    request = srv.requests[0]
    assert request.query["query"] == (
        'sum(rate(x{app="podinfo", svc="podinfo", ing="podinfo", route="podinfo", dir="inbound"}[1m]))'
    )
    assert request.headers["authorization"] == "Bearer tkn"
    assert request.headers["x-tenant"] == "t1"


async def test_template_errors(capture_server: Any) -> None:
    srv = await capture_server(statuses=[200, 200, 500], bodies=[EMPTY, vector("NaN"), "kaput"])
    m = metric(name="custom", templateRef={"name": "tpl", "namespace": "shared"}, thresholdRange={"max": 1})
    good = template("up", srv.url)

    async def check(
        tpl: MetricTemplate | None, secret: dict[str, Any] | None = None, mm: CanaryMetric = m
    ) -> CheckResult:
        return await evaluate_metric(canary(), mm, metrics_server="", template=tpl, secret=secret)

    missing = await check(None)
    assert missing.message == 'Metric template tpl.shared error: metrictemplate.flagger.app "tpl" not found'
    assert missing.severity == "error"
    no_secret = await check(template("up", srv.url, secret="creds"))
    assert no_secret.message == 'Metric template tpl.shared secret creds error: secret "creds" not found'
    bad_secret = await check(template("up", srv.url, secret="creds"), {"data": {"username": "eA=="}})
    assert bad_secret.message.startswith(
        "Metric template tpl.shared provider prometheus error: secret must contain"
    )
    unconfigured = await check(template("up", "https://api.datadoghq.com", ptype="datadog"))
    assert unconfigured.message == (
        "Metric template tpl.shared provider datadog error: datadog provider needs a secretRef with "
        "datadog_api_key, datadog_application_key"
    )
    render = await check(template("{{ variables.region }}", srv.url))
    assert render.message == (
        'Metric template tpl.shared query render error: variable "region" is not defined in templateVariables'
    )
    assert srv.requests == []  # nothing was queried so far

    empty = await check(good)
    assert (empty.no_data, empty.message) == (
        True,
        "Halt advancement no values found for custom metric: custom: no values found",
    )
    nan = await check(good)
    assert (nan.ok, nan.no_data) == (False, True)
    failed = await check(good)
    assert failed.message == "Metric query failed for custom: error response 500: kaput"
    assert (failed.no_data, failed.severity) == (False, "error")


async def test_template_wins_over_builtin_name(capture_server: Any) -> None:
    srv = await capture_server(bodies=[vector("99.9")])
    m = metric(name="request-success-rate", templateRef={"name": "tpl"}, thresholdRange={"min": 99})
    result = await evaluate_metric(
        canary(), m, metrics_server="http://127.0.0.1:1", template=template("my_success_rate", srv.url)
    )
    assert result.ok
    assert [r.query["query"] for r in srv.requests] == ["my_success_rate"]


def test_go_formatting() -> None:
    assert [go_float(v) for v in (99, 99.5, 0.1, 1e6, 123456.0, 1e-5)] == [
        "99",
        "99.5",
        "0.1",
        "1e+06",
        "123456",
        "1e-05",
    ]
    assert [go_duration_ms(v) for v in (0, 1, 999, 1000, 1515, 60000, 3723004)] == [
        "0s", "1ms", "999ms", "1s", "1.515s", "1m0s", "1h2m3.004s"
    ]  # fmt: skip


# --- the real Prometheus --------------------------------------------------------------------------------


async def test_checks_against_real_prometheus(prometheus_server: Any, demo_app_factory: Any) -> None:
    app = await demo_app_factory(workload="checked", namespace="test", error_rate=0.25, latency_ms=60)
    prometheus_server.add_target(app.metrics_target)
    c = canary_model(
        name="checked",
        target_name="checked",
        provider="istio",
        progress_deadline_s=None,
        autoscaler=None,
        service={"port": 80},
        analysis={"interval": "10s", "threshold": 1, "stepWeight": 10},
    )
    success = metric(name="request-success-rate", interval="30s", thresholdRange={"min": 99})
    duration = metric(name="request-duration", interval="30s", thresholdRange={"max": 20})
    before = await evaluate_metric(c, success, metrics_server=prometheus_server.url)
    assert before.no_data is True
    assert before.ok is False

    async def traffic() -> None:
        for _ in range(60):
            await load(app.url + "/", 40, concurrency=4)

    task = asyncio.create_task(traffic())
    try:
        # Judge only once the 30 s window holds enough requests: over the first scrape or two one slow
        # request is already 1 % and moves the p99 into the next bucket.
        await prometheus_server.wait_for_value(
            requests_in_window(app), accept=lambda n: n >= 600, timeout_s=60
        )
        rate = await evaluate_metric(c, success, metrics_server=prometheus_server.url)
        slow = await evaluate_metric(c, duration, metrics_server=prometheus_server.url)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert rate.ok is False
    assert rate.value is not None
    assert 72 <= rate.value <= 78, rate.value  # 25 % injected errors
    assert rate.message == f"Halt checked.test advancement success rate {rate.value:.2f}% < 99%"
    assert slow.ok is False
    assert slow.value is not None
    # 60 ms of added latency puts every request above the 50 ms bucket edge; the p99 is at most the upper
    # edge of the bucket of the slowest request: 100 ms when all took (50, 100] ms, as on an idle machine.
    slowest = slowest_bucket_edge(app)
    assert 50 <= slow.value <= slowest, (slow.value, slowest)
    assert slow.message == f"Halt checked.test advancement request duration {int(slow.value)}ms > 20ms"


async def test_the_metric_interval_is_the_window_of_a_time_range_provider(capture_server: Any) -> None:
    """Datadog queries the last ten metric intervals: the metric's ``interval`` reaches the provider."""
    body = json.dumps({"status": "ok", "series": [{"metric": "m", "pointlist": [[1.0, 0.5]]}]})
    srv = await capture_server(bodies=[body, body])
    tpl = template("sum:errors{service:podinfo}", srv.url, ptype="datadog", secret="dd")
    keys = {"datadog_api_key": b"api", "datadog_application_key": b"app"}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "data": {k: base64.b64encode(v).decode() for k, v in keys.items()},
    }
    for interval in ("2m", "30s"):
        m = metric(name="errors", templateRef={"name": "tpl"}, interval=interval, thresholdRange={"max": 1})
        result = await evaluate_metric(canary(), m, metrics_server="", template=tpl, secret=secret)
        assert (result.ok, result.value) == (True, 0.5), result
    windows = [int(r.query["to"]) - int(r.query["from"]) for r in srv.requests]
    assert windows == [1200, 300]
