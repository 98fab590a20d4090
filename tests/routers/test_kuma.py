"""Kuma TrafficRoute: declaration and registry, the cluster-scoped object (name, mesh annotation, service tags
with the port, weights, no owner), read-back, refusal of A/B matching and mirroring, the reconcile/SetRoutes
policy, and the revert on deletion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import RouterCapabilities, Routes
from canarist.routers import base, registry
from canarist.routers.base import RouteContext, RouterConfigError, RoutesError, object_key
from canarist.routers.kuma import KUMA, TRAFFIC_ROUTE, KumaRouter, service_tag
from canarist.workloads._meta import KUBECTL_LAST_APPLIED
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX

AB = [{"headers": {"x-canary": {"exact": "insider"}}}]


def kuma_canary(mesh: str | None = None, **kw: Any) -> Canary:
    kw.setdefault("service", {"port": 9898})
    manifest = podinfo.canary(provider="kuma", **kw).to_manifest()
    if mesh is not None:
        manifest["metadata"].setdefault("annotations", {})["kuma.io/mesh"] = mesh
    return Canary.model_validate(manifest)


def ctx_for(canary: Canary | None = None) -> RouteContext:
    return RouteContext.from_canary(canary if canary is not None else kuma_canary())


def split(obj: dict[str, Any]) -> list[tuple[str, int]]:
    return [(e["destination"]["kuma.io/service"], e["weight"]) for e in obj["spec"]["conf"]["split"]]


def test_declaration_and_registry() -> None:
    assert KUMA.name == "kuma"
    assert KUMA.kinds == (TRAFFIC_ROUTE,)
    assert TRAFFIC_ROUTE.group_resource == "trafficroutes.kuma.io"
    assert TRAFFIC_ROUTE.api_version == "kuma.io/v1alpha1"
    assert TRAFFIC_ROUTE.namespaced is False
    assert (
        TRAFFIC_ROUTE.path(namespace="test", name="podinfo") == "/apis/kuma.io/v1alpha1/trafficroutes/podinfo"
    )
    assert KUMA.settings == frozenset()
    assert KUMA.capabilities == RouterCapabilities(
        weights=True, matches=False, mirroring=False, session_affinity=False
    )
    router: base.Router = KumaRouter()
    assert router.name == "kuma"
    assert registry.get("kuma") is KUMA
    assert "kuma" in registry.supported()
    assert TRAFFIC_ROUTE in registry.all_kinds()


def test_the_cluster_scoped_traffic_route() -> None:
    ctx = ctx_for()
    assert [(r.api_version, r.kind, r.name, r.namespace) for r in KUMA.objects(ctx)] == [
        ("kuma.io/v1alpha1", "TrafficRoute", "podinfo", "")
    ]
    assert KUMA.references(ctx) == []
    (obj,) = KUMA.desired(ctx, Routes(100, 0))
    assert obj["apiVersion"] == "kuma.io/v1alpha1"
    assert obj["kind"] == "TrafficRoute"
    assert obj["mesh"] == "default"  # no kuma.io/mesh annotation
    # cluster-scoped: no namespace, and no owner (a namespaced Canary cannot own it)
    assert obj["metadata"] == {"name": "podinfo", "annotations": {"9898.service.kuma.io": "http", **FLUX}}
    assert obj["spec"] == {
        "sources": [{"match": {"kuma.io/service": "*"}}],
        "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
        "conf": {
            "split": [
                {"weight": 100, "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"}},
                {"weight": 0, "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"}},
            ]
        },
    }


def test_weights_both_entries_always_present() -> None:
    ctx = ctx_for()
    (obj,) = KUMA.desired(ctx, Routes(70, 30))
    assert split(obj) == [("podinfo-primary_test_svc_9898", 70), ("podinfo-canary_test_svc_9898", 30)]
    (obj,) = KUMA.desired(ctx, Routes(0, 100))
    assert split(obj) == [("podinfo-primary_test_svc_9898", 0), ("podinfo-canary_test_svc_9898", 100)]


def test_mesh_from_the_canary_annotation() -> None:
    (obj,) = KUMA.desired(ctx_for(kuma_canary(mesh="payments")), Routes(100, 0))
    assert obj["mesh"] == "payments"


def test_names_from_the_apex_namespace_and_port() -> None:
    canary = kuma_canary(namespace="shop", service={"name": "web", "port": 8080, "targetPort": 9898})
    ctx = ctx_for(canary)
    assert [r.key for r in KUMA.objects(ctx)] == ["TrafficRoute/web"]
    (obj,) = KUMA.desired(ctx, Routes(90, 10))
    assert obj["metadata"]["name"] == "web"
    assert obj["metadata"]["annotations"]["8080.service.kuma.io"] == "http"
    assert obj["spec"]["destinations"] == [{"match": {"kuma.io/service": "web_shop_svc_8080"}}]
    assert split(obj) == [("web-primary_shop_svc_8080", 90), ("web-canary_shop_svc_8080", 10)]
    assert service_tag("web", "shop", 8080) == "web_shop_svc_8080"


def test_apex_annotations_are_copied_filtered_and_labels_are_not() -> None:
    apex = {
        "labels": {"team": "a"},
        "annotations": {"9898.service.kuma.io/protocol": "http", "kustomize.toolkit.fluxcd.io/prune": "x"},
    }
    (obj,) = KUMA.desired(ctx_for(kuma_canary(service={"port": 9898, "apex": apex})), Routes(100, 0))
    assert obj["metadata"]["annotations"] == {"9898.service.kuma.io/protocol": "http", **FLUX}
    assert "labels" not in obj["metadata"]


def test_read_back() -> None:
    ctx = ctx_for()
    (obj,) = KUMA.desired(ctx, Routes(60, 40))
    assert KUMA.routes(ctx, {object_key(obj): obj}) == Routes(60, 40)
    (obj,) = KUMA.desired(ctx, Routes(100, 0))
    assert KUMA.routes(ctx, {object_key(obj): obj}) == Routes(100, 0)
    with pytest.raises(RoutesError, match=r"TrafficRoute podinfo get query error: not found"):
        KUMA.routes(ctx, {})
    obj["spec"]["conf"]["split"][0]["weight"] = 170
    with pytest.raises(RoutesError, match="not in 0-100"):
        KUMA.routes(ctx, {object_key(obj): obj})
    obj["spec"]["conf"]["split"] = obj["spec"]["conf"]["split"][1:]
    with pytest.raises(
        RoutesError,
        match="TrafficRoute podinfo does not contain routes for podinfo-primary and podinfo-canary",
    ):
        KUMA.routes(ctx, {object_key(obj): obj})


def test_ab_match_refused_with_its_path() -> None:
    canary = kuma_canary(iterations=10, match=AB, stepWeight=None, maxWeight=None)
    with pytest.raises(
        RouterConfigError, match=r"^spec\.analysis\.match: the kuma router routes by weight only"
    ):
        KUMA.objects(ctx_for(canary))
    problems = registry.provider_problems(canary, "istio")
    assert problems == [
        "spec.analysis.match: provider kuma cannot route by header, cookie or query (A/B testing); "
        "use a provider that can, or remove match"
    ]


def test_mirroring_and_session_affinity_refused_with_their_paths() -> None:
    mirrored = kuma_canary(iterations=10, mirror=True, stepWeight=None, maxWeight=None)
    assert registry.provider_problems(mirrored, "istio") == [
        "spec.analysis.mirror: provider kuma cannot mirror traffic; remove mirror"
    ]
    sticky = kuma_canary(sessionAffinity={"cookieName": "flagger-cookie"})
    assert registry.provider_problems(sticky, "istio") == [
        "spec.analysis.sessionAffinity: provider kuma cannot pin sessions by cookie; remove sessionAffinity"
    ]
    assert registry.provider_problems(kuma_canary(), "istio") == []


def test_reconcile_ignores_weights_and_set_routes_replaces_them() -> None:
    ctx = ctx_for()
    (observed,) = KUMA.desired(ctx, Routes(50, 50))
    observed = podinfo.stored(observed)
    (desired,) = KUMA.desired(ctx, Routes(100, 0))
    assert not KUMA.needs_update(ctx, observed, desired)
    merged = KUMA.merge(ctx, observed, desired)
    assert merged["spec"] == observed["spec"]
    assert merged["metadata"]["resourceVersion"] == "7"
    merged = KUMA.merge(ctx, observed, desired, set_routes=True)
    assert merged["spec"] == desired["spec"]
    assert merged["mesh"] == "default"
    assert merged["metadata"] == observed["metadata"]
    # another port is a new destination and new split tags: rewritten, weights included
    (changed,) = KUMA.desired(ctx_for(kuma_canary(service={"port": 8080})), Routes(100, 0))
    assert KUMA.needs_update(ctx, observed, changed)
    assert KUMA.merge(ctx, observed, changed)["spec"] == changed["spec"]
    # a lost Flux opt-out or annotation is put back, the user's own annotations kept
    edited = podinfo.stored(observed)
    edited["metadata"]["annotations"] = {"example.com/note": "mine"}
    assert KUMA.needs_update(ctx, edited, desired)
    assert KUMA.merge(ctx, edited, desired)["metadata"]["annotations"] == {
        "example.com/note": "mine",
        "9898.service.kuma.io": "http",
        **FLUX,
    }


def test_the_mesh_is_set_at_creation_only() -> None:
    ctx = ctx_for(kuma_canary(mesh="payments"))
    (observed,) = KUMA.desired(ctx_for(), Routes(100, 0))
    (desired,) = KUMA.desired(ctx, Routes(100, 0))
    assert desired["mesh"] == "payments"
    assert not KUMA.needs_update(ctx, observed, desired)
    assert KUMA.merge(ctx, observed, desired)["mesh"] == "default"


def test_revert_sends_the_apex_traffic_to_the_apex() -> None:
    ctx = ctx_for()
    assert KUMA.revert(ctx, {}) == []
    (obj,) = KUMA.desired(ctx, Routes(100, 0))
    obj = podinfo.stored(obj)
    (reverted,) = KUMA.revert(ctx, {object_key(obj): obj})
    assert reverted["metadata"] == obj["metadata"]
    assert reverted["mesh"] == "default"
    assert reverted["spec"] == {
        "sources": [{"match": {"kuma.io/service": "*"}}],
        "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
        "conf": {"split": [{"weight": 100, "destination": {"kuma.io/service": "podinfo_test_svc_9898"}}]},
    }


def test_revert_restores_what_kubectl_applied() -> None:
    ctx = ctx_for()
    users = {
        "sources": [{"match": {"kuma.io/service": "frontend_test_svc_80"}}],
        "destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
        "conf": {"destination": {"kuma.io/service": "podinfo_test_svc_9898"}},
    }
    last_applied = {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "TrafficRoute",
        "mesh": "default",
        "spec": users,
    }
    (obj,) = KUMA.desired(ctx, Routes(80, 20))
    obj["metadata"]["annotations"][KUBECTL_LAST_APPLIED] = json.dumps(last_applied)
    (reverted,) = KUMA.revert(ctx, {object_key(obj): obj})
    assert reverted["spec"] == users
    assert reverted["metadata"]["annotations"] == {
        KUBECTL_LAST_APPLIED: json.dumps(last_applied),
        "9898.service.kuma.io": "http",
    }
