"""The walkthrough on the sandbox, as a cluster would run it: the story's main test.

One sandbox for the module (Istio, 2 s interval, stepWeight 10 and threshold 5) on its own leased address
range: Services get ClusterIPs on which Envoy listens, the ingress gateway is the Service
`istio-ingressgateway` in `istio-system` (with a Pod) whose ClusterIP is its load balancer's address, the
loadtester and the operator run as processes that resolve Services' names, Prometheus is a Service under
Flagger's names, and the walkthrough's manifests are applied as they are written — the acceptance test
(`curl ... podinfo-canary.test:9898/token`) and the load test (`hey ... http://podinfo-canary.test:9898/`)
run for real against those names. Then `canarist sandbox exec` runs `curl` and `getent` with the names a pod
of `test` sees, and the walkthrough's mirroring Canary promotes with its short-name acceptance test. If the
machine cannot do cluster networking, the fixture fails with the reason `cluster_net.available()` gives.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from canarist.cli.cmd_sandbox import publish
from canarist.kube import resources as kinds
from canarist.loadtester.grammars import CommandRejected
from canarist.loadtester.safety import CommandPolicy
from canarist.sandbox import cluster_net
from canarist.sandbox.demo import EXAMPLES, IMAGE, POD, PROCESS_ANNOTATION, UserTraffic, send_requests
from canarist.sandbox.envoy_config import envoy_config, listener_key
from canarist.sandbox.mesh import RouteWrite
from canarist.sandbox.session import Session
from tests.sandbox.stories import INTERVAL_S, Run, loadtester_log, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

CANARIST = Path(sys.executable).parent / "canarist"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox with the promotion + rollback story already played."""
    why = cluster_net.available()
    assert why is None, f"cluster networking cannot work on this machine: {why}"
    async with played(tmp_path_factory.mktemp("cluster-demo") / "demo") as state:
        yield state


