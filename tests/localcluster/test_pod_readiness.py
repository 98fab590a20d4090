"""LocalCluster(pod_readiness=True): Deployment and DaemonSet status follow the Pod objects written through
the API (ownerReference or selector, ``pod-template-hash``, the ``Ready`` condition), not a timer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from canarist.podnames import pod_template_hash
from tests.localcluster.helpers import request

Obj = dict[str, Any]
APPS = "/apis/apps/v1/namespaces/default"
PODS = "/api/v1/namespaces/default/pods"
MERGE = "application/merge-patch+json"
WAIT_S = 30.0

pytestmark = pytest.mark.localcluster(pod_readiness=True)


def workload(kind: str = "Deployment", name: str = "app", replicas: int = 2, **spec: Any) -> Obj:
    body: Obj = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]},
        },
        **spec,
    }
    if kind == "Deployment":
        body["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": body}


def pod(owner: Obj | None, name: str, labels: dict[str, str]) -> Obj:
    meta: Obj = {"name": name, "labels": labels}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]},
    }


def template_labels(obj: Obj, label: str = "pod-template-hash") -> dict[str, str]:
    """The labels the workload's pods of its current template carry."""
    template = obj["spec"]["template"]
    return {**template["metadata"]["labels"], label: pod_template_hash(template)}


def conditions(obj: Obj) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj.get("status", {}).get("conditions", [])}


def count(obj: Obj, field: str) -> int:
    return int(obj.get("status", {}).get(field, 0))


async def until(session: aiohttp.ClientSession, url: str, name: str, predicate: Callable[[Obj], bool]) -> Obj:
    """The object once ``predicate`` holds for it: read, then watched (no polling), at most WAIT_S."""
    _, listed = await request(session, "GET", f"{url}?fieldSelector=metadata.name={name}")
    last: Obj = next(iter(listed["items"]), {})
    if last and predicate(last):
        return last
    watch = f"{url}?watch=true&fieldSelector=metadata.name={name}&resourceVersion={listed['metadata']['resourceVersion']}"
    timeout = aiohttp.ClientTimeout(total=None, sock_read=WAIT_S)
    try:
        async with asyncio.timeout(WAIT_S), session.get(watch, timeout=timeout) as response:
            assert response.status == 200, await response.text()
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] in ("ADDED", "MODIFIED"):
                    last = event["object"]
                    if predicate(last):
                        return last
    except TimeoutError:
        pass
    raise AssertionError(f"{name}: the status never matched; last: {last.get('status')}")


async def make_ready(session: aiohttp.ClientSession, name: str, ready: bool = True) -> None:
    state = "True" if ready else "False"
    status = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": state}, {"type": "ContainersReady", "status": state}],
    }
    code, body = await request(session, "PATCH", f"{PODS}/{name}/status", {"status": status}, MERGE)
    assert code == 200, body


async def create(session: aiohttp.ClientSession, url: str, body: Obj) -> Obj:
    code, created = await request(session, "POST", url, body)
    assert code == 201, created
    return created


