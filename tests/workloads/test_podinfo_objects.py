"""Every object generated for the podinfo walkthrough, field by field, against literal expectations."""

from __future__ import annotations

import copy

from canarist.workloads.deployment import build_primary, promote
from canarist.workloads.hpa import build_primary_hpa, hpa_needs_update, hpa_update
from canarist.workloads.selector import DEFAULT_SELECTOR_LABELS, discover_ports, find_selector
from canarist.workloads.services import build_services
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, OWNER, stored

PODINFO_CONTAINER = {
    "name": "podinfod",
    "image": "quay.io/stefanprodan/podinfo:3.1.0",
    "imagePullPolicy": "IfNotPresent",
    "command": ["./podinfo", "--port=9898", "--port-metrics=9797", "--level=info"],
    "ports": [
        {"name": "http", "containerPort": 9898, "protocol": "TCP"},
        {"name": "http-metrics", "containerPort": 9797, "protocol": "TCP"},
    ],
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9898}},
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
}


def test_selector_of_podinfo() -> None:
    assert find_selector("Deployment", podinfo.deployment(), DEFAULT_SELECTOR_LABELS) == ("app", "podinfo")


def test_services() -> None:
    services = build_services(podinfo.canary(), "app", "podinfo", {})
    ports = [{"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898}]
    assert services.canary == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo-canary",
            "namespace": "test",
            "labels": {"app": "podinfo-canary"},
            "annotations": FLUX,
            "ownerReferences": [OWNER],
        },
        "spec": {"type": "ClusterIP", "selector": {"app": "podinfo"}, "ports": ports},
    }
    assert services.primary == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo-primary",
            "namespace": "test",
            "labels": {"app": "podinfo-primary"},
            "annotations": FLUX,
            "ownerReferences": [OWNER],
        },
        "spec": {"type": "ClusterIP", "selector": {"app": "podinfo-primary"}, "ports": ports},
    }
    assert services.apex == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "labels": {"app": "podinfo"},
            "annotations": FLUX,
            "ownerReferences": [OWNER],
        },
        "spec": {"type": "ClusterIP", "selector": {"app": "podinfo-primary"}, "ports": ports},
    }


def test_primary_deployment() -> None:
    primary = build_primary(
        podinfo.canary(), podinfo.deployment(), "app", "podinfo", flagger_id="id-1", include_label_prefixes=()
    )
    assert primary == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo-primary",
            "namespace": "test",
            "labels": {"app": "podinfo-primary"},
            "annotations": FLUX,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "progressDeadlineSeconds": 60,
            "minReadySeconds": 5,
            "revisionHistoryLimit": 5,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "replicas": 1,
            "selector": {"matchLabels": {"app": "podinfo-primary"}},
            "template": {
                "metadata": {
                    "labels": {"app": "podinfo-primary"},
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": "9797",
                        "flagger-id": "id-1",
                    },
                },
                "spec": {"containers": [PODINFO_CONTAINER]},
            },
        },
    }


def test_primary_hpa() -> None:
    hpa = build_primary_hpa(podinfo.canary(), podinfo.hpa(), "podinfo-primary")
    assert hpa == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "podinfo-primary",
            "namespace": "test",
            "labels": {},
            "annotations": FLUX,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary"},
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 90}},
                }
            ],
        },
    }


