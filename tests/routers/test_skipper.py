"""Skipper: the canary Ingress copied from spec.ingressRef with every apex path doubled for the primary and
the canary, the backend-weights and predicate annotations, read-back, the reconcile policy and the
configuration errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import RouterCapabilities, Routes
from canarist.kube import resources
from canarist.routers import registry
from canarist.routers.base import Reference, RouteContext, RouterConfigError, RoutesError, object_key
from canarist.routers.skipper import BACKEND_WEIGHTS, PREDICATE, SKIPPER
from tests.workloads import podinfo
from tests.workloads.podinfo import OWNER, stored

INGRESS_REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KEY = "Ingress/podinfo-canary"


def backend(name: str, port: int = 80) -> dict[str, Any]:
    return {"service": {"name": name, "port": {"number": port}}}


def user_ingress(predicate: str = "") -> dict[str, Any]:
    """The tutorial's Ingress, as the API server returns it, with a second host and a foreign backend."""
    annotations = {"zalando.org/skipper-filter": 'setRequestHeader("X-A", "b")', LAST_APPLIED: "{}"}
    if predicate:
        annotations[PREDICATE] = predicate
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "uid": "ingress-uid",
            "resourceVersion": "42",
            "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "annotations": annotations,
        },
        "spec": {
            "ingressClassName": "skipper",
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {"path": "/", "pathType": "Prefix", "backend": backend("podinfo")},
                            {"path": "/static", "pathType": "Prefix", "backend": backend("static")},
                        ]
                    },
                },
                {
                    "host": "www.example.com",
                    "http": {"paths": [{"path": "/api", "pathType": "Exact", "backend": backend("podinfo")}]},
                },
            ],
        },
    }


def skipper_canary(**kw: Any) -> Canary:
    spec = {"ingressRef": INGRESS_REF, **kw.pop("spec", {})}
    return podinfo.canary(provider="skipper", service={"port": 80, "targetPort": 9898}, spec=spec, **kw)


def ctx_for(canary: Canary | None = None, ingress: dict[str, Any] | None = None, **kw: Any) -> RouteContext:
    base = RouteContext.from_canary(canary or skipper_canary(), **kw)
    found = user_ingress() if ingress is None else ingress
    return RouteContext(**{**base.__dict__, "references": {object_key(found): found}})


def canary_ingress(ctx: RouteContext, routes: Routes) -> dict[str, Any]:
    (obj,) = SKIPPER.desired(ctx, routes)
    return obj


def routing(obj: dict[str, Any]) -> tuple[dict[str, int], str]:
    annotations = obj["metadata"]["annotations"]
    return json.loads(annotations[BACKEND_WEIGHTS]), annotations[PREDICATE]


def test_declaration_and_registry() -> None:
    assert SKIPPER.name == "skipper"
    assert SKIPPER.kinds == (resources.INGRESS,)
    assert SKIPPER.settings == frozenset()
    assert SKIPPER.capabilities == RouterCapabilities(
        weights=True, matches=False, mirroring=False, session_affinity=False
    )
    assert registry.get("skipper") is SKIPPER
    assert "skipper" in registry.supported()


def test_objects_and_references() -> None:
    ctx = ctx_for()
    assert [(r.api_version, r.kind, r.name, r.namespace) for r in SKIPPER.objects(ctx)] == [
        ("networking.k8s.io/v1", "Ingress", "podinfo-canary", "test")
    ]
    assert SKIPPER.references(ctx) == [
        Reference("networking.k8s.io/v1", "Ingress", "podinfo", "test", path="spec.ingressRef")
    ]


def test_every_apex_path_is_doubled_for_primary_and_canary() -> None:
    obj = canary_ingress(ctx_for(), Routes(100, 0))
    assert obj["metadata"]["name"] == "podinfo-canary"
    assert obj["metadata"]["namespace"] == "test"
    assert obj["metadata"]["labels"] == {"app": "podinfo"}  # Flux's label is not copied
    assert obj["metadata"]["ownerReferences"] == [OWNER]
    rules = obj["spec"]["rules"]
    assert obj["spec"]["ingressClassName"] == "skipper"
    assert [(p["path"], p["pathType"], p["backend"]) for p in rules[0]["http"]["paths"]] == [
        ("/", "Prefix", backend("podinfo-primary")),
        ("/", "Prefix", backend("podinfo-canary")),
        ("/static", "Prefix", backend("static")),
    ]
    assert [(p["path"], p["backend"]) for p in rules[1]["http"]["paths"]] == [
        ("/api", backend("podinfo-primary")),
        ("/api", backend("podinfo-canary")),
    ]
    annotations = obj["metadata"]["annotations"]
    assert LAST_APPLIED not in annotations
    assert annotations["zalando.org/skipper-filter"] == 'setRequestHeader("X-A", "b")'