async def test_deployment_readiness_follows_its_pods(local_cluster):
    deployments = APPS + "/deployments"
    async with aiohttp.ClientSession(local_cluster.url) as session:
        app = await create(session, deployments, workload(replicas=2))
        no_pods = await until(session, deployments, "app", lambda o: count(o, "observedGeneration") == 1)
        assert count(no_pods, "replicas") == count(no_pods, "readyReplicas") == 0
        assert conditions(no_pods)["Progressing"] == ("True", "ReplicaSetUpdated")
        labels = template_labels(app)
        for name in ("app-a", "app-b"):
            await create(session, PODS, pod(app, name, labels))
        none_ready = await until(session, deployments, "app", lambda o: count(o, "replicas") == 2)
        assert count(none_ready, "updatedReplicas") == 2
        assert count(none_ready, "readyReplicas") == count(none_ready, "availableReplicas") == 0
        assert count(none_ready, "unavailableReplicas") == 2
        assert conditions(none_ready)["Available"] == ("False", "MinimumReplicasUnavailable")

        await make_ready(session, "app-a")
        one = await until(session, deployments, "app", lambda o: count(o, "readyReplicas") == 1)
        assert count(one, "availableReplicas") == 1
        assert count(one, "unavailableReplicas") == 1
        assert conditions(one)["Progressing"] == ("True", "ReplicaSetUpdated")

        await make_ready(session, "app-b")
        done = await until(session, deployments, "app", lambda o: count(o, "readyReplicas") == 2)
        assert conditions(done) == {
            "Available": ("True", "MinimumReplicasAvailable"),
            "Progressing": ("True", "NewReplicaSetAvailable"),
        }
        assert count(done, "unavailableReplicas") == 0

        # A pod that stops being ready makes the Deployment unavailable, not its finished rollout overdue.
        await make_ready(session, "app-b", ready=False)
        down = await until(session, deployments, "app", lambda o: count(o, "readyReplicas") == 1)
        assert conditions(down)["Progressing"] == ("True", "NewReplicaSetAvailable")
        assert conditions(down)["Available"] == ("False", "MinimumReplicasUnavailable")


async def test_a_new_template_counts_only_its_own_pods_as_updated(local_cluster):
    deployments = APPS + "/deployments"
    async with aiohttp.ClientSession(local_cluster.url) as session:
        app = await create(session, deployments, workload(replicas=2))
        old = template_labels(app)
        for name in ("app-old-a", "app-old-b"):
            await create(session, PODS, pod(app, name, old))
            await make_ready(session, name)
        await until(session, deployments, "app", lambda o: count(o, "availableReplicas") == 2)

        image = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}}
        code, patched = await request(session, "PATCH", f"{deployments}/app", image, MERGE)
        assert code == 200, patched
        new = template_labels(patched)
        assert new["pod-template-hash"] != old["pod-template-hash"]
        rolling = await until(session, deployments, "app", lambda o: count(o, "observedGeneration") == 2)
        assert count(rolling, "updatedReplicas") == 0
        assert count(rolling, "readyReplicas") == 2
        assert conditions(rolling)["Progressing"] == ("True", "ReplicaSetUpdated")

        await create(session, PODS, pod(app, "app-new-a", new))
        surge = await until(session, deployments, "app", lambda o: count(o, "replicas") == 3)
        assert count(surge, "updatedReplicas") == 1
        assert count(surge, "readyReplicas") == 2
        await make_ready(session, "app-new-a")
        await until(session, deployments, "app", lambda o: count(o, "readyReplicas") == 3)
        code, _ = await request(session, "DELETE", f"{PODS}/app-old-a")
        assert code == 200
        await create(session, PODS, pod(app, "app-new-b", new))
        await make_ready(session, "app-new-b")
        mixed = await until(session, deployments, "app", lambda o: count(o, "updatedReplicas") == 2)
        assert count(mixed, "replicas") == 3  # the last old pod still counts, as pending termination
        assert conditions(mixed)["Progressing"] == ("True", "ReplicaSetUpdated")
        code, _ = await request(session, "DELETE", f"{PODS}/app-old-b")
        assert code == 200
        done = await until(session, deployments, "app", lambda o: count(o, "replicas") == 2)
        assert count(done, "updatedReplicas") == count(done, "availableReplicas") == 2
        assert conditions(done)["Progressing"] == ("True", "NewReplicaSetAvailable")


