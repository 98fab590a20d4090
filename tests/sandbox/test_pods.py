"""The sandbox's pods are local processes chosen by image, with pod IPs and Pod objects (docs/sandbox.md#pods).

A real `PodManager` against the local control plane over HTTP (with the sandbox's image check), real
podinfo and loadtester processes on pod IPs of a range of their own per test, and the real kubectl.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.podnames import POD_TEMPLATE_HASH_LABEL, pod_template_hash
from canarist.sandbox import cluster_net, images, podinfo
from canarist.sandbox.pods import POD, PROCESS_ANNOTATION, Pod, PodAddresses, PodManager
from tests.fixtures.localcluster import LocalClusterHandle

NS = "test"
T = TypeVar("T")


def _cidr() -> str:
    """A /24 of 127.0.0.0/8 for this test: tests of other modules run beside it with their own pods."""
    return f"127.{random.randint(160, 250)}.{random.randint(0, 255)}.0/24"


async def _until(probe: Callable[[], Awaitable[T | None]], what: str, timeout_s: float = 60.0) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def deployment(
    name: str,
    image: str,
    *,
    replicas: int = 1,
    command: list[str] | None = None,
    args: list[str] | None = None,
    env: list[dict[str, Any]] | None = None,
    ports: list[dict[str, Any]] | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "podinfod", "image": image}
    if command is not None:
        container["command"] = command
    if args is not None:
        container["args"] = args
    if env:
        container["env"] = env
    if ports:
        container["ports"] = ports
    pod_labels = dict(labels or {"app": name})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels}, "spec": {"containers": [container]}},
        },
    }


def service(name: str, selector: Mapping[str, str], port: int, target: int | str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": dict(selector), "ports": [{"name": "http", "port": port, "targetPort": target}]},
    }


class World:
    """The cluster, a client and the PodManager of one test."""

    def __init__(self, cluster: LocalClusterHandle, client: KubeClient, pods: PodManager) -> None:
        self.cluster, self.client, self.pods = cluster, client, pods

    async def kubectl(self, *args: str, check: bool = True) -> str:
        """kubectl against the cluster, off the event loop (the pods' manager runs on it)."""
        done = await asyncio.to_thread(self.cluster.kubectl, *args, check=check)
        return done.stdout

    async def apply(self, *objects: Mapping[str, Any]) -> None:
        for obj in objects:
            await self.client.ensure(obj)

    async def serving(self, workload: str, count: int = 1, timeout_s: float = 60.0) -> list[Pod]:
        async def ready() -> list[Pod] | None:
            pods = [p for p in self.pods.workload_pods(NS, workload) if p.serving]
            return pods if len(pods) >= count else None

        return await _until(ready, f"{count} serving pod(s) of {workload}", timeout_s)

    async def pod_object(
        self, name: str, test: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            obj = await self.client.get_or_none(POD, name, namespace=NS)
            return obj if obj is not None and test(obj) else None

        return await _until(probe, what)


@pytest.fixture
async def world(local_cluster: LocalClusterHandle, tmp_path: Path) -> AsyncIterator[World]:
    local_cluster.server.image_check = images.image_check
    local_cluster.kubectl("create", "namespace", NS, check=True)
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig)
    pods = PodManager(
        client, pool_size=2, pod_cidr=_cidr(), workdir=tmp_path, pod_logs=local_cluster.server.pod_logs
    )
    try:
        await pods.start()
        yield World(local_cluster, client, pods)
    finally:
        await pods.stop()
        await client.close()


async def _events(world: World, name: str) -> list[dict[str, Any]]:
    """The Events about the object ``name`` (kubectl's field selector)."""
    selector = f"involvedObject.name={name}"
    listed = await world.kubectl("-n", NS, "get", "events", "--field-selector", selector, "-o", "json")
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


async def _get(url: str) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
        return response.status, await response.json(content_type=None)


# ---------------------------------------------------------------------------------------- the image table


def test_images_are_matched_by_repository_path_whatever_the_registry_tag_or_digest() -> None:
    for image in (
        "quay.io/stefanprodan/podinfo:3.1.0",
        "ghcr.io/stefanprodan/podinfo:6.0.1",
        "stefanprodan/podinfo",
        "docker.io/stefanprodan/podinfo:6.5.0",
        "ghcr.io/stefanprodan/podinfo@sha256:" + "a" * 64,
        "localhost:5000/stefanprodan/podinfo:dev",
    ):
        assert images.program_for(image) is images.PODINFO, image
        assert images.image_check(image) is None
    for image in ("ghcr.io/fluxcd/flagger-loadtester:0.29.0", "weaveworks/flagger-loadtester:0.18.0"):
        assert images.program_for(image) is images.LOADTESTER, image
    for image in ("stefanprodan/potato:1.0.0", "podinfo:6.0.0", "ghcr.io/other/podinfo:1", "nginx:1.25", ""):
        assert images.program_for(image) is None, image
        reason = images.image_check(image)
        assert reason is not None
        assert "[registry/]stefanprodan/podinfo" in reason
        assert "flagger-loadtester" in reason
    assert images.image_tag("quay.io/stefanprodan/podinfo:3.1.0") == "3.1.0"
    assert images.image_tag("localhost:5000/stefanprodan/podinfo") == "latest"
    # command (else the entrypoint) + args (else the image's CMD), then the program becomes a Python module
    podinfo, tester = images.PODINFO, images.LOADTESTER
    assert images.container_argv({}, podinfo) == ["./podinfo"]
    assert images.container_argv({"args": ["./podinfo", "--port=1"]}, podinfo) == ["./podinfo", "--port=1"]
    assert images.container_argv({"command": ["./podinfo"], "args": ["-x"]}, podinfo) == ["./podinfo", "-x"]
    assert images.container_argv({"args": ["-port=8080"]}, tester) == ["./loadtester", "-port=8080"]
    assert images.local_argv(["/home/app/podinfo", "--port=1"], podinfo, "py") == [
        "py",
        "-m",
        "canarist.sandbox.podinfo",
        "--port=1",
    ]
    with pytest.raises(ValueError, match='exec: "sh": executable file not found'):
        images.local_argv(["sh", "-c", "true"], podinfo)


def test_podinfo_flags_are_podinfos() -> None:
    options = podinfo.parse_flags(
        ["--port", "9000", "--port-metrics=9797", "--grpc-port=9999", "--h2c", "--backend-url=a,b"],
        {"PODINFO_UI_MESSAGE": "from env", "PODINFO_PORT": "1234", "PODINFO_LEVEL": "debug"},
    )
    assert (options.port, options.port_metrics, options.level) == (9000, 9797, "debug")  # a flag wins
    assert options.ui_message("1.0.0") == "from env"
    assert options.values["backend-url"] == ["a", "b"]
    assert options.not_implemented == ["--backend-url", "--grpc-port", "--h2c"]
    defaults = podinfo.parse_flags([], {"PODINFO_PORT": "tcp://10.0.0.1:9898"})  # a Service link variable
    assert (defaults.port, defaults.ui_message("6.0.0")) == (9898, "greetings from podinfo v6.0.0")
    for argv, message in (
        (["--bogus"], "unknown flag: --bogus"),
        (["-port=9898"], "unknown shorthand flag: 'p' in -port=9898"),
        (["--port=x"], 'invalid argument "x" for "--port" flag'),
        (["--port"], "flag needs an argument: --port"),
    ):
        with pytest.raises(podinfo.FlagError, match=re.escape(message)):
            podinfo.parse_flags(argv, {})


def test_pod_ips_are_allocated_next_fit_and_freed() -> None:
    addresses = PodAddresses("127.200.7.0/29")  # .1 to .6
    first = [addresses.allocate() for _ in range(3)]
    assert first == ["127.200.7.1", "127.200.7.2", "127.200.7.3"]
    addresses.release("127.200.7.2")
    assert addresses.allocate() == "127.200.7.4"  # next-fit: a freed address is not reused at once
    assert addresses.allocate(lambda ip: ip != "127.200.7.5") == "127.200.7.6"  # one in use elsewhere
    assert addresses.allocate() == "127.200.7.2"  # wrapped round to the freed one
    assert addresses.allocate() == "127.200.7.5"
    with pytest.raises(RuntimeError, match="pod CIDR is full"):
        addresses.allocate()


# ---------------------------------------------------------------------------------------- podinfo pods


async def test_podinfo_of_any_registry_runs_its_port_on_its_pod_ip_with_env_from_config(world: World) -> None:
    await world.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "podinfo-config", "namespace": NS},
            "data": {"color": "#ff0000", "message": "hello from the config map"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "podinfo-secret", "namespace": NS},
            "stringData": {"token": "s3cr3t"},
        },
    )
    env = [
        {
            "name": "PODINFO_UI_COLOR",
            "valueFrom": {"configMapKeyRef": {"name": "podinfo-config", "key": "color"}},
        },
        {
            "name": "PODINFO_UI_MESSAGE",
            "valueFrom": {"configMapKeyRef": {"name": "podinfo-config", "key": "message"}},
        },
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "podinfo-secret", "key": "token"}}},
        {"name": "MY_POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    releases = {
        "quay": ("quay.io/stefanprodan/podinfo:3.1.0", ["./podinfo", "--port=9898"], None, 9898),
        "ghcr": (
            "ghcr.io/stefanprodan/podinfo:6.0.1",
            None,
            ["./podinfo", "--port=9797", "--level=debug"],
            9797,
        ),
        "hub": ("stefanprodan/podinfo:6.1.0", ["/home/app/podinfo", "--port", "9000"], None, 9000),
    }
    for name, (image, command, args, _) in releases.items():
        await world.apply(deployment(name, image, command=command, args=args, env=env))
    for name, (image, _, _, port) in releases.items():
        (pod,) = await world.serving(name)
        tag = image.rsplit(":", 1)[1]
        assert pod.ip.startswith(
            world.pods.addresses.network.network_address.exploded.rsplit(".", 1)[0] + "."
        )
        status, version = await _get(f"http://{pod.ip}:{port}/version")
        assert (status, version["version"]) == (200, tag), name
        status, env_list = await _get(f"http://{pod.ip}:{port}/env")
        assert "API_TOKEN=s3cr3t" in env_list
        assert "PODINFO_UI_MESSAGE=hello from the config map" in env_list
        assert f"MY_POD_IP={pod.ip}" in env_list
        assert f"HOSTNAME={pod.name}" in env_list
        assert not any(item.startswith("CANARIST_") for item in env_list)
        status, info = await _get(f"http://{pod.ip}:{port}/")
        assert info["message"] == "hello from the config map"
        assert info["color"] == "#ff0000"
        assert info["hostname"] == pod.name
    # A config change is visible in the answers of the pods it reaches (a new pod template, as
    # Flagger's config tracking or `kubectl rollout restart` makes).
    await world.client.patch(
        kinds.CONFIG_MAP, "podinfo-config", {"data": {"message": "changed"}}, namespace=NS
    )
    (old,) = world.pods.workload_pods(NS, "quay")
    old_pids = old.pids
    assert old_pids
    await world.kubectl("-n", NS, "rollout", "restart", "deployment/quay")

    async def restarted() -> Pod | None:
        pods = world.pods.workload_pods(NS, "quay")
        if any(_alive(pid) for pid in old_pids) or len(pods) != 1 or pods[0].name == old.name:
            return None
        return pods[0] if pods[0].serving else None

    new = await _until(restarted, "the restarted pod of quay (and the old one gone)")
    _, info = await _get(f"http://{new.ip}:9898/")
    assert info["message"] == "changed"
    assert new.ip != old.ip


