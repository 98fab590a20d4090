"""Discovery, CRUD, list and the error Status bodies, through kubectl and raw HTTP."""

from __future__ import annotations

import json

import aiohttp

from tests.localcluster.helpers import configmap, request


async def test_discovery_documents(local_cluster):
    async with aiohttp.ClientSession() as session:
        status, version = await request(session, "GET", f"{local_cluster.url}/version/")
        assert status == 200
        assert version["major"] == "1"
        assert version["gitVersion"].startswith("v1.")
        _, api = await request(session, "GET", f"{local_cluster.url}/api")
        assert api["kind"] == "APIVersions"
        assert api["versions"] == ["v1"]
        _, core = await request(session, "GET", f"{local_cluster.url}/api/v1/")
        by_name = {r["name"]: r for r in core["resources"]}
        assert by_name["configmaps"]["shortNames"] == ["cm"]
        assert by_name["configmaps"]["namespaced"] is True
        assert by_name["namespaces"]["namespaced"] is False
        assert "watch" in by_name["services"]["verbs"]
        assert by_name["services"]["categories"] == ["all"]
        assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
        _, groups = await request(session, "GET", f"{local_cluster.url}/apis")
        names = {g["name"] for g in groups["groups"]}
        assert {"apps", "autoscaling", "coordination.k8s.io", "apiextensions.k8s.io"} <= names
        _, apps = await request(session, "GET", f"{local_cluster.url}/apis/apps/v1")
        deployments = next(r for r in apps["resources"] if r["name"] == "deployments")
        assert deployments["kind"] == "Deployment"
        assert deployments["shortNames"] == ["deploy"]
        _, hpa = await request(session, "GET", f"{local_cluster.url}/apis/autoscaling/v2")
        assert hpa["resources"][0]["name"] == "horizontalpodautoscalers"
        status, body = await request(session, "GET", f"{local_cluster.url}/apis/nothing.example.com/v1")
        assert status == 404
        assert body["reason"] == "NotFound"


def test_kubectl_api_resources_and_versions(local_cluster):
    done = local_cluster.kubectl("api-resources", check=True)
    assert "deployments" in done.stdout
    assert "leases" in done.stdout
    assert "customresourcedefinitions" in done.stdout
    versions = local_cluster.kubectl("api-versions", check=True).stdout.split()
    assert "apps/v1" in versions
    assert "autoscaling/v2" in versions
    assert "v1" in versions
    assert "Server Version: v1.32" in local_cluster.kubectl("version", check=True).stdout


