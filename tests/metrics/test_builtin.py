from __future__ import annotations

import re

import pytest

from canarist.metrics.builtin import (
    OBSERVERS,
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    builtin_query,
    duration_milliseconds,
    metrics_provider_name,
    observer_for,
    query_template,
)
from canarist.metrics.template import TemplateModel, collapse_whitespace
from tests.conftest import SHARED

INVENTORY = SHARED / "reference" / "flagger-inventory.md"

MODEL = TemplateModel(
    name="podinfo", namespace="default", target="podinfo", service="podinfo", ingress="podinfo", interval="1m"
)


def _inventory_queries() -> dict[str, list[str]]:
    """mesh → the backticked strings of its bullet in §3.2 of the inventory."""
    text = INVENTORY.read_text()
    section = text[text.index("### 3.2") : text.index("### 3.3")]
    bullets = re.split(r"\n- ", section)
    out: dict[str, list[str]] = {}
    for bullet in bullets[1:]:
        match = re.match(r"\*\*([a-z]+)\*\*", bullet)
        if match:
            out[match.group(1)] = [q for q in re.findall(r"`([^`]+)`", bullet) if "{{" in q]
    return out


SPEC = _inventory_queries()
FULLY_LISTED = ["istio", "linkerd", "appmesh", "nginx", "contour", "traefik", "apisix", "osm", "http"]


@pytest.mark.parametrize("mesh", FULLY_LISTED)
def test_templates_match_the_inventory_exactly(mesh: str) -> None:
    success, duration = SPEC[mesh][:2]
    observer = OBSERVERS[mesh]
    assert collapse_whitespace(observer.success_rate) == success
    assert collapse_whitespace(observer.duration) == duration


@pytest.mark.parametrize(
    ("mesh", "selector"),
    [
        (
            "gloo",
            'envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"',
        ),
        ("kuma", 'service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"'),
        ("knative", 'envoy_cluster_name=~"{{ namespace }}/{{ route }}"'),
    ],
)
def test_contour_like_meshes(mesh: str, selector: str) -> None:
    assert selector in SPEC[mesh][0]  # the inventory names the selector
    contour_selector = 'envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"'
    success, duration = SPEC["contour"][:2]
    assert OBSERVERS[mesh].success_rate == success.replace(contour_selector, selector)
    assert OBSERVERS[mesh].duration == duration.replace(contour_selector, selector)


def test_skipper_templates_match_the_inventory() -> None:
    prelude, success, duration = SPEC["skipper"][:3]
    skipper = OBSERVERS["skipper"]
    assert skipper.success_rate == success
    assert skipper.duration == duration
    assert query_template(skipper, REQUEST_SUCCESS_RATE).startswith(prelude + "\n")


def test_istio_wire_queries_are_flaggers() -> None:
    # the exact strings Flagger's own observer unit tests expect (note the leading space)
    istio = observer_for("istio")
    assert builtin_query(istio, REQUEST_SUCCESS_RATE, MODEL) == (
        ' sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", '
        'destination_workload=~"podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ '
        'reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) * 100'
    )
    assert builtin_query(istio, REQUEST_DURATION, MODEL) == (
        ' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", '
        'destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) by (le) )'
    )


def test_skipper_encodes_names_and_renders_the_route() -> None:
    model = TemplateModel(
        namespace="my-ns", ingress="my.ingress", service="back-end", target="t", interval="30s"
    )
    assert builtin_query(observer_for("skipper"), REQUEST_DURATION, model) == (
        ' sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_my_ns__my_ingress_canary__.*__back_end_canary(_[0-9]+)?"}[30s])) / '
        'sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_my_ns__my_ingress_canary__.*__back_end_canary(_[0-9]+)?"}[30s])) * 1000'
    )


@pytest.mark.parametrize("mesh", sorted(OBSERVERS))
def test_every_observer_renders_both_queries(mesh: str) -> None:
    model = TemplateModel(
        name="app", namespace="ns", target="app", service="svc", ingress="ing", route="rt", interval="2m"
    )
    for metric in (REQUEST_SUCCESS_RATE, REQUEST_DURATION):
        query = builtin_query(OBSERVERS[mesh], metric, model)
        assert query.startswith(" ")
        assert "{{" not in query
        assert "\n" not in query
        assert "[2m]" in query


@pytest.mark.parametrize(
    ("provider", "observer", "fallback"),
    [
        ("istio", "istio", False),
        ("linkerd", "linkerd", False),
        ("appmesh", "appmesh", False),
        ("appmesh:v1beta2", "appmesh", False),
        ("contour", "contour", False),
        ("gloo", "gloo", False),
        ("nginx", "nginx", False),
        ("kubernetes", "http", False),
        ("gatewayapi:v1", "http", False),
        ("gatewayapi:v1beta1", "http", False),
        ("skipper", "skipper", False),
        ("traefik", "traefik", False),
        ("osm", "osm", False),
        ("kuma", "kuma", False),
        ("apisix", "apisix", False),
        ("knative", "knative", False),
        ("smi:v1alpha3", "istio", True),
        ("crossover", "istio", True),
        ("kubernetes:service", "istio", True),
        ("nginx:service", "istio", True),
        ("gloo:service", "gloo", False),
        ("gatewayapi:v1:service", "http", False),
        ("", "istio", True),
    ],
)
def test_observer_selection(provider: str, observer: str, fallback: bool) -> None:
    chosen = observer_for(provider)
    assert chosen.name == observer
    assert chosen.fallback is fallback


def test_metrics_provider_name() -> None:
    assert metrics_provider_name("istio") == "istio"
    assert metrics_provider_name("smi:crossover") == "crossover"
    assert metrics_provider_name("istio", "nginx") == "nginx"
    assert metrics_provider_name("linkerd", "nginx") == "linkerd"
    assert metrics_provider_name("istio", "kubernetes", "Service", "v1") == "kubernetes:service"
    assert metrics_provider_name("istio", "knative", "Service", "serving.knative.dev/v1") == "knative"
    assert metrics_provider_name("istio", "", "Deployment", "apps/v1") == "istio"


def test_duration_conversion() -> None:
    assert duration_milliseconds(observer_for("istio"), 1515.9) == 1515
    assert duration_milliseconds(observer_for("kubernetes"), 0.25) == 250
    assert duration_milliseconds(observer_for("kubernetes"), 1.5159) == 1515
