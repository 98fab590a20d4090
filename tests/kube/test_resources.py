"""ResourceKind descriptors and the (apiVersion, kind) registry."""

from __future__ import annotations

import pytest

from canarist.kube import resources as r


def test_paths_for_core_group_and_namespaced_kinds() -> None:
    assert r.SERVICE.api_version == "v1"
    assert r.SERVICE.path("ns1", "web") == "/api/v1/namespaces/ns1/services/web"
    assert r.SERVICE.path() == "/api/v1/services"
    assert r.DEPLOYMENT.path("ns1", "web", "status") == "/apis/apps/v1/namespaces/ns1/deployments/web/status"
    assert r.CANARY.api_version == "flagger.app/v1beta1"
    assert r.CANARY.path("x") == "/apis/flagger.app/v1beta1/namespaces/x/canaries"


def test_cluster_scoped_kinds_ignore_namespace() -> None:
    assert r.NAMESPACE.path("ignored", "team-a") == "/api/v1/namespaces/team-a"
    assert (
        r.CUSTOM_RESOURCE_DEFINITION.path(None, "canaries.flagger.app")
        == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/canaries.flagger.app"
    )


def test_every_kind_the_operator_touches_is_registered() -> None:
    expected = {
        ("v1", "Namespace"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Event"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "DaemonSet"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("coordination.k8s.io/v1", "Lease"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("flagger.app/v1beta1", "Canary"),
        ("flagger.app/v1beta1", "MetricTemplate"),
        ("flagger.app/v1beta1", "AlertProvider"),
        ("networking.istio.io/v1beta1", "VirtualService"),
        ("networking.istio.io/v1beta1", "DestinationRule"),
    }
    assert expected <= {(k.api_version, k.kind) for k in r.registered()}
    assert r.kind_of({"apiVersion": "apps/v1", "kind": "Deployment"}) is r.DEPLOYMENT
    assert r.HORIZONTAL_POD_AUTOSCALER.group_resource == "horizontalpodautoscalers.autoscaling"


def test_unknown_kinds_and_declaring_more() -> None:
    with pytest.raises(r.UnknownKind):
        r.lookup("split.example.test/v1alpha2", "Splitter")
    ts = r.ResourceKind("split.example.test", "v1alpha2", "splitters", "Splitter")
    r.register(ts)
    r.register(ts)  # the same descriptor again is fine
    assert r.lookup("split.example.test/v1alpha2", "Splitter") is ts
    with pytest.raises(ValueError, match="already registered"):
        r.register(
            r.ResourceKind("split.example.test", "v1alpha2", "splitters", "Splitter", namespaced=False)
        )
    with pytest.raises(ValueError, match="empty name"):
        r.SERVICE.path("ns", "")