async def test_two_pods_of_one_deployment_share_the_port_on_their_own_ips(world: World) -> None:
    await world.apply(
        deployment(
            "podinfo",
            "quay.io/stefanprodan/podinfo:3.1.0",
            replicas=2,
            command=["./podinfo", "--port=9898", "--port-metrics=9797", "--level=info"],
            ports=[{"name": "http", "containerPort": 9898}, {"name": "http-metrics", "containerPort": 9797}],
        ),
        service("podinfo", {"app": "podinfo"}, 9898, "http"),
    )
    pods = await world.serving("podinfo", 2)
    assert len({p.ip for p in pods}) == 2
    for pod in pods:
        status, info = await _get(f"http://{pod.ip}:9898/")
        assert (status, info["hostname"], info["version"]) == (200, pod.name, "3.1.0")
        async with aiohttp.ClientSession() as http, http.get(f"http://{pod.ip}:9797/metrics") as response:
            metrics = await response.text()
        assert "http_request_duration_seconds_bucket" in metrics
        assert "istio_requests_total" not in metrics  # podinfo's own metrics; the mesh's are on :15020
    endpoints = world.pods.endpoints()[(NS, "podinfo")]
    assert sorted((e.host, e.port) for e in endpoints) == sorted((p.ip, 9898) for p in pods)
    assert all(e.labels["app"] == "podinfo" and "pod-template-hash" in e.labels for e in endpoints)

    # kubectl sees the Pod objects, with their IPs, node, owner and readiness.
    listed = json.loads(await world.kubectl("-n", NS, "get", "pods", "-o", "json"))["items"]
    by_name = {item["metadata"]["name"]: item for item in listed}
    assert set(by_name) == {p.name for p in pods}
    for pod in pods:
        obj = by_name[pod.name]
        assert obj["status"]["podIP"] == pod.ip
        assert obj["status"]["hostIP"] == "127.0.0.1"
        assert obj["status"]["phase"] == "Running"
        assert {"type": "Ready", "status": "True"}.items() <= next(
            c for c in obj["status"]["conditions"] if c["type"] == "Ready"
        ).items()
        assert obj["spec"]["nodeName"] == "sandbox-node-1"
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
        assert obj["metadata"]["labels"]["pod-template-hash"] in pod.name
        assert obj["status"]["containerStatuses"][0]["state"]["running"]
    wide = await world.kubectl("-n", NS, "get", "pods", "-o", "wide")
    for pod in pods:
        assert pod.name in wide
        assert pod.ip in wide

    # kubectl logs shows the process's output.
    logs = await world.kubectl("-n", NS, "logs", "deployment/podinfo")
    assert '"msg": "Starting podinfo"' in logs
    assert '"version": "3.1.0"' in logs
    one = await world.kubectl("-n", NS, "logs", pods[1].name, "-c", "podinfod")
    assert f'"addr": "{pods[1].ip}:9898"' in one


