"""The sandbox's demo apps export what every provider's builtin queries read (docs/sandbox.md#telemetry-per-provider).

Real DemoApps played as pods by a real `PodManager` (reconciling Deployment objects, no informer), scraped by
a real Prometheus shared by the module: every builtin query of `canarist.metrics.builtin` for istio, linkerd,
osm, appmesh, nginx, kubernetes and gatewayapi:v1, rendered for the target ``podinfo`` in ``test``, answers
with the canary pods' share of successes while the primary pods answer with another share.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from canarist.kube.client import KubeClient
from canarist.metrics.builtin import (
    CONTOUR,
    GLOO,
    HTTP,
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    builtin_query,
    observer_for,
)
from canarist.metrics.template import TemplateModel
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.pods import Pod, PodManager
from canarist.sandbox.prometheus import PrometheusProcess
from canarist.sandbox.telemetry import (
    INGRESS_CANARY_HEADER,
    INGRESS_HEADER,
    appmesh_cluster_name,
    pod_name,
    pod_template_hash,
)

NS = "test"
MODEL = TemplateModel(
    name="podinfo", namespace=NS, target="podinfo", service="podinfo", ingress="podinfo", interval="30s"
)
PROVIDERS = ("istio", "linkerd", "osm", "appmesh", "nginx", "kubernetes", "gatewayapi:v1")
CANARY_ERRORS, PRIMARY_ERRORS = 0.25, 0.05
CANARY_SHARE = 100 * (1 - CANARY_ERRORS)
CANARY_LATENCY_MS = 30.0
WARMUP, LOAD = 20, 200  # requests per app; both multiples of 1/CANARY_ERRORS, so the share is exact


def _deployment(name: str, tag: str, replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "podinfod", "image": f"ghcr.io/stefanprodan/podinfo:{tag}"}]
                },
            }
        },
        "status": {"readyReplicas": replicas},
    }


def _manager(pool_size: int) -> PodManager:
    # The informers are never started: the tests call the reconciler with Deployment objects directly.
    return PodManager(cast(KubeClient, object()), pool_size=pool_size)


def _regex(query: str, label: str) -> str:
    found = re.search(label + r'=~"([^"]+)"', query)
    assert found, query
    return found.group(1)


async def _send(app: DemoApp, n: int, headers: Mapping[str, str] | None = None, concurrency: int = 8) -> None:
    remaining = iter(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in remaining:
            async with session.get(app.url + "/", headers=dict(headers or {})) as response:
                await response.read()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


async def _until(
    fetch: Callable[[], Awaitable[float | None]],
    ok: Callable[[float], bool],
    what: str,
    timeout_s: float = 30,
) -> float:
    """Poll ``fetch`` (a query) until ``ok`` holds; fail with the last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: float | None = None
    while time.monotonic() < deadline:
        last = await fetch()
        if last is not None and ok(last):
            return last
        await asyncio.sleep(0.2)
    pytest.fail(f"{what}: last value {last}")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    prom = PrometheusProcess(Path(tmp_path_factory.mktemp("telemetry-prometheus")))
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture
async def scraped_pods(prometheus: PrometheusProcess) -> AsyncIterator[PodManager]:
    """A pool of six apps already scraped, as the sandbox has before its story starts."""
    pods = _manager(pool_size=6)
    pods.on_new_app = lambda app: prometheus.add_target(app.metrics_target, {"sandbox": "telemetry"})
    try:
        await pods.fill_pool()
        targets = [app.metrics_target for app in pods.all_apps]
        await _until(
            lambda: prometheus.value('count(up{sandbox="telemetry"} == 1)'),
            lambda up: up >= len(targets),
            "the pool is scraped",
        )
        yield pods
    finally:
        for app in pods.all_apps:
            prometheus.remove_target(app.metrics_target)
        await pods.stop()


def test_pod_names_look_like_kubernetes_and_only_the_canarys_match_its_regex() -> None:
    regex = _regex(builtin_query(HTTP, REQUEST_SUCCESS_RATE, MODEL), "kubernetes_pod_name")
    assert regex == "podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
    template = _deployment("podinfo", "6.0.1", 1)["spec"]["template"]
    hash_ = pod_template_hash(template)
    assert hash_ == pod_template_hash(template)  # stable for one template
    assert hash_ != pod_template_hash(_deployment("podinfo", "6.0.2", 1)["spec"]["template"])
    canary, primary = pod_name("podinfo", hash_), pod_name("podinfo-primary", hash_)
    assert re.fullmatch(
        r"podinfo-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}", canary
    )
    assert re.fullmatch(regex, canary)
    assert re.fullmatch(regex, primary) is None


def test_the_appmesh_cluster_matches_neither_contour_nor_gloo() -> None:
    for observer in (CONTOUR, GLOO):
        regex = _regex(builtin_query(observer, REQUEST_SUCCESS_RATE, MODEL), "envoy_cluster_name")
        for deployment in ("podinfo", "podinfo-primary", "podinfo-canary"):
            assert re.fullmatch(regex, appmesh_cluster_name(deployment, NS)) is None, (observer.name, regex)


