"""KubeClient against the local control plane: CRUD, patches, status writes, errors, request counting."""

from __future__ import annotations

import asyncio
import copy
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarist.kube import (
    AlreadyExists,
    ApiError,
    Conflict,
    Invalid,
    KubeClient,
    KubeError,
    NotFound,
    PatchType,
    RequestLog,
    TransportError,
)
from canarist.kube import resources as r

from ._net import ClusterControl
from .conftest import canary, configmap, deployment

# ---------------------------------------------------------------- CRUD per API group


async def test_core_configmap_crud_and_unknown_fields_survive(kube: KubeClient, ns: str) -> None:
    cm = configmap("settings", ns, {"a": "1"}, team="x")
    cm["metadata"]["annotations"] = {"note": "kept"}
    cm["binaryData"] = {"blob": "aGVsbG8="}
    created = await kube.create(cm)
    assert created["metadata"]["uid"]
    assert created["metadata"]["resourceVersion"]
    assert created["data"] == {"a": "1"}
    assert created["binaryData"] == {"blob": "aGVsbG8="}

    got = await kube.get(r.CONFIG_MAP, "settings", namespace=ns)
    assert got["metadata"]["annotations"] == {"note": "kept"}

    got["data"]["b"] = "2"
    replaced = await kube.replace(got)
    assert replaced["data"] == {"a": "1", "b": "2"}
    assert replaced["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]

    await kube.delete(r.CONFIG_MAP, "settings", namespace=ns)
    with pytest.raises(NotFound):
        await kube.get(r.CONFIG_MAP, "settings", namespace=ns)
    assert await kube.get_or_none(r.CONFIG_MAP, "settings", namespace=ns) is None
    assert await kube.delete(r.CONFIG_MAP, "settings", namespace=ns, missing_ok=True) is None
    with pytest.raises(NotFound):
        await kube.delete(r.CONFIG_MAP, "settings", namespace=ns)


async def test_service_secret_and_namespace_default(local_cluster: Any, ns: str) -> None:
    # A client whose kubeconfig context names the namespace uses it when the object has none.
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig)
    client.namespace = ns
    try:
        svc = await client.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "web"},
                "spec": {
                    "selector": {"app": "web"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 9898}],
                },
            }
        )
        assert svc["metadata"]["namespace"] == ns
        secret = await client.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "token"},
                "stringData": {"t": "s3cr3t"},
            }
        )
        assert secret["metadata"]["namespace"] == ns
        assert (await client.get(r.SERVICE, "web"))["spec"]["ports"][0]["port"] == 80
    finally:
        await client.close()


async def test_apps_deployment_and_daemonset(kube: KubeClient, ns: str) -> None:
    dep = await kube.create(deployment("podinfo", ns))
    assert dep["kind"] == "Deployment"
    assert dep["metadata"]["generation"] == 1
    ds = copy.deepcopy(deployment("agent", ns))
    ds["kind"] = "DaemonSet"
    del ds["spec"]["replicas"]
    created = await kube.create(ds)
    assert created["kind"] == "DaemonSet"
    listed = await kube.list(r.DEPLOYMENT, namespace=ns)
    assert [d["metadata"]["name"] for d in listed.items] == ["podinfo"]
    assert listed.items[0]["apiVersion"] == "apps/v1"
    assert listed.resource_version