async def test_an_image_the_sandbox_cannot_run_leaves_a_pending_pod_with_an_event(world: World) -> None:
    await world.apply(
        deployment("potato", "stefanprodan/potato:1.0.0"), service("potato", {"app": "potato"}, 80, 8080)
    )

    async def pending() -> dict[str, Any] | None:
        items = json.loads(await world.kubectl("-n", NS, "get", "pods", "-l", "app=potato", "-o", "json"))[
            "items"
        ]
        if not items:
            return None
        status = items[0].get("status") or {}
        waiting = ((status.get("containerStatuses") or [{}])[0].get("state") or {}).get("waiting") or {}
        return items[0] if waiting.get("reason") == "ErrImagePull" else None

    pod = await _until(pending, "a Pending pod of potato waiting in ErrImagePull")
    assert pod["status"]["phase"] == "Pending"
    assert "podIP" not in pod["status"]
    name = pod["metadata"]["name"]
    (event,) = await _until(lambda: _events(world, name), f"the event on {name}")
    assert event["type"] == "Warning"
    assert event["reason"] == "Failed"
    assert 'Failed to pull image "stefanprodan/potato:1.0.0"' in event["message"]
    assert "stefanprodan/podinfo" in event["message"]  # what the sandbox runs
    # The workload is not ready (the control plane's own check), and the Service has no endpoint.
    deploy = await world.client.get(kinds.DEPLOYMENT, "potato", namespace=NS)
    assert not (deploy.get("status") or {}).get("readyReplicas")
    assert world.pods.endpoints()[(NS, "potato")] == []