async def test_a_reused_app_carries_none_of_the_previous_pods_series() -> None:
    pods = _manager(pool_size=1)
    try:
        await pods.fill_pool()
        (app,) = pods.all_apps
        await pods._reconcile("ADDED", _deployment("podinfo", "6.0.1", 1))
        (pod,) = pods.pods[(NS, "podinfo")]
        assert pod.app is app
        assert pod.name.startswith("podinfo-")
        await _send(app, 7, {INGRESS_HEADER: f"{NS}/podinfo"})
        before = _label_values(app)
        assert pod.name in before
        assert "podinfo" in before

        await pods._reconcile("DELETED", _deployment("podinfo", "6.0.1", 1))
        assert _label_values(app).isdisjoint({pod.name, "podinfo"})  # released: nothing of the pod is left
        await pods._reconcile("ADDED", _deployment("other", "6.0.1", 1))
        (other,) = pods.pods[(NS, "other")]
        assert other.app is app  # the same app, taken again from the pool
        await _send(app, 3)
        after = _label_values(app)
        assert other.name in after
        assert "other" in after
        assert after.isdisjoint({pod.name, "podinfo"}), after
        assert not any(f.name.startswith("nginx_") and f.samples for f in app.scraped())
        # What the apps served is still counted for the workload they served it for.
        assert pods.served(NS, "podinfo") == 7
        assert pods.served(NS, "other") == 3
        assert app.served == 10
    finally:
        await pods.stop()


def _label_values(app: DemoApp) -> set[str]:
    return {
        value for family in app.scraped() for sample in family.samples for value in sample.labels.values()
    }


async def test_every_builtin_query_reads_the_canarys_share(
    prometheus: PrometheusProcess, scraped_pods: PodManager
) -> None:
    pods = scraped_pods
    await pods._reconcile("ADDED", _deployment("podinfo", "6.0.1", 2))
    await pods._reconcile("ADDED", _deployment("podinfo-primary", "6.0.0", 2))
    await pods._reconcile("ADDED", _deployment("bystander", "6.0.0", 1))
    pods.set_knobs(NS, "podinfo", error_rate=CANARY_ERRORS, latency_ms=CANARY_LATENCY_MS)
    pods.set_knobs(NS, "podinfo-primary", error_rate=PRIMARY_ERRORS)
    canaries, primaries = pods.pods[(NS, "podinfo")], pods.pods[(NS, "podinfo-primary")]
    (bystander,) = pods.pods[(NS, "bystander")]
    ingress = {INGRESS_HEADER: f"{NS}/podinfo"}
    canary_headers = {**ingress, INGRESS_CANARY_HEADER: f"{NS}-podinfo-canary-80"}

    async def load(n: int) -> None:
        await asyncio.gather(
            *(_send(p.app, n, canary_headers) for p in canaries),
            *(_send(p.app, n, ingress) for p in primaries),
            _send(bystander.app, n),
        )

    # A first round creates every series (the NGINX ones exist only once a request came through the
    # ingress); a counter's first sample is not an increase, so the measured round comes after its scrape.
    await load(WARMUP)
    await _until(
        lambda: prometheus.value('count(nginx_ingress_controller_requests{ingress="podinfo"})'),
        lambda n: n >= 2 * (len(canaries) + len(primaries)),  # 200 and 500 of every app
        "the warm-up is scraped",
    )
    await load(LOAD)
    await _until(
        lambda: prometheus.value(f'sum(istio_requests_total{{instance="{bystander.app.metrics_target}"}})'),
        lambda n: n >= WARMUP + LOAD,
        "the bystander's requests are scraped",
    )

    measured: dict[str, tuple[float, float]] = {}
    for provider in PROVIDERS:
        observer = observer_for(provider)
        assert not observer.fallback, provider
        rate_query = builtin_query(observer, REQUEST_SUCCESS_RATE, MODEL)
        share = await _until(
            functools.partial(prometheus.value, rate_query),
            lambda v: abs(v - CANARY_SHARE) <= 1.0,
            f"{provider} success rate {rate_query}",
        )
        duration_query = builtin_query(observer, REQUEST_DURATION, MODEL)
        scale = 1000 if observer.duration_in_seconds else 1
        duration = await _until(
            functools.partial(prometheus.value, duration_query),
            lambda v, scale=scale: CANARY_LATENCY_MS * 0.8 <= v * scale <= 1000,
            f"{provider} duration {duration_query}",
        )
        measured[provider] = (share, duration * scale)
    print("success rate %, duration ms per provider:", measured)

    # The primaries answer with their own share (the queries above did not read it).
    primary_http = TemplateModel(namespace=NS, target="podinfo-primary", interval="30s")
    primary_share = await prometheus.value(builtin_query(HTTP, REQUEST_SUCCESS_RATE, primary_http))
    assert primary_share is not None
    assert abs(primary_share - 100 * (1 - PRIMARY_ERRORS)) <= 1.0

    # Requests without the ingress headers make no NGINX series, in the app and in Prometheus.
    assert not any(f.name.startswith("nginx_") and f.samples for f in bystander.app.scraped())
    assert b"nginx_ingress_controller_requests{" not in bystander.app.exposition()
    target = bystander.app.metrics_target
    assert await prometheus.value(f'count({{__name__=~"nginx_.*", instance="{target}"}})') is None
    assert await prometheus.value(f'count(http_request_duration_seconds_count{{instance="{target}"}})')
    # Every pod's series carry its identity; the NGINX ones do not (the controller's pod exports them).
    pod: Pod = canaries[0]
    labels = await prometheus.query(f'response_total{{instance="{pod.app.metrics_target}"}}')
    for item in labels["data"]["result"]:
        metric = item["metric"]
        assert metric["kubernetes_pod_name"] == pod.name == metric["pod"]
        assert metric["kubernetes_namespace"] == NS
        assert metric["app"] == "podinfo"
        assert metric["pod_template_hash"] in pod.name
    nginx = await prometheus.query(
        f'nginx_ingress_controller_requests{{instance="{pod.app.metrics_target}"}}'
    )
    assert nginx["data"]["result"]
    assert all("kubernetes_pod_name" not in item["metric"] for item in nginx["data"]["result"])