def test_the_referenced_ingress_is_not_modified() -> None:
    ingress = user_ingress()
    before = copy.deepcopy(ingress)
    canary_ingress(ctx_for(ingress=ingress), Routes(60, 40))
    assert ingress == before


def test_no_owner_reference_across_clusters() -> None:
    obj = canary_ingress(ctx_for(set_owner_refs=False), Routes(100, 0))
    assert "ownerReferences" not in obj["metadata"]


@pytest.mark.parametrize(
    ("routes", "weights", "predicate"),
    [
        (Routes(100, 0), {"podinfo-primary": 100, "podinfo-canary": 0}, "False()"),
        (Routes(95, 5), {"podinfo-primary": 95, "podinfo-canary": 5}, "Weight(100)"),
        (Routes(0, 100), {"podinfo-primary": 0, "podinfo-canary": 100}, "Weight(100)"),
    ],
)
def test_weights_and_predicate(routes: Routes, weights: dict[str, int], predicate: str) -> None:
    assert routing(canary_ingress(ctx_for(), routes)) == (weights, predicate)


def test_the_users_predicate_follows() -> None:
    ctx = ctx_for(ingress=user_ingress(predicate='Header("X-Env", "prod")'))
    assert routing(canary_ingress(ctx, Routes(80, 20)))[1] == 'Weight(100) && Header("X-Env", "prod")'
    assert routing(canary_ingress(ctx, Routes(100, 0)))[1] == 'False() && Header("X-Env", "prod")'


@pytest.mark.parametrize("routes", [Routes(100, 0), Routes(95, 5), Routes(50, 50), Routes(0, 100)])
def test_round_trip(routes: Routes) -> None:
    ctx = ctx_for()
    assert SKIPPER.routes(ctx, {KEY: stored(canary_ingress(ctx, routes))}) == routes


def test_read_back_errors() -> None:
    ctx = ctx_for()
    with pytest.raises(RoutesError, match="not found"):
        SKIPPER.routes(ctx, {})
    obj = canary_ingress(ctx, Routes(90, 10))
    missing = copy.deepcopy(obj)
    del missing["metadata"]["annotations"][BACKEND_WEIGHTS]
    with pytest.raises(RoutesError, match=r"has no zalando\.org/backend-weights annotation"):
        SKIPPER.routes(ctx, {KEY: missing})
    for bad, message in (
        ("{nope", "is not JSON"),
        ("[1, 2]", "is not an object"),
        ('{"podinfo-primary": 100}', "no whole-number weight for podinfo-canary"),
        ('{"podinfo-primary": 90, "podinfo-canary": "10"}', "no whole-number weight for podinfo-canary"),
        ('{"podinfo-primary": -10, "podinfo-canary": 110}', "podinfo-primary -10 is outside 0..100"),
        ('{"podinfo-primary": 90, "podinfo-canary": 20}', "add up to 110, not 100"),
    ):
        broken = copy.deepcopy(obj)
        broken["metadata"]["annotations"][BACKEND_WEIGHTS] = bad
        with pytest.raises(RoutesError, match=message):
            SKIPPER.routes(ctx, {KEY: broken})


def test_missing_ingress_ref() -> None:
    ctx = RouteContext.from_canary(podinfo.canary(provider="skipper"))
    for call in (SKIPPER.objects, SKIPPER.references):
        with pytest.raises(RouterConfigError, match=r"^spec.ingressRef: required for provider skipper$"):
            call(ctx)


def test_references_missing_from_the_context() -> None:
    ctx = RouteContext.from_canary(skipper_canary())
    with pytest.raises(RouterConfigError, match=r"spec.ingressRef: Ingress podinfo.test not found"):
        SKIPPER.desired(ctx, Routes(100, 0))


