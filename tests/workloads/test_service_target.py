"""A plain Service target: the ``-canary`` copy refreshed from it, the ``-primary`` copy and its promotion,
what the API server allocated kept where it belongs, and the target-kind record that ties them together."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canarist.api import Canary
from canarist.workloads import service
from canarist.workloads.revision import revision_hash
from canarist.workloads.targets import KNATIVE_SERVICE, SERVICE, UnsupportedTarget, target_kind
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, OWNER

SERVICE_REF = {"apiVersion": "v1", "kind": "Service", "name": "podinfo"}


def canary(**overrides: Any) -> Canary:
    return podinfo.canary(autoscaler=None, spec={"targetRef": SERVICE_REF}, **overrides)


def target(**spec: Any) -> dict[str, Any]:
    """The target Service as the API server stores it (allocated IP and node port, kubectl's record)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "uid": "target-uid",
            "resourceVersion": "41",
            "creationTimestamp": "2026-12-01T12:00:00Z",
            "labels": {"app": "podinfo", "team": "web", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "annotations": {
                "owner": "web",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "kustomize.toolkit.fluxcd.io/checksum": "x",
            },
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "selector": {"app": "podinfo"},
            "ports": [{"name": "http", "port": 9898, "targetPort": "http", "protocol": "TCP"}],
            "sessionAffinity": "None",
            **spec,
        },
    }


def stored(obj: dict[str, Any], ip: str) -> dict[str, Any]:
    """``obj`` as created: its own uid, resourceVersion and cluster IP."""
    out = podinfo.stored(copy.deepcopy(obj))
    out["metadata"]["uid"] = f"uid-{obj['metadata']['name']}"
    out["spec"]["clusterIP"] = ip
    out["spec"]["clusterIPs"] = [ip]
    return out


def test_the_canary_copy_is_the_target_named_and_owned_by_the_canary_without_its_cluster_ip() -> None:
    built = service.build_canary(canary(), target())
    assert built["metadata"] == {
        "name": "podinfo-canary",
        "namespace": "test",
        "labels": {"app": "podinfo", "team": "web"},
        "annotations": {"owner": "web", **FLUX},
        "ownerReferences": [OWNER],
    }
    assert built["spec"] == {
        "type": "ClusterIP",
        "selector": {"app": "podinfo"},
        "ports": [{"name": "http", "port": 9898, "targetPort": "http", "protocol": "TCP"}],
        "sessionAffinity": "None",
    }


def test_the_primary_copy_is_created_from_the_target_once() -> None:
    built = service.build_primary(canary(), target(), "", "", flagger_id="ignored")
    assert built["metadata"]["name"] == "podinfo-primary"
    assert built["metadata"]["ownerReferences"] == [OWNER]
    assert "clusterIP" not in built["spec"]
    assert "clusterIPs" not in built["spec"]
    assert built["spec"]["selector"] == {"app": "podinfo"}


def test_a_refresh_follows_the_target_and_keeps_the_copy_s_cluster_ip() -> None:
    subject = canary()
    existing = stored(service.build_canary(subject, target()), "10.96.0.20")
    # unchanged target: nothing to write
    assert service.refresh(existing, service.build_canary(subject, target())) is None
    changed = target(selector={"app": "podinfo", "version": "v2"})
    changed["metadata"]["labels"]["team"] = "api"
    refreshed = service.refresh(existing, service.build_canary(subject, changed))
    assert refreshed is not None
    assert refreshed["spec"]["selector"] == {"app": "podinfo", "version": "v2"}
    assert refreshed["spec"]["clusterIP"] == "10.96.0.20"
    assert refreshed["spec"]["clusterIPs"] == ["10.96.0.20"]
    assert refreshed["metadata"]["labels"]["team"] == "api"
    assert refreshed["metadata"]["uid"] == "uid-podinfo-canary"
    assert refreshed["metadata"]["resourceVersion"] == existing["metadata"]["resourceVersion"]


