"""The sandbox's pods export what every provider's builtin queries read (docs/sandbox.md#telemetry-per-provider).

Real podinfo processes played as pods by a real `PodManager` (Deployments in the local control plane), their
stats ports scraped by a real Prometheus shared by the module: every builtin query of
`canarist.metrics.builtin` for istio, linkerd, osm, appmesh, nginx, kubernetes and gatewayapi:v1, rendered
for the target ``podinfo`` in ``test``, answers with the canary pods' share of successes while the primary
pods answer with another share.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canarist.kube import resources as kinds
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
from canarist.sandbox import images
from canarist.sandbox.pods import Pod, PodManager
from canarist.sandbox.prometheus import PrometheusProcess
from canarist.sandbox.telemetry import (
    INGRESS_CANARY_HEADER,
    INGRESS_HEADER,
    appmesh_cluster_name,
    pod_name,
    pod_template_hash,
)
from tests.fixtures.localcluster import LocalClusterHandle

NS = "test"
MODEL = TemplateModel(
    name="podinfo", namespace=NS, target="podinfo", service="podinfo", ingress="podinfo", interval="30s"
)
PROVIDERS = ("istio", "linkerd", "osm", "appmesh", "nginx", "kubernetes", "gatewayapi:v1")
CANARY_ERRORS, PRIMARY_ERRORS = 0.25, 0.05
CANARY_SHARE = 100 * (1 - CANARY_ERRORS)
CANARY_LATENCY_MS = 30.0
WARMUP, LOAD = 20, 200  # requests per pod; both multiples of 1/CANARY_ERRORS, so the share is exact


def _deployment(name: str, tag: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "podinfod",
                            "image": f"ghcr.io/stefanprodan/podinfo:{tag}",
                            "command": ["./podinfo", "--port=9898"],
                        }
                    ]
                },
            },
        },
    }


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _regex(query: str, label: str) -> str:
    found = re.search(label + r'=~"([^"]+)"', query)
    assert found, query
    return found.group(1)


async def _send(pod: Pod, n: int, headers: Mapping[str, str] | None = None, concurrency: int = 8) -> None:
    remaining = iter(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        for _ in remaining:
            async with session.get(f"http://{pod.ip}:9898/", headers=dict(headers or {})) as response:
                await response.read()

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))


async def _stats(pod: Pod) -> str:
    """The pod's stats port exposition (what Prometheus scrapes)."""
    async with aiohttp.ClientSession() as http, http.get(f"http://{pod.stats}/stats/prometheus") as response:
        return await response.text()


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


async def _serving(pods: PodManager, workload: str, count: int, timeout_s: float = 60) -> list[Pod]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        serving = [p for p in pods.workload_pods(NS, workload) if p.serving]
        if len(serving) >= count:
            return serving
        await asyncio.sleep(0.05)
    pytest.fail(f"{count} pods of {workload} did not serve within {timeout_s:.0f}s")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    prom = PrometheusProcess(Path(tmp_path_factory.mktemp("telemetry-prometheus")))
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


async def _manager(
    cluster: LocalClusterHandle, workdir: Path, pool_size: int, prometheus: PrometheusProcess | None = None
) -> tuple[PodManager, KubeClient]:
    cluster.server.image_check = images.image_check
    cluster.kubectl("create", "namespace", NS, check=True)
    client = KubeClient.from_kubeconfig(cluster.kubeconfig)
    cidr = f"127.{random.randint(160, 250)}.{random.randint(0, 255)}.0/24"  # beside other modules' pods
    pods = PodManager(client, pool_size=pool_size, pod_cidr=cidr, workdir=workdir)
    if prometheus is not None:
        pods.on_new_target = lambda target, labels: prometheus.add_target(
            target, {**labels, "sandbox": "telemetry"}
        )
        pods.on_target_gone = prometheus.remove_target
    await pods.start()
    return pods, client


@pytest.fixture
async def scraped_pods(
    prometheus: PrometheusProcess, local_cluster: LocalClusterHandle, tmp_path: Path
) -> AsyncIterator[tuple[PodManager, KubeClient]]:
    """A pool of six podinfo processes already scraped, as the sandbox has before its story starts."""
    pods, client = await _manager(local_cluster, tmp_path, 6, prometheus)
    try:
        targets = [app.metrics_target for app in pods.all_apps]
        await _until(
            lambda: prometheus.value('count(up{sandbox="telemetry"} == 1)'),
            lambda up: up >= len(targets),
            "the pool is scraped",
        )
        yield pods, client
    finally:
        await pods.stop()
        await client.close()


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


