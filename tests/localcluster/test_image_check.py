"""LocalCluster(image_check=...): workloads whose images cannot run stay unready and say why in an Event."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from canarist.localcluster import IMAGE_NOT_RUNNABLE_REASON
from tests.fixtures.localcluster import LocalClusterHandle
from tests.localcluster.helpers import request

Obj = dict[str, Any]
NS = "/namespaces/default"
DEPLOYMENTS = f"/apis/apps/v1{NS}/deployments"
DAEMONSETS = f"/apis/apps/v1{NS}/daemonsets"
EVENTS = f"/api/v1{NS}/events"
MERGE = "application/merge-patch+json"
POTATO = "stefanprodan/potato:1.0.0"
PODINFO = "ghcr.io/stefanprodan/podinfo:6.7.0"
WAIT_SECONDS = 60.0  # a bound for one status change; a busy machine may be slow, never this slow


def refuse_potatoes(image: str) -> str | None:
    return "no runner knows this image" if "potato" in image else None


def broken_check(image: str) -> str | None:
    raise RuntimeError("registry unreachable")


def deployment(image: str, replicas: int = 2, init_image: str | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": "podinfod", "image": image}]}
    if init_image is not None:
        spec["initContainers"] = [{"name": "migrate", "image": init_image}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo"},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": 1,
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {"metadata": {"labels": {"app": "podinfo"}}, "spec": spec},
        },
    }


async def wait_for(session: aiohttp.ClientSession, url: str, predicate: Callable[[Obj], bool]) -> Obj:
    """The object at url once predicate holds: a GET, then a watch of it from that resourceVersion."""
    status, obj = await request(session, "GET", url)
    assert status == 200, obj
    if predicate(obj):
        return obj
    collection, name = url.rsplit("/", 1)
    rv = obj["metadata"]["resourceVersion"]
    watch = f"{collection}?watch=true&fieldSelector=metadata.name={name}&resourceVersion={rv}"
    client_timeout = aiohttp.ClientTimeout(total=WAIT_SECONDS)
    async with session.get(watch, timeout=client_timeout) as response:
        assert response.status == 200
        async for line in response.content:
            if not line.strip():
                continue
            event = json.loads(line)
            if event["type"] in ("ADDED", "MODIFIED") and predicate(event["object"]):
                return dict(event["object"])
    raise AssertionError(f"{url} never matched; last status {obj.get('status')}")


def condition(obj: Obj, kind: str) -> tuple[str, str] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond["status"], cond["reason"]
    return None


def deadline_exceeded(obj: Obj) -> bool:
    return condition(obj, "Progressing") == ("False", "ProgressDeadlineExceeded")


def rolled_out(obj: Obj) -> bool:
    return (
        condition(obj, "Progressing") == ("True", "NewReplicaSetAvailable")
        and obj["status"].get("readyReplicas") == obj["spec"]["replicas"]
    )


async def image_events(session: aiohttp.ClientSession, base: str, name: str = "podinfo") -> list[Obj]:
    selector = f"involvedObject.name={name},reason={IMAGE_NOT_RUNNABLE_REASON}"
    status, listed = await request(session, "GET", f"{base}{EVENTS}?fieldSelector={selector}")
    assert status == 200, listed
    return sorted(listed["items"], key=lambda e: e["metadata"]["creationTimestamp"] + e["message"])


async def set_image(session: aiohttp.ClientSession, url: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": image}]}}}}
    status, body = await request(
        session, "PATCH", url, patch, content_type="application/strategic-merge-patch+json"
    )
    assert status == 200, body


@pytest.mark.localcluster(image_check=refuse_potatoes)
async def test_a_refused_image_never_becomes_ready_and_is_told_once(
    local_cluster: LocalClusterHandle,
) -> None:
    base, url = local_cluster.url, f"{local_cluster.url}{DEPLOYMENTS}/podinfo"
    async with aiohttp.ClientSession() as session:
        status, created = await request(session, "POST", base + DEPLOYMENTS, deployment(POTATO))
        assert status == 201, created
        stuck = await wait_for(session, url, deadline_exceeded)
        assert "readyReplicas" not in stuck["status"]
        assert condition(stuck, "Available") == ("False", "MinimumReplicasUnavailable")
        [event] = await image_events(session, base)
        assert event["type"] == "Warning"
        assert event["message"] == (
            f'container podinfod: the sandbox cannot run image "{POTATO}": no runner knows this image'
        )
        assert event["count"] == 1
        involved = event["involvedObject"]
        assert (involved["kind"], involved["name"], involved["uid"]) == (
            "Deployment",
            "podinfo",
            created["metadata"]["uid"],
        )
        # resyncs (a metadata change, a scale) tell nothing again and leave it unready
        status, _ = await request(session, "PATCH", url, {"metadata": {"labels": {"x": "1"}}}, MERGE)
        assert status == 200
        status, _ = await request(session, "PATCH", url, {"spec": {"replicas": 3}}, MERGE)
        assert status == 200
        scaled = await wait_for(session, url, lambda o: o["status"].get("updatedReplicas") == 3)
        assert "readyReplicas" not in scaled["status"]
        [again] = await image_events(session, base)
        assert again["count"] == 1
        assert again["metadata"]["resourceVersion"] == event["metadata"]["resourceVersion"]
    listed = local_cluster.kubectl("get", "events", "--field-selector", f"reason={IMAGE_NOT_RUNNABLE_REASON}")
    assert "the sandbox cannot run image" in listed.stdout, listed.stderr


@pytest.mark.localcluster(image_check=refuse_potatoes)
async def test_an_accepted_image_becomes_ready(local_cluster: LocalClusterHandle) -> None:
    base, url = local_cluster.url, f"{local_cluster.url}{DEPLOYMENTS}/podinfo"
    async with aiohttp.ClientSession() as session:
        status, _ = await request(session, "POST", base + DEPLOYMENTS, deployment(PODINFO))
        assert status == 201
        ready = await wait_for(session, url, rolled_out)
        assert ready["status"]["availableReplicas"] == 2
        assert await image_events(session, base) == []


@pytest.mark.localcluster(image_check=refuse_potatoes)
async def test_a_runnable_image_recovers_and_each_refused_template_has_its_event(
    local_cluster: LocalClusterHandle,
) -> None:
    base, url = local_cluster.url, f"{local_cluster.url}{DEPLOYMENTS}/podinfo"
    async with aiohttp.ClientSession() as session:
        status, _ = await request(session, "POST", base + DEPLOYMENTS, deployment(PODINFO))
        assert status == 201
        await wait_for(session, url, rolled_out)
        await set_image(session, url, POTATO)
        stuck = await wait_for(session, url, deadline_exceeded)
        assert stuck["status"]["readyReplicas"] == 2  # the old pods keep serving
        assert stuck["status"]["updatedReplicas"] == 2
        assert len(await image_events(session, base)) == 1
        await set_image(session, url, PODINFO)
        recovered = await wait_for(session, url, rolled_out)
        assert condition(recovered, "Available") == ("True", "MinimumReplicasAvailable")
        await set_image(session, url, "stefanprodan/potato:2.0.0")  # another template: its own event
        await wait_for(session, url, deadline_exceeded)
        events = await image_events(session, base)
        assert len(events) == 2
        assert {'"stefanprodan/potato:1.0.0"' in e["message"] for e in events} == {True, False}
        await set_image(session, url, POTATO)  # the first refused template again: its event counts it
        await wait_for(session, url, lambda o: o["metadata"]["generation"] == 5 and deadline_exceeded(o))
        events = await image_events(session, base)
        assert sorted(e["count"] for e in events) == [1, 2]
        first = next(e for e in events if '"stefanprodan/potato:1.0.0"' in e["message"])
        assert first["count"] == 2


@pytest.mark.localcluster(image_check=refuse_potatoes)
async def test_an_init_container_and_a_daemonset(local_cluster: LocalClusterHandle) -> None:
    base = local_cluster.url
    body = deployment(PODINFO, init_image="stefanprodan/potato:migrate")
    body["kind"] = "DaemonSet"
    del body["spec"]["replicas"], body["spec"]["progressDeadlineSeconds"]
    async with aiohttp.ClientSession() as session:
        status, created = await request(session, "POST", base + DAEMONSETS, body)
        assert status == 201, created
        written = await wait_for(
            session, f"{base}{DAEMONSETS}/podinfo", lambda o: "status" in o and bool(o["status"])
        )
        assert written["status"]["numberReady"] == 0
        assert written["status"]["numberUnavailable"] == 1
        [event] = await image_events(session, base)
        assert event["involvedObject"]["kind"] == "DaemonSet"
        assert event["message"] == (
            'init container migrate: the sandbox cannot run image "stefanprodan/potato:migrate": '
            "no runner knows this image"
        )


@pytest.mark.localcluster(image_check=broken_check)
async def test_a_failing_check_refuses_visibly(local_cluster: LocalClusterHandle) -> None:
    base, url = local_cluster.url, f"{local_cluster.url}{DEPLOYMENTS}/podinfo"
    async with aiohttp.ClientSession() as session:
        status, _ = await request(session, "POST", base + DEPLOYMENTS, deployment(PODINFO, replicas=1))
        assert status == 201
        await wait_for(session, url, deadline_exceeded)
        [event] = await image_events(session, base)
        assert event["message"].endswith(f'"{PODINFO}": the image check failed: registry unreachable')


async def test_without_a_check_every_image_runs(local_cluster: LocalClusterHandle) -> None:
    base, url = local_cluster.url, f"{local_cluster.url}{DEPLOYMENTS}/podinfo"
    async with aiohttp.ClientSession() as session:
        status, _ = await request(session, "POST", base + DEPLOYMENTS, deployment(POTATO))
        assert status == 201
        await wait_for(session, url, rolled_out)
        assert await image_events(session, base) == []