async def test_pods_that_are_not_all_ready_in_time_exceed_the_progress_deadline(local_cluster):
    deployments = APPS + "/deployments"
    async with aiohttp.ClientSession(local_cluster.url) as session:
        app = await create(session, deployments, workload(replicas=2, progressDeadlineSeconds=1))
        labels = template_labels(app)
        for name in ("app-a", "app-b"):
            await create(session, PODS, pod(app, name, labels))
        await make_ready(session, "app-a")
        late = await until(
            session,
            deployments,
            "app",
            lambda o: conditions(o).get("Progressing", ("", ""))[1] == "ProgressDeadlineExceeded",
        )
        assert count(late, "readyReplicas") == 1
        message = next(c["message"] for c in late["status"]["conditions"] if c["type"] == "Progressing")
        assert message == f'ReplicaSet "app-{labels["pod-template-hash"]}" has timed out progressing.'
        # the last pod getting ready completes the rollout after all
        await make_ready(session, "app-b")
        done = await until(session, deployments, "app", lambda o: count(o, "readyReplicas") == 2)
        assert conditions(done)["Progressing"] == ("True", "NewReplicaSetAvailable")


async def test_scale_to_zero_ends_at_zero_as_the_pods_go(local_cluster):
    deployments = APPS + "/deployments"
    async with aiohttp.ClientSession(local_cluster.url) as session:
        app = await create(session, deployments, workload(replicas=2))
        labels = template_labels(app)
        for name in ("app-a", "app-b"):
            await create(session, PODS, pod(app, name, labels))
            await make_ready(session, name)
        await until(session, deployments, "app", lambda o: count(o, "availableReplicas") == 2)
        code, _ = await request(session, "PATCH", f"{deployments}/app", {"spec": {"replicas": 0}}, MERGE)
        assert code == 200
        scaling = await until(session, deployments, "app", lambda o: count(o, "observedGeneration") == 2)
        assert count(scaling, "replicas") == 2  # the pods still exist
        for name in ("app-a", "app-b"):
            code, _ = await request(session, "DELETE", f"{PODS}/{name}")
            assert code == 200
        zero = await until(session, deployments, "app", lambda o: count(o, "replicas") == 0)
        assert {k: v for k, v in zero["status"].items() if k.endswith("eplicas")} == {}
        assert conditions(zero) == {
            "Available": ("True", "MinimumReplicasAvailable"),
            "Progressing": ("True", "NewReplicaSetAvailable"),
        }


async def test_which_pods_count_owner_reference_selector_and_terminal_phases(local_cluster):
    deployments = APPS + "/deployments"
    async with aiohttp.ClientSession(local_cluster.url) as session:
        app = await create(session, deployments, workload(replicas=2))
        other = await create(session, deployments, workload(name="other", replicas=1))
        labels = template_labels(app)
        # owned by another workload although the labels match: not app's
        await create(session, PODS, pod(other, "foreign", labels))
        await make_ready(session, "foreign")
        # no controller: adopted by the selector
        await create(session, PODS, pod(None, "orphan", labels))
        await make_ready(session, "orphan")
        adopted = await until(session, deployments, "app", lambda o: count(o, "readyReplicas") == 1)
        assert count(adopted, "replicas") == 1
        # a pod that has ended does not count
        await create(session, PODS, pod(app, "ended", labels))
        code, body = await request(
            session, "PATCH", f"{PODS}/ended/status", {"status": {"phase": "Failed"}}, MERGE
        )
        assert code == 200, body
        await create(session, PODS, pod(app, "owned", labels))
        await make_ready(session, "owned")
        both = await until(session, deployments, "app", lambda o: count(o, "readyReplicas") == 2)
        assert count(both, "replicas") == 2
        _, foreign_owner = await request(session, "GET", f"{deployments}/other")
        assert count(foreign_owner, "updatedReplicas") == 0  # other's template hash differs


async def test_min_ready_seconds_delays_availability(local_cluster):
    deployments = APPS + "/deployments"
    async with aiohttp.ClientSession(local_cluster.url) as session:
        app = await create(session, deployments, workload(replicas=1, minReadySeconds=1))
        await create(session, PODS, pod(app, "app-a", template_labels(app)))
        await make_ready(session, "app-a")
        ready = await until(session, deployments, "app", lambda o: count(o, "readyReplicas") == 1)
        assert count(ready, "availableReplicas") == 0
        assert conditions(ready)["Progressing"] == ("True", "ReplicaSetUpdated")
        available = await until(session, deployments, "app", lambda o: count(o, "availableReplicas") == 1)
        assert conditions(available)["Progressing"] == ("True", "NewReplicaSetAvailable")