def test_backend_not_found_and_legacy_backends() -> None:
    ingress = user_ingress()
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            path["backend"]["service"]["name"] = "other"
    with pytest.raises(RouterConfigError, match=r"^backend podinfo not found in ingress podinfo$"):
        SKIPPER.desired(ctx_for(ingress=ingress), Routes(100, 0))
    legacy = user_ingress()
    legacy["spec"]["rules"][0]["http"]["paths"][0]["backend"] = {"serviceName": "podinfo", "servicePort": 80}
    with pytest.raises(RouterConfigError, match="serviceName/servicePort"):
        SKIPPER.desired(ctx_for(ingress=legacy), Routes(100, 0))


def test_ab_testing_is_refused_by_validation() -> None:
    canary = skipper_canary(match=[{"headers": {"x-canary": {"exact": "insider"}}}], iterations=10)
    (problem,) = registry.capability_problems(canary, SKIPPER)
    assert problem.startswith("spec.analysis.match: provider skipper cannot route by header")


def test_needs_update_ignores_the_routing_annotations() -> None:
    ctx = ctx_for()
    observed_obj = stored(canary_ingress(ctx, Routes(70, 30)))
    assert not SKIPPER.needs_update(ctx, observed_obj, canary_ingress(ctx, Routes(100, 0)))
    ingress = user_ingress()
    ingress["spec"]["rules"][0]["host"] = "new.example.com"
    assert SKIPPER.needs_update(ctx, observed_obj, canary_ingress(ctx_for(ingress=ingress), Routes(70, 30)))
    ingress = user_ingress()
    ingress["metadata"]["labels"]["team"] = "a"
    assert SKIPPER.needs_update(ctx, observed_obj, canary_ingress(ctx_for(ingress=ingress), Routes(70, 30)))


def with_user_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = stored(obj, "11")
    out["metadata"]["uid"] = "canary-ingress-uid"
    out["metadata"]["finalizers"] = ["example.com/keep"]
    out["metadata"]["annotations"]["example.com/added-by-hand"] = "yes"
    return out


def test_merge_set_routes_changes_only_the_routing_annotations() -> None:
    ctx = ctx_for()
    observed_obj = with_user_fields(canary_ingress(ctx, Routes(100, 0)))
    observed_obj["spec"]["rules"][0]["host"] = "drifted.example.com"
    merged = SKIPPER.merge(ctx, observed_obj, canary_ingress(ctx, Routes(60, 40)), set_routes=True)
    expected = copy.deepcopy(observed_obj)
    expected["metadata"]["annotations"][BACKEND_WEIGHTS] = '{"podinfo-primary":60,"podinfo-canary":40}'
    expected["metadata"]["annotations"][PREDICATE] = "Weight(100)"
    assert merged == expected
    assert SKIPPER.routes(ctx, {KEY: merged}) == Routes(60, 40)


def test_merge_reconcile_keeps_identity_and_routing_state() -> None:
    ctx = ctx_for()
    observed_obj = with_user_fields(canary_ingress(ctx, Routes(70, 30)))
    ingress = user_ingress()
    ingress["spec"]["rules"][0]["host"] = "new.example.com"
    desired_obj = canary_ingress(ctx_for(ingress=ingress), Routes(100, 0))
    merged = SKIPPER.merge(ctx, observed_obj, desired_obj)
    assert merged["spec"] == desired_obj["spec"]
    assert merged["metadata"]["uid"] == "canary-ingress-uid"
    assert merged["metadata"]["finalizers"] == ["example.com/keep"]
    assert merged["metadata"]["ownerReferences"] == [OWNER]
    assert SKIPPER.routes(ctx, {KEY: merged}) == Routes(70, 30)
    assert routing(merged)[1] == "Weight(100)"
    assert "example.com/added-by-hand" not in merged["metadata"]["annotations"]
    assert not SKIPPER.needs_update(ctx, merged, desired_obj)


def test_revert_writes_nothing() -> None:
    ctx = ctx_for()
    assert SKIPPER.revert(ctx, {KEY: canary_ingress(ctx, Routes(50, 50))}) == []
