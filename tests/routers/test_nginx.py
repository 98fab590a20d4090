"""NGINX ingress: the canary Ingress copied from spec.ingressRef, weights and A/B annotations, read-back,
the reconcile policy and the configuration errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import RouterCapabilities, Routes
from canarist.kube import resources
from canarist.routers.base import Reference, RouteContext, RouterConfigError, RoutesError, object_key
from canarist.routers.nginx import NGINX, header_match
from tests.workloads import podinfo
from tests.workloads.podinfo import OWNER, stored

P = "nginx.ingress.kubernetes.io"
INGRESS_REF = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def user_ingress() -> dict[str, Any]:
    """The tutorial's Ingress, as the API server returns it, with a second host and a foreign backend."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "uid": "ingress-uid",
            "resourceVersion": "42",
            "generation": 3,
            "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                f"{P}/proxy-body-size": "8m",
                f"{P}/canary": "true",
                f"{P}/canary-weight-total": "1000",
                LAST_APPLIED: '{"metadata":{}}',
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["app.example.com"], "secretName": "app-tls"}],
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "podinfo", "port": {"number": 80}}},
                            },
                            {
                                "path": "/static",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "assets", "port": {"name": "http"}}},
                            },
                        ]
                    },
                },
                {
                    "host": "www.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/api",
                                "pathType": "Exact",
                                "backend": {"service": {"name": "podinfo", "port": {"number": 80}}},
                            }
                        ]
                    },
                },
            ],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}},
    }


def nginx_canary(**kw: Any) -> Canary:
    spec = {"ingressRef": INGRESS_REF, **kw.pop("spec", {})}
    return podinfo.canary(provider="nginx", service={"port": 80, "targetPort": 9898}, spec=spec, **kw)


AB_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}, {"headers": {"cookie": {"exact": "canary"}}}]


def ctx_for(canary: Canary, ingress: dict[str, Any] | None = None, **kw: Any) -> RouteContext:
    base = RouteContext.from_canary(canary, **kw)
    found = user_ingress() if ingress is None else ingress
    return RouteContext(**{**base.__dict__, "references": {object_key(found): found}})


def canary_ingress(ctx: RouteContext, routes: Routes) -> dict[str, Any]:
    (obj,) = NGINX.desired(ctx, routes)
    return obj


def canary_annotations(obj: dict[str, Any], prefix: str = P) -> dict[str, str]:
    return {k: v for k, v in obj["metadata"]["annotations"].items() if k.startswith(f"{prefix}/canary")}


def test_declaration() -> None:
    assert NGINX.name == "nginx"
    assert NGINX.kinds == (resources.INGRESS,)
    assert NGINX.settings == frozenset({"ingress_annotations_prefix"})
    assert NGINX.capabilities == RouterCapabilities(
        weights=True, matches=True, mirroring=False, session_affinity=False
    )


def test_objects_and_references() -> None:
    ctx = ctx_for(nginx_canary())
    assert [(r.api_version, r.kind, r.name, r.namespace) for r in NGINX.objects(ctx)] == [
        ("networking.k8s.io/v1", "Ingress", "podinfo-canary", "test")
    ]
    assert NGINX.references(ctx) == [
        Reference("networking.k8s.io/v1", "Ingress", "podinfo", "test", path="spec.ingressRef")
    ]
    assert [r.key for r in NGINX.references(ctx)] == ["Ingress/podinfo"]


