"""Fixtures of the end-to-end suite: one world per test (local control plane, operator, apps, traffic);
one real Prometheus per session."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.localcluster.cluster import LocalClusterThread
from canarist.operator.settings import OperatorSettings
from canarist.sandbox.demo_app import DemoApp
from tests.e2e.harness import NAMESPACE, OperatorProcess, TrafficDriver, apply, install_crds, load_example
from tests.fixtures.capture import CaptureServer


@dataclass
class World:
    cluster: LocalClusterThread
    kubeconfig: Path
    client: KubeClient
    primary_app: DemoApp
    canary_app: DemoApp
    traffic: TrafficDriver
    events: CaptureServer
    settings: OperatorSettings
    operators: list[OperatorProcess] = field(default_factory=list)

    async def start_operator(self, **overrides: Any) -> OperatorProcess:
        process = OperatorProcess(dataclasses.replace(self.settings, **overrides), self.kubeconfig)
        await process.start()
        self.operators.append(process)
        return process

    async def apply_podinfo(self, canary: dict[str, Any]) -> None:
        """Namespace, Deployment (unless the test created its own), HPA, then the Canary."""
        await apply(self.client, load_example("namespace.yaml"))
        if await self.client.get_or_none(kinds.DEPLOYMENT, "podinfo", namespace=NAMESPACE) is None:
            await apply(self.client, load_example("deployment.yaml"))
        await apply(self.client, load_example("hpa.yaml"))
        await apply(self.client, canary)


@pytest.fixture
async def world(tmp_path: Path, prometheus_server: Any, capture_server: Any) -> AsyncIterator[World]:
    cluster = LocalClusterThread(readiness_delay=0.2, install_istio_crds=True).start()
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
    client = KubeClient.from_kubeconfig(kubeconfig)
    primary_app = DemoApp(workload="podinfo-primary", namespace=NAMESPACE, version="3.1.0")
    canary_app = DemoApp(workload="podinfo", namespace=NAMESPACE, version="3.1.1")
    await primary_app.start()
    await canary_app.start()
    for app in (primary_app, canary_app):
        prometheus_server.add_target(app.metrics_target)
    events = await capture_server(statuses=[202])
    settings = OperatorSettings(
        metrics_server=prometheus_server.url,
        min_analysis_interval_s=1.0,
        control_loop_interval_s=2.0,
        event_webhook=events.url,
        port=0,
        log_level="info",
    )
    traffic = TrafficDriver(client, primary_app, canary_app)
    world = World(cluster, kubeconfig, client, primary_app, canary_app, traffic, events, settings)
    await install_crds(client)
    traffic.start()
    # Prometheus discovers file_sd targets with a delay that grows on a busy machine: until it scrapes both
    # apps, the first analysis could read "no values". Wait for the scrapes, not for time.
    try:
        for app in (primary_app, canary_app):
            await prometheus_server.wait_for_value(
                f'up{{instance="{app.metrics_target}"}}', timeout_s=60, accept=lambda v: v == 1
            )
        yield world
    finally:
        await traffic.stop()
        for process in world.operators:
            await process.stop()
        for app in (primary_app, canary_app):
            prometheus_server.remove_target(app.metrics_target)
            await app.stop()
            # The next test's apps report the same workload names: drop these samples so they cannot leak
            # into its rate windows (the apps are stopped, so no later scrape brings them back).
            await prometheus_server.delete_series(f'{{instance="{app.metrics_target}"}}')
        await client.close()
        cluster.stop()
