"""More kubectl workflows: server-side apply, diff, server dry run, delete by selector, CRD removal."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.localcluster.crds import CANARY_CRD, canary
from tests.localcluster.helpers import configmap, request, watch_events


def test_server_side_apply_diff_and_dry_run(local_cluster):
    local_cluster.kubectl(
        "apply", "--server-side", "-f", "-", input=json.dumps(configmap("ss", {"a": "1"})), check=True
    )
    local_cluster.kubectl(
        "apply", "--server-side", "-f", "-", input=json.dumps(configmap("ss", {"a": "2"})), check=True
    )
    diff = local_cluster.kubectl("diff", "-f", "-", input=json.dumps(configmap("ss", {"a": "3"})))
    assert diff.returncode == 1, diff.stderr
    changed = [
        line for line in diff.stdout.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert changed == ['-  a: "2"', '+  a: "3"']
    local_cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=json.dumps(configmap("ss", {"a": "4"})), check=True
    )
    assert local_cluster.kubectl("get", "cm", "ss", "-o", "jsonpath={.data.a}", check=True).stdout == "2"


def test_kubectl_delete_by_label_selector(local_cluster):
    for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
        local_cluster.kubectl(
            "apply", "-f", "-", input=json.dumps(configmap(name, labels={"tier": tier})), check=True
        )
    local_cluster.kubectl("delete", "cm", "-l", "tier=web", check=True)
    names = local_cluster.kubectl("get", "cm", "-o", "name", check=True).stdout.split()
    assert names == ["configmap/c"]


async def test_delete_collection_with_selector(local_cluster):
    base = local_cluster.url + "/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession() as session:
        for name, tier in (("a", "web"), ("b", "web"), ("c", "db")):
            await request(session, "POST", base, configmap(name, labels={"tier": tier}))
        status, body = await request(session, "DELETE", f"{base}?labelSelector=tier%3Dweb")
        assert status == 200
        assert body["status"] == "Success"
        _, listed = await request(session, "GET", base)
        assert [i["metadata"]["name"] for i in listed["items"]] == ["c"]


async def test_deleting_a_crd_deletes_its_objects_and_ends_their_watches(local_cluster):
    url = local_cluster.url
    crds = f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    canaries = f"{url}/apis/flagger.app/v1beta1/namespaces/default/canaries"
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", crds, CANARY_CRD)
        await request(session, "POST", canaries, canary())
        _, listed = await request(session, "GET", canaries)
        reader = asyncio.create_task(
            watch_events(
                session, f"{canaries}?watch=true&resourceVersion={listed['metadata']['resourceVersion']}", 10
            )
        )
        await asyncio.sleep(0.2)
        status, _crd = await request(session, "DELETE", f"{crds}/canaries.flagger.app")
        assert status == 200
        events = await asyncio.wait_for(reader, 10)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "podinfo")]
        status, _ = await request(session, "GET", f"{crds}/canaries.flagger.app")
        assert status == 404
        status, _ = await request(session, "POST", crds, CANARY_CRD)
        assert status == 201
        _, relisted = await request(session, "GET", canaries)
        assert relisted["items"] == []


def test_kubectl_delete_dry_run_keeps_the_object(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(configmap("keep")), check=True)
    done = local_cluster.kubectl("delete", "cm", "keep", "--dry-run=server", check=True)
    assert "server dry run" in done.stdout
    assert (
        local_cluster.kubectl("get", "cm", "keep", "-o", "name", check=True).stdout.strip()
        == "configmap/keep"
    )