@pytest.mark.localcluster(pod_readiness=True)
async def test_a_workload_whose_template_carries_the_process_annotation_gets_no_processes(
    world: World,
) -> None:
    """The sandbox's own operator Deployment: no pods of the PodManager's, ready through the Pod the
    sandbox writes for its process; the same image without the annotation is refused at its pods."""
    world.cluster.server.image_check = images.workload_image_check  # what the sandbox gives the control plane
    own = deployment("flagger", images.OPERATOR_IMAGE, args=["python", "-m", "canarist", "operator"])
    own["spec"]["template"]["metadata"]["annotations"] = {PROCESS_ANNOTATION: "operator"}
    rogue = deployment("rogue", images.OPERATOR_IMAGE)
    await world.apply(own, rogue)

    # The PodManager reconciles workloads in the order it sees them: once the later one has its Pod, the
    # annotated one has been decided on.
    async def refused() -> dict[str, Any] | None:
        listed = await world.client.list(POD, namespace=NS, label_selector={"app": "rogue"})
        for item in listed.items:
            statuses = (item.get("status") or {}).get("containerStatuses") or [{}]
            if ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason") == "ErrImagePull":
                return item
        return None

    rogue_pod = await _until(refused, "the rogue operator's pod waiting in ErrImagePull")
    name = rogue_pod["metadata"]["name"]
    (event,) = await _until(lambda: _events(world, name), f"the event on {name}")
    assert images.OPERATOR_REFUSAL in event["message"], event
    assert f'Failed to pull image "{images.OPERATOR_IMAGE}"' in event["message"], event
    assert world.pods.workload_pods(NS, "flagger") == []
    listed = await world.client.list(POD, namespace=NS, label_selector={"app": "flagger"})
    assert listed.items == []

    # The Pod standing for the process (as the sandbox writes it) makes the Deployment ready, untouched.
    stored = await world.client.get(kinds.DEPLOYMENT, "flagger", namespace=NS)
    template = stored["spec"]["template"]
    template_hash = pod_template_hash(template)
    stand_in = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"flagger-{template_hash}-abcde",
            "namespace": NS,
            "labels": {**template["metadata"]["labels"], POD_TEMPLATE_HASH_LABEL: template_hash},
            "annotations": {PROCESS_ANNOTATION: "operator"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "flagger",
                    "uid": stored["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {**template["spec"], "hostNetwork": True},
    }
    await world.client.create(stand_in, kind=POD)

    def ready(obj: dict[str, Any]) -> None:
        obj["status"] = {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "conditions": [{"type": "Ready", "status": "True"}],
        }

    await world.client.update_status(POD, f"flagger-{template_hash}-abcde", NS, ready)
    done = await _deployment_once(
        world, "flagger", lambda o: _status(o, "availableReplicas") == 1, "the flagger Deployment available"
    )
    assert _status(done, "readyReplicas") == _status(done, "updatedReplicas") == 1
    assert not [e for e in await _events(world, "flagger") if e.get("reason") == "ImageNotRunnable"]
    after = await world.client.get(POD, f"flagger-{template_hash}-abcde", namespace=NS)
    assert after["status"]["podIP"] == "127.0.0.1"
    assert "sandbox.canarist.dev/pod-manager" not in (after["metadata"].get("annotations") or {})
    assert world.pods.workload_pods(NS, "flagger") == []
    rogue_status = await world.client.get(kinds.DEPLOYMENT, "rogue", namespace=NS)
    assert not (rogue_status.get("status") or {}).get("readyReplicas")


async def test_a_bare_pod_from_kubectl_run_runs_and_stops_when_deleted(world: World) -> None:
    await world.kubectl(
        "-n",
        NS,
        "run",
        "tester",
        "--image=quay.io/stefanprodan/podinfo:1.2.1",
        "--",
        "./podinfo",
        "--port=9898",
    )

    async def running() -> Pod | None:
        pod = world.pods.pods.get((NS, "tester"))
        return pod if pod is not None and pod.serving else None

    pod = await _until(running, "the tester pod serving")
    status, version = await _get(f"http://{pod.ip}:9898/version")
    assert (status, version["version"]) == (200, "1.2.1")
    obj = await world.pod_object(
        "tester", lambda o: (o.get("status") or {}).get("podIP") == pod.ip, "the tester's status"
    )
    assert obj["status"]["phase"] == "Running"
    assert obj["spec"]["containers"][0]["args"] == ["./podinfo", "--port=9898"]
    (pid,) = pod.pids
    assert _alive(pid)
    await world.kubectl("-n", NS, "delete", "pod", "tester", "--wait=false")

    async def stopped() -> bool:
        return (NS, "tester") not in world.pods.pods and not _alive(pid)

    await _until(stopped, "the tester's process to end")


async def test_a_daemonset_has_one_pod_per_node(world: World) -> None:
    world.cluster.server.controllers.nodes = 2
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "podinfo-ds", "namespace": NS},
        "spec": {
            "selector": {"matchLabels": {"app": "podinfo-ds"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo-ds"}},
                "spec": {"containers": [{"name": "podinfod", "image": "ghcr.io/stefanprodan/podinfo:6.0.0"}]},
            },
        },
    }
    await world.apply(ds, service("podinfo-ds", {"app": "podinfo-ds"}, 9898, 9898))
    pods = await world.serving("podinfo-ds", 2)
    assert sorted(p.node for p in pods) == ["sandbox-node-1", "sandbox-node-2"]
    endpoints = world.pods.endpoints()[(NS, "podinfo-ds")]
    assert sorted(e.host for e in endpoints) == sorted(p.ip for p in pods)
    for pod in pods:
        obj = await world.pod_object(pod.name, lambda o: bool(o.get("status")), "the DaemonSet pod's status")
        assert obj["spec"]["nodeName"] == pod.node
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"