async def test_autoscaling_v2_hpa(kube: KubeClient, ns: str) -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 99}},
                }
            ],
        },
    }
    created = await kube.create(hpa)
    assert created["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 99
    patched = await kube.patch(
        r.HORIZONTAL_POD_AUTOSCALER, "podinfo", {"spec": {"maxReplicas": 6}}, namespace=ns
    )
    assert patched["spec"]["maxReplicas"] == 6
    assert patched["spec"]["minReplicas"] == 2


async def test_custom_resources_canary_and_istio(kube: KubeClient, ns: str, crds: None) -> None:
    canary = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
        },
    }
    created = await kube.create(canary)
    assert created["spec"]["analysis"]["stepWeight"] == 10

    vs = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": ns},
        "spec": {
            "hosts": ["podinfo"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "podinfo-primary"}, "weight": 100},
                        {"destination": {"host": "podinfo-canary"}, "weight": 0},
                    ],
                    "someFutureIstioField": {"x": [1, 2, 3]},
                }
            ],
        },
    }
    await kube.create(vs)
    got = await kube.get(r.VIRTUAL_SERVICE, "podinfo", namespace=ns)
    assert got["spec"]["http"][0]["someFutureIstioField"] == {"x": [1, 2, 3]}
    await kube.create(
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {"name": "podinfo-canary", "namespace": ns},
            "spec": {"host": "podinfo-canary"},
        }
    )
    assert len((await kube.list(r.DESTINATION_RULE, namespace=ns)).items) == 1


async def test_cluster_scoped_crd_listing(kube: KubeClient, crds: None) -> None:
    names = {c["metadata"]["name"] for c in (await kube.list(r.CUSTOM_RESOURCE_DEFINITION)).items}
    assert {"canaries.flagger.app", "virtualservices.networking.istio.io"} <= names


# ---------------------------------------------------------------- list selectors and paging


async def test_list_label_and_field_selectors(kube: KubeClient, ns: str) -> None:
    for i in range(5):
        await kube.create(configmap(f"cm{i}", ns, tier="a" if i % 2 else "b"))
    a = await kube.list(r.CONFIG_MAP, namespace=ns, label_selector={"tier": "a"})
    assert sorted(o["metadata"]["name"] for o in a.items) == ["cm1", "cm3"]
    b = await kube.list(r.CONFIG_MAP, namespace=ns, label_selector="tier in (b),tier!=a")
    assert sorted(o["metadata"]["name"] for o in b.items) == ["cm0", "cm2", "cm4"]
    one = await kube.list(r.CONFIG_MAP, namespace=ns, field_selector={"metadata.name": "cm2"})
    assert [o["metadata"]["name"] for o in one.items] == ["cm2"]
    everywhere = await kube.list(r.CONFIG_MAP, label_selector={"tier": "a"})
    assert {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in everywhere.items} >= {
        (ns, "cm1"),
        (ns, "cm3"),
    }


async def test_list_follows_continue_tokens(kube: KubeClient, ns: str) -> None:
    for i in range(7):
        await kube.create(configmap(f"page{i}", ns))
    paged = await kube.list(r.CONFIG_MAP, namespace=ns, limit=3)
    assert sorted(o["metadata"]["name"] for o in paged.items) == [f"page{i}" for i in range(7)]


# ---------------------------------------------------------------- patches


async def test_merge_json_and_strategic_patches(kube: KubeClient, ns: str) -> None:
    await kube.create(deployment("podinfo", ns))

    merged = await kube.patch(
        r.DEPLOYMENT,
        "podinfo",
        {"metadata": {"labels": {"stage": "canary"}}, "spec": {"replicas": 3}},
        namespace=ns,
    )
    assert merged["spec"]["replicas"] == 3
    assert merged["metadata"]["labels"] == {"app": "podinfo", "stage": "canary"}

    json_patched = await kube.patch(
        r.DEPLOYMENT,
        "podinfo",
        [
            {"op": "test", "path": "/spec/replicas", "value": 3},
            {"op": "replace", "path": "/spec/replicas", "value": 0},
            {"op": "remove", "path": "/metadata/labels/stage"},
        ],
        namespace=ns,
        patch_type=PatchType.JSON,
    )
    assert json_patched["spec"]["replicas"] == 0
    assert "stage" not in json_patched["metadata"]["labels"]

    # Strategic merge: containers merge by name, so only "app" changes and "sidecar" stays.
    strategic = await kube.patch(
        r.DEPLOYMENT,
        "podinfo",
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "podinfo:6.1.0"}]}}}},
        namespace=ns,
        patch_type="strategic",
    )
    containers = {c["name"]: c["image"] for c in strategic["spec"]["template"]["spec"]["containers"]}
    assert containers == {"app": "podinfo:6.1.0", "sidecar": "envoy:1"}
    assert strategic["metadata"]["generation"] > 1

    # The same document as a merge patch replaces the whole list.
    replaced = await kube.patch(
        r.DEPLOYMENT,
        "podinfo",
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "podinfo:6.2.0"}]}}}},
        namespace=ns,
    )
    assert [c["name"] for c in replaced["spec"]["template"]["spec"]["containers"]] == ["app"]