def test_a_refresh_removes_what_the_target_removed() -> None:
    subject = canary()
    with_affinity = target(
        sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}
    )
    existing = stored(service.build_canary(subject, with_affinity), "10.96.0.20")
    refreshed = service.refresh(existing, service.build_canary(subject, target()))
    assert refreshed is not None
    assert "sessionAffinityConfig" not in refreshed["spec"]
    assert refreshed["spec"]["sessionAffinity"] == "None"


def test_promote_copies_the_target_spec_and_keeps_the_primary_cluster_ip_and_owner() -> None:
    subject = canary()
    primary = stored(service.build_primary(subject, target()), "10.96.0.30")
    new = target(ports=[{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}])
    promoted = service.promote(
        subject, new, primary, "", "", flagger_id="f", include_label_prefixes=("team",)
    )
    assert promoted["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}
    ]
    assert promoted["spec"]["clusterIP"] == "10.96.0.30"
    assert promoted["spec"]["clusterIPs"] == ["10.96.0.30"]
    meta = promoted["metadata"]
    assert meta["name"] == "podinfo-primary"
    assert meta["uid"] == "uid-podinfo-primary"
    assert meta["ownerReferences"] == [OWNER]
    # labels and annotations filtered by -include-label-prefix, the Flux opt-out kept
    assert meta["labels"] == {"team": "web"}
    assert meta["annotations"] == FLUX
    # a replayed promotion writes nothing
    again = service.promote(subject, new, promoted, "", "", flagger_id="g", include_label_prefixes=("team",))
    assert again == promoted


def test_node_ports_and_headless_services() -> None:
    subject = canary()
    node_port = target(
        type="NodePort",
        ports=[{"name": "http", "port": 9898, "targetPort": 9898, "protocol": "TCP", "nodePort": 30001}],
    )
    built = service.build_canary(subject, node_port)
    assert "nodePort" not in built["spec"]["ports"][0]  # the target's node port is taken
    existing = stored(built, "10.96.0.20")
    existing["spec"]["ports"][0]["nodePort"] = 30002
    assert service.refresh(existing, service.build_canary(subject, node_port)) is None

    headless = target(clusterIP="None", clusterIPs=["None"])
    assert service.build_canary(subject, headless)["spec"]["clusterIP"] == "None"

    external = target(type="ExternalName", externalName="podinfo.example.com")
    del external["spec"]["clusterIP"], external["spec"]["clusterIPs"]
    assert "clusterIP" not in service.build_primary(subject, external)["spec"]


def test_the_service_record() -> None:
    assert target_kind("Service", "v1") is SERVICE
    assert (SERVICE.resource.group, SERVICE.resource.kind) == ("", "Service")
    assert not SERVICE.runs_pods
    assert SERVICE.readiness(None, None).ready  # type: ignore[arg-type]
    assert SERVICE.scale_patch(target(), 0) is None
    assert SERVICE.scale_patch(target(), 1) is None
    assert not SERVICE.is_scaled_down(target())
    assert SERVICE.canary_copy is not None
    assert SERVICE.canary_copy.build(canary(), target())["metadata"]["name"] == "podinfo-canary"


def test_a_knative_service_is_not_a_kubernetes_service() -> None:
    assert target_kind("Service", "serving.knative.dev/v1") is KNATIVE_SERVICE
    assert target_kind("Service", "v1") is SERVICE
    with pytest.raises(
        UnsupportedTarget, match=r"spec\.targetRef\.apiVersion: Knative Service .* not supported"
    ):
        target_kind("Service", "serving.knative.dev/v1alpha1")


def test_the_revision_of_a_service_is_its_spec() -> None:
    base = revision_hash(target())
    assert revision_hash(target()) == base
    relabelled = target()
    relabelled["metadata"]["labels"]["team"] = "api"
    assert revision_hash(relabelled) == base
    assert revision_hash(target(selector={"app": "podinfo", "version": "v2"})) != base
