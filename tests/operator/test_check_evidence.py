"""The check runner's answers carry what the decision ledger records: against a real Prometheus (a value,
no data), failing providers (unreachable, HTTP 5xx, an invalid answer: errors), and real HTTP webhooks
(status, body excerpt, duration, or an error without an answer). Credentials never reach the record."""

from __future__ import annotations

import base64
import socket
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine import ledger
from canarist.engine.model import Check, CheckResult
from canarist.kube import resources as kinds
from canarist.kube.cache import StaticCache
from canarist.operator.alerts import AlertSender
from canarist.operator.checks import CheckRunner
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry
from tests.fixtures.canaries import canary_manifest

AT = "2024-01-01T00:00:00Z"


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def runner(metrics_server: str, *objects: tuple[Any, dict[str, Any]]) -> CheckRunner:
    return CheckRunner(
        StaticCache(objects), OperatorSettings(metrics_server=metrics_server), Telemetry("istio")
    )


def inline(query: str, **threshold: float) -> dict[str, Any]:
    return {"name": "custom", "interval": "1m", "query": query, "thresholdRange": dict(threshold)}


def entry(check: Check, result: CheckResult) -> ledger.Entry:
    return ledger.entry_of(check, result, at=AT, weight=10, iteration=0)


METRIC = Check("metric", "custom")


async def test_a_value_from_a_real_prometheus(prometheus_server: Any) -> None:
    canary = Canary.model_validate(canary_manifest(metrics=[inline("vector(42)", max=50)]))
    result = await runner(prometheus_server.url).run(canary, METRIC)
    assert (result.passed, result.outcome, result.value) == (True, "value", 42.0)
    assert result.query == "vector(42)"
    assert result.provider == f"prometheus {prometheus_server.url}"
    assert (result.threshold_min, result.threshold_max) == (None, 50.0)
    assert result.duration_s is not None
    assert result.duration_s >= 0

    failing = Canary.model_validate(canary_manifest(metrics=[inline("vector(71.2)", min=99)]))
    result = await runner(prometheus_server.url).run(failing, METRIC)
    assert (result.passed, result.outcome) == (False, "value")
    assert result.message == "Halt podinfo.test advancement custom 71.20 < 99"
    assert ledger.evidence_line(entry(METRIC, result)) == "custom 71.2 < 99"


async def test_no_data_from_a_real_prometheus(prometheus_server: Any) -> None:
    query = 'canarist_series_nobody_exports{job="none"}'
    canary = Canary.model_validate(canary_manifest(metrics=[inline(query, max=1)]))
    result = await runner(prometheus_server.url).run(canary, METRIC)
    assert (result.passed, result.outcome, result.no_data, result.error) == (False, "no_data", True, False)
    assert result.message == "Halt advancement no values found for metric: custom"
    recorded = entry(METRIC, result)
    assert (recorded.result, recorded.verdict, recorded.value) == ("noData", "fail", None)
    assert recorded.query == query


@pytest.mark.parametrize(
    ("statuses", "body", "expected"),
    [
        ([503], "overloaded", "error response 503: overloaded"),
        ([200], "this is not json", "unmarshaling result failed"),
    ],
)
async def test_provider_errors_are_errors(
    capture_server: Any, statuses: list[int], body: str, expected: str
) -> None:
    server = await capture_server(statuses=statuses, bodies=[body])
    canary = Canary.model_validate(canary_manifest(metrics=[inline("vector(1)", max=2)]))
    result = await runner(server.url).run(canary, METRIC)
    assert (result.passed, result.outcome, result.error, result.no_data) == (False, "error", True, False)
    assert expected in result.message
    assert entry(METRIC, result).result == "error"


async def test_an_unreachable_provider_is_an_error() -> None:
    canary = Canary.model_validate(canary_manifest(metrics=[inline("vector(1)", max=2)]))
    result = await runner(closed_port_url()).run(canary, METRIC)
    assert (result.outcome, result.passed) == ("error", False)
    assert result.message.startswith("Prometheus query failed for custom: request to")


@pytest.mark.parametrize("in_address", [True, False], ids=["userinfo-in-address", "token-secret"])
async def test_a_template_provider_is_recorded_without_its_credentials(
    prometheus_server: Any, in_address: bool
) -> None:
    provider: dict[str, Any] = {"type": "prometheus", "address": prometheus_server.url}
    if in_address:
        provider["address"] = prometheus_server.url.replace("http://", "http://reader:hunter2@")
    else:
        provider["secretRef"] = {"name": "prom-token"}
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "answer", "namespace": "test"},
        "spec": {"provider": provider, "query": "vector(7)"},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "prom-token", "namespace": "test"},
        "data": {"token": base64.b64encode(b"t0ps3cret").decode()},
    }
    metric = {"name": "custom", "templateRef": {"name": "answer"}, "thresholdRange": {"max": 10}}
    canary = Canary.model_validate(canary_manifest(metrics=[metric]))
    checks = runner(prometheus_server.url, (kinds.METRIC_TEMPLATE, template), (kinds.SECRET, secret))
    result = await checks.run(canary, METRIC)
    assert (result.passed, result.value) == (True, 7.0)
    recorded = entry(METRIC, result).render()
    assert recorded["provider"] == f"prometheus {prometheus_server.url}"
    assert "hunter2" not in str(recorded)
    assert "t0ps3cret" not in str(recorded)