async def test_create_get_list_replace_delete_with_metadata(local_cluster):
    base = f"{local_cluster.url}/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession() as session:
        status, created = await request(session, "POST", base, configmap("one", {"a": "1"}, {"app": "x"}))
        assert status == 201
        meta = created["metadata"]
        assert meta["namespace"] == "default"
        assert meta["uid"]
        assert meta["creationTimestamp"].endswith("Z")
        assert int(meta["resourceVersion"]) > 0
        assert "generation" not in meta
        status, got = await request(session, "GET", f"{base}/one")
        assert status == 200
        assert got == created
        assert got["kind"] == "ConfigMap"
        assert got["apiVersion"] == "v1"
        status, listed = await request(session, "GET", base)
        assert listed["kind"] == "ConfigMapList"
        assert listed["apiVersion"] == "v1"
        assert [i["metadata"]["name"] for i in listed["items"]] == ["one"]
        assert int(listed["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
        got["data"] = {"a": "2"}
        status, replaced = await request(session, "PUT", f"{base}/one", got)
        assert status == 200
        assert replaced["data"] == {"a": "2"}
        assert int(replaced["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
        assert replaced["metadata"]["uid"] == meta["uid"]
        status, deleted = await request(session, "DELETE", f"{base}/one")
        assert status == 200
        assert deleted["status"] == "Success"
        status, missing = await request(session, "GET", f"{base}/one")
        assert status == 404
        assert missing == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'configmaps "one" not found',
            "reason": "NotFound",
            "details": {"name": "one", "kind": "configmaps"},
            "code": 404,
        }


async def test_error_reasons(local_cluster):
    base = f"{local_cluster.url}/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", base, configmap("dup"))
        status, body = await request(session, "POST", base, configmap("dup"))
        assert (status, body["reason"], body["message"]) == (
            409,
            "AlreadyExists",
            'configmaps "dup" already exists',
        )
        status, body = await request(
            session, "POST", f"{local_cluster.url}/api/v1/namespaces/nope/configmaps", configmap("x")
        )
        assert (status, body["reason"], body["message"]) == (404, "NotFound", 'namespaces "nope" not found')
        status, body = await request(session, "POST", base, b"{not json")
        assert (status, body["reason"]) == (400, "BadRequest")
        status, body = await request(session, "POST", f"{base}/dup", configmap("dup"))
        assert (status, body["reason"]) == (405, "MethodNotAllowed")
        status, body = await request(session, "POST", base, configmap("Not_Valid"))
        assert (status, body["reason"]) == (422, "Invalid")
        assert body["details"]["causes"][0]["field"] == "metadata.name"
        status, body = await request(
            session,
            "PUT",
            f"{base}/dup",
            {**configmap("dup"), "metadata": {"name": "dup", "resourceVersion": "1"}},
        )
        assert (status, body["reason"]) == (409, "Conflict")
        assert "the object has been modified" in body["message"]


async def test_generate_name_and_cluster_scoped_namespace(local_cluster):
    async with aiohttp.ClientSession() as session:
        status, created = await request(
            session,
            "POST",
            f"{local_cluster.url}/api/v1/namespaces/default/configmaps",
            {"metadata": {"generateName": "gen-"}, "data": {}},
        )
        assert status == 201
        assert created["metadata"]["name"].startswith("gen-")
        assert len(created["metadata"]["name"]) == 9
        status, ns = await request(
            session,
            "POST",
            f"{local_cluster.url}/api/v1/namespaces",
            {"metadata": {"name": "team-a", "namespace": "ignored"}},
        )
        assert status == 201
        assert "namespace" not in ns["metadata"]
        assert ns["status"]["phase"] == "Active"


async def test_pagination_with_limit_and_continue(local_cluster):
    base = f"{local_cluster.url}/api/v1/namespaces/default/configmaps"
    async with aiohttp.ClientSession() as session:
        for n in range(5):
            await request(session, "POST", base, configmap(f"cm-{n}"))
        names: list[str] = []
        url = f"{base}?limit=2"
        while True:
            _, page = await request(session, "GET", url)
            names += [i["metadata"]["name"] for i in page["items"]]
            token = page["metadata"].get("continue")
            if not token:
                break
            url = f"{base}?limit=2&continue={token}"
        assert names == [f"cm-{n}" for n in range(5)]


def test_kubectl_create_get_replace_delete(local_cluster):
    manifest = json.dumps(configmap("kc", {"k": "v"}))
    assert (
        "configmap/kc created"
        in local_cluster.kubectl("create", "-f", "-", input=manifest, check=True).stdout
    )
    table = local_cluster.kubectl("get", "configmaps", check=True).stdout
    assert table.split("\n")[0].split() == ["NAME", "DATA", "AGE"]
    assert "kc" in table
    got = json.loads(local_cluster.kubectl("get", "cm", "kc", "-o", "json", check=True).stdout)
    got["data"]["k"] = "w"
    local_cluster.kubectl("replace", "-f", "-", input=json.dumps(got), check=True)
    assert local_cluster.kubectl("get", "cm", "kc", "-o", "jsonpath={.data.k}", check=True).stdout == "w"
    stale = local_cluster.kubectl("replace", "-f", "-", input=json.dumps(got))
    assert stale.returncode != 0
    assert "the object has been modified" in stale.stderr
    assert 'configmap "kc" deleted' in local_cluster.kubectl("delete", "cm", "kc", check=True).stdout
    missing = local_cluster.kubectl("get", "cm", "kc")
    assert missing.returncode != 0
    assert 'configmaps "kc" not found' in missing.stderr


def test_kubectl_get_pods_status_shows_the_container_reason(local_cluster):
    """STATUS is what kubectl prints for a pod: a container's waiting or terminated reason over the phase."""

    def pod(name: str, status: dict) -> dict:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            "status": status,
        }

    pods = [
        pod("running", {"phase": "Running", "containerStatuses": [{"name": "app", "ready": True}]}),
        pod(
            "pulling",
            {
                "phase": "Pending",
                "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ErrImagePull"}}}],
            },
        ),
        pod(
            "exited",
            {
                "phase": "Running",
                "containerStatuses": [{"name": "app", "state": {"terminated": {"exitCode": 2}}}],
            },
        ),
    ]
    for item in pods:
        local_cluster.kubectl("create", "-f", "-", input=json.dumps(item), check=True)
        # the status subresource holds the status: write it the way a kubelet does
        local_cluster.kubectl(
            "patch",
            "pod",
            item["metadata"]["name"],
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": item["status"]}),
            check=True,
        )
    out = local_cluster.kubectl("get", "pods", "--no-headers", check=True).stdout
    status = {line.split()[0]: line.split()[2] for line in out.splitlines() if line.strip()}
    assert status == {"running": "Running", "pulling": "ErrImagePull", "exited": "ExitCode:2"}, out


def test_kubectl_get_svc_shows_a_load_balancers_address(local_cluster):
    """EXTERNAL-IP: `<pending>` for a LoadBalancer without an address, its ingress IP once it has one."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gateway", "namespace": "default"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http2", "port": 80}]},
    }
    local_cluster.kubectl("create", "-f", "-", input=json.dumps(service), check=True)

    def external_ip() -> str:
        out = local_cluster.kubectl("get", "svc", "gateway", "--no-headers", check=True).stdout
        return str(out.split()[3])

    assert external_ip() == "<pending>"
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "127.96.0.20"}]}}}
    local_cluster.kubectl(
        "patch",
        "svc",
        "gateway",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
        check=True,
    )
    assert external_ip() == "127.96.0.20"
