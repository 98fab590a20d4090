"""Patches (merge, JSON, strategic), optimistic concurrency, finalizers, garbage collection, namespaces."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.localcluster.helpers import configmap, request

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
CMS = "/api/v1/namespaces/default/configmaps"
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONP = "application/json-patch+json"


def deployment(name: str = "podinfo", image: str = "ghcr.io/stefanprodan/podinfo:6.0.0") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [
                                {"containerPort": 9898, "name": "http"},
                                {"containerPort": 9797, "name": "m"},
                            ],
                            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}],
                        },
                        {"name": "sidecar", "image": "envoy"},
                    ],
                    "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                },
            },
        },
    }


async def test_strategic_merge_patch_merges_lists_by_key(local_cluster):
    base = local_cluster.url + DEPLOYMENTS
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", base, deployment())
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "podinfo:6.0.1",
                                "env": [
                                    {"name": "B", "value": "changed"},
                                    {"name": "C", "value": "3"},
                                    {"name": "A", "$patch": "delete"},
                                ],
                                "ports": [{"containerPort": 9797, "name": "metrics"}],
                                "volumeMounts": [{"mountPath": "/data", "name": "data"}],
                            }
                        ],
                        "initContainers": [{"name": "init2", "image": "busybox"}],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    }
                }
            }
        }
        status, patched = await request(session, "PATCH", f"{base}/podinfo", patch, SMP)
        assert status == 200, patched
        pod = patched["spec"]["template"]["spec"]
        app = pod["containers"][0]
        assert [c["name"] for c in pod["containers"]] == ["app", "sidecar"]
        assert app["image"] == "podinfo:6.0.1"
        assert app["env"] == [{"name": "B", "value": "changed"}, {"name": "C", "value": "3"}]
        assert app["ports"] == [
            {"containerPort": 9898, "name": "http"},
            {"containerPort": 9797, "name": "metrics"},
        ]
        assert [m["mountPath"] for m in app["volumeMounts"]] == ["/etc/cfg", "/data"]
        assert [c["name"] for c in pod["initContainers"]] == ["init", "init2"]
        assert [v["name"] for v in pod["volumes"]] == ["cfg", "data"]
        assert patched["metadata"]["generation"] == 2
        replace = {
            "spec": {
                "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}
            }
        }
        _, replaced = await request(session, "PATCH", f"{base}/podinfo", replace, SMP)
        assert replaced["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "x"}]
        remove = {
            "spec": {"template": {"spec": {"volumes": [{"name": "cfg", "$patch": "delete"}]}}},
            "metadata": {"labels": {"app": None, "new": "yes"}},
        }
        _, removed = await request(session, "PATCH", f"{base}/podinfo", remove, SMP)
        assert [v["name"] for v in removed["spec"]["template"]["spec"]["volumes"]] == ["data"]
        assert removed["metadata"]["labels"] == {"new": "yes"}
        wipe = {"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}
        _, recreated = await request(session, "PATCH", f"{base}/podinfo", wipe, SMP)
        assert recreated["spec"]["strategy"] == {"type": "Recreate"}


async def test_json_patch_with_test_operation_and_merge_patch(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        _, created = await request(session, "POST", base, configmap("p", {"a": "1"}))
        rv = created["metadata"]["resourceVersion"]
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
            {"op": "add", "path": "/data/b", "value": "2"},
            {"op": "replace", "path": "/data/a", "value": "x"},
            {"op": "add", "path": "/metadata/labels", "value": {"k8s.io~1x": "y"}},
        ]
        status, patched = await request(session, "PATCH", f"{base}/p", ops, JSONP)
        assert status == 200
        assert patched["data"] == {"a": "x", "b": "2"}
        status, failed = await request(session, "PATCH", f"{base}/p", ops[:2], JSONP)
        assert status == 422
        assert failed["reason"] == "Invalid"
        assert "test" in failed["message"]
        status, merged = await request(session, "PATCH", f"{base}/p", {"data": {"a": None, "c": "3"}}, MERGE)
        assert merged["data"] == {"b": "2", "c": "3"}
        status, stale = await request(
            session, "PATCH", f"{base}/p", {"metadata": {"resourceVersion": rv}, "data": {"z": "1"}}, MERGE
        )
        assert status == 409
        assert stale["reason"] == "Conflict"
        status, _ = await request(session, "PATCH", f"{base}/missing", {"data": {}}, MERGE)
        assert status == 404
        status, _unsupported = await request(session, "PATCH", f"{base}/p", {"data": {}}, "application/xml")
        assert status == 415


async def test_noop_update_keeps_the_resource_version(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        _, created = await request(session, "POST", base, configmap("same", {"a": "1"}))
        _, again = await request(session, "PATCH", f"{base}/same", {"data": {"a": "1"}}, MERGE)
        assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_kubectl_patch_types_and_client_side_apply(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(deployment()), check=True)
    local_cluster.kubectl(
        "patch",
        "deployment",
        "podinfo",
        "--type",
        "strategic",
        "-p",
        json.dumps(
            {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "app", "env": [{"name": "Z", "value": "9"}]}]}
                    }
                }
            }
        ),
        check=True,
    )
    local_cluster.kubectl(
        "patch",
        "deployment",
        "podinfo",
        "--type",
        "json",
        "-p",
        json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
        check=True,
    )
    local_cluster.kubectl(
        "patch",
        "deployment",
        "podinfo",
        "--type",
        "merge",
        "-p",
        json.dumps({"metadata": {"annotations": {"team": "a"}}}),
        check=True,
    )
    got = json.loads(local_cluster.kubectl("get", "deploy", "podinfo", "-o", "json", check=True).stdout)
    app = got["spec"]["template"]["spec"]["containers"][0]
    assert [e["name"] for e in app["env"]] == ["A", "B", "Z"]
    assert got["spec"]["replicas"] == 3
    assert got["metadata"]["annotations"]["team"] == "a"
    # client-side apply: the three-way strategic merge keeps fields set by others and removes dropped ones
    changed = deployment(image="ghcr.io/stefanprodan/podinfo:6.0.1")
    changed["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    changed["spec"]["template"]["spec"]["containers"].pop()
    done = local_cluster.kubectl("apply", "-f", "-", input=json.dumps(changed), check=True)
    assert "deployment.apps/podinfo configured" in done.stdout
    local_cluster.kubectl("rollout", "status", "deploy/podinfo", "--timeout=10s", check=True)
    got = json.loads(local_cluster.kubectl("get", "deploy", "podinfo", "-o", "json", check=True).stdout)
    containers = got["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app"]
    assert containers[0]["image"] == "ghcr.io/stefanprodan/podinfo:6.0.1"
    assert [e["name"] for e in containers[0]["env"]] == ["A", "Z"]
    assert got["metadata"]["annotations"]["team"] == "a"
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(changed), check=True)
    again = json.loads(local_cluster.kubectl("get", "deploy", "podinfo", "-o", "json", check=True).stdout)
    assert again["metadata"]["resourceVersion"] == got["metadata"]["resourceVersion"]
    assert again["metadata"]["generation"] == got["metadata"]["generation"]


async def test_finalizers_hold_deletion_until_removed(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        body = configmap("held")
        body["metadata"]["finalizers"] = ["canarist.dev/finalizer"]
        await request(session, "POST", base, body)
        status, deleting = await request(session, "DELETE", f"{base}/held")
        assert status == 200
        assert deleting["metadata"]["deletionTimestamp"]
        status, still = await request(session, "GET", f"{base}/held")
        assert status == 200
        assert still["metadata"]["deletionTimestamp"]
        status, _forbidden = await request(
            session,
            "PATCH",
            f"{base}/held",
            {"metadata": {"finalizers": ["canarist.dev/finalizer", "other"]}},
            MERGE,
        )
        assert status == 422
        status, _ = await request(session, "PATCH", f"{base}/held", {"metadata": {"finalizers": None}}, MERGE)
        assert status == 200
        status, _ = await request(session, "GET", f"{base}/held")
        assert status == 404


async def _eventually_missing(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(100):
        status, _ = await request(session, "GET", url)
        if status == 404:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} still exists")


async def test_garbage_collection_through_owner_references(local_cluster):
    async with aiohttp.ClientSession() as session:
        _, owner = await request(session, "POST", local_cluster.url + DEPLOYMENTS, deployment())
        ref = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "podinfo",
            "uid": owner["metadata"]["uid"],
            "controller": True,
        }
        child = configmap("child")
        child["metadata"]["ownerReferences"] = [ref]
        grandchild = configmap("grandchild")
        await request(session, "POST", local_cluster.url + CMS, child)
        _, created_child = await request(session, "GET", local_cluster.url + CMS + "/child")
        grandchild["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "child",
                "uid": created_child["metadata"]["uid"],
            }
        ]
        await request(session, "POST", local_cluster.url + CMS, grandchild)
        shared = configmap("shared")
        shared["metadata"]["ownerReferences"] = [
            ref,
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "still-there"},
        ]
        _, other = await request(session, "POST", local_cluster.url + CMS, configmap("other"))
        shared["metadata"]["ownerReferences"][1]["uid"] = other["metadata"]["uid"]
        await request(session, "POST", local_cluster.url + CMS, shared)
        await request(session, "DELETE", local_cluster.url + DEPLOYMENTS + "/podinfo")
        await _eventually_missing(session, local_cluster.url + CMS + "/child")
        await _eventually_missing(session, local_cluster.url + CMS + "/grandchild")
        status, _ = await request(session, "GET", local_cluster.url + CMS + "/shared")
        assert status == 200


async def test_orphan_propagation_keeps_dependents(local_cluster):
    async with aiohttp.ClientSession() as session:
        _, owner = await request(session, "POST", local_cluster.url + CMS, configmap("owner"))
        child = configmap("kept")
        child["metadata"]["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
        ]
        await request(session, "POST", local_cluster.url + CMS, child)
        await request(session, "DELETE", local_cluster.url + CMS + "/owner", {"propagationPolicy": "Orphan"})
        await asyncio.sleep(0.1)
        status, kept = await request(session, "GET", local_cluster.url + CMS + "/kept")
        assert status == 200
        assert "ownerReferences" not in kept["metadata"]


async def test_namespace_deletion_removes_its_contents(local_cluster):
    url = local_cluster.url
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", f"{url}/api/v1/namespaces", {"metadata": {"name": "gone"}})
        await request(session, "POST", f"{url}/api/v1/namespaces/gone/configmaps", configmap("a"))
        held = configmap("held")
        held["metadata"]["finalizers"] = ["x/y"]
        await request(session, "POST", f"{url}/api/v1/namespaces/gone/configmaps", held)
        status, ns = await request(session, "DELETE", f"{url}/api/v1/namespaces/gone")
        assert status == 200
        assert ns["status"]["phase"] == "Terminating"
        await _eventually_missing(session, f"{url}/api/v1/namespaces/gone/configmaps/a")
        status, forbidden = await request(
            session, "POST", f"{url}/api/v1/namespaces/gone/configmaps", configmap("new")
        )
        assert status == 403
        assert forbidden["reason"] == "Forbidden"
        assert forbidden["message"] == (
            'configmaps "new" is forbidden: unable to create new content in namespace gone '
            "because it is being terminated"
        )
        status, _ = await request(session, "GET", f"{url}/api/v1/namespaces/gone")
        assert status == 200
        await request(
            session,
            "PATCH",
            f"{url}/api/v1/namespaces/gone/configmaps/held",
            {"metadata": {"finalizers": []}},
            MERGE,
        )
        await _eventually_missing(session, f"{url}/api/v1/namespaces/gone")


def test_kubectl_delete_and_wait_for_deletion(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(configmap("bye")), check=True)
    local_cluster.kubectl("delete", "configmap", "bye", "--wait=true", check=True)
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(configmap("later")), check=True)
    done = local_cluster.kubectl("wait", "--for=delete", "configmap/later", "--timeout=1s")
    assert done.returncode != 0
    assert "timed out" in done.stderr


async def test_label_and_field_selectors_in_lists(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", base, configmap("web", labels={"tier": "web", "env": "prod"}))
        await request(session, "POST", base, configmap("db", labels={"tier": "db", "env": "prod"}))
        await request(session, "POST", base, configmap("bare"))

        async def names(query: str) -> list[str]:
            status, listed = await request(session, "GET", f"{base}?{query}")
            assert status == 200, listed
            return [i["metadata"]["name"] for i in listed["items"]]

        assert await names("labelSelector=tier%3Dweb") == ["web"]
        assert await names("labelSelector=tier%3D%3Dweb") == ["web"]
        assert await names("labelSelector=tier%21%3Dweb") == ["bare", "db"]
        assert await names("labelSelector=tier+in+(web,db),env%3Dprod") == ["db", "web"]
        assert await names("labelSelector=tier+notin+(web)") == ["bare", "db"]
        assert await names("labelSelector=tier") == ["db", "web"]
        assert await names("labelSelector=%21tier") == ["bare"]
        assert await names("fieldSelector=metadata.name%3Ddb") == ["db"]
        assert await names("fieldSelector=metadata.name%21%3Ddb,metadata.namespace%3Ddefault") == [
            "bare",
            "web",
        ]
        status, bad = await request(session, "GET", f"{base}?fieldSelector=data.x%3D1")
        assert status == 400
        assert bad["reason"] == "BadRequest"
        events = local_cluster.url + "/api/v1/namespaces/default/events"
        for n, kind in enumerate(["Deployment", "Canary"]):
            await request(
                session,
                "POST",
                events,
                {
                    "metadata": {"name": f"e{n}"},
                    "involvedObject": {"kind": kind, "name": "podinfo", "namespace": "default"},
                    "reason": "Synced",
                    "message": "hello",
                    "type": "Normal",
                },
            )
        status, listed = await request(
            session,
            "GET",
            f"{events}?fieldSelector=involvedObject.kind%3DCanary,involvedObject.name%3Dpodinfo",
        )
        assert [i["metadata"]["name"] for i in listed["items"]] == ["e1"]


async def test_unknown_fields_of_typed_objects_are_dropped_or_rejected(local_cluster):
    body = deployment()
    body["spec"]["replica"] = 3
    body["metadata"]["labelz"] = {"a": "b"}
    body["extra"] = True
    async with aiohttp.ClientSession() as session:
        async with session.post(local_cluster.url + DEPLOYMENTS, json=body) as response:
            created = await response.json()
            warnings = response.headers.getall("Warning", [])
        assert response.status == 201
        assert "replica" not in created["spec"]
        assert "labelz" not in created["metadata"]
        assert "extra" not in created
        assert sorted(warnings) == sorted(
            f'299 - "unknown field \\"{p}\\""' for p in ("metadata.labelz", "extra", "spec.replica")
        )
        body["metadata"]["name"] = "strict"
        status, error = await request(
            session, "POST", local_cluster.url + DEPLOYMENTS + "?fieldValidation=Strict", body
        )
        assert status == 400
        assert 'unknown field "spec.replica"' in error["message"]


def test_kubectl_apply_rejects_unknown_fields_of_builtin_kinds(local_cluster):
    body = deployment()
    body["spec"]["replica"] = 3
    done = local_cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    assert done.returncode != 0
    assert 'unknown field "spec.replica"' in done.stderr


async def test_strategic_merge_patch_directives(local_cluster):
    base = local_cluster.url + DEPLOYMENTS
    async with aiohttp.ClientSession() as session:
        body = deployment()
        body["metadata"]["finalizers"] = ["a/one"]
        await request(session, "POST", base, body)
        patch = {
            "metadata": {"finalizers": ["b/two"]},
            "spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                        "containers": [{"name": "app", "args": ["--x", "--y"]}],
                    }
                },
            },
        }
        status, patched = await request(session, "PATCH", f"{base}/podinfo", patch, SMP)
        assert status == 200, patched
        assert patched["metadata"]["finalizers"] == ["a/one", "b/two"]
        assert patched["spec"]["strategy"] == {"type": "Recreate"}
        containers = patched["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == ["sidecar", "app"]
        assert containers[1]["args"] == ["--x", "--y"]
        drop = {
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["a/one"]},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "app", "$deleteFromPrimitiveList/args": ["--x"]}]}
                }
            },
        }
        _, dropped = await request(session, "PATCH", f"{base}/podinfo", drop, SMP)
        assert dropped["metadata"]["finalizers"] == ["b/two"]
        assert dropped["spec"]["template"]["spec"]["containers"][1]["args"] == ["--y"]
        status, error = await request(
            session,
            "PATCH",
            f"{base}/podinfo",
            {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}},
            SMP,
        )
        assert status == 400
        assert "merge key" in error["message"]


async def test_json_patch_move_copy_remove(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", base, configmap("ops", {"a": "1", "b": "2"}))
        ops = [
            {"op": "copy", "from": "/data/a", "path": "/data/c"},
            {"op": "move", "from": "/data/b", "path": "/data/d"},
            {"op": "remove", "path": "/data/a"},
        ]
        status, patched = await request(session, "PATCH", f"{base}/ops", ops, JSONP)
        assert status == 200
        assert patched["data"] == {"c": "1", "d": "2"}
        status, error = await request(
            session, "PATCH", f"{base}/ops", [{"op": "remove", "path": "/data/zz"}], JSONP
        )
        assert status == 422
        assert error["reason"] == "Invalid"
