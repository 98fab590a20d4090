"""Istio DestinationRules and VirtualService: the podinfo objects, the strategic layouts, read-back, the
reconcile policy, takeover and revert."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.routers import registry
from canarist.routers.base import (
    AffinityCookies,
    RevertError,
    RouteContext,
    RouterConfigError,
    RoutesError,
    next_affinity_cookies,
    object_key,
)
from canarist.routers.istio import IstioRouter
from canarist.routers.takeover import ORIGINAL_CONFIGURATION
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, OWNER, stored

ISTIO = IstioRouter()


def ctx_for(canary: Canary, **kw: Any) -> RouteContext:
    return RouteContext.from_canary(canary, **kw)


def observed(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {object_key(o): o for o in objs}


def vs_of(canary: Canary, routes: Routes, **kw: Any) -> dict[str, Any]:
    return ISTIO.desired(ctx_for(canary, **kw), routes)[2]


def dest(host: str, weight: int, **extra: Any) -> dict[str, Any]:
    return {"destination": {"host": host}, "weight": weight, **extra}


def test_podinfo_objects() -> None:
    canary = podinfo.canary()
    dr_canary, dr_primary, vs = ISTIO.desired(ctx_for(canary), Routes(100, 0))
    assert dr_canary == {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "podinfo-canary", "namespace": "test", "ownerReferences": [OWNER]},
        "spec": {"host": "podinfo-canary", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
    }
    assert dr_primary == {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "podinfo-primary", "namespace": "test", "ownerReferences": [OWNER]},
        "spec": {"host": "podinfo-primary", "trafficPolicy": {"tls": {"mode": "DISABLE"}}},
    }
    assert vs == {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "labels": {},
            "annotations": FLUX,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "hosts": ["app.istio.example.com", "podinfo"],
            "gateways": ["public-gateway.istio-system.svc.cluster.local"],
            "http": [{"route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)]}],
        },
    }
    assert [r.key for r in ISTIO.objects(ctx_for(canary))] == [
        "DestinationRule/podinfo-canary",
        "DestinationRule/podinfo-primary",
        "VirtualService/podinfo",
    ]


def test_registry(without_knative: str) -> None:
    assert registry.get("istio").name == "istio"
    assert registry.get("kubernetes").name == "kubernetes"
    # a Flagger provider the registry lacks (this test's registry has no knative router)
    with pytest.raises(registry.UnknownProviderError, match="'knative' is not supported by canarist yet"):
        registry.get(without_knative)
    with pytest.raises(registry.UnknownProviderError, match="unknown provider 'nope'"):
        registry.get("nope")


def test_defaults_hosts_gateways_and_http_features() -> None:
    canary = podinfo.canary(
        service={
            "port": 9898,
            "hosts": ["*"],
            "match": [{"uri": {"prefix": "/api"}}],
            "rewrite": {"uri": "/", "authority": "x", "type": "ReplacePrefixMatch"},
            "timeout": "30s",
            "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"},
            "corsPolicy": {"allowOrigin": ["example.com"], "allowMethods": ["GET"]},
            "headers": {"request": {"add": {"x-a": "1"}}},
            "apex": {"labels": {"l": "1"}, "annotations": {"a": "2"}},
        }
    )
    vs = vs_of(canary, Routes(90, 10))
    assert vs["metadata"]["labels"] == {"l": "1"}
    assert vs["metadata"]["annotations"] == {"a": "2", **FLUX}
    assert vs["spec"] == {
        "hosts": ["*"],
        "gateways": ["mesh"],
        "http": [
            {
                "match": [{"uri": {"prefix": "/api"}}],
                "rewrite": {"uri": "/", "authority": "x"},
                "timeout": "30s",
                "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"},
                "corsPolicy": {"allowOrigin": ["example.com"], "allowMethods": ["GET"]},
                "headers": {"request": {"add": {"x-a": "1"}}},
                "route": [dest("podinfo-primary", 90), dest("podinfo-canary", 10)],
            }
        ],
    }


def test_destination_port_with_port_discovery_and_a_gateway() -> None:
    canary = podinfo.canary(
        service={
            "port": 9898,
            "portDiscovery": True,
            "gateways": ["public-gateway", "mesh"],
            "hosts": ["app"],
        }
    )
    route = vs_of(canary, Routes(100, 0))["spec"]["http"][0]["route"]
    assert route[0] == {"destination": {"host": "podinfo-primary", "port": {"number": 9898}}, "weight": 100}
    mesh_first = podinfo.canary(service={"port": 9898, "portDiscovery": True, "gateways": ["mesh"]})
    assert "port" not in vs_of(mesh_first, Routes(100, 0))["spec"]["http"][0]["route"][0]["destination"]


def test_delegation() -> None:
    canary = podinfo.canary(service={"port": 9898, "delegation": True, "portDiscovery": True})
    vs = vs_of(canary, Routes(100, 0))
    assert vs["spec"]["hosts"] == []
    assert vs["spec"]["gateways"] == []
    assert vs["spec"]["http"][0]["route"][1]["destination"] == {
        "host": "podinfo-canary",
        "port": {"number": 9898},
    }
    with pytest.raises(RouterConfigError, match="cannot have hosts and gateways when delegation enabled"):
        vs_of(podinfo.canary(service={"port": 9898, "delegation": True, "hosts": ["a"]}), Routes(100, 0))


AB_ANALYSIS = {
    "interval": "15s",
    "threshold": 10,
    "iterations": 10,
    "match": [
        {"headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}},
        {"headers": {"user-agent": {"regex": ".*Firefox.*"}}, "sourceLabels": {"app": "tester"}},
    ],
}


def test_ab_cross_product() -> None:
    canary = podinfo.canary(
        service={
            "port": 9898,
            "match": [{"uri": {"prefix": "/"}}, {"uri": {"prefix": "/api"}, "method": {"exact": "GET"}}],
        },
        analysis=AB_ANALYSIS,
    )
    http = vs_of(canary, Routes(0, 100))["spec"]["http"]
    insider = {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}
    firefox = {"user-agent": {"regex": ".*Firefox.*"}}
    assert http == [
        {
            "match": [
                {"uri": {"prefix": "/"}, "headers": insider},
                {"uri": {"prefix": "/api"}, "method": {"exact": "GET"}, "headers": insider},
                {"uri": {"prefix": "/"}, "headers": firefox, "sourceLabels": {"app": "tester"}},
                {
                    "uri": {"prefix": "/api"},
                    "method": {"exact": "GET"},
                    "headers": firefox,
                    "sourceLabels": {"app": "tester"},
                },
            ],
            "route": [dest("podinfo-primary", 0), dest("podinfo-canary", 100)],
        },
        {
            "match": [{"uri": {"prefix": "/"}}, {"uri": {"prefix": "/api"}, "method": {"exact": "GET"}}],
            "route": [dest("podinfo-primary", 0)],
        },
    ]
    # read back: the route carrying the canary host
    assert ISTIO.routes(ctx_for(canary), observed(ISTIO.desired(ctx_for(canary), Routes(0, 100)))) == Routes(
        0, 100
    )


def test_ab_without_service_match_uses_analysis_match_as_is() -> None:
    canary = podinfo.canary(analysis=AB_ANALYSIS)
    http = vs_of(canary, Routes(100, 0))["spec"]["http"]
    assert http[0]["match"] == AB_ANALYSIS["match"]
    assert http[1] == {"route": [dest("podinfo-primary", 100)]}


def test_tcp() -> None:
    canary = podinfo.canary(
        service={"port": 9000, "appProtocol": "TCP", "match": [{"port": 9000}], "timeout": "5s"}
    )
    spec = vs_of(canary, Routes(80, 20))["spec"]
    assert spec == {
        "hosts": ["podinfo"],
        "gateways": ["mesh"],
        "tcp": [
            {"match": [{"port": 9000}], "route": [dest("podinfo-primary", 80), dest("podinfo-canary", 20)]}
        ],
    }
    ctx = ctx_for(canary)
    assert ISTIO.routes(ctx, observed(ISTIO.desired(ctx, Routes(80, 20)))) == Routes(80, 20)


def test_mirroring() -> None:
    canary = podinfo.canary(
        analysis={"interval": "30s", "threshold": 5, "stepWeight": 10, "mirror": True, "mirrorWeight": 50}
    )
    http = vs_of(canary, Routes(100, 0, mirrored=True))["spec"]["http"]
    assert http == [
        {
            "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)],
            "mirror": {"host": "podinfo-canary"},
            "mirrorPercentage": {"value": 50.0},
        }
    ]
    ctx = ctx_for(canary)
    assert ISTIO.routes(ctx, observed(ISTIO.desired(ctx, Routes(100, 0, True)))) == Routes(100, 0, True)
    no_weight = podinfo.canary(analysis={"interval": "30s", "threshold": 5, "iterations": 5, "mirror": True})
    assert "mirrorPercentage" not in vs_of(no_weight, Routes(100, 0, True))["spec"]["http"][0]


AFFINITY = {
    "interval": "1m",
    "threshold": 5,
    "stepWeight": 10,
    "sessionAffinity": {
        "cookieName": "flagger-cookie",
        "primaryCookieName": "primary-cookie",
        "maxAge": 21600,
        "path": "/",
        "sameSite": "Strict",
        "secure": True,
        "httpOnly": True,
    },
}


def test_session_affinity_cookies_and_rules() -> None:
    canary = podinfo.canary(service={"port": 9898, "match": [{"uri": {"prefix": "/"}}]}, analysis=AFFINITY)
    cookies = next_affinity_cookies(
        canary, 10, AffinityCookies(), fresh_canary="abcdefghij", fresh_primary="klmnopqrst"
    )
    assert cookies == AffinityCookies(canary="flagger-cookie=abcdefghij", primary="primary-cookie=klmnopqrst")
    ctx = ctx_for(canary, cookies=cookies)
    http = ISTIO.desired(ctx, Routes(90, 10))[2]["spec"]["http"]
    assert http == [
        {
            "match": [
                {"uri": {"prefix": "/"}, "headers": {"Cookie": {"regex": ".*flagger-cookie.*abcdefghij.*"}}}
            ],
            "route": [dest("podinfo-primary", 0), dest("podinfo-canary", 100)],
        },
        {
            "match": [
                {"uri": {"prefix": "/"}, "headers": {"Cookie": {"regex": ".*primary-cookie.*klmnopqrst.*"}}}
            ],
            "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)],
        },
        {
            "match": [{"uri": {"prefix": "/"}}],
            "route": [
                dest(
                    "podinfo-primary",
                    90,
                    headers={
                        "response": {
                            "add": {
                                "Set-Cookie": "primary-cookie=klmnopqrst; Max-Age=60; HttpOnly; Path=/; "
                                "SameSite=Strict; Secure"
                            }
                        }
                    },
                ),
                dest(
                    "podinfo-canary",
                    10,
                    headers={
                        "response": {
                            "add": {
                                "Set-Cookie": "flagger-cookie=abcdefghij; Max-Age=21600; HttpOnly; Path=/; "
                                "SameSite=Strict; Secure"
                            }
                        }
                    },
                ),
            ],
        },
    ]
    observed_objs = observed(ISTIO.desired(ctx, Routes(90, 10)))
    assert ISTIO.routes(ctx, observed_objs) == Routes(90, 10)
    # the cookie survives further steps
    assert next_affinity_cookies(canary, 20, cookies, fresh_canary="zzz", fresh_primary="yyy") == cookies

    # back to 0: the canary cookie becomes the previous one and is expired
    after = next_affinity_cookies(canary, 0, cookies, fresh_canary="zzz", fresh_primary="yyy")
    assert after == AffinityCookies(
        canary="", primary="primary-cookie=klmnopqrst", previous="flagger-cookie=abcdefghij"
    )
    ctx0 = ctx_for(canary, cookies=after)
    http0 = ISTIO.desired(ctx0, Routes(100, 0))[2]["spec"]["http"]
    assert http0 == [
        {
            "match": [
                {"uri": {"prefix": "/"}, "headers": {"Cookie": {"regex": ".*flagger-cookie.*abcdefghij.*"}}}
            ],
            "headers": {"response": {"add": {"Set-Cookie": "flagger-cookie=abcdefghij; Max-Age=-1"}}},
            "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)],
        },
        {
            "match": [{"uri": {"prefix": "/"}}],
            "route": [dest("podinfo-primary", 100), dest("podinfo-canary", 0)],
        },
    ]
    assert ISTIO.routes(ctx0, observed(ISTIO.desired(ctx0, Routes(100, 0)))) == Routes(100, 0)
    # the reconcile policy ignores the cookie rules and destination headers
    plain = ISTIO.desired(ctx_for(canary, cookies=AffinityCookies()), Routes(100, 0))[2]
    assert not ISTIO.needs_update(ctx, observed_objs["VirtualService/podinfo"], plain)


@pytest.mark.parametrize(
    "routes", [Routes(100, 0), Routes(90, 10), Routes(50, 50), Routes(0, 100), Routes(100, 0, mirrored=True)]
)
def test_round_trip(routes: Routes) -> None:
    canary = podinfo.canary()
    ctx = ctx_for(canary)
    assert ISTIO.routes(ctx, observed(ISTIO.desired(ctx, routes))) == routes


def test_routes_errors() -> None:
    ctx = ctx_for(podinfo.canary())
    with pytest.raises(RoutesError, match="query error"):
        ISTIO.routes(ctx, {})
    vs = ISTIO.desired(ctx, Routes(100, 0))[2]
    vs["spec"]["http"] = [{"route": [dest("somewhere-else", 100)]}]
    with pytest.raises(RoutesError) as err:
        ISTIO.routes(ctx, observed([vs]))
    assert (
        str(err.value)
        == "VirtualService podinfo.test does not contain routes for podinfo-primary and podinfo-canary"
    )


def test_needs_update_ignores_weights_and_mirror() -> None:
    canary = podinfo.canary(
        analysis={"interval": "30s", "threshold": 5, "stepWeight": 10, "mirrorWeight": 20}
    )
    ctx = ctx_for(canary)
    current = ISTIO.desired(ctx, Routes(60, 40, mirrored=True))
    baseline = ISTIO.desired(ctx, Routes(100, 0))
    for obs, des in zip(current, baseline, strict=True):
        assert not ISTIO.needs_update(ctx, obs, des)
    changed = ctx_for(podinfo.canary(service={"port": 9898, "timeout": "10s"}))
    assert ISTIO.needs_update(changed, current[2], ISTIO.desired(changed, Routes(100, 0))[2])
    new_policy = ctx_for(
        podinfo.canary(service={"port": 9898, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}})
    )
    assert ISTIO.needs_update(new_policy, current[0], ISTIO.desired(new_policy, Routes(100, 0))[0])


def test_set_routes_merge_only_touches_routes() -> None:
    ctx = ctx_for(podinfo.canary())
    vs = ISTIO.desired(ctx, Routes(100, 0))[2]
    vs["metadata"]["resourceVersion"] = "3"
    vs["metadata"]["annotations"] = {"keep": "me"}
    written = ISTIO.merge(ctx, vs, ISTIO.desired(ctx, Routes(95, 5))[2], set_routes=True)
    assert written["metadata"] == vs["metadata"]
    # a reconcile update of a VirtualService the canary owns writes no backup annotation
    updated = ISTIO.merge(ctx, vs, ISTIO.desired(ctx, Routes(95, 5))[2])
    assert updated["metadata"]["annotations"] == FLUX
    assert written["spec"]["http"][0]["route"] == [dest("podinfo-primary", 95), dest("podinfo-canary", 5)]
    dr = ISTIO.desired(ctx, Routes(100, 0))[0]
    assert ISTIO.merge(ctx, dr, dr, set_routes=True) == dr


USER_VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1beta1",
    "kind": "VirtualService",
    "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "77", "labels": {"owner": "me"}},
    "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo"}}]}]},
}


def test_takeover_stores_original_configuration_and_revert_restores_it() -> None:
    ctx = ctx_for(podinfo.canary())
    user_vs = copy.deepcopy(USER_VS)
    desired = ISTIO.desired(ctx, Routes(100, 0))[2]
    assert ISTIO.needs_update(ctx, user_vs, desired)
    taken = ISTIO.merge(ctx, user_vs, desired)
    assert taken["metadata"]["resourceVersion"] == "77"
    assert "ownerReferences" not in taken["metadata"]  # a taken-over VS keeps its owners
    assert "labels" not in taken["metadata"]  # no apex labels: none written, as the API server keeps it
    assert {k: taken["metadata"]["annotations"][k] for k in FLUX} == FLUX
    stored = taken["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
    assert json.loads(stored) == USER_VS["spec"]
    assert taken["spec"] == desired["spec"]
    # a later update keeps the first backup
    ctx2 = ctx_for(podinfo.canary(service={"port": 9898, "timeout": "3s"}))
    again = ISTIO.merge(ctx2, taken, ISTIO.desired(ctx2, Routes(100, 0))[2])
    assert again["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"] == stored
    reverted = ISTIO.revert(ctx, observed([again]))
    assert len(reverted) == 1
    assert reverted[0]["spec"] == USER_VS["spec"]


def test_revert_from_kubectl_annotation_and_errors() -> None:
    ctx = ctx_for(podinfo.canary())
    user_vs = copy.deepcopy(USER_VS)
    user_vs["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService", "spec": USER_VS["spec"]}
        )
    }
    taken = ISTIO.merge(ctx, user_vs, ISTIO.desired(ctx, Routes(100, 0))[2])
    assert "flagger.kubernetes.io/original-configuration" not in taken["metadata"]["annotations"]
    assert ISTIO.revert(ctx, observed([taken]))[0]["spec"] == USER_VS["spec"]
    assert ISTIO.revert(ctx, {}) == []
    bare = ISTIO.desired(ctx, Routes(100, 0))[2]
    with pytest.raises(RevertError) as err:
        ISTIO.revert(ctx, observed([bare]))
    assert str(err.value) == "VirtualService podinfo.test original configuration not found, unable to revert"


def test_reconcile_of_an_unchanged_virtual_service_writes_nothing() -> None:
    canary = podinfo.canary(service={"port": 9898, "apex": {"annotations": {"a": "1"}}})
    ctx = ctx_for(canary)
    for routes in (Routes(100, 0), Routes(70, 30, mirrored=True)):
        desired = ISTIO.desired(ctx, routes)[2]
        assert desired["metadata"]["annotations"] == {"a": "1", **FLUX}
        written = stored(desired)
        assert "labels" not in written["metadata"]
        assert not ISTIO.needs_update(ctx, written, desired)
        assert ISTIO.merge(ctx, written, desired) == written
    # taken over from the user: the second reconcile computes the first one's result
    taken = stored(ISTIO.merge(ctx, copy.deepcopy(USER_VS), ISTIO.desired(ctx, Routes(100, 0))[2]))
    desired = ISTIO.desired(ctx, Routes(100, 0))[2]
    assert not ISTIO.needs_update(ctx, taken, desired)
    assert ISTIO.merge(ctx, taken, desired) == taken


def test_virtual_service_without_the_flux_opt_out_gets_it_and_keeps_its_routes() -> None:
    ctx = ctx_for(podinfo.canary())
    written = stored(ISTIO.desired(ctx, Routes(60, 40))[2])
    del written["metadata"]["annotations"]
    desired = ISTIO.desired(ctx, Routes(100, 0))[2]
    assert ISTIO.needs_update(ctx, written, desired)
    updated = ISTIO.merge(ctx, written, desired)
    assert updated["metadata"]["annotations"] == FLUX
    assert updated["spec"] == written["spec"]  # the weights of the running analysis stay
    assert not ISTIO.needs_update(ctx, updated, desired)


def test_revert_removes_the_flux_opt_out_unless_the_user_had_it() -> None:
    ctx = ctx_for(podinfo.canary())
    desired = ISTIO.desired(ctx, Routes(100, 0))[2]
    taken = stored(ISTIO.merge(ctx, copy.deepcopy(USER_VS), desired))
    reverted = ISTIO.revert(ctx, observed([taken]))[0]
    assert not set(FLUX) & set(reverted["metadata"].get("annotations") or {})
    assert ORIGINAL_CONFIGURATION not in (reverted["metadata"].get("annotations") or {})
    # recorded by kubectl: the user's own value comes back
    user_vs = copy.deepcopy(USER_VS)
    user_vs["metadata"]["annotations"] = {"helm.toolkit.fluxcd.io/driftDetection": "disabled"}
    user_vs["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json.dumps(
        {
            "metadata": {"annotations": {"helm.toolkit.fluxcd.io/driftDetection": "disabled"}},
            "spec": USER_VS["spec"],
        }
    )
    taken = stored(ISTIO.merge(ctx, user_vs, desired))
    reverted = ISTIO.revert(ctx, observed([taken]))[0]
    assert reverted["spec"] == USER_VS["spec"]
    assert reverted["metadata"]["annotations"] == user_vs["metadata"]["annotations"]