async def test_failed_json_patch_test_op_is_an_api_error(kube: KubeClient, ns: str) -> None:
    await kube.create(configmap("c", ns, {"a": "1"}))
    with pytest.raises(ApiError) as info:
        await kube.patch(
            r.CONFIG_MAP,
            "c",
            [{"op": "test", "path": "/data/a", "value": "2"}],
            namespace=ns,
            patch_type="json",
        )
    assert info.value.code in (409, 422)
    with pytest.raises(TypeError):
        await kube.patch(r.CONFIG_MAP, "c", {"data": {}}, namespace=ns, patch_type="json")


# ---------------------------------------------------------------- errors


async def test_typed_errors_carry_the_server_status(kube: KubeClient, ns: str, crds: None) -> None:
    await kube.create(configmap("dup", ns))
    with pytest.raises(AlreadyExists) as exists:
        await kube.create(configmap("dup", ns))
    assert exists.value.code == 409
    assert exists.value.reason == "AlreadyExists"
    assert "dup" in exists.value.message

    stale = await kube.get(r.CONFIG_MAP, "dup", namespace=ns)
    await kube.patch(r.CONFIG_MAP, "dup", {"data": {"x": "y"}}, namespace=ns)
    stale["data"] = {"lost": "update"}
    with pytest.raises(Conflict) as conflict:
        await kube.replace(stale)
    assert conflict.value.code == 409

    with pytest.raises(NotFound) as missing:
        await kube.get(r.DEPLOYMENT, "nope", namespace=ns)
    assert missing.value.code == 404
    assert missing.value.reason == "NotFound"

    # Schema validation of a CRD: analysis.threshold must be an integer.
    bad = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "bad", "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
            "service": {"port": 80},
            "analysis": {"threshold": "many"},
        },
    }
    with pytest.raises(Invalid) as invalid:
        await kube.create(bad)
    assert invalid.value.code == 422
    assert invalid.value.causes, invalid.value.status
    assert any("threshold" in c.field for c in invalid.value.causes)