async def test_the_loadtester_image_answers_on_its_pod_ip(world: World) -> None:
    # The shape of Helm's flagger-loadtester Deployment.
    tester = deployment(
        "flagger-loadtester",
        "ghcr.io/fluxcd/flagger-loadtester:0.29.0",
        command=["./loadtester", "-port=8080", "-log-level=info", "-timeout=1h"],
        ports=[{"name": "http", "containerPort": 8080}],
    )
    container = tester["spec"]["template"]["spec"]["containers"][0]
    container["name"] = "loadtester"
    probe = {
        "exec": {
            "command": [
                "wget",
                "--quiet",
                "--tries=1",
                "--timeout=4",
                "--spider",
                "http://localhost:8080/healthz",
            ]
        }
    }
    container["livenessProbe"] = container["readinessProbe"] = probe
    await world.apply(tester, service("flagger-loadtester", {"app": "flagger-loadtester"}, 80, "http"))
    (pod,) = await world.serving("flagger-loadtester", timeout_s=90)
    async with aiohttp.ClientSession() as http, http.get(f"http://{pod.ip}:8080/healthz") as response:
        assert response.status == 200
    assert [(e.host, e.port) for e in world.pods.endpoints()[(NS, "flagger-loadtester")]] == [(pod.ip, 8080)]