def webhook_canary(url: str) -> Canary:
    hook = {"name": "load-test", "url": url, "timeout": "5s", "metadata": {"token": "never-recorded"}}
    return Canary.model_validate(canary_manifest(webhooks=[hook]))


HOOK = Check("webhook", "load-test", "", "Progressing")


async def test_a_webhook_answer_is_recorded_with_status_body_and_duration(capture_server: Any) -> None:
    server = await capture_server(statuses=[200], bodies=["ok: 20 requests"])
    result = await runner("").run(webhook_canary(server.url), HOOK)
    assert (result.passed, result.outcome, result.http_status, result.body) == (
        True,
        "value",
        200,
        "ok: 20 requests",
    )
    assert result.url == server.url
    assert result.duration_s is not None
    recorded = entry(HOOK, result)
    assert (recorded.verdict, recorded.http_status, recorded.body) == ("pass", 200, "ok: 20 requests")
    # the request's metadata (which may hold secrets) is sent, but never recorded
    assert b"never-recorded" in server.requests[0].body
    assert "never-recorded" not in str(recorded.render())


async def test_a_failing_webhook_keeps_a_bounded_excerpt(capture_server: Any) -> None:
    server = await capture_server(statuses=[500], bodies=["boom " * 400])
    result = await runner("").run(webhook_canary(server.url), HOOK)
    assert (result.passed, result.outcome, result.http_status) == (False, "value", 500)
    recorded = entry(HOOK, result)
    assert recorded.verdict == "fail"
    assert len(recorded.body.encode()) <= ledger.MAX_BODY_BYTES
    assert recorded.body.startswith("boom boom")
    assert ledger.evidence_line(recorded).startswith("load-test (rollout) HTTP 500: boom boom")


async def test_an_unreachable_webhook_is_an_error() -> None:
    url = closed_port_url()
    result = await runner("").run(webhook_canary(url), HOOK)
    assert (result.outcome, result.http_status, result.passed) == ("error", None, False)
    assert result.message == f"connection refused: {url}"
    assert (
        ledger.evidence_line(entry(HOOK, result)) == f"load-test (rollout): error: connection refused: {url}"
    )


async def test_the_rollback_alert_carries_the_evidence_fields(capture_server: Any) -> None:
    slack = await capture_server(statuses=[200])
    sender = AlertSender(
        None, OperatorSettings(slack_url=slack.url, slack_channel="general"), Telemetry("istio")
    )
    failed = ledger.Entry(
        at=AT,
        check="request-success-rate",
        kind="metric",
        weight=10,
        result="value",
        verdict="fail",
        value=71.2,
        unit="%",
        min=99,
        query="sum(rate(istio_requests_total[1m]))",
        provider="prometheus http://prometheus:9090",
    )
    canary = webhook_canary("http://loadtester.test/")
    await sender.send(
        canary, "Failed checks threshold reached 5", "error", False, ledger.alert_fields(failed)
    )
    assert await sender.close(timeout_s=10) == 0
    body = slack.requests[0].json
    fields = {f["title"]: f["value"] for f in body["attachments"][0]["fields"]}
    assert body["attachments"][0]["text"] == "Failed checks threshold reached 5"
    assert fields["Failed check"] == "request-success-rate 71.2% < 99%"
    assert fields["Step"] == "weight 10"
    assert fields["Query"] == "sum(rate(istio_requests_total[1m]))"
    assert fields["Provider"] == "prometheus http://prometheus:9090"


async def test_the_route_of_a_knative_target_is_its_latest_created_revision(prometheus_server: Any) -> None:
    knative_service = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "status": {"latestCreatedRevisionName": "podinfo-00002"},
    }
    canary = Canary.model_validate(
        canary_manifest(
            provider="knative",
            autoscaler=None,
            metrics=[{"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}}],
            spec={
                "targetRef": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}
            },
        )
    )
    check = Check("metric", "request-success-rate")
    result = await runner(prometheus_server.url, (kinds.KNATIVE_SERVICE, knative_service)).run(canary, check)
    assert result.query is not None
    assert 'envoy_cluster_name=~"test/podinfo-00002"' in result.query
    assert result.outcome == "no_data"