def test_primary_hpa_overrides_and_update_policy() -> None:
    canary = podinfo.canary(
        autoscaler={
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
            "primaryScalerReplicas": {"minReplicas": 3, "maxReplicas": 9},
        }
    )
    source = podinfo.hpa()
    source["metadata"]["labels"] = {"team": "a", "kustomize.toolkit.fluxcd.io/name": "x"}
    desired = build_primary_hpa(canary, source, "podinfo-primary")
    assert desired["spec"]["minReplicas"] == 3
    assert desired["spec"]["maxReplicas"] == 9
    assert desired["metadata"]["labels"] == {"team": "a"}
    assert not hpa_needs_update(desired, desired)
    observed = copy.deepcopy(desired)
    observed["metadata"]["resourceVersion"] = "7"
    observed["status"] = {"currentReplicas": 3}
    assert not hpa_needs_update(observed, desired)
    changed = copy.deepcopy(source)
    changed["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] = 50
    new_desired = build_primary_hpa(canary, changed, "podinfo-primary")
    assert hpa_needs_update(observed, new_desired)
    updated = hpa_update(observed, new_desired)
    assert updated["spec"]["metrics"] == new_desired["spec"]["metrics"]
    assert updated["metadata"]["resourceVersion"] == "7"
    assert updated["status"] == {"currentReplicas": 3}


def test_promote_copies_template_and_keeps_replicas_with_autoscaler() -> None:
    canary = podinfo.canary()
    target = podinfo.deployment()
    primary = build_primary(canary, target, "app", "podinfo", flagger_id="id-1")
    observed = copy.deepcopy(primary)
    observed["metadata"]["resourceVersion"] = "42"
    observed["spec"]["replicas"] = 2  # the HPA scaled it
    target["spec"]["replicas"] = 5
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/stefanprodan/podinfo:3.1.1"
    target["metadata"]["labels"]["team"] = "a"
    promoted = promote(
        canary, target, observed, "app", "podinfo", flagger_id="id-2", include_label_prefixes=["team"]
    )
    assert promoted["metadata"]["resourceVersion"] == "42"
    assert promoted["metadata"]["labels"] == {"app": "podinfo-primary", "team": "a"}
    assert promoted["spec"]["replicas"] == 2  # autoscalerRef set: replicas untouched
    assert promoted["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    template = promoted["spec"]["template"]
    assert template["metadata"]["annotations"]["flagger-id"] == "id-2"
    assert template["spec"]["containers"][0]["image"] == "quay.io/stefanprodan/podinfo:3.1.1"

    no_hpa = podinfo.canary(autoscaler=None)
    assert promote(no_hpa, target, observed, "app", "podinfo", flagger_id="id-3")["spec"]["replicas"] == 5


def test_port_discovery_of_podinfo() -> None:
    canary = podinfo.canary(service={"port": 9898, "portDiscovery": True})
    target = podinfo.deployment()
    target["spec"]["template"]["spec"]["containers"].append(
        {
            "name": "istio-proxy",
            "image": "proxy",
            "ports": [{"containerPort": 15090, "name": "http-envoy-prom"}],
        }
    )
    target["spec"]["template"]["spec"]["containers"].append(
        {"name": "sidecar", "image": "s", "ports": [{"containerPort": 7000}]}
    )
    ports = discover_ports(canary, target)
    assert ports == {"http-metrics": 9797, "tcp-sidecar-0": 7000}
    services = build_services(canary, "app", "podinfo", ports)
    assert services.primary["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898},
        {"name": "http-metrics", "protocol": "TCP", "port": 9797, "targetPort": 9797},
        {"name": "tcp-sidecar-0", "protocol": "TCP", "port": 7000, "targetPort": 7000},
    ]
    assert discover_ports(podinfo.canary(), target) == {}


def test_primary_hpa_flux_opt_out_and_a_second_update_writes_nothing() -> None:
    canary = podinfo.canary()
    source = podinfo.hpa()
    source["metadata"]["annotations"] = {"note": "n", "helm.toolkit.fluxcd.io/driftDetection": "enabled"}
    desired = build_primary_hpa(canary, source, "podinfo-primary")
    assert desired["metadata"]["annotations"] == {"note": "n", **FLUX}
    written = stored(desired)
    assert "labels" not in written["metadata"]
    assert not hpa_needs_update(written, desired)
    assert hpa_update(written, desired) == written
    # an HPA written before the opt-out existed is updated once, then left alone
    older = copy.deepcopy(written)
    older["metadata"]["annotations"] = {"note": "n"}
    assert hpa_needs_update(older, desired)
    updated = hpa_update(older, desired)
    assert updated == written
    assert not hpa_needs_update(updated, desired)


def test_promote_keeps_the_flux_opt_out_and_a_second_promote_writes_nothing() -> None:
    canary = podinfo.canary()
    target = podinfo.deployment()
    target["metadata"]["annotations"] = {"team.io/owner": "a", "kustomize.toolkit.fluxcd.io/reconcile": "x"}
    primary = stored(
        build_primary(canary, target, "app", "podinfo", flagger_id="id-1", include_label_prefixes=["team"])
    )
    assert primary["metadata"]["annotations"] == {"team.io/owner": "a", **FLUX}
    promoted = promote(
        canary, target, primary, "app", "podinfo", flagger_id="id-1", include_label_prefixes=["team"]
    )
    assert promoted == primary
    older = copy.deepcopy(primary)
    older["metadata"]["annotations"] = {"team.io/owner": "a"}
    again = promote(
        canary, target, older, "app", "podinfo", flagger_id="id-1", include_label_prefixes=["team"]
    )
    assert again == primary