async def test_a_scale_down_stops_the_processes_and_their_requests_still_count(world: World) -> None:
    await world.apply(
        deployment("podinfo", "quay.io/stefanprodan/podinfo:3.1.0", replicas=2, args=["./podinfo"])
    )
    pods = await world.serving("podinfo", 2)
    pids = [pid for p in pods for pid in p.pids]
    assert len(pids) == 2
    assert all(_alive(pid) for pid in pids)
    async with aiohttp.ClientSession() as http:
        for pod in pods:
            for _ in range(3):
                async with http.get(f"http://{pod.ip}:9898/", headers={"X-Source-Workload": "me"}) as r:
                    assert r.status == 200
    assert world.pods.served(NS, "podinfo", "me") == 6
    await world.client.patch(kinds.DEPLOYMENT, "podinfo", {"spec": {"replicas": 0}}, namespace=NS)

    async def gone() -> bool:
        return not world.pods.workload_pods(NS, "podinfo") and not any(_alive(pid) for pid in pids)

    await _until(gone, "the podinfo processes to end")
    remaining = json.loads(await world.kubectl("-n", NS, "get", "pods", "-o", "json"))["items"]
    assert remaining == []
    assert world.pods.served(NS, "podinfo", "me") == 6
    assert world.pods.served(NS, "podinfo") == 6


