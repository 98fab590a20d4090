"""The sandbox on cluster networking (`DemoOptions(cluster_network=True)`, `canarist demo --cluster-network`).

One sandbox for the module, Istio, 2 s interval: Services get ClusterIPs in 127.96.0.0/16 on which Envoy
listens, the loadtester and the operator run as processes that resolve Services' names, and the
walkthrough's Canary is applied unchanged — its acceptance test (`curl ... podinfo-canary.test:9898/token`)
and load test (`hey ... http://podinfo-canary.test:9898/`) run for real against those names. If the machine
cannot do cluster networking, the tests fail with the reason `cluster_net.available()` gives.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import yaml

from canarist.kube import resources as kinds
from canarist.sandbox import cluster_net
from canarist.sandbox.demo import (
    EXAMPLES,
)
from canarist.sandbox.envoy_config import envoy_config, listener_key
from tests.sandbox.stories import Run, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVICE_CIDR = ipaddress.ip_network(cluster_net.SERVICE_CIDR)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox on cluster networking, with the promotion + rollback story already played."""
    why = cluster_net.available()
    assert why is None, f"cluster networking cannot work on this machine: {why}"
    async with played(tmp_path_factory.mktemp("cluster-demo"), cluster_network=True) as state:
        yield state


async def test_the_unchanged_canary_promotes_then_rolls_back(run: Run) -> None:
    result, output = run.story, run.output()
    assert result is not None
    assert result.error == "", output
    assert result.promoted, output
    assert result.rolled_back, output
    assert set(result.weights_seen) >= set(range(10, 55, 10)), output
    # The Canary in the cluster has the walkthrough's webhooks, names and all (nothing rewritten).
    client = run.sandbox.client
    assert client is not None
    canary = await client.get(kinds.CANARY, "podinfo", namespace="test")
    walkthrough = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    assert canary["spec"]["analysis"]["webhooks"] == walkthrough["spec"]["analysis"]["webhooks"]
    # A pre-rollout webhook that fails holds the canary: the promotion means the acceptance test's
    # `curl -sd 'test' http://podinfo-canary.test:9898/token | grep token` succeeded through the name.
    log = (run.options.workdir or Path()) / "loadtester.log"
    text = log.read_text(errors="replace")
    acceptance = "curl -sd 'test' http://podinfo-canary.test:9898/token | grep token"
    assert f"command finished {acceptance}" in text, text[-3000:]
    # hey ran against the name and kept running: a name that does not resolve ends it at once with an error
    # (a WARN line, and a new start on the next tick); here the next ticks found it still running.
    hey = "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
    assert f"command starting {hey}" in text, text[-3000:]
    assert f"command skipped {hey} is already running" in text, text[-3000:]
    assert " WARN " not in text, text[-3000:]
    assert "Could not resolve host" not in text, text[-3000:]


async def test_the_operator_reads_metrics_from_flaggers_default_address(run: Run) -> None:
    """The operator runs in istio-system's view of the names, with -metrics-server=http://prometheus.istio-system:9090;
    run 1's promotion (its metric checks passed) means the queries went through that name."""
    assert "-metrics-server=http://prometheus.istio-system:9090" in run.sandbox.operator_command()
    assert run.sandbox.operator is not None
    # The hosts file the operator's process sees (its own mount namespace, seen through /proc).
    hosts = await asyncio.to_thread(Path(f"/proc/{run.sandbox.operator.pid}/root/etc/hosts").read_text)
    assert "prometheus.istio-system.svc.cluster.local" in hosts, hosts
    assert "\tprometheus " in hosts or "\tprometheus\n" in hosts or " prometheus " in hosts, hosts


async def test_services_have_cluster_ips_in_the_sandbox_range(run: Run) -> None:
    env = {**os.environ, "KUBECONFIG": str(run.sandbox.kubeconfig)}
    done = await asyncio.to_thread(
        subprocess.run,
        ["kubectl", "get", "svc", "-A", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    services = {
        (s["metadata"]["namespace"], s["metadata"]["name"]): s["spec"].get("clusterIP")
        for s in json.loads(done.stdout)["items"]
    }
    for key in [
        ("test", "podinfo"),
        ("test", "podinfo-canary"),
        ("test", "podinfo-primary"),
        ("test", "flagger-loadtester"),
        ("istio-system", "prometheus"),
        ("istio-system", "flagger-prometheus"),
    ]:
        assert key in services, services
    for key, ip in services.items():
        assert ip, key
        assert ipaddress.ip_address(ip) in SERVICE_CIDR, (key, ip)
    # Envoy listens on each Service port's ClusterIP and port.
    assert run.sandbox.mesh is not None
    listeners = run.sandbox.mesh.cluster_listeners
    assert listeners[listener_key("test", "podinfo-canary", 9898)] == (
        services[("test", "podinfo-canary")],
        9898,
    )
    assert listeners[listener_key("test", "flagger-loadtester", 80)] == (
        services[("test", "flagger-loadtester")],
        80,
    )


async def test_a_process_of_namespace_test_resolves_services_and_nothing_else(run: Run) -> None:
    net = run.sandbox.net
    assert net is not None

    def curl(url: str) -> subprocess.CompletedProcess[str]:
        argv = net.command(["curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", url], "test")
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)

    ok = await asyncio.to_thread(curl, "http://podinfo:9898/")
    assert (ok.returncode, ok.stdout) == (0, "200"), ok.stderr
    # The canary's name reaches its listener: after the rollback its Deployment is scaled to zero, so
    # Envoy answers itself (503, no endpoint) — an HTTP answer all the same, on the Service's ClusterIP.
    canary = await asyncio.to_thread(curl, "http://podinfo-canary:9898/")
    assert canary.returncode == 0, canary.stderr
    assert canary.stdout in ("200", "503"), canary.stdout
    loadtester = await asyncio.to_thread(curl, "http://flagger-loadtester.test/healthz")
    assert (loadtester.returncode, loadtester.stdout) == (0, "200"), loadtester.stderr
    unknown = await asyncio.to_thread(curl, "http://nosuch.test/")
    assert unknown.returncode == 6, (unknown.returncode, unknown.stderr)
    assert "Could not resolve host" in unknown.stderr


async def test_a_listener_on_an_address_and_the_default_unchanged() -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "test"},
        "spec": {"clusterIP": "127.96.0.20", "ports": [{"name": "http", "port": 80}]},
    }
    key = listener_key("test", "web", 80)
    default = envoy_config({}, [service], {}, ports={key: 15001})
    addressed = envoy_config({}, [service], {}, ports={key: ("127.96.0.20", 80)})
    [listener] = default["listeners"]
    assert listener["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 15001}}
    [on_ip] = addressed["listeners"]
    assert on_ip["address"] == {"socket_address": {"address": "127.96.0.20", "port_value": 80}}
    # Everything but the address is the same.
    assert {**on_ip, "address": None} == {**listener, "address": None}
    assert addressed["routes"] == default["routes"]
    assert addressed["clusters"] == default["clusters"]