def test_the_canary_ingress_is_a_copy_of_the_referenced_one() -> None:
    obj = canary_ingress(ctx_for(nginx_canary()), Routes(100, 0))
    expected_spec = user_ingress()["spec"]
    expected_spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "podinfo-canary"
    expected_spec["rules"][1]["http"]["paths"][0]["backend"]["service"]["name"] = "podinfo-canary"
    assert obj == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "podinfo-canary",
            "namespace": "test",
            "labels": {"app": "podinfo"},
            "annotations": {
                "kubernetes.io/ingress.class": "nginx",
                f"{P}/proxy-body-size": "8m",
                f"{P}/canary": "true",
                f"{P}/canary-weight": "0",
            },
            "ownerReferences": [OWNER],
        },
        "spec": expected_spec,
    }
    # the foreign backend, hosts, TLS and class stay
    assert obj["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]["name"] == "assets"
    assert obj["spec"]["tls"] == [{"hosts": ["app.example.com"], "secretName": "app-tls"}]


def test_the_referenced_ingress_is_not_modified() -> None:
    ingress = user_ingress()
    canary_ingress(ctx_for(nginx_canary(), ingress), Routes(90, 10))
    assert ingress == user_ingress()


def test_no_owner_reference_across_clusters() -> None:
    obj = canary_ingress(ctx_for(nginx_canary(), set_owner_refs=False), Routes(100, 0))
    assert "ownerReferences" not in obj["metadata"]


@pytest.mark.parametrize(("weight", "text"), [(0, "0"), (5, "5"), (50, "50"), (100, "100")])
def test_weights(weight: int, text: str) -> None:
    obj = canary_ingress(ctx_for(nginx_canary()), Routes(100 - weight, weight))
    assert canary_annotations(obj) == {f"{P}/canary": "true", f"{P}/canary-weight": text}


def test_ab_header_exact_and_cookie() -> None:
    ctx = ctx_for(nginx_canary(match=AB_MATCH, iterations=10))
    assert canary_annotations(canary_ingress(ctx, Routes(0, 100))) == {
        f"{P}/canary": "true",
        f"{P}/canary-weight": "0",
        f"{P}/canary-by-header": "x-canary",
        f"{P}/canary-by-header-value": "insider",
        f"{P}/canary-by-cookie": "canary",
    }
    # back to the primary: the base annotations only
    assert canary_annotations(canary_ingress(ctx, Routes(100, 0))) == {
        f"{P}/canary": "true",
        f"{P}/canary-weight": "0",
    }


def test_ab_header_regex() -> None:
    match = [{"headers": {"user-agent": {"regex": ".*Firefox.*"}}}]
    ctx = ctx_for(nginx_canary(match=match, iterations=10))
    assert canary_annotations(canary_ingress(ctx, Routes(0, 100))) == {
        f"{P}/canary": "true",
        f"{P}/canary-weight": "0",
        f"{P}/canary-by-header": "user-agent",
        f"{P}/canary-by-header-pattern": ".*Firefox.*",
    }


def test_ab_cookie_only() -> None:
    ctx = ctx_for(nginx_canary(match=[{"headers": {"Cookie": {"exact": "beta"}}}], iterations=10))
    annotations = canary_annotations(canary_ingress(ctx, Routes(0, 100)))
    assert annotations[f"{P}/canary-by-cookie"] == "beta"
    assert f"{P}/canary-by-header" not in annotations


@pytest.mark.parametrize(
    ("match", "message"),
    [
        ([{"headers": {"x-a": {"exact": "1"}}}, {"headers": {"x-b": {"exact": "2"}}}], "one header"),
        ([{"headers": {"cookie": {"exact": "a"}}}, {"headers": {"cookie": {"exact": "b"}}}], "one cookie"),
        ([{"headers": {"x-a": {"prefix": "1"}}}], "exact value or regex"),
        ([{"headers": {"cookie": {"regex": "a.*"}}}], "cookie name"),
    ],
)
def test_matches_nginx_cannot_express(match: list[dict[str, Any]], message: str) -> None:
    ctx = ctx_for(nginx_canary(match=match, iterations=10))
    with pytest.raises(RouterConfigError, match=message) as error:
        NGINX.objects(ctx)
    assert str(error.value).startswith("spec.analysis.match")
    with pytest.raises(RouterConfigError, match=message):
        NGINX.desired(ctx, Routes(0, 100))


def test_header_match_dedupes_repeated_entries() -> None:
    canary = nginx_canary(match=AB_MATCH + AB_MATCH, iterations=10)
    analysis = canary.analysis()
    assert analysis is not None
    found = header_match(analysis.match)
    assert (found.header, found.value, found.cookie) == ("x-canary", "insider", "canary")


def test_custom_annotation_prefix() -> None:
    prefix = "custom.ingress.kubernetes.io"
    ingress = user_ingress()
    ingress["metadata"]["annotations"][f"{prefix}/canary-weight"] = "30"
    ctx = ctx_for(nginx_canary(), ingress, ingress_annotations_prefix=prefix)
    obj = canary_ingress(ctx, Routes(80, 20))
    annotations = obj["metadata"]["annotations"]
    assert annotations[f"{prefix}/canary"] == "true"
    assert annotations[f"{prefix}/canary-weight"] == "20"
    # the default prefix is then an ordinary user annotation
    assert annotations[f"{P}/canary"] == "true"
    assert f"{P}/canary-weight" not in annotations
    assert NGINX.routes(ctx, {"Ingress/podinfo-canary": obj}) == Routes(80, 20)
    with pytest.raises(RoutesError, match="no nginx"):
        NGINX.routes(ctx_for(nginx_canary()), {"Ingress/podinfo-canary": obj})


@pytest.mark.parametrize("routes", [Routes(100, 0), Routes(95, 5), Routes(50, 50), Routes(0, 100)])
def test_round_trip(routes: Routes) -> None:
    ctx = ctx_for(nginx_canary())
    obj = stored(canary_ingress(ctx, routes))
    assert NGINX.routes(ctx, {"Ingress/podinfo-canary": obj}) == routes


def test_round_trip_ab() -> None:
    ctx = ctx_for(nginx_canary(match=AB_MATCH, iterations=10))
    for routes in (Routes(0, 100), Routes(100, 0)):
        obj = stored(canary_ingress(ctx, routes))
        assert NGINX.routes(ctx, {"Ingress/podinfo-canary": obj}) == routes


def test_read_back_errors() -> None:
    ctx = ctx_for(nginx_canary())
    with pytest.raises(RoutesError, match="not found"):
        NGINX.routes(ctx, {})
    obj = canary_ingress(ctx, Routes(90, 10))
    missing = copy.deepcopy(obj)
    del missing["metadata"]["annotations"][f"{P}/canary-weight"]
    with pytest.raises(RoutesError, match=r"no nginx\.ingress\.kubernetes\.io/canary-weight"):
        NGINX.routes(ctx, {"Ingress/podinfo-canary": missing})
    for bad, message in (("ten", "not a number"), ("150", "outside 0..100")):
        broken = copy.deepcopy(obj)
        broken["metadata"]["annotations"][f"{P}/canary-weight"] = bad
        with pytest.raises(RoutesError, match=message):
            NGINX.routes(ctx, {"Ingress/podinfo-canary": broken})
    not_canary = copy.deepcopy(obj)
    del not_canary["metadata"]["annotations"][f"{P}/canary"]
    with pytest.raises(RoutesError, match="not a canary ingress"):
        NGINX.routes(ctx, {"Ingress/podinfo-canary": not_canary})


def test_missing_ingress_ref() -> None:
    canary = podinfo.canary(provider="nginx")
    ctx = RouteContext.from_canary(canary)
    for call in (NGINX.objects, NGINX.references):
        with pytest.raises(RouterConfigError, match=r"^spec.ingressRef: required for provider nginx$"):
            call(ctx)
    with pytest.raises(RouterConfigError, match=r"spec\.ingressRef: required"):
        NGINX.desired(ctx, Routes(100, 0))


def test_references_missing_from_the_context() -> None:
    ctx = RouteContext.from_canary(nginx_canary())
    with pytest.raises(RouterConfigError, match=r"spec.ingressRef: Ingress podinfo.test not found"):
        NGINX.desired(ctx, Routes(100, 0))


def test_backend_not_found() -> None:
    ingress = user_ingress()
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            path["backend"]["service"]["name"] = "other"
    with pytest.raises(RouterConfigError, match=r"^backend podinfo not found in ingress podinfo$"):
        NGINX.desired(ctx_for(nginx_canary(), ingress), Routes(100, 0))


def test_legacy_backend_shape_is_refused() -> None:
    ingress = user_ingress()
    ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"] = {"serviceName": "podinfo", "servicePort": 80}
    with pytest.raises(RouterConfigError, match="serviceName/servicePort"):
        NGINX.desired(ctx_for(nginx_canary(), ingress), Routes(100, 0))


def test_needs_update_ignores_the_routing_annotations() -> None:
    ctx = ctx_for(nginx_canary())
    observed_obj = stored(canary_ingress(ctx, Routes(70, 30)))
    assert not NGINX.needs_update(ctx, observed_obj, canary_ingress(ctx, Routes(100, 0)))
    ab_ctx = ctx_for(nginx_canary(match=AB_MATCH, iterations=10))
    assert not NGINX.needs_update(ab_ctx, observed_obj, canary_ingress(ab_ctx, Routes(0, 100)))
    # a changed user Ingress is propagated
    ingress = user_ingress()
    ingress["spec"]["rules"][0]["host"] = "new.example.com"
    assert NGINX.needs_update(
        ctx, observed_obj, canary_ingress(ctx_for(nginx_canary(), ingress), Routes(70, 30))
    )
    ingress = user_ingress()
    ingress["metadata"]["annotations"][f"{P}/proxy-body-size"] = "16m"
    assert NGINX.needs_update(
        ctx, observed_obj, canary_ingress(ctx_for(nginx_canary(), ingress), Routes(70, 30))
    )
    # the canary switch is structural
    lost = copy.deepcopy(observed_obj)
    del lost["metadata"]["annotations"][f"{P}/canary"]
    assert NGINX.needs_update(ctx, lost, canary_ingress(ctx, Routes(70, 30)))


def with_user_fields(obj: dict[str, Any]) -> dict[str, Any]:
    out = stored(obj, "11")
    out["metadata"]["uid"] = "canary-ingress-uid"
    out["metadata"]["finalizers"] = ["example.com/keep"]
    out["metadata"]["annotations"]["example.com/added-by-hand"] = "yes"
    out["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.2"}]}}
    return out