async def _watch_until(
    world: World,
    kind: Any,
    test: Callable[[dict[str, dict[str, Any]]], bool],
    what: str,
    timeout_s: float = 90.0,
    **selectors: Any,
) -> dict[str, dict[str, Any]]:
    """The objects (by name) the first time ``test`` holds for them, from a watch (current state first)."""
    objects: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(timeout_s):
            async for event in world.client.watch(kind, namespace=NS, **selectors):
                name = str(event.object.get("metadata", {}).get("name") or "")
                if event.type == "DELETED":
                    objects.pop(name, None)
                elif event.type in ("ADDED", "MODIFIED"):
                    objects[name] = event.object
                else:
                    continue
                if test(objects):
                    return objects
    except TimeoutError:
        pass
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}; last: {objects}")


async def _deployment_once(
    world: World, name: str, test: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    found = await _watch_until(
        world,
        kinds.DEPLOYMENT,
        lambda objects: name in objects and test(objects[name]),
        what,
        field_selector=f"metadata.name={name}",
    )
    return found[name]


def _status(obj: Mapping[str, Any], field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


async def _readyz(ip: str, action: str = "") -> int:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
        http.request("POST" if action else "GET", f"http://{ip}:9898/readyz{action}") as response,
    ):
        return response.status


@pytest.mark.localcluster(pod_readiness=True)
async def test_a_deployment_is_ready_only_once_its_pod_processes_serve(world: World) -> None:
    # podinfo --unready: the processes run, but their readiness probe fails until /readyz/enable.
    app = deployment(
        "podinfo",
        "quay.io/stefanprodan/podinfo:3.1.0",
        replicas=2,
        args=["./podinfo", "--port=9898", "--unready"],
        ports=[{"name": "http", "containerPort": 9898}],
    )
    container = app["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1}
    await world.apply(app)

    def running(pods: dict[str, dict[str, Any]]) -> bool:
        return len(pods) == 2 and all(
            "running" in (p.get("status", {}).get("containerStatuses") or [{}])[0].get("state", {})
            for p in pods.values()
        )

    pods = await _watch_until(
        world, POD, running, "2 running podinfo pods", label_selector={"app": "podinfo"}
    )
    ips = sorted(str(p["status"]["podIP"]) for p in pods.values())
    assert [await _readyz(ip) for ip in ips] == [503, 503]
    unready = await world.client.get(kinds.DEPLOYMENT, "podinfo", namespace=NS)
    assert _status(unready, "replicas") == _status(unready, "updatedReplicas") == 2
    assert _status(unready, "readyReplicas") == 0  # no timer: the pods are not ready

    assert await _readyz(ips[0], "/enable") == 202
    one = await _deployment_once(
        world, "podinfo", lambda o: _status(o, "readyReplicas") >= 1, "readyReplicas 1"
    )
    assert _status(one, "readyReplicas") == 1
    assert [await _readyz(ip) for ip in ips] == [200, 503]

    assert await _readyz(ips[1], "/enable") == 202
    done = await _deployment_once(
        world, "podinfo", lambda o: _status(o, "readyReplicas") == 2, "readyReplicas 2"
    )
    # At that moment every one of its Pods is Ready and answers /readyz on its pod IP.
    listed = await world.client.list(POD, namespace=NS, label_selector={"app": "podinfo"})
    assert sorted(str(item["status"]["podIP"]) for item in listed.items) == ips
    assert [await _readyz(ip) for ip in ips] == [200, 200]
    assert _status(done, "updatedReplicas") == _status(done, "availableReplicas") == 2
    hashes = {item["metadata"]["labels"]["pod-template-hash"] for item in listed.items}
    assert len(hashes) == 1
    assert next(c for c in done["status"]["conditions"] if c["type"] == "Progressing")["message"] == (
        f'ReplicaSet "podinfo-{hashes.pop()}" has successfully progressed.'
    )

    # A scale to zero (Flagger's, after a promotion) ends with no pods and the status at 0 together.
    await world.client.patch(kinds.DEPLOYMENT, "podinfo", {"spec": {"replicas": 0}}, namespace=NS)
    await _deployment_once(
        world,
        "podinfo",
        lambda o: _status(o, "observedGeneration") == 2 and _status(o, "replicas") == 0,
        "replicas 0",
    )
    remaining = await world.client.list(POD, namespace=NS, label_selector={"app": "podinfo"})
    assert remaining.items == []


async def test_knobs_reach_the_pods_of_a_workload_now_and_later(world: World) -> None:
    await world.apply(deployment("podinfo", "quay.io/stefanprodan/podinfo:3.1.0", args=["./podinfo"]))
    (pod,) = await world.serving("podinfo")
    await world.pods.set_knobs(NS, "podinfo", error_rate=1.0)
    async with aiohttp.ClientSession() as http, http.get(f"http://{pod.ip}:9898/") as response:
        assert response.status == 500
    await world.client.patch(kinds.DEPLOYMENT, "podinfo", {"spec": {"replicas": 2}}, namespace=NS)
    pods = await world.serving("podinfo", 2)
    async with aiohttp.ClientSession() as http:
        for later in pods:
            async with http.get(f"http://{later.ip}:9898/") as response:
                assert response.status == 500, later.name
    with pytest.raises(ValueError, match="error_rate"):
        world.pods.set_knobs(NS, "podinfo", error_rate=2.0)


async def test_a_process_that_exits_leaves_its_container_terminated_with_an_event(world: World) -> None:
    await world.apply(
        deployment("broken", "quay.io/stefanprodan/podinfo:3.1.0", args=["./podinfo", "--bogus"])
    )

    async def terminated() -> dict[str, Any] | None:
        items = json.loads(await world.kubectl("-n", NS, "get", "pods", "-l", "app=broken", "-o", "json"))[
            "items"
        ]
        states = [
            ((i.get("status") or {}).get("containerStatuses") or [{}])[0].get("state") or {} for i in items
        ]
        return items[0] if states and "terminated" in states[0] else None

    pod = await _until(terminated, "the broken pod's container to terminate")
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (2, "Error")
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    name = pod["metadata"]["name"]
    assert "Error: unknown flag: --bogus" in await world.kubectl("-n", NS, "logs", name)
    events = await _until(lambda: _events(world, name), f"the event on {name}")
    assert [e["reason"] for e in events] == ["ContainerExited"]
    assert "exited with status 2" in events[0]["message"]


async def test_wrapped_pods_see_their_namespaces_names(
    local_cluster: LocalClusterHandle, tmp_path: Path
) -> None:
    """With ``wrap=ClusterNetwork.command`` (what the sandbox passes) a pod's process sees the Services'
    names as a pod of its namespace: from the per-namespace pool, or started for a namespace without one."""
    why = cluster_net.available()
    assert why is None, f"cluster networking cannot work on this machine: {why}"
    net = cluster_net.ClusterNetwork(tmp_path / "cluster-net")
    net.update([cluster_net.ServiceAddress(NS, "podinfo", "127.96.200.11")])
    for namespace in (NS, "other"):
        await asyncio.to_thread(local_cluster.kubectl, "create", "namespace", namespace, check=True)
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig)
    pods = PodManager(client, pool_size=1, pod_cidr=_cidr(), workdir=tmp_path, wrap=net.command)
    try:
        await pods.start()
        assert [s.key for s in pods.pool[NS]] == [NS]
        world = World(local_cluster, client, pods)
        for namespace in (NS, "other"):
            obj = deployment("podinfo", "quay.io/stefanprodan/podinfo:3.1.0", args=["./podinfo"])
            obj["metadata"]["namespace"] = namespace
            await world.apply(obj)

        async def both() -> list[Pod] | None:
            found = [p for ns in (NS, "other") for p in pods.workload_pods(ns, "podinfo") if p.serving]
            return found if len(found) == 2 else None

        for pod in await _until(both, "a serving podinfo pod in each namespace"):
            (pid,) = pod.pids
            hosts = await asyncio.to_thread(Path(f"/proc/{pid}/root/etc/hosts").read_text)
            assert f"as a pod in namespace {pod.namespace!r}" in hosts
            short = "podinfo.test.svc podinfo.test podinfo " if pod.namespace == NS else "podinfo.test "
            assert short in hosts, hosts
            status, version = await _get(f"http://{pod.ip}:9898/version")
            assert (status, version["version"]) == (200, "3.1.0")
    finally:
        await pods.stop()
        await client.close()