async def test_transport_errors_do_not_leak_httpx() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = KubeClient.from_url(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(TransportError):
            await client.get(r.CONFIG_MAP, "x", namespace="default")
        with pytest.raises(TransportError):
            async for _ in client.watch(r.CONFIG_MAP):
                pass
    finally:
        await client.close()


async def test_injected_server_errors_map_to_api_error(
    kube: KubeClient, control: ClusterControl, ns: str
) -> None:
    await control.fail("get", 503)
    with pytest.raises(ApiError) as info:
        await kube.get(r.CONFIG_MAP, "x", namespace=ns)
    assert info.value.code == 503
    assert type(info.value) is ApiError


# ---------------------------------------------------------------- status subresource and conflict retries


async def test_status_subresource_write_ignores_spec(kube: KubeClient, ns: str, crds: None) -> None:
    await kube.create(canary("podinfo", ns))

    def set_phase(obj: dict[str, Any]) -> None:
        obj["status"] = {"phase": "Initializing", "canaryWeight": 0, "failedChecks": 0}
        obj["spec"]["service"]["port"] = 1  # ignored by /status

    written = await kube.update_status(r.CANARY, "podinfo", ns, set_phase)
    assert written["status"]["phase"] == "Initializing"
    assert written["spec"]["service"]["port"] == 9898
    patched = await kube.patch_status(r.CANARY, "podinfo", {"status": {"canaryWeight": 10}}, namespace=ns)
    assert patched["status"] == {"phase": "Initializing", "canaryWeight": 10, "failedChecks": 0}


async def test_update_status_retries_injected_conflicts(
    kube: KubeClient, control: ClusterControl, ns: str, crds: None, request_log: RequestLog
) -> None:
    await kube.create(canary("c", ns))
    calls = 0

    def bump(obj: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        obj.setdefault("status", {})["iterations"] = 7

    await control.fail("update", 409, times=2)
    written = await kube.update_status(r.CANARY, "c", ns, bump)
    assert written["status"]["iterations"] == 7
    assert calls == 3
    assert request_log.counts[("update", "canaries.flagger.app/status", 409)] == 2
    assert request_log.counts[("update", "canaries.flagger.app/status", 200)] == 1

    await control.fail("update", 409, times=10)
    with pytest.raises(Conflict):
        await kube.update_status(r.CANARY, "c", ns, lambda o: o["status"].update(iterations=8), retries=2)


async def test_update_status_with_real_concurrent_writers(kube: KubeClient, ns: str, crds: None) -> None:
    """Twenty concurrent read-modify-writes of one counter: conflicts are retried, no increment is lost."""
    await kube.create(canary("counter", ns))

    def inc(obj: dict[str, Any]) -> None:
        status = obj.setdefault("status", {})
        status["iterations"] = status.get("iterations", 0) + 1

    await asyncio.gather(*(kube.update_status(r.CANARY, "counter", ns, inc, retries=50) for _ in range(20)))
    final = await kube.get(r.CANARY, "counter", namespace=ns)
    assert final["status"]["iterations"] == 20


async def test_update_status_without_change_does_not_write(
    kube: KubeClient, ns: str, request_log: RequestLog
) -> None:
    await kube.create(deployment("same", ns))
    request_log.clear()
    await kube.update_status(r.DEPLOYMENT, "same", ns, lambda o: None)
    assert request_log.total("update") == 0
    assert request_log.total("get") == 1


async def test_update_retries_main_resource(kube: KubeClient, control: ClusterControl, ns: str) -> None:
    await kube.create(configmap("u", ns, {"n": "0"}))
    await control.fail("update", 409, times=1)
    out = await kube.update(r.CONFIG_MAP, "u", ns, lambda o: o["data"].update(n="1"))
    assert out["data"] == {"n": "1"}


# ---------------------------------------------------------------- ensure


async def test_ensure_creates_then_leaves_alone_then_updates(
    kube: KubeClient, ns: str, request_log: RequestLog
) -> None:
    desired = deployment("primary", ns)
    first = await kube.ensure(desired)
    assert first.action == "created"

    # The server defaulted fields (strategy, protocol, …) and added status: not differences.
    request_log.clear()
    again = await kube.ensure(copy.deepcopy(desired))
    assert again.action == "unchanged"
    assert request_log.total("update") == 0

    changed = copy.deepcopy(desired)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:7"
    changed["metadata"]["annotations"] = {"a": "b"}
    updated = await kube.ensure(changed)
    assert updated.action == "updated"
    assert updated.object["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:7"
    assert updated.object["metadata"]["annotations"] == {"a": "b"}
    assert updated.object["metadata"]["uid"] == first.object["metadata"]["uid"]

    # Labels someone else added stay.
    await kube.patch(r.DEPLOYMENT, "primary", {"metadata": {"labels": {"other": "x"}}}, namespace=ns)
    assert (await kube.ensure(changed)).action == "unchanged"
    assert (await kube.get(r.DEPLOYMENT, "primary", namespace=ns))["metadata"]["labels"]["other"] == "x"


# ---------------------------------------------------------------- connection set-up and request counting


def _kubeconfig_with_second_context(source: Path, target: Path) -> None:
    config = yaml.safe_load(source.read_text())
    ctx = config["contexts"][0]
    config["contexts"].append({"name": "other", "context": {**ctx["context"], "namespace": "kube-system"}})
    target.write_text(yaml.safe_dump(config))


async def test_from_kubeconfig_context_and_server_override(local_cluster: Any, tmp_path: Path) -> None:
    path = tmp_path / "config"
    _kubeconfig_with_second_context(Path(local_cluster.kubeconfig), path)
    client = KubeClient.from_kubeconfig(str(path), context="other")
    try:
        assert client.namespace == "kube-system"
        await client.list(r.NAMESPACE)
    finally:
        await client.close()
    with pytest.raises(Exception, match="other-missing"):
        KubeClient.from_kubeconfig(str(path), context="other-missing")
    bad = KubeClient.from_kubeconfig(str(path), server="http://127.0.0.1:1")
    try:
        with pytest.raises(TransportError):
            await bad.list(r.NAMESPACE)
    finally:
        await bad.close()


async def test_request_log_counts_verbs_and_permissions(
    kube: KubeClient, ns: str, request_log: RequestLog
) -> None:
    request_log.clear()
    await kube.create(configmap("x", ns))
    await kube.get(r.CONFIG_MAP, "x", namespace=ns)
    await kube.patch(r.CONFIG_MAP, "x", {"data": {"y": "z"}}, namespace=ns)
    await kube.get_or_none(r.CONFIG_MAP, "missing", namespace=ns)
    await kube.list(r.DEPLOYMENT, namespace=ns)
    await kube.delete(r.CONFIG_MAP, "x", namespace=ns)
    assert request_log.counts[("create", "configmaps", 201)] == 1
    assert request_log.counts[("get", "configmaps", 200)] == 1
    assert request_log.counts[("get", "configmaps", 404)] == 1
    assert request_log.counts[("patch", "configmaps", 200)] == 1
    assert request_log.counts[("list", "deployments.apps", 200)] == 1
    assert request_log.permissions() == {
        ("", "configmaps", "create"),
        ("", "configmaps", "get"),
        ("", "configmaps", "patch"),
        ("", "configmaps", "delete"),
        ("apps", "deployments", "list"),
    }
    rec = request_log.records[0]
    assert (rec.verb, rec.namespace, rec.name, rec.code) == ("create", ns, "", 201)
    assert rec.duration_seconds >= 0

    seen: list[str] = []
    remove = kube.add_request_hook(lambda rec: seen.append(rec.verb))
    broken = kube.add_request_hook(lambda rec: 1 / 0)  # a failing hook is logged, not raised
    await kube.list(r.CONFIG_MAP, namespace=ns)
    remove()
    broken()
    await kube.list(r.CONFIG_MAP, namespace=ns)
    assert seen == ["list"]


async def test_connect_uses_kubeconfig_env_and_explicit_paths(
    local_cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(local_cluster.kubeconfig))
    for client in (KubeClient.connect(), KubeClient.connect(local_cluster.kubeconfig)):
        async with client:
            assert client.server.rstrip("/") == local_cluster.url
            assert (await client.get(r.NAMESPACE, "default"))["metadata"]["name"] == "default"
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    with pytest.raises(KubeError):
        KubeClient.connect()


@pytest.mark.parametrize("text", ["myhost\n", "- a\n- b\n", "42\n"])
def test_a_file_that_is_not_a_kubeconfig_is_a_kube_error(tmp_path: Path, text: str) -> None:
    """YAML that is no mapping (a hostname file, a list, a number) is one clear error, not an AttributeError."""
    path = tmp_path / "hostname"
    path.write_text(text)
    with pytest.raises(KubeError, match=f"cannot load kubeconfig {path}: not a kubeconfig file"):
        KubeClient.from_kubeconfig(path)