async def test_a_pods_process_carries_only_its_own_pods_series_and_ends_with_it(
    local_cluster: LocalClusterHandle, tmp_path: Path
) -> None:
    pods, client = await _manager(local_cluster, tmp_path, 1)
    try:
        await client.ensure(_deployment("podinfo", "6.0.1", 1))
        (pod,) = await _serving(pods, "podinfo", 1)
        (pid,) = pod.pids
        await _send(pod, 7, {INGRESS_HEADER: f"{NS}/podinfo"})
        before = await _stats(pod)
        assert f'kubernetes_pod_name="{pod.name}"' in before
        assert 'destination_workload="podinfo"' in before
        assert f'pod_template_hash="{pod.labels["pod-template-hash"]}"' in before

        await client.delete(kinds.DEPLOYMENT, "podinfo", namespace=NS)
        deadline = time.monotonic() + 30
        while _alive(pid) or pods.workload_pods(NS, "podinfo"):
            assert time.monotonic() < deadline, "the pod's process did not end"
            await asyncio.sleep(0.05)
        await client.ensure(_deployment("other", "6.0.1", 1))
        (other,) = await _serving(pods, "other", 1)
        assert other.ip != pod.ip  # another process, on another pod IP (next-fit)
        await _send(other, 3)
        after = await _stats(other)
        assert f'kubernetes_pod_name="{other.name}"' in after
        assert 'destination_workload="other"' in after
        assert pod.name not in after
        assert 'destination_workload="podinfo"' not in after
        assert "nginx_ingress_controller_requests{" not in after
        # What the pods served is still counted for the workload they served it for.
        assert pods.served(NS, "podinfo") == 7
        assert pods.served(NS, "other") == 3
    finally:
        await pods.stop()
        await client.close()


async def test_every_builtin_query_reads_the_canarys_share(
    prometheus: PrometheusProcess, scraped_pods: tuple[PodManager, KubeClient]
) -> None:
    pods, client = scraped_pods
    await client.ensure(_deployment("podinfo", "6.0.1", 2))
    await client.ensure(_deployment("podinfo-primary", "6.0.0", 2))
    await client.ensure(_deployment("bystander", "6.0.0", 1))
    canaries = await _serving(pods, "podinfo", 2)
    primaries = await _serving(pods, "podinfo-primary", 2)
    (bystander,) = await _serving(pods, "bystander", 1)
    await pods.set_knobs(NS, "podinfo", error_rate=CANARY_ERRORS, latency_ms=CANARY_LATENCY_MS)
    await pods.set_knobs(NS, "podinfo-primary", error_rate=PRIMARY_ERRORS)
    ingress = {INGRESS_HEADER: f"{NS}/podinfo"}
    canary_headers = {**ingress, INGRESS_CANARY_HEADER: f"{NS}-podinfo-canary-80"}

    async def load(n: int) -> None:
        await asyncio.gather(
            *(_send(p, n, canary_headers) for p in canaries),
            *(_send(p, n, ingress) for p in primaries),
            _send(bystander, n),
        )

    # A first round creates every series (the NGINX ones exist only once a request came through the
    # ingress); a counter's first sample is not an increase, so the measured round comes after its scrape.
    await load(WARMUP)
    await _until(
        lambda: prometheus.value('count(nginx_ingress_controller_requests{ingress="podinfo"})'),
        lambda n: n >= 2 * (len(canaries) + len(primaries)),  # 200 and 500 of every pod
        "the warm-up is scraped",
    )
    await load(LOAD)
    await _until(
        lambda: prometheus.value(f'sum(istio_requests_total{{instance="{bystander.stats}"}})'),
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

        def plausible(v: float, scale: int = scale) -> bool:
            return CANARY_LATENCY_MS * 0.8 <= v * scale <= 1000

        duration = await _until(
            functools.partial(prometheus.value, duration_query),
            plausible,
            f"{provider} duration {duration_query}",
        )
        measured[provider] = (share, duration * scale)
    print("success rate %, duration ms per provider:", measured)

    # The primaries answer with their own share (the queries above did not read it).
    primary_http = TemplateModel(namespace=NS, target="podinfo-primary", interval="30s")
    primary_share = await prometheus.value(builtin_query(HTTP, REQUEST_SUCCESS_RATE, primary_http))
    assert primary_share is not None
    assert abs(primary_share - 100 * (1 - PRIMARY_ERRORS)) <= 1.0

    # Requests without the ingress headers make no NGINX series, in the pod and in Prometheus.
    assert "nginx_ingress_controller_requests{" not in await _stats(bystander)
    target = bystander.stats
    assert await prometheus.value(f'count({{__name__=~"nginx_.*", instance="{target}"}})') is None
    assert await prometheus.value(f'count(http_request_duration_seconds_count{{instance="{target}"}})')
    # Every pod's series carry its identity; the NGINX ones do not (the controller's pod exports them).
    pod = canaries[0]
    labels = await prometheus.query(f'response_total{{instance="{pod.stats}"}}')
    assert labels["data"]["result"]
    for item in labels["data"]["result"]:
        metric = item["metric"]
        assert metric["kubernetes_pod_name"] == pod.name == metric["pod"]
        assert metric["kubernetes_namespace"] == NS
        assert metric["app"] == "podinfo"
        assert metric["pod_template_hash"] in pod.name
    nginx = await prometheus.query(f'nginx_ingress_controller_requests{{instance="{pod.stats}"}}')
    assert nginx["data"]["result"]
    assert all("kubernetes_pod_name" not in item["metric"] for item in nginx["data"]["result"])
