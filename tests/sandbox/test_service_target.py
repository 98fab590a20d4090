"""A Service target through the sandbox, end to end: the Canary's target is a plain Service (``kind: Service``,
``apiVersion: v1``) whose selector someone else moves between Deployments, routed by Contour on the sandbox's
real Envoy and judged by a MetricTemplate over the ingress gateway's own Envoy stats in the real Prometheus.

The workloads: Deployments ``podinfo-blue``, ``-green`` and ``-red`` (pods ``app: podinfo``, ``color: <c>``),
the Service ``podinfo`` selecting ``color: blue``. canarist copies the target to ``podinfo-primary`` (once)
and ``podinfo-canary`` (every tick), and the HTTPProxy the operator writes (included by the tutorial's root
HTTPProxy for ``app.example.com``) splits users between them. A release is a new selector:

* ``color: green``: ``podinfo-canary`` selects the green pods, Envoy's split moves 20/40/60 % to them, and
  the promotion writes the target's spec over ``podinfo-primary``, so all users reach green;
* ``color: red``, whose pods answer every request with 500: the template's success rate halts the
  analysis, the threshold rolls it back, users stay on green and ``podinfo-primary`` keeps its selector.

Flagger's builtin queries do not fit a Service target (its ``:service`` quirk sends Istio's, which select
workloads by the target's name), which is why Service-target users bring a MetricTemplate; this one is
Contour's builtin success rate written out: ``envoy_cluster_upstream_rq`` of Contour's cluster for
``podinfo-canary`` (``test_podinfo-canary_80``), from the gateway Envoy's own stats.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from canarist.kube import resources as kinds
from canarist.routers.contour import HTTP_PROXY
from canarist.sandbox.demo import USER_SOURCE, UserTraffic
from canarist.sandbox.mesh import RouteWrite
from canarist.sandbox.providers import EXAMPLES_ROOT
from tests.sandbox.stories import Run, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "test"
HOST = "app.example.com"
IMAGE = "quay.io/stefanprodan/podinfo"
CANARY_CLUSTER = 'envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"'
SUCCESS_RATE = (
    f'sum(rate(envoy_cluster_upstream_rq{{{CANARY_CLUSTER},envoy_response_code!~"5.*"}}[{{{{ interval }}}}])) / '
    f"sum(rate(envoy_cluster_upstream_rq{{{CANARY_CLUSTER}}}[{{{{ interval }}}}])) * 100"
)
TIMEOUT_S = 120.0


def deployment(color: str, tag: str) -> dict[str, Any]:
    labels = {"app": "podinfo", "color": color}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"podinfo-{color}", "namespace": NS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "podinfod",
                            "image": f"{IMAGE}:{tag}",
                            "command": ["./podinfo", "--port=9898"],
                            "ports": [{"name": "http", "containerPort": 9898}],
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9898}},
                        }
                    ]
                },
            },
        },
    }


def target_service(color: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS, "labels": {"app": "podinfo"}},
        "spec": {
            "selector": {"app": "podinfo", "color": color},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


TEMPLATE = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "MetricTemplate",
    "metadata": {"name": "gateway-success-rate", "namespace": NS},
    "spec": {
        "provider": {"type": "prometheus", "address": "http://prometheus.istio-system:9090"},
        "query": SUCCESS_RATE,
    },
}

CANARY = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": NS},
    "spec": {
        "provider": "contour",
        "targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"},
        "progressDeadlineSeconds": 60,
        "service": {"port": 80},
        "analysis": {
            "interval": "2s",
            "threshold": 3,
            "maxWeight": 60,
            "stepWeight": 20,
            "metrics": [
                {
                    "name": "gateway-success-rate",
                    "templateRef": {"name": "gateway-success-rate"},
                    "thresholdRange": {"min": 99},
                    "interval": "10s",
                }
            ],
        },
    },
}


class Story:
    """The sandbox, its user traffic and what Envoy was told: the canary Service's weight per route write."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.weights: list[int] = []
        self.traffic = UserTraffic(run.sandbox.gateway_url, HOST, 40.0)

    def on_write(self, write: RouteWrite) -> None:
        weights = write.service_weights(HOST)
        if weights is not None and (NS, "podinfo-primary") in weights:
            weight = weights.get((NS, "podinfo-canary"), 0)
            if not self.weights or self.weights[-1] != weight:
                self.weights.append(weight)

    def served(self, color: str) -> int:
        pods = self.run.sandbox.pods
        assert pods is not None
        return pods.served(NS, f"podinfo-{color}", USER_SOURCE)

    def canary(self) -> dict[str, Any]:
        return self.run.sandbox.canary() or {}

    def phase(self) -> str:
        return str((self.canary().get("status") or {}).get("phase") or "")

    async def wait(self, check: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout_s:.0f}s\n{self.run.output()}")
            await asyncio.sleep(0.1)

    async def select(self, color: str) -> None:
        client = self.run.sandbox.client
        assert client is not None
        patch = {"spec": {"selector": {"color": color}}}
        await client.patch(kinds.SERVICE, "podinfo", patch, namespace=NS)

    async def selector(self, name: str) -> dict[str, str]:
        client = self.run.sandbox.client
        assert client is not None
        service = await client.get(kinds.SERVICE, name, namespace=NS)
        return dict(service["spec"]["selector"])

    async def versions(self, count: int) -> dict[str, int]:
        """The podinfo versions that answered ``count`` requests sent through the gateway now."""
        out: dict[str, int] = {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for _ in range(count):
                async with http.get(f"{self.run.sandbox.gateway_url}/", headers={"Host": HOST}) as response:
                    version = str((await response.json(content_type=None))["version"])
                    out[version] = out.get(version, 0) + 1
        return out

    def events(self) -> list[str]:
        informer = self.run.sandbox.events
        assert informer is not None
        return [str(e.get("message") or "") for e in informer.list()]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def story(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Story]:
    """A sandbox with the workloads, the template and the Canary applied, initialized, users sending."""
    async with played(tmp_path_factory.mktemp("service-target"), play=False, provider="contour") as run:
        client = run.sandbox.client
        mesh = run.sandbox.mesh
        pods = run.sandbox.pods
        assert client is not None
        assert mesh is not None
        assert pods is not None
        state = Story(run)
        mesh.on_write = state.on_write
        await client.ensure(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, kind=kinds.NAMESPACE
        )
        for color, tag in (("blue", "3.1.0"), ("green", "3.1.1"), ("red", "3.1.2")):
            await client.ensure(deployment(color, tag), kind=kinds.DEPLOYMENT)
        await pods.set_knobs(NS, "podinfo-red", error_rate=1.0)
        await client.ensure(target_service("blue"), kind=kinds.SERVICE)
        for document in yaml.safe_load_all((EXAMPLES_ROOT / "contour" / "routing.yaml").read_text()):
            await client.ensure(document, kind=HTTP_PROXY)  # the tutorial's root HTTPProxy
        await client.ensure(TEMPLATE, kind=kinds.METRIC_TEMPLATE)
        await client.ensure(CANARY, kind=kinds.CANARY)
        await state.wait(lambda: state.phase() == "Initialized", "the canary to be Initialized")
        state.traffic.start()
        try:
            yield state
        finally:
            await state.traffic.stop()
            mesh.on_write = None


async def test_initialization_copies_the_target_service(story: Story) -> None:
    assert await story.selector("podinfo-primary") == {"app": "podinfo", "color": "blue"}
    assert await story.selector("podinfo-canary") == {"app": "podinfo", "color": "blue"}
    client = story.run.sandbox.client
    assert client is not None
    primary = await client.get(kinds.SERVICE, "podinfo-primary", namespace=NS)
    target = await client.get(kinds.SERVICE, "podinfo", namespace=NS)
    assert primary["spec"]["clusterIP"] != target["spec"]["clusterIP"]  # its own allocation
    assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    # nothing built from a pod selector: no Deployment of canarist's
    names = {d["metadata"]["name"] for d in (await client.list(kinds.DEPLOYMENT, namespace=NS)).items}
    assert names == {"podinfo-blue", "podinfo-green", "podinfo-red"}


async def test_a_new_selector_is_analysed_through_envoy_and_promoted(story: Story) -> None:
    green_before = story.served("green")
    await story.select("green")
    await story.wait(lambda: story.phase() in ("Succeeded", "Failed"), "the promotion")
    assert story.phase() == "Succeeded", story.events()
    # Envoy got every step of the analysis, then all of it back on the primary, which now selects green
    assert story.weights[:5] == [0, 20, 40, 60, 0], story.weights
    assert await story.selector("podinfo-primary") == {"app": "podinfo", "color": "green"}
    assert story.served("green") > green_before
    events = story.events()
    assert "Advance podinfo.test canary weight 60" in events
    assert "Promotion completed! Scaling down podinfo.test" in events
    # users now reach green only
    assert await story.versions(40) == {"3.1.1": 40}


async def test_a_failing_selector_is_rolled_back_and_users_stay_on_the_primary(story: Story) -> None:
    await story.wait(lambda: story.phase() == "Succeeded", "the previous release")
    steps = len(story.weights)
    await story.select("red")
    await story.wait(lambda: story.phase() in ("Progressing", "Failed"), "the analysis to start")
    await story.wait(lambda: story.phase() in ("Succeeded", "Failed"), "the rollback")
    assert story.phase() == "Failed", story.events()
    events = story.events()
    assert any(m.startswith("Halt podinfo.test advancement gateway-success-rate") for m in events), events
    assert "Rolling back podinfo.test failed checks threshold reached 3" in events
    assert story.weights[steps:][0] == 20
    assert story.weights[-1] == 0
    assert await story.selector("podinfo-primary") == {"app": "podinfo", "color": "green"}
    assert await story.selector("podinfo-canary") == {"app": "podinfo", "color": "red"}
    assert await story.versions(40) == {"3.1.1": 40}