def test_merge_set_routes_changes_only_the_canary_annotations() -> None:
    ctx = ctx_for(nginx_canary())
    observed_obj = with_user_fields(canary_ingress(ctx, Routes(100, 0)))
    observed_obj["spec"]["rules"][0]["host"] = "drifted.example.com"
    merged = NGINX.merge(ctx, observed_obj, canary_ingress(ctx, Routes(60, 40)), set_routes=True)
    expected = copy.deepcopy(observed_obj)
    expected["metadata"]["annotations"][f"{P}/canary-weight"] = "40"
    assert merged == expected
    assert NGINX.routes(ctx, {"Ingress/podinfo-canary": merged}) == Routes(60, 40)

    ab_ctx = ctx_for(nginx_canary(match=AB_MATCH, iterations=10))
    ab = NGINX.merge(ab_ctx, merged, canary_ingress(ab_ctx, Routes(0, 100)), set_routes=True)
    assert canary_annotations(ab)[f"{P}/canary-weight"] == "0"
    assert NGINX.routes(ab_ctx, {"Ingress/podinfo-canary": ab}) == Routes(0, 100)
    back = NGINX.merge(ab_ctx, ab, canary_ingress(ab_ctx, Routes(100, 0)), set_routes=True)
    assert canary_annotations(back) == {f"{P}/canary": "true", f"{P}/canary-weight": "0"}
    assert back["metadata"]["annotations"]["example.com/added-by-hand"] == "yes"
    assert back["spec"] == observed_obj["spec"]