@pytest.fixture(scope="module")
def state_file(run: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's sandbox published in a state file of its own, as `canarist sandbox up` publishes one."""
    path = tmp_path_factory.mktemp("state") / "sandbox.json"
    publish(run.sandbox, Session.for_this_process("sandbox up", "istio"), path)
    return path


def kubectl(run: Run, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(run.sandbox.kubeconfig)}
    return subprocess.run(
        ["kubectl", *args], capture_output=True, text=True, env=env, timeout=30, check=False
    )


def sandbox_exec(
    state: Path, *argv: str, namespace: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`canarist sandbox exec [-n NS] -- argv...` as a user runs it."""
    env = {**os.environ, "CANARIST_SANDBOX_STATE": str(state)}
    ns = ["-n", namespace] if namespace is not None else []
    return subprocess.run(
        [str(CANARIST), "sandbox", "exec", *ns, "--", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


# ------------------------------------------------------------------------------------------------ the story


async def test_the_walkthrough_canary_promotes_then_rolls_back(run: Run) -> None:
    result, output = run.story, run.output()
    assert result is not None
    assert result.error == "", output
    assert result.promoted, output
    assert result.rolled_back, output
    assert set(result.weights_seen) >= set(range(10, 55, 10)), output
    assert [text for text, ok in result.checks if not ok] == [], output
    # The Canary in the cluster has the walkthrough's webhooks, names and all (nothing rewritten).
    client = run.sandbox.client
    assert client is not None
    canary = await client.get(kinds.CANARY, "podinfo", namespace="test")
    walkthrough = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    assert canary["spec"]["analysis"]["webhooks"] == walkthrough["spec"]["analysis"]["webhooks"]
    assert canary["spec"]["service"] == walkthrough["spec"]["service"]
    # A pre-rollout webhook that fails holds the canary: the promotion means the acceptance test's
    # `curl -sd 'test' http://podinfo-canary.test:9898/token | grep token` succeeded through the name.
    # The loadtester is the pod of examples/podinfo/loadtester.yaml: its log is `kubectl logs`'s.
    lines = await asyncio.to_thread(loadtester_log, run)
    messages = [msg for _, msg in lines]
    text = "\n".join(messages)
    acceptance = "curl -sd 'test' http://podinfo-canary.test:9898/token | grep token"
    assert f"command finished {acceptance}" in messages, text[-3000:]
    # hey ran against the name and kept running: a name that does not resolve ends it at once with an error
    # (a warn line, and a new start on the next tick); here the next ticks found it still running.
    hey = "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
    assert f"command starting {hey}" in messages, text[-3000:]
    assert f"command skipped {hey} is already running" in messages, text[-3000:]
    # No command failed: the first acceptance test of each run finds the canary pods serving (the canary
    # Deployment is ready only once its pods are, and they are endpoints before they are Ready).
    assert [msg for level, msg in lines if level == "warn"] == [], text[-3000:]
    assert "Could not resolve host" not in text, text[-3000:]


async def test_the_operator_reads_prometheus_at_its_default_address(run: Run) -> None:
    """No -metrics-server: the operator's default `http://prometheus:9090` resolves in its namespace
    (istio-system) to the sandbox's Prometheus; run 1's promotion (its metric checks passed) and run 2's
    halts on the success rate mean the queries went through that name."""
    command = run.sandbox.operator_command()
    assert not [arg for arg in command if arg.startswith("-metrics-server")], command
    assert run.sandbox.metrics_server == "http://prometheus:9090"
    assert run.sandbox.operator is not None
    # The hosts file the operator's process sees (its own mount namespace, seen through /proc).
    hosts = await asyncio.to_thread(Path(f"/proc/{run.sandbox.operator.pid}/root/etc/hosts").read_text)
    names = {
        name: line.split()[0]
        for line in hosts.splitlines()
        if line and not line.startswith("#")
        for name in line.split()[1:]
    }
    assert names["prometheus"] == names["prometheus.istio-system"] == names["prometheus.istio-system.svc"]
    assert names["flagger-prometheus.istio-system.svc.cluster.local"]
    result = run.story
    assert result is not None
    assert any("Halt podinfo.test advancement success rate" in e.message for e in result.events), run.output()


async def test_services_have_cluster_ips_in_the_sandbox_range(run: Run) -> None:
    done = await asyncio.to_thread(kubectl, run, "get", "svc", "-A", "-o", "json")
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
        ("flagger", "flagger-prometheus"),
        ("istio-system", "istio-ingressgateway"),
    ]:
        assert key in services, services
    service_range = ipaddress.ip_network(run.sandbox.service_cidr)
    assert run.sandbox.lease is not None
    assert run.sandbox.lease.held
    assert run.sandbox.pod_cidr == f"127.{112 + run.sandbox.lease.index}.0.0/16"
    for key, ip in services.items():
        assert ip, key
        assert ipaddress.ip_address(ip) in service_range, (key, ip)
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


async def test_the_ingress_gateway_is_istios_service_and_pod(run: Run) -> None:
    """The walkthrough's `GATEWAY_IP=$(kubectl -n istio-system get svc/istio-ingressgateway -ojson | jq -r
    .status.loadBalancer.ingress[0].ip)`, then `curl -H 'Host: app.istio.example.com' http://$GATEWAY_IP/`."""
    script = (
        "GATEWAY_IP=$(kubectl -n istio-system get svc/istio-ingressgateway -ojson"
        " | jq -r .status.loadBalancer.ingress[0].ip) && echo $GATEWAY_IP"
        " && curl -sS -m 10 -H 'Host: app.istio.example.com' http://$GATEWAY_IP/"
    )
    env = {**os.environ, "KUBECONFIG": str(run.sandbox.kubeconfig)}
    done = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    gateway_ip, body = done.stdout.split("\n", 1)
    assert run.sandbox.gateway_url == f"http://{gateway_ip}"
    assert ipaddress.ip_address(gateway_ip) in ipaddress.ip_network(run.sandbox.service_cidr)
    answer = json.loads(body)
    assert answer["workload"] == "podinfo-primary", answer  # after the rollback: all on the primary
    assert answer["version"] == "3.1.1", answer

    service = json.loads(
        (
            await asyncio.to_thread(
                kubectl, run, "-n", "istio-system", "get", "svc/istio-ingressgateway", "-o", "json"
            )
        ).stdout
    )
    assert service["spec"]["type"] == "LoadBalancer"
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [("http2", 80), ("https", 443)]
    assert service["metadata"]["labels"] == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert service["status"]["loadBalancer"]["ingress"][0]["ip"] == service["spec"]["clusterIP"]
    pods = await asyncio.to_thread(
        kubectl, run, "-n", "istio-system", "get", "pods", "-l", "istio=ingressgateway", "-o", "json"
    )
    [pod] = json.loads(pods.stdout)["items"]
    assert pod["metadata"]["name"].startswith("istio-ingressgateway-")
    assert pod["metadata"]["annotations"][PROCESS_ANNOTATION] == "envoy"
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["podIP"] == "127.0.0.1"
    assert pod["spec"]["hostNetwork"] is True
    client = run.sandbox.client
    assert client is not None
    stored = await client.get(POD, pod["metadata"]["name"], namespace="istio-system")
    assert stored["status"]["phase"] == "Running"
    # Its log is Envoy's.
    logs = await asyncio.to_thread(kubectl, run, "-n", "istio-system", "logs", pod["metadata"]["name"])
    assert logs.returncode == 0, logs.stderr
    envoy_log = run.sandbox.envoy.log_file.read_text(errors="replace")
    assert logs.stdout.strip(), envoy_log
    assert envoy_log.startswith(logs.stdout.splitlines()[0]), (logs.stdout, envoy_log)


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
    prometheus = await asyncio.to_thread(curl, "http://flagger-prometheus.istio-system:9090/-/ready")
    assert (prometheus.returncode, prometheus.stdout) == (0, "200"), prometheus.stderr
    # where the Kubernetes tutorials' MetricTemplates find it (Flagger's chart in namespace flagger)
    prometheus = await asyncio.to_thread(curl, "http://flagger-prometheus.flagger:9090/-/ready")
    assert (prometheus.returncode, prometheus.stdout) == (0, "200"), prometheus.stderr
    unknown = await asyncio.to_thread(curl, "http://nosuch.test/")
    assert unknown.returncode == 6, (unknown.returncode, unknown.stderr)
    assert "Could not resolve host" in unknown.stderr


# ------------------------------------------------------------------------------------------------ exec


async def test_sandbox_exec_runs_curl_and_getent_with_the_names_of_a_pod(run: Run, state_file: Path) -> None:
    """The walkthrough's `kubectl exec -it tester -- sh`, then `curl http://podinfo-canary:9898/status/500`:
    here `canarist sandbox exec -n test -- curl ...` (the canary is scaled to zero after the rollback, so the
    500 comes from the apex Service, podinfo)."""
    curl = await asyncio.to_thread(
        sandbox_exec,
        state_file,
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://podinfo:9898/status/500",
        namespace="test",
    )
    assert (curl.returncode, curl.stdout) == (0, "500"), curl.stderr
    client = run.sandbox.client
    assert client is not None
    canary_ip = (await client.get(kinds.SERVICE, "podinfo-canary", namespace="test"))["spec"]["clusterIP"]
    # The default namespace is test: the short name resolves.
    getent = await asyncio.to_thread(sandbox_exec, state_file, "getent", "hosts", "podinfo-canary")
    assert getent.returncode == 0, getent.stderr
    assert getent.stdout.split()[:2] == [canary_ip, "podinfo-canary.test.svc.cluster.local"], getent.stdout
    # From istio-system, `prometheus` is that namespace's; test's short names are not.
    prometheus = await asyncio.to_thread(
        sandbox_exec, state_file, "getent", "hosts", "prometheus", namespace="istio-system"
    )
    assert prometheus.returncode == 0, prometheus.stderr
    assert prometheus.stdout.split()[1] == "prometheus.istio-system.svc.cluster.local"
    other = await asyncio.to_thread(
        sandbox_exec, state_file, "getent", "hosts", "podinfo-canary", namespace="istio-system"
    )
    assert other.returncode == 2, other  # getent: key not found
    unknown = await asyncio.to_thread(sandbox_exec, state_file, "curl", "-sS", "http://nosuch/")
    assert unknown.returncode == 6, unknown
    assert "Could not resolve host: nosuch" in unknown.stderr


async def test_sandbox_exec_passes_streams_status_and_terminal_through(run: Run, state_file: Path) -> None:
    status = await asyncio.to_thread(sandbox_exec, state_file, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (status.returncode, status.stdout, status.stderr) == (7, "out\n", "err\n")
    piped = await asyncio.to_thread(sandbox_exec, state_file, "tr", "a-z", "A-Z", stdin="podinfo\n")
    assert (piped.returncode, piped.stdout) == (0, "PODINFO\n"), piped.stderr

    def on_a_terminal() -> tuple[int, str]:
        leader, follower = pty.openpty()
        env = {**os.environ, "CANARIST_SANDBOX_STATE": str(state_file)}
        try:
            process = subprocess.Popen(
                [str(CANARIST), "sandbox", "exec", "--", "sh", "-c", "test -t 0 && test -t 1 && echo tty"],
                stdin=follower,
                stdout=follower,
                stderr=follower,
                env=env,
            )
            os.close(follower)
            follower = -1
            code = process.wait(timeout=60)
            output = b""
            while True:
                try:
                    chunk = os.read(leader, 1024)
                except OSError:  # EIO: every writer has closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            return code, output.decode(errors="replace")
        finally:
            os.close(leader)
            if follower >= 0:
                os.close(follower)

    code, output = await asyncio.to_thread(on_a_terminal)
    assert (code, output.strip()) == (0, "tty"), output
    missing = await asyncio.to_thread(sandbox_exec, state_file, "no-such-command-here")
    assert missing.returncode == 127, missing


async def test_sandbox_exec_errors(run: Run, state_file: Path, tmp_path: Path) -> None:
    empty = await asyncio.to_thread(sandbox_exec, state_file, "true", namespace="nosuch")
    assert empty.returncode == 1, empty
    assert "namespace 'nosuch' has no Services in the sandbox" in empty.stderr
    assert "namespaces with Services: flagger, istio-system, test" in empty.stderr, empty.stderr
    none = await asyncio.to_thread(sandbox_exec, tmp_path / "no-sandbox.json", "true")
    assert none.returncode == 1, none
    assert "no sandbox is running" in none.stderr
    assert "Traceback" not in none.stderr + empty.stderr


# ------------------------------------------------------------------------------------------------ mirroring


ACCEPTANCE_AS_WRITTEN = "curl -sd 't' podinfo-canary:9898/token | grep token"


async def test_the_loadtester_takes_the_schemeless_acceptance_test() -> None:
    """The walkthrough's `curl -sd 't' podinfo-canary:9898/token` has no scheme; curl sends it over HTTP, and
    the loadtester's check takes it as curl does (a host from which curl guesses FTP stays refused)."""
    CommandPolicy().check(ACCEPTANCE_AS_WRITTEN)
    with pytest.raises(CommandRejected, match="guess a protocol other than HTTP"):
        CommandPolicy().check("curl -s ftp.example.com/")


async def test_the_walkthroughs_mirroring_canary_promotes(run: Run) -> None:
    """examples/podinfo/canary-mirroring.yaml at the sandbox's interval and three iterations, and its
    acceptance test as written. That test (`podinfo-canary:9898`, a short name, resolved in the loadtester's namespace) passes, the
    routes mirror users' traffic to the canary while every answer comes from the primary, the load test on
    `podinfo.test:9898` runs, and the release promotes."""
    client, mesh = run.sandbox.client, run.sandbox.mesh
    assert client is not None
    assert mesh is not None
    canary: dict[str, Any] = yaml.safe_load((EXAMPLES / "canary-mirroring.yaml").read_text())
    analysis = canary["spec"]["analysis"]
    assert (analysis["iterations"], analysis["mirror"], analysis["threshold"]) == (10, True, 5)
    [acceptance] = [hook for hook in analysis["webhooks"] if hook["name"] == "acceptance-test"]
    assert acceptance["metadata"]["cmd"] == ACCEPTANCE_AS_WRITTEN
    analysis["interval"] = f"{INTERVAL_S:g}s"
    analysis["iterations"] = 3
    for metric in analysis["metrics"]:
        metric["interval"] = run.options.metric_interval

    def phase() -> str:
        return str(((run.sandbox.canary() or {}).get("status") or {}).get("phase") or "")

    def mirrored(write: RouteWrite) -> bool:
        route = next(
            (
                r
                for v in (write.routes.get("gateway") or {}).get("virtual_hosts") or []
                if "app.istio.example.com" in v.get("domains", [])
                for r in v.get("routes") or []
            ),
            None,
        )
        mirrors = ((route or {}).get("route") or {}).get("request_mirror_policies") or []
        return any(write.cluster_services.get(m["cluster"]) == ("test", "podinfo-canary") for m in mirrors)

    async def until(predicate: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}\n{run.output()}"
            await asyncio.sleep(0.1)

    await until(lambda: phase() in ("Initialized", "Succeeded", "Failed"), 60, "an idle canary")
    await client.ensure(canary, kind=kinds.CANARY)
    # Users' traffic through the gateway (the Canary's VirtualService is bound to public-gateway, so that is
    # the traffic its mirror copies to the canary, and what the canary's metrics are made of).
    traffic = UserTraffic(run.sandbox.gateway_url, "app.istio.example.com", 20.0)
    traffic.start()
    try:
        patch = {
            "spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": f"{IMAGE}:3.1.3"}]}}}
        }
        await client.patch(kinds.DEPLOYMENT, "podinfo", patch, namespace="test", patch_type="strategic")
        await until(
            lambda: phase() == "Progressing" and bool(mesh.writes) and mirrored(mesh.writes[-1]),
            run.options.timeout_s / 2,
            "the mirrored routes of a Progressing canary",
        )
        answers = await send_requests(run.sandbox, 20, source="mirror-check")
        pods = run.sandbox.pods
        assert pods is not None
        await until(lambda: pods.served("test", "podinfo", "mirror-check") >= 20, 10, "the mirrored copies")
        await until(lambda: phase() in ("Succeeded", "Failed"), run.options.timeout_s, "the mirroring run")
    finally:
        await traffic.stop()
    assert phase() == "Succeeded", run.output()
    # Every answer came from the primary; the canary got a copy of each request.
    assert (answers.primary, answers.errors) == (20, 0), answers
    assert pods.served("test", "podinfo", "mirror-check") == 20
    messages = [msg for _, msg in await asyncio.to_thread(loadtester_log, run)]
    text = "\n".join(messages)
    assert f"command finished {ACCEPTANCE_AS_WRITTEN}" in messages, text[-3000:]
    assert "command starting hey -z 1m -q 10 -c 2 http://podinfo.test:9898/" in messages, text[-3000:]
    primary = await client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace="test")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":3.1.3")


# ------------------------------------------------------------------------------------------------ config


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
