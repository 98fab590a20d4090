"""The simulated Deployment/DaemonSet/HPA controllers, through kubectl and raw HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.localcluster.helpers import request, watch_events

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MERGE = "application/merge-patch+json"


def workload(
    kind: str = "Deployment",
    name: str = "app",
    image: str = "nginx:1.25",
    replicas: int = 2,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }
    if annotations:
        template["metadata"]["annotations"] = annotations
    body: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": template, **spec}
    if kind == "Deployment":
        body["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": body}


async def _wait_status(session: aiohttp.ClientSession, url: str, predicate: Any, attempts: int = 200) -> dict:
    for _ in range(attempts):
        _, obj = await request(session, "GET", url)
        if predicate(obj):
            return obj
        await asyncio.sleep(0.05)
    raise AssertionError(f"status never matched: {obj.get('status')}")


def _conditions(obj: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj.get("status", {}).get("conditions", [])}


def test_kubectl_rollout_status_and_wait(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(workload()), check=True)
    done = local_cluster.kubectl("rollout", "status", "deployment/app", "--timeout=20s", check=True)
    assert 'deployment "app" successfully rolled out' in done.stdout
    local_cluster.kubectl("wait", "--for=condition=Available", "deployment/app", "--timeout=20s", check=True)
    local_cluster.kubectl("set", "image", "deployment/app", "main=nginx:1.26", check=True)
    done = local_cluster.kubectl("rollout", "status", "deployment/app", "--timeout=20s", check=True)
    assert "successfully rolled out" in done.stdout
    status = json.loads(local_cluster.kubectl("get", "deploy", "app", "-o", "json", check=True).stdout)
    assert status["metadata"]["generation"] == 2
    assert status["status"]["observedGeneration"] == 2
    assert status["status"]["updatedReplicas"] == status["status"]["availableReplicas"] == 2
    lines = local_cluster.kubectl("get", "deploy", "-o", "wide", check=True).stdout.splitlines()
    assert lines[0].split()[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:2] == ["app", "2/2"]
    assert "nginx:1.26" in lines[1]
    local_cluster.kubectl(
        "wait", "--for=jsonpath={.status.readyReplicas}=2", "deployment/app", "--timeout=20s", check=True
    )


async def test_deployment_status_moves_like_the_controller(local_cluster):
    url = local_cluster.url + DEPLOYMENTS
    async with aiohttp.ClientSession() as session:
        _, listed = await request(session, "GET", url)
        rv = listed["metadata"]["resourceVersion"]
        _, created = await request(session, "POST", url, workload(replicas=3))
        assert created["spec"]["progressDeadlineSeconds"] == 600
        assert created["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "25%", "maxSurge": "25%"}
        events = await watch_events(session, f"{url}?watch=true&resourceVersion={rv}", 3)
        assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "MODIFIED"]
        rolling, ready = events[1]["object"]["status"], events[2]["object"]["status"]
        assert rolling["observedGeneration"] == 1
        assert rolling["updatedReplicas"] == 3
        assert rolling["unavailableReplicas"] == 3
        assert "readyReplicas" not in rolling
        assert _conditions(events[1]["object"]) == {
            "Available": ("False", "MinimumReplicasUnavailable"),
            "Progressing": ("True", "ReplicaSetUpdated"),
        }
        assert ready["readyReplicas"] == ready["availableReplicas"] == ready["replicas"] == 3
        assert "unavailableReplicas" not in ready
        assert _conditions(events[2]["object"]) == {
            "Available": ("True", "MinimumReplicasAvailable"),
            "Progressing": ("True", "NewReplicaSetAvailable"),
        }
        assert all(c["lastUpdateTime"] and c["lastTransitionTime"] for c in ready["conditions"])
        # a new template: old pods stay available while the new ones start
        rv = events[2]["object"]["metadata"]["resourceVersion"]
        await request(
            session,
            "PATCH",
            f"{url}/app",
            {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}},
            MERGE,
        )
        events = await watch_events(session, f"{url}?watch=true&resourceVersion={rv}", 3)
        mid, end = events[1]["object"], events[2]["object"]
        assert mid["metadata"]["generation"] == 2
        assert mid["status"]["observedGeneration"] == 2
        assert mid["status"]["replicas"] == 6
        assert mid["status"]["updatedReplicas"] == 3
        assert mid["status"]["availableReplicas"] == 3
        assert _conditions(mid)["Available"] == ("True", "MinimumReplicasAvailable")
        assert _conditions(mid)["Progressing"] == ("True", "ReplicaSetUpdated")
        assert end["status"]["replicas"] == end["status"]["updatedReplicas"] == 3
        assert _conditions(end)["Progressing"] == ("True", "NewReplicaSetAvailable")
        # status-only writes by the controller never bump the generation
        assert end["metadata"]["generation"] == 2


@pytest.mark.parametrize("marker", ["annotation", "image"])
async def test_never_ready_rollout_exceeds_its_progress_deadline(local_cluster, marker):
    url = local_cluster.url + DEPLOYMENTS
    body = (
        workload(annotations={"localcluster.canarist.dev/never-ready": "true"}, progressDeadlineSeconds=1)
        if marker == "annotation"
        else workload(image="nginx:never-ready", progressDeadlineSeconds=1)
    )
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", url, body)
        stuck = await _wait_status(
            session, f"{url}/app", lambda o: _conditions(o).get("Progressing", ("",))[0] == "False"
        )
        assert _conditions(stuck) == {
            "Available": ("False", "MinimumReplicasUnavailable"),
            "Progressing": ("False", "ProgressDeadlineExceeded"),
        }
        assert stuck["status"].get("availableReplicas", 0) == 0
        message = next(c["message"] for c in stuck["status"]["conditions"] if c["type"] == "Progressing")
        assert message.startswith('ReplicaSet "app-')
        assert message.endswith('" has timed out progressing.')


def test_kubectl_rollout_status_fails_on_progress_deadline(local_cluster):
    body = workload(image="nginx:never-ready", progressDeadlineSeconds=1)
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(body), check=True)
    done = local_cluster.kubectl("rollout", "status", "deployment/app", "--timeout=20s")
    assert done.returncode != 0
    assert 'deployment "app" exceeded its progress deadline' in done.stderr


async def test_scale_to_zero_and_back(local_cluster):
    url = local_cluster.url + DEPLOYMENTS
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", url, workload())
        await _wait_status(session, f"{url}/app", lambda o: o.get("status", {}).get("readyReplicas") == 2)
        await request(session, "PATCH", f"{url}/app", {"spec": {"replicas": 0}}, MERGE)
        zero = await _wait_status(session, f"{url}/app", lambda o: o["status"].get("observedGeneration") == 2)
        assert not any(k in zero["status"] for k in ("replicas", "readyReplicas", "availableReplicas"))
        assert _conditions(zero) == {
            "Available": ("True", "MinimumReplicasAvailable"),
            "Progressing": ("True", "NewReplicaSetAvailable"),
        }
        await request(session, "PATCH", f"{url}/app", {"spec": {"replicas": 4}}, MERGE)
        four = await _wait_status(session, f"{url}/app", lambda o: o["status"].get("readyReplicas") == 4)
        assert four["status"]["observedGeneration"] == 3


async def test_daemonset_and_hpa_status(local_cluster):
    base = local_cluster.url + "/apis/apps/v1/namespaces/default/daemonsets"
    hpas = local_cluster.url + "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
    async with aiohttp.ClientSession() as session:
        status, _ = await request(session, "POST", base, workload("DaemonSet", "agent"))
        assert status == 201
        ready = await _wait_status(
            session, f"{base}/agent", lambda o: o.get("status", {}).get("numberAvailable")
        )
        assert ready["status"]["desiredNumberScheduled"] == ready["status"]["updatedNumberScheduled"] == 1
        assert ready["status"]["numberReady"] == 1
        assert ready["status"]["observedGeneration"] == 1
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "app"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
                "minReplicas": 2,
                "maxReplicas": 4,
            },
        }
        await request(session, "POST", hpas, hpa)
        got = await _wait_status(session, f"{hpas}/app", lambda o: "status" in o)
        assert got["status"]["currentReplicas"] == got["status"]["desiredReplicas"] == 2


def test_kubectl_daemonset_rollout_status(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(workload("DaemonSet", "agent")), check=True)
    done = local_cluster.kubectl("rollout", "status", "daemonset/agent", "--timeout=20s", check=True)
    assert 'daemon set "agent" successfully rolled out' in done.stdout


async def test_invalid_deployment_is_rejected(local_cluster):
    bad = workload()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    async with aiohttp.ClientSession() as session:
        status, error = await request(session, "POST", local_cluster.url + DEPLOYMENTS, bad)
    assert status == 422
    assert error["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
