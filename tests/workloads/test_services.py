"""Service shapes beyond the defaults, and the update policy of merge_service."""

from __future__ import annotations

import copy

from canarist.api import UnmanagedMetadata
from canarist.workloads.services import build_services, merge_service, revert_apex_service
from tests.workloads import podinfo


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
    assert services.apex["metadata"]["annotations"] == {"a": "1"}
    assert services.primary["metadata"]["name"] == "frontend-primary"
    assert services.primary["metadata"]["labels"] == {"tier": "primary", "app": "frontend-primary"}
    assert services.canary["metadata"]["annotations"] == {"c": "2"}
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
    assert not_owned["metadata"] == observed["metadata"]
    owned = merge_service(
        observed,
        desired,
        owned_by_canary=True,
        unmanaged=UnmanagedMetadata(labels=["keep-me"], annotations=["linkerd.io/keep"]),
    )
    assert owned["metadata"]["labels"] == {"new": "1", "app": "podinfo", "keep-me": "k"}
    assert owned["metadata"]["annotations"] == {"linkerd.io/keep": "v"}


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
