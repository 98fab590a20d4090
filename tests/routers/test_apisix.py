"""APISIX: the canary ApisixRoute ``<routeRef>-<apex>-canary`` copied from spec.routeRef (the rules routing to
the apex, priority 10000, weighted primary/canary backends), read-back, the reconcile policy and the
configuration errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import RouterCapabilities, Routes
from canarist.routers import registry
from canarist.routers.apisix import APISIX, APISIX_ROUTE, CANARY_PRIORITY
from canarist.routers.base import Reference, RouteContext, RouterConfigError, RoutesError, object_key
from tests.workloads import podinfo
from tests.workloads.podinfo import OWNER, stored

ROUTE_REF = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "podinfo"}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
KEY = "ApisixRoute/podinfo-podinfo-canary"


def user_route() -> dict[str, Any]:
    """The tutorial's ApisixRoute as the API server returns it, with a plugin, a timeout and a second rule
    to another Service."""
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "uid": "route-uid",
            "resourceVersion": "42",
            "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "annotations": {"example.com/team": "a", LAST_APPLIED: "{}"},
        },
        "spec": {
            "ingressClassName": "apisix",
            "http": [
                {
                    "name": "rule1",
                    "priority": 1,
                    "timeout": {"read": "20s"},
                    "match": {"hosts": ["app.example.com"], "paths": ["/*"], "methods": ["GET"]},
                    "plugins": [{"name": "cors", "enable": True}],
                    "backends": [
                        {
                            "serviceName": "podinfo",
                            "servicePort": 80,
                            "resolveGranularity": "service",
                            "weight": 7,
                        }
                    ],
                },
                {
                    "name": "static",
                    "match": {"hosts": ["app.example.com"], "paths": ["/static/*"]},
                    "backends": [{"serviceName": "static", "servicePort": 8080}],
                },
            ],
        },
    }


def apisix_canary(**kw: Any) -> Canary:
    spec = {"routeRef": ROUTE_REF, **kw.pop("spec", {})}
    return podinfo.canary(provider="apisix", service={"port": 80, "targetPort": 9898}, spec=spec, **kw)


def ctx_for(canary: Canary | None = None, route: dict[str, Any] | None = None, **kw: Any) -> RouteContext:
    base = RouteContext.from_canary(canary or apisix_canary(), **kw)
    found = user_route() if route is None else route
    return RouteContext(**{**base.__dict__, "references": {object_key(found): found}})


def canary_route(ctx: RouteContext, routes: Routes) -> dict[str, Any]:
    (obj,) = APISIX.desired(ctx, routes)
    return obj


def weights(obj: dict[str, Any]) -> list[tuple[str, int]]:
    return [(b["serviceName"], b["weight"]) for b in obj["spec"]["http"][0]["backends"]]


def test_declaration_and_registry() -> None:
    assert APISIX.name == "apisix"
    assert APISIX.kinds == (APISIX_ROUTE,)
    assert APISIX_ROUTE.group_resource == "apisixroutes.apisix.apache.org"
    assert APISIX.settings == frozenset()
    assert APISIX.capabilities == RouterCapabilities(
        weights=True, matches=False, mirroring=False, session_affinity=False
    )
    assert registry.get("apisix") is APISIX
    assert "apisix" in registry.supported()
    assert APISIX_ROUTE in registry.all_kinds()


def test_objects_and_references() -> None:
    ctx = ctx_for()
    assert [(r.api_version, r.kind, r.name, r.namespace) for r in APISIX.objects(ctx)] == [
        ("apisix.apache.org/v2", "ApisixRoute", "podinfo-podinfo-canary", "test")
    ]
    assert APISIX.references(ctx) == [
        Reference("apisix.apache.org/v2", "ApisixRoute", "podinfo", "test", path="spec.routeRef")
    ]


def test_the_canary_route_names_the_route_and_the_apex() -> None:
    canary = apisix_canary(spec={"routeRef": {**ROUTE_REF, "name": "web"}})
    route = user_route()
    route["metadata"]["name"] = "web"
    ctx = ctx_for(canary, route)
    assert canary_route(ctx, Routes(100, 0))["metadata"]["name"] == "web-podinfo-canary"


def test_the_rule_to_the_apex_is_copied_with_weighted_backends() -> None:
    obj = canary_route(ctx_for(), Routes(100, 0))
    assert obj["apiVersion"] == "apisix.apache.org/v2"
    assert obj["metadata"]["name"] == "podinfo-podinfo-canary"
    assert obj["metadata"]["namespace"] == "test"
    assert obj["metadata"]["labels"] == {"app": "podinfo"}  # Flux's label is not copied
    assert obj["metadata"]["annotations"] == {"example.com/team": "a"}
    assert obj["metadata"]["ownerReferences"] == [OWNER]
    assert obj["spec"]["ingressClassName"] == "apisix"
    (rule,) = obj["spec"]["http"]  # the rule to another Service is not copied
    assert rule["name"] == "rule1"
    assert rule["priority"] == CANARY_PRIORITY == 10000
    assert rule["match"] == {"hosts": ["app.example.com"], "paths": ["/*"], "methods": ["GET"]}
    assert rule["timeout"] == {"read": "20s"}
    assert rule["plugins"] == [{"name": "cors", "enable": True}]
    assert rule["backends"] == [
        {"serviceName": "podinfo-primary", "servicePort": 80, "resolveGranularity": "service", "weight": 100},
        {"serviceName": "podinfo-canary", "servicePort": 80, "resolveGranularity": "service", "weight": 0},
    ]


def test_every_rule_to_the_apex_is_copied() -> None:
    route = user_route()
    route["spec"]["http"][1]["backends"] = [{"serviceName": "podinfo", "servicePort": 80, "subset": "v1"}]
    obj = canary_route(ctx_for(route=route), Routes(60, 40))
    assert [r["name"] for r in obj["spec"]["http"]] == ["rule1", "static"]
    assert obj["spec"]["http"][1]["backends"] == [
        {"serviceName": "podinfo-primary", "servicePort": 80, "subset": "v1", "weight": 60},
        {"serviceName": "podinfo-canary", "servicePort": 80, "subset": "v1", "weight": 40},
    ]


def test_the_referenced_route_is_not_modified() -> None:
    route = user_route()
    before = copy.deepcopy(route)
    canary_route(ctx_for(route=route), Routes(60, 40))
    assert route == before


def test_no_owner_reference_across_clusters() -> None:
    obj = canary_route(ctx_for(set_owner_refs=False), Routes(100, 0))
    assert "ownerReferences" not in obj["metadata"]


@pytest.mark.parametrize("routes", [Routes(100, 0), Routes(95, 5), Routes(50, 50), Routes(0, 100)])
def test_weights_round_trip(routes: Routes) -> None:
    ctx = ctx_for()
    obj = canary_route(ctx, routes)
    assert weights(obj) == [("podinfo-primary", routes.primary), ("podinfo-canary", routes.canary)]
    assert APISIX.routes(ctx, {KEY: stored(obj)}) == routes


def test_read_back_errors() -> None:
    ctx = ctx_for()
    with pytest.raises(
        RoutesError, match=r"^ApisixRoute podinfo-podinfo-canary.test query error: not found$"
    ):
        APISIX.routes(ctx, {})
    obj = canary_route(ctx, Routes(90, 10))
    empty = copy.deepcopy(obj)
    empty["spec"]["http"] = []
    with pytest.raises(RoutesError, match="has no http rules"):
        APISIX.routes(ctx, {KEY: empty})
    cases: list[tuple[Any, str]] = [
        (None, "no whole-number weight for backend podinfo-canary"),
        ("10", "no whole-number weight for backend podinfo-canary"),
        (True, "no whole-number weight for backend podinfo-canary"),
        (110, "backend podinfo-canary weight 110 is outside 0..100"),
        (20, "the backend weights add up to 110, not 100"),
    ]
    for bad, message in cases:
        broken = copy.deepcopy(obj)
        backend = broken["spec"]["http"][0]["backends"][1]
        if bad is None:
            del backend["weight"]
        else:
            backend["weight"] = bad
        with pytest.raises(RoutesError, match=message):
            APISIX.routes(ctx, {KEY: broken})
    gone = copy.deepcopy(obj)
    gone["spec"]["http"][0]["backends"] = gone["spec"]["http"][0]["backends"][:1]
    with pytest.raises(RoutesError, match="has no backend podinfo-canary"):
        APISIX.routes(ctx, {KEY: gone})


def test_missing_route_ref() -> None:
    ctx = RouteContext.from_canary(podinfo.canary(provider="apisix"))
    for call in (APISIX.objects, APISIX.references):
        with pytest.raises(RouterConfigError, match=r"^spec.routeRef: required for provider apisix$"):
            call(ctx)
    problems = registry.provider_problems(podinfo.canary(provider="apisix"), "istio")
    assert problems == ["spec.routeRef: required for provider apisix"]


def test_a_missing_referenced_route() -> None:
    ctx = RouteContext.from_canary(apisix_canary())
    with pytest.raises(RouterConfigError, match=r"^spec.routeRef: ApisixRoute podinfo.test not found$"):
        APISIX.desired(ctx, Routes(100, 0))


def test_backend_not_found_and_shared_rules() -> None:
    route = user_route()
    route["spec"]["http"][0]["backends"][0]["serviceName"] = "other"
    with pytest.raises(
        RouterConfigError,
        match=r"^spec.routeRef: backend podinfo not found in the http rules of ApisixRoute podinfo$",
    ):
        APISIX.desired(ctx_for(route=route), Routes(100, 0))
    shared = user_route()
    shared["spec"]["http"][0]["backends"].append({"serviceName": "legacy", "servicePort": 80})
    with pytest.raises(
        RouterConfigError,
        match=r"^spec.routeRef: ApisixRoute podinfo rule rule1 routes to podinfo and 1 other backend",
    ):
        APISIX.desired(ctx_for(route=shared), Routes(100, 0))


def test_ab_testing_is_refused_by_validation() -> None:
    canary = apisix_canary(match=[{"headers": {"x-canary": {"exact": "insider"}}}], iterations=10)
    (problem,) = registry.capability_problems(canary, APISIX)
    assert problem.startswith("spec.analysis.match: provider apisix cannot route by header")


def test_needs_update_ignores_the_weights() -> None:
    ctx = ctx_for()
    observed_obj = stored(canary_route(ctx, Routes(70, 30)))
    assert not APISIX.needs_update(ctx, observed_obj, canary_route(ctx, Routes(100, 0)))
    route = user_route()
    route["spec"]["http"][0]["match"]["hosts"] = ["new.example.com"]
    assert APISIX.needs_update(ctx, observed_obj, canary_route(ctx_for(route=route), Routes(70, 30)))
    route = user_route()
    route["metadata"]["labels"]["team"] = "a"
    assert APISIX.needs_update(ctx, observed_obj, canary_route(ctx_for(route=route), Routes(70, 30)))


def with_user_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = stored(obj, "11")
    out["metadata"]["uid"] = "canary-route-uid"
    out["metadata"]["finalizers"] = ["example.com/keep"]
    out["status"] = {"conditions": [{"type": "ResourcesAvailable", "status": "True"}]}
    return out


def test_merge_set_routes_changes_only_the_weights() -> None:
    ctx = ctx_for()
    observed_obj = with_user_fields(canary_route(ctx, Routes(100, 0)))
    observed_obj["spec"]["http"][0]["match"]["hosts"] = ["drifted.example.com"]
    merged = APISIX.merge(ctx, observed_obj, canary_route(ctx, Routes(60, 40)), set_routes=True)
    expected = copy.deepcopy(observed_obj)
    expected["spec"]["http"][0]["backends"][0]["weight"] = 60
    expected["spec"]["http"][0]["backends"][1]["weight"] = 40
    assert merged == expected
    assert APISIX.routes(ctx, {KEY: merged}) == Routes(60, 40)


def test_merge_reconcile_keeps_identity_and_weights() -> None:
    ctx = ctx_for()
    observed_obj = with_user_fields(canary_route(ctx, Routes(70, 30)))
    route = user_route()
    route["spec"]["http"][0]["match"]["hosts"] = ["new.example.com"]
    desired_obj = canary_route(ctx_for(route=route), Routes(100, 0))
    merged = APISIX.merge(ctx, observed_obj, desired_obj)
    assert merged["spec"]["http"][0]["match"]["hosts"] == ["new.example.com"]
    assert merged["metadata"]["uid"] == "canary-route-uid"
    assert merged["metadata"]["finalizers"] == ["example.com/keep"]
    assert merged["metadata"]["ownerReferences"] == [OWNER]
    assert merged["status"] == observed_obj["status"]
    assert APISIX.routes(ctx, {KEY: merged}) == Routes(70, 30)
    assert not APISIX.needs_update(ctx, merged, desired_obj)


def test_revert_writes_nothing() -> None:
    ctx = ctx_for()
    assert APISIX.revert(ctx, {KEY: canary_route(ctx, Routes(50, 50))}) == []
