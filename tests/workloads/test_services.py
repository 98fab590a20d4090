"""Service shapes beyond the defaults, and the update policy of merge_service."""

from __future__ import annotations

import copy
import json

from canarist.api import UnmanagedMetadata
from canarist.workloads.services import build_services, merge_service, revert_apex_service
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, stored


def test_options_and_metadata() -> None:
    canary = podinfo.canary(
        service={
            "name": "frontend",
            "port": 80,
            "targetPort": "http",
            "portName": "web",
            "appProtocol": "http",
            "headless": True,
            "trafficDistribution": "PreferClose",
            "apex": {
                "labels": {"tier": "apex"},
                "annotations": {"a": "1", "kustomize.toolkit.fluxcd.io/x": "y"},
            },
            "primary": {"labels": {"tier": "primary"}},
            "canary": {"annotations": {"c": "2"}},
        }
    )
    services = build_services(canary, "app", "podinfo", {})
    assert services.apex["metadata"]["name"] == "frontend"
    assert services.apex["metadata"]["labels"] == {"tier": "apex", "app": "frontend"}
    assert services.apex["metadata"]["annotations"] == {"a": "1", **FLUX}
    assert services.primary["metadata"]["name"] == "frontend-primary"
    assert services.primary["metadata"]["labels"] == {"tier": "primary", "app": "frontend-primary"}
    assert services.canary["metadata"]["annotations"] == {"c": "2", **FLUX}
    assert services.primary["metadata"]["annotations"] == FLUX
    assert services.canary["spec"] == {
        "type": "ClusterIP",
        "selector": {"app": "podinfo"},
        "ports": [
            {"name": "web", "protocol": "TCP", "port": 80, "targetPort": "http", "appProtocol": "http"}
        ],
        "clusterIP": "None",
        "trafficDistribution": "PreferClose",
    }


def _observed(desired: dict[str, object]) -> dict[str, object]:
    observed = copy.deepcopy(desired)
    observed["metadata"]["resourceVersion"] = "5"  # type: ignore[index]
    observed["spec"]["clusterIP"] = "10.0.0.12"  # type: ignore[index]
    observed["spec"]["clusterIPs"] = ["10.0.0.12"]  # type: ignore[index]
    return observed


def test_merge_keeps_cluster_ip_and_is_a_no_op_when_equal() -> None:
    desired = build_services(podinfo.canary(), "app", "podinfo", {}).primary
    observed = _observed(desired)
    assert merge_service(observed, desired, owned_by_canary=True) == observed


