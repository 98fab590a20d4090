"""kubectl's typed generators (protobuf request bodies) and the scale subresource."""

from __future__ import annotations

import base64
import json

import aiohttp

from tests.localcluster.helpers import request


def test_kubectl_create_generators(local_cluster):
    local_cluster.kubectl("create", "namespace", "demo", check=True)
    local_cluster.kubectl(
        "create",
        "configmap",
        "settings",
        "-n",
        "demo",
        "--from-literal=a=1",
        "--from-literal=b=two",
        check=True,
    )
    local_cluster.kubectl(
        "create", "secret", "generic", "creds", "-n", "demo", "--from-literal=password=hunter2", check=True
    )
    local_cluster.kubectl("create", "serviceaccount", "robot", "-n", "demo", check=True)
    local_cluster.kubectl(
        "create",
        "deployment",
        "web",
        "--image=nginx:1.25",
        "--replicas=2",
        "--port=8080",
        "-n",
        "demo",
        check=True,
    )
    local_cluster.kubectl(
        "expose", "deployment", "web", "--port=80", "--target-port=8080", "-n", "demo", check=True
    )
    ns = json.loads(local_cluster.kubectl("get", "ns", "demo", "-o", "json", check=True).stdout)
    assert ns["status"]["phase"] == "Active"
    assert "generateName" not in ns["metadata"]
    cm = json.loads(
        local_cluster.kubectl("get", "cm", "settings", "-n", "demo", "-o", "json", check=True).stdout
    )
    assert cm["data"] == {"a": "1", "b": "two"}
    secret = json.loads(
        local_cluster.kubectl("get", "secret", "creds", "-n", "demo", "-o", "json", check=True).stdout
    )
    assert base64.b64decode(secret["data"]["password"]) == b"hunter2"
    assert secret["type"] == "Opaque"
    deploy = json.loads(
        local_cluster.kubectl("get", "deploy", "web", "-n", "demo", "-o", "json", check=True).stdout
    )
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.25"
    assert container["ports"] == [{"containerPort": 8080}]
    svc = json.loads(
        local_cluster.kubectl("get", "svc", "web", "-n", "demo", "-o", "json", check=True).stdout
    )
    assert svc["spec"]["ports"][0]["port"] == 80
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["clusterIP"].startswith("10.96.")


def test_kubectl_scale_uses_the_scale_subresource(local_cluster):
    local_cluster.kubectl("create", "deployment", "web", "--image=nginx", check=True)
    assert "scaled" in local_cluster.kubectl("scale", "deployment", "web", "--replicas=3", check=True).stdout
    local_cluster.kubectl("rollout", "status", "deployment/web", "--timeout=20s", check=True)
    ready = local_cluster.kubectl(
        "get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}", check=True
    )
    assert ready.stdout == "3"
    stale = local_cluster.kubectl("scale", "deployment", "web", "--replicas=1", "--current-replicas=2")
    assert stale.returncode != 0


async def test_scale_subresource_over_http(local_cluster):
    url = local_cluster.url + "/apis/apps/v1/namespaces/default/deployments"
    deployment = {
        "metadata": {"name": "s"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "s"}},
            "template": {
                "metadata": {"labels": {"app": "s"}},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", url, deployment)
        status, scale = await request(session, "GET", f"{url}/s/scale")
        assert status == 200
        assert scale["kind"] == "Scale"
        assert scale["apiVersion"] == "autoscaling/v1"
        assert scale["spec"] == {"replicas": 1}
        assert scale["status"]["selector"] == "app=s"
        status, patched = await request(
            session, "PATCH", f"{url}/s/scale", {"spec": {"replicas": 5}}, "application/merge-patch+json"
        )
        assert status == 200
        assert patched["spec"]["replicas"] == 5
        _, got = await request(session, "GET", f"{url}/s")
        assert got["spec"]["replicas"] == 5
        assert got["metadata"]["generation"] == 2
        scale["spec"]["replicas"] = 2
        status, conflict = await request(session, "PUT", f"{url}/s/scale", scale)
        assert status == 409
        assert conflict["reason"] == "Conflict"
        _, apps = await request(session, "GET", local_cluster.url + "/apis/apps/v1")
        entry = next(r for r in apps["resources"] if r["name"] == "deployments/scale")
        assert (entry["group"], entry["version"], entry["kind"]) == ("autoscaling", "v1", "Scale")