def test_merge_reconcile_keeps_identity_and_routing_state() -> None:
    ctx = ctx_for(nginx_canary())
    observed_obj = with_user_fields(canary_ingress(ctx, Routes(70, 30)))
    ingress = user_ingress()
    ingress["spec"]["rules"][0]["host"] = "new.example.com"
    desired_obj = canary_ingress(ctx_for(nginx_canary(), ingress), Routes(100, 0))
    merged = NGINX.merge(ctx, observed_obj, desired_obj)
    assert merged["spec"] == desired_obj["spec"]
    assert merged["metadata"]["uid"] == "canary-ingress-uid"
    assert merged["metadata"]["resourceVersion"] == "11"
    assert merged["metadata"]["finalizers"] == ["example.com/keep"]
    assert merged["status"] == observed_obj["status"]
    assert merged["metadata"]["ownerReferences"] == [OWNER]
    # the weight the observed object carries stays; the hand-added annotation follows the user's Ingress
    assert NGINX.routes(ctx, {"Ingress/podinfo-canary": merged}) == Routes(70, 30)
    assert "example.com/added-by-hand" not in merged["metadata"]["annotations"]
    assert merged["metadata"]["annotations"][f"{P}/canary"] == "true"
    assert not NGINX.needs_update(ctx, merged, desired_obj)


def test_revert_writes_nothing() -> None:
    ctx = ctx_for(nginx_canary())
    obj = canary_ingress(ctx, Routes(50, 50))
    assert NGINX.revert(ctx, {"Ingress/podinfo-canary": obj}) == []


def test_kubectl_record_is_not_copied() -> None:
    obj = canary_ingress(ctx_for(nginx_canary()), Routes(100, 0))
    assert LAST_APPLIED not in obj["metadata"]["annotations"]
    assert json.dumps(obj).count("podinfo-canary") == 3  # name + two renamed backends