async def test_daemonset_status_follows_its_pods(local_cluster):
    daemonsets = APPS + "/daemonsets"
    async with aiohttp.ClientSession(local_cluster.url) as session:
        ds = await create(session, daemonsets, workload(kind="DaemonSet", name="agent"))
        first = await until(session, daemonsets, "agent", lambda o: count(o, "observedGeneration") == 1)
        assert count(first, "desiredNumberScheduled") == 1
        assert count(first, "numberReady") == count(first, "currentNumberScheduled") == 0
        await create(session, PODS, pod(ds, "agent-a", template_labels(ds, "controller-revision-hash")))
        scheduled = await until(
            session, daemonsets, "agent", lambda o: count(o, "currentNumberScheduled") == 1
        )
        assert count(scheduled, "updatedNumberScheduled") == 1
        assert count(scheduled, "numberReady") == count(scheduled, "numberAvailable") == 0
        assert count(scheduled, "numberUnavailable") == 1
        await make_ready(session, "agent-a")
        ready = await until(session, daemonsets, "agent", lambda o: count(o, "numberAvailable") == 1)
        assert count(ready, "numberReady") == 1
        assert count(ready, "numberUnavailable") == 0
        code, _ = await request(session, "DELETE", f"{PODS}/agent-a")
        assert code == 200
        gone = await until(session, daemonsets, "agent", lambda o: count(o, "currentNumberScheduled") == 0)
        assert count(gone, "numberReady") == 0
        assert count(gone, "numberUnavailable") == 1


def refuse_potatoes(image: str) -> str | None:
    return "no potatoes here" if "potato" in image else None


@pytest.mark.localcluster(pod_readiness=True, image_check=refuse_potatoes)
async def test_refused_images_never_count_ready_and_are_told_once(local_cluster):
    deployments = APPS + "/deployments"
    body = workload(replicas=1, progressDeadlineSeconds=1)
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "stefanprodan/potato:1.0.0"
    async with aiohttp.ClientSession(local_cluster.url) as session:
        app = await create(session, deployments, body)
        await create(session, PODS, pod(app, "app-a", template_labels(app)))
        await make_ready(session, "app-a")  # whatever the pod says, its template cannot run
        late = await until(
            session,
            deployments,
            "app",
            lambda o: conditions(o).get("Progressing", ("", ""))[1] == "ProgressDeadlineExceeded",
        )
        assert count(late, "replicas") == 1
        assert count(late, "readyReplicas") == 0
        _, events = await request(session, "GET", "/api/v1/namespaces/default/events")
        refusals = [e for e in events["items"] if e["reason"] == "ImageNotRunnable"]
        assert len(refusals) == 1
        assert "stefanprodan/potato:1.0.0" in refusals[0]["message"]
        assert refusals[0]["involvedObject"]["uid"] == app["metadata"]["uid"]


@pytest.mark.localcluster(pod_readiness=True)
async def test_a_never_ready_template_stays_unready_with_ready_pods(local_cluster):
    deployments = APPS + "/deployments"
    body = workload(replicas=1, progressDeadlineSeconds=1)
    body["spec"]["template"]["metadata"]["annotations"] = {"localcluster.canarist.dev/never-ready": "true"}
    async with aiohttp.ClientSession(local_cluster.url) as session:
        app = await create(session, deployments, body)
        await create(session, PODS, pod(app, "app-a", template_labels(app)))
        await make_ready(session, "app-a")
        late = await until(
            session,
            deployments,
            "app",
            lambda o: conditions(o).get("Progressing", ("", ""))[1] == "ProgressDeadlineExceeded",
        )
        assert count(late, "readyReplicas") == 0