def test_merge_reconciles_ports_and_selector_and_keeps_node_ports() -> None:
    desired = build_services(podinfo.canary(), "app", "podinfo", {"grpc": 9999}).apex
    observed = _observed(desired)
    observed["spec"]["ports"] = [  # type: ignore[index]
        {"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898, "nodePort": 30080}
    ]
    observed["spec"]["selector"] = {"app": "podinfo"}  # type: ignore[index]
    merged = merge_service(observed, desired, owned_by_canary=False)
    assert merged["spec"]["clusterIP"] == "10.0.0.12"
    assert merged["spec"]["selector"] == {"app": "podinfo-primary"}
    assert merged["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898, "nodePort": 30080},
        {"name": "grpc", "protocol": "TCP", "port": 9999, "targetPort": 9999},
    ]


def test_port_order_does_not_matter() -> None:
    desired = build_services(podinfo.canary(), "app", "podinfo", {"grpc": 9999}).apex
    observed = _observed(desired)
    observed["spec"]["ports"] = list(reversed(observed["spec"]["ports"]))  # type: ignore[index]
    assert merge_service(observed, desired, owned_by_canary=True) == observed


def test_metadata_only_when_owned_and_unmanaged_keys_kept() -> None:
    canary = podinfo.canary(service={"port": 9898, "apex": {"labels": {"new": "1"}}})
    desired = build_services(canary, "app", "podinfo", {}).apex
    observed = _observed(desired)
    observed["metadata"]["labels"] = {"app": "podinfo", "old": "x", "keep-me": "k"}  # type: ignore[index]
    observed["metadata"]["annotations"] = {  # type: ignore[index]
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "linkerd.io/keep": "v",
        "other": "o",
    }
    not_owned = merge_service(observed, desired, owned_by_canary=False)
    assert not_owned["metadata"] == {
        **observed["metadata"],  # type: ignore[dict-item]
        "annotations": {**observed["metadata"]["annotations"], **FLUX},  # type: ignore[index]
    }
    owned = merge_service(
        observed,
        desired,
        owned_by_canary=True,
        unmanaged=UnmanagedMetadata(labels=["keep-me"], annotations=["linkerd.io/keep"]),
    )
    assert owned["metadata"]["labels"] == {"new": "1", "app": "podinfo", "keep-me": "k"}
    assert owned["metadata"]["annotations"] == {"linkerd.io/keep": "v", **FLUX}


def test_revert_apex_service() -> None:
    canary = podinfo.canary()
    desired = build_services(canary, "app", "podinfo", {}).apex
    owned = _observed(desired)
    assert revert_apex_service(owned, canary, "app", "podinfo") is None
    foreign = _observed(desired)
    foreign["metadata"]["ownerReferences"] = []  # type: ignore[index]
    assert revert_apex_service(foreign, canary, "app", "podinfo")["spec"]["selector"] == {"app": "podinfo"}  # type: ignore[index]
    foreign["metadata"]["annotations"] = {  # type: ignore[index]
        "kubectl.kubernetes.io/last-applied-configuration": '{"spec": {"selector": {"app": "podinfo-v1"}}}'
    }
    reverted = revert_apex_service(foreign, canary, "app", "podinfo")
    assert reverted is not None
    assert reverted["spec"]["selector"] == {"app": "podinfo-v1"}


def test_every_service_carries_the_flux_opt_out_and_a_second_merge_writes_nothing() -> None:
    canary = podinfo.canary(service={"port": 9898, "apex": {"annotations": {"a": "1"}}})
    for desired in build_services(canary, "app", "podinfo", {}).all():
        assert {k: desired["metadata"]["annotations"][k] for k in FLUX} == FLUX
        written = stored(_observed(desired))
        assert merge_service(written, desired, owned_by_canary=True) == written
        # a Service written before the opt-out existed gets it, and then stays as it is
        older = copy.deepcopy(written)
        older["metadata"]["annotations"] = {
            k: v for k, v in written["metadata"]["annotations"].items() if k not in FLUX
        }
        updated = merge_service(older, desired, owned_by_canary=True)
        assert updated["metadata"]["annotations"] == desired["metadata"]["annotations"]
        assert merge_service(updated, desired, owned_by_canary=True) == updated


def test_taken_over_apex_gets_the_flux_opt_out_once() -> None:
    desired = build_services(podinfo.canary(), "app", "podinfo", {}).apex
    user: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test", "labels": {"app": "podinfo"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.0.0.9",
            "selector": {"app": "podinfo"},
            "ports": [{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}],
        },
    }
    taken = merge_service(user, desired, owned_by_canary=False)
    assert taken["metadata"]["labels"] == {"app": "podinfo"}  # the user's labels are left alone
    assert taken["metadata"]["annotations"] == FLUX
    assert taken["spec"]["selector"] == {"app": "podinfo-primary"}
    written = stored(taken)
    assert merge_service(written, desired, owned_by_canary=False) == written


def test_revert_apex_service_removes_only_the_flux_opt_out_it_added() -> None:
    canary = podinfo.canary()
    desired = build_services(canary, "app", "podinfo", {}).apex
    user: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test", "annotations": {"note": "mine"}},
        "spec": {"selector": {"app": "podinfo"}, "ports": desired["spec"]["ports"]},
    }
    taken = stored(merge_service(user, desired, owned_by_canary=False))
    reverted = revert_apex_service(taken, canary, "app", "podinfo")
    assert reverted is not None
    assert reverted["metadata"]["annotations"] == {"note": "mine"}
    assert reverted["spec"]["selector"] == {"app": "podinfo"}
    # nothing of the user's left: no annotations at all, as before the takeover
    user["metadata"] = {"name": "podinfo", "namespace": "test"}
    bare = revert_apex_service(stored(merge_service(user, desired, False)), canary, "app", "podinfo")
    assert bare is not None
    assert "annotations" not in bare["metadata"]
    # the user's own opt-out, recorded by kubectl, is restored with the user's value
    applied = {
        "metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/reconcile": "Disabled"}},
        "spec": {"selector": {"app": "podinfo"}},
    }
    user["metadata"] = {
        "name": "podinfo",
        "namespace": "test",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied),
            "kustomize.toolkit.fluxcd.io/reconcile": "Disabled",
        },
    }
    taken = stored(merge_service(user, desired, owned_by_canary=False))
    assert {k: taken["metadata"]["annotations"][k] for k in FLUX} == FLUX
    reverted = revert_apex_service(taken, canary, "app", "podinfo")
    assert reverted is not None
    assert reverted["metadata"]["annotations"] == user["metadata"]["annotations"]  # type: ignore[index]
