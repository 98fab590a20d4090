"""``minSamples``: the guard query of a metric, against a real Prometheus. Below ``count`` (or without
values) the metric's value counts as no data and the metric's own query is not run; at or above it the
metric is evaluated as usual; a provider that cannot answer the guard is an error."""

from __future__ import annotations

import socket
from typing import Any

from canarist.api import Canary
from canarist.engine.model import Check
from canarist.kube import resources as kinds
from canarist.kube.cache import StaticCache
from canarist.operator.checks import CheckRunner
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry
from tests.fixtures.canaries import canary_manifest

METRIC = Check("metric", "custom")


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def runner(metrics_server: str, *objects: tuple[Any, dict[str, Any]]) -> CheckRunner:
    return CheckRunner(
        StaticCache(objects), OperatorSettings(metrics_server=metrics_server), Telemetry("istio")
    )


def guarded(query: str, guard: str, count: float, **metric: Any) -> Canary:
    spec = {
        "name": "custom",
        "interval": "1m",
        "query": query,
        "thresholdRange": {"max": 50},
        "minSamples": {"query": guard, "count": count},
        **metric,
    }
    return Canary.model_validate(canary_manifest(metrics=[spec]))


async def test_too_few_samples_read_as_no_data(prometheus_server: Any) -> None:
    canary = guarded("vector(42)", "vector(3)", 10)
    result = await runner(prometheus_server.url).run(canary, METRIC)
    assert (result.outcome, result.passed, result.value) == ("no_data", False, None)
    assert result.message == "Halt advancement too few samples for metric custom: 3 samples < minSamples 10"
    # the evidence is the guard's: its query and provider
    assert result.query == "vector(3)"
    assert result.provider == f"prometheus {prometheus_server.url}"
    assert result.duration_s is not None


async def test_enough_samples_let_the_metric_be_evaluated(prometheus_server: Any) -> None:
    canary = guarded("vector(42)", "vector(10)", 10)
    result = await runner(prometheus_server.url).run(canary, METRIC)
    assert (result.outcome, result.passed, result.value) == ("value", True, 42.0)
    assert result.query == "vector(42)"


async def test_a_guard_without_values_is_no_data(prometheus_server: Any) -> None:
    canary = guarded("vector(42)", 'sum(canarist_series_nobody_exports{job="none"})', 1)
    result = await runner(prometheus_server.url).run(canary, METRIC)
    assert result.outcome == "no_data"
    assert result.message == "Halt advancement too few samples for metric custom: 0 samples < minSamples 1"


async def test_the_guard_is_rendered_like_the_metric(prometheus_server: Any) -> None:
    guard = 'label_replace(vector(12), "workload", "{{ target }}-{{ variables.side }}", "", "")'
    canary = guarded("vector(1)", guard, 20, templateVariables={"side": "canary"})
    result = await runner(prometheus_server.url).run(canary, METRIC)
    assert result.outcome == "no_data"
    assert result.query == 'label_replace(vector(12), "workload", "podinfo-canary", "", "")'
    assert "12 samples < minSamples 20" in result.message


async def test_an_unreachable_provider_for_the_guard_is_an_error() -> None:
    canary = guarded("vector(42)", "vector(10)", 10)
    result = await runner(closed_port_url()).run(canary, METRIC)
    assert (result.outcome, result.passed) == ("error", False)
    assert result.message.startswith("Metric query failed for custom minSamples: request to")
    assert result.query == "vector(10)"


async def test_a_template_metric_guards_on_the_templates_provider(prometheus_server: Any) -> None:
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "answer", "namespace": "test"},
        "spec": {"provider": {"type": "prometheus", "address": prometheus_server.url}, "query": "vector(7)"},
    }
    metric = {
        "name": "custom",
        "interval": "1m",
        "templateRef": {"name": "answer"},
        "thresholdRange": {"max": 50},
        "minSamples": {"query": "vector(2)", "count": 5},
    }
    canary = Canary.model_validate(canary_manifest(metrics=[metric]))
    # the operator's metrics server is unreachable: the guard must use the template's provider
    checks = runner(closed_port_url(), (kinds.METRIC_TEMPLATE, template))
    result = await checks.run(canary, METRIC)
    assert result.outcome == "no_data"
    assert result.provider == f"prometheus {prometheus_server.url}"

    metric["minSamples"] = {"query": "vector(5)", "count": 5}
    canary = Canary.model_validate(canary_manifest(metrics=[metric]))
    result = await checks.run(canary, METRIC)
    assert (result.outcome, result.value) == ("value", 7.0)
