"""Gateway API HTTPRoute (v1 and v1beta1): the podinfo route, the strategic layouts, the parent readiness
check of the read-back, the reconcile policy, takeover and revert."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.kube.resources import ResourceKind
from canarist.routers.base import (
    AffinityCookies,
    RevertError,
    RouteContext,
    Router,
    RouterConfigError,
    RoutesError,
    next_affinity_cookies,
    object_key,
)
from canarist.routers.gatewayapi import (
    API_VERSION_V1,
    API_VERSION_V1BETA1,
    GATEWAYAPI_V1,
    GATEWAYAPI_V1BETA1,
    HTTP_ROUTE_V1,
    HTTP_ROUTE_V1BETA1,
    GatewayAPIRouter,
)
from canarist.routers.kubernetes import KUBERNETES
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, OWNER, stored

V1 = GATEWAYAPI_V1
GATEWAY = {"name": "gateway", "namespace": "istio-ingress"}
PREFIX_ROOT = {"path": {"type": "PathPrefix", "value": "/"}}
ORIGINAL = "flagger.kubernetes.io/original-configuration"


def service(**extra: Any) -> dict[str, Any]:
    return {"port": 9898, "gatewayRefs": [GATEWAY], "hosts": ["www.example.com"], **extra}


def canary(**overrides: Any) -> Canary:
    overrides.setdefault("service", service())
    return podinfo.canary(provider="gatewayapi:v1", **overrides)


def ctx_for(c: Canary, **kw: Any) -> RouteContext:
    return RouteContext.from_canary(c, **kw)


def observed(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {object_key(o): o for o in objs}


def route_of(c: Canary, routes: Routes, router: GatewayAPIRouter = V1, **kw: Any) -> dict[str, Any]:
    [route] = router.desired(ctx_for(c, **kw), routes)
    return route


def rules_of(c: Canary, routes: Routes, router: GatewayAPIRouter = V1, **kw: Any) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = route_of(c, routes, router, **kw)["spec"]["rules"]
    return rules


def backend(name: str, weight: int, **extra: Any) -> dict[str, Any]:
    return {"group": "", "kind": "Service", "name": name, "port": 9898, "weight": weight, **extra}


def accepted(
    route: dict[str, Any], *, generation: int = 2, observed_generation: int = 2, status: str = "True"
) -> dict[str, Any]:
    """``route`` as the API server holds it once every parent's controller reported on it."""
    out = stored(route)
    out["metadata"]["generation"] = generation
    out["status"] = {
        "parents": [
            {
                "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", **ref},
                "controllerName": "istio.io/gateway-controller",
                "conditions": [
                    {"type": "Accepted", "status": status, "observedGeneration": observed_generation},
                    {"type": "ResolvedRefs", "status": "True", "observedGeneration": observed_generation},
                ],
            }
            for ref in route["spec"]["parentRefs"]
        ]
    }
    return out


def read(c: Canary, routes: Routes, router: GatewayAPIRouter = V1, **kw: Any) -> Routes:
    ctx = ctx_for(c, **kw)
    return router.routes(ctx, observed([accepted(route_of(c, routes, router, **kw))]))


# ---------------------------------------------------------------------------------------------- identity


def test_declaration() -> None:
    routers: list[Router] = [GATEWAYAPI_V1, GATEWAYAPI_V1BETA1]
    assert [r.name for r in routers] == ["gatewayapi:v1", "gatewayapi:v1beta1"]
    expected = ResourceKind(
        "gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", status_subresource=True
    )
    assert expected == HTTP_ROUTE_V1
    assert HTTP_ROUTE_V1BETA1.api_version == API_VERSION_V1BETA1 == "gateway.networking.k8s.io/v1beta1"
    assert GATEWAYAPI_V1.kinds == (HTTP_ROUTE_V1,)
    assert GATEWAYAPI_V1BETA1.kinds == (HTTP_ROUTE_V1BETA1,)
    for r in routers:
        caps = r.capabilities
        assert (caps.weights, caps.matches, caps.mirroring, caps.session_affinity) == (True, True, True, True)
        assert r.settings == frozenset()
    ctx = ctx_for(canary())
    assert [(o.api_version, o.key, o.namespace) for o in V1.objects(ctx)] == [
        (API_VERSION_V1, "HTTPRoute/podinfo", "test")
    ]
    assert GATEWAYAPI_V1BETA1.objects(ctx)[0].api_version == "gateway.networking.k8s.io/v1beta1"
    assert V1.references(ctx) == []
    with pytest.raises(ValueError, match="unknown Gateway API version 'v2'"):
        GatewayAPIRouter("v2")


@pytest.mark.parametrize("router", [GATEWAYAPI_V1, GATEWAYAPI_V1BETA1])
def test_missing_gateway_refs(router: GatewayAPIRouter) -> None:
    ctx = ctx_for(canary(service={"port": 9898}))
    with pytest.raises(RouterConfigError) as err:
        router.objects(ctx)
    assert str(err.value) == (
        f"spec.service.gatewayRefs: at least one Gateway is required for provider {router.name}"
    )
    with pytest.raises(RouterConfigError, match=r"^spec\.service\.gatewayRefs: "):
        router.desired(ctx, Routes(100, 0))


# ---------------------------------------------------------------------------------------------- canary


def test_podinfo_route() -> None:
    route = route_of(canary(), Routes(100, 0))
    assert route == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "labels": {},
            "annotations": FLUX,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "parentRefs": [{"name": "gateway", "namespace": "istio-ingress"}],
            "hostnames": ["www.example.com"],
            "rules": [
                {
                    "matches": [PREFIX_ROOT],
                    "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)],
                }
            ],
        },
    }
    assert "ownerReferences" not in route_of(canary(), Routes(100, 0), set_owner_refs=False)["metadata"]
    no_hosts = canary(service={"port": 9898, "gatewayRefs": [GATEWAY]})
    assert "hostnames" not in route_of(no_hosts, Routes(100, 0))["spec"]


def test_service_features_v1() -> None:
    c = canary(
        service=service(
            gatewayRefs=[
                {"name": "gw", "namespace": "ingress", "sectionName": "https", "port": 443},
                {"name": "internal", "group": "gateway.networking.k8s.io", "kind": "Gateway"},
            ],
            match=[
                {"uri": {"prefix": "/api"}, "method": {"exact": "GET"}},
                {
                    "uri": {"regex": "^/v[0-9]+/.*"},
                    "headers": {"x-user": {"exact": "qa"}, "x-agent": {"regex": ".*Firefox.*"}},
                    "queryParams": {"beta": {"exact": "1"}},
                },
                {"uri": {"exact": "/healthz"}},
            ],
            headers={
                "request": {
                    "add": {"x-b": "2", "x-a": "1"},
                    "set": {"x-z": "z", "x-y": "y"},
                    "remove": ["x-r"],
                },
                "response": {"add": {"x-resp": "v"}},
            },
            rewrite={"uri": "/", "authority": "backend.example.com", "type": "ReplacePrefixMatch"},
            mirror=[{"backendRef": {"name": "shadow", "port": 8080}}],
            corsPolicy={
                "allowOrigin": ["https://a.example.com"],
                "allowOrigins": [{"exact": "https://b.example.com"}],
                "allowMethods": ["GET", "POST"],
                "allowHeaders": ["x-a"],
                "exposeHeaders": ["x-e"],
                "maxAge": "24h",
                "allowCredentials": True,
            },
            timeout="30s",
            backendTimeout="10s",
            apex={
                "labels": {"team": "a", "kustomize.toolkit.fluxcd.io/name": "x"},
                "annotations": {"a": "2"},
            },
        )
    )
    route = route_of(c, Routes(90, 10))
    assert route["metadata"]["labels"] == {"team": "a"}
    assert route["metadata"]["annotations"] == {"a": "2", **FLUX}
    spec = route["spec"]
    assert spec["parentRefs"] == [
        {"name": "gw", "namespace": "ingress", "sectionName": "https", "port": 443},
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "internal"},
    ]
    assert spec["rules"] == [
        {
            "matches": [
                {"path": {"type": "PathPrefix", "value": "/api"}, "method": "GET"},
                {
                    "path": {"type": "RegularExpression", "value": "^/v[0-9]+/.*"},
                    "headers": [
                        {"name": "x-user", "type": "Exact", "value": "qa"},
                        {"name": "x-agent", "type": "RegularExpression", "value": ".*Firefox.*"},
                    ],
                    "queryParams": [{"name": "beta", "type": "Exact", "value": "1"}],
                },
                {"path": {"type": "Exact", "value": "/healthz"}},
            ],
            "filters": [
                {
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {
                        "add": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}],
                        "set": [{"name": "x-y", "value": "y"}, {"name": "x-z", "value": "z"}],
                        "remove": ["x-r"],
                    },
                },
                {
                    "type": "ResponseHeaderModifier",
                    "responseHeaderModifier": {"add": [{"name": "x-resp", "value": "v"}]},
                },
                {
                    "type": "URLRewrite",
                    "urlRewrite": {
                        "hostname": "backend.example.com",
                        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"},
                    },
                },
                {
                    "type": "CORS",
                    "cors": {
                        "allowOrigins": ["https://a.example.com", "https://b.example.com"],
                        "allowMethods": ["GET", "POST"],
                        "allowHeaders": ["x-a"],
                        "exposeHeaders": ["x-e"],
                        "maxAge": 86400,
                        "allowCredentials": True,
                    },
                },
                {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "shadow", "port": 8080}}},
            ],
            "backendRefs": [backend("podinfo-primary", 90), backend("podinfo-canary", 10)],
            "timeouts": {"request": "30s", "backendRequest": "10s"},
        }
    ]


def test_rewrite_defaults_to_full_path() -> None:
    rules = rules_of(canary(service=service(rewrite={"uri": "/new"})), Routes(100, 0))
    assert rules[0]["filters"] == [
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/new"}}}
    ]


def test_v1beta1_has_no_timeouts_and_no_cors() -> None:
    c = canary(
        service=service(timeout="30s", backendTimeout="5s", corsPolicy={"allowOrigin": ["*"], "maxAge": "1m"})
    )
    v1_rule = rules_of(c, Routes(100, 0))[0]
    assert v1_rule["timeouts"] == {"request": "30s", "backendRequest": "5s"}
    assert v1_rule["filters"] == [{"type": "CORS", "cors": {"allowOrigins": ["*"], "maxAge": 60}}]
    route = route_of(c, Routes(100, 0), GATEWAYAPI_V1BETA1)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
    assert route["spec"]["rules"] == [
        {
            "matches": [PREFIX_ROOT],
            "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)],
        }
    ]


@pytest.mark.parametrize(
    ("match", "path"),
    [
        ({"uri": {"suffix": ".js"}}, "spec.service.match[0].uri"),
        ({"method": {"regex": "GET|POST"}}, "spec.service.match[0].method"),
        ({"headers": {"x-user": {"prefix": "qa"}}}, "spec.service.match[0].headers.x-user"),
        ({"queryParams": {"q": {"suffix": "x"}}}, "spec.service.match[0].queryParams.q"),
        ({"sourceLabels": {"app": "tester"}}, "spec.service.match[0].sourceLabels"),
        ({"authority": {"exact": "a"}}, "spec.service.match[0].authority"),
    ],
)
def test_unsupported_match_selectors_are_refused_with_their_path(match: dict[str, Any], path: str) -> None:
    ctx = ctx_for(canary(service=service(match=[{"uri": {"prefix": "/"}}, match])))
    with pytest.raises(RouterConfigError) as err:
        V1.objects(ctx)
    assert str(err.value).startswith(f"{path.replace('[0]', '[1]')}: Gateway API doesn't support")


def test_other_config_errors() -> None:
    bad_origin = canary(service=service(corsPolicy={"allowOrigins": [{"prefix": "https://"}]}))
    with pytest.raises(RouterConfigError, match=r"^spec\.service\.corsPolicy\.allowOrigins\[0\]: "):
        V1.objects(ctx_for(bad_origin))
    # v1beta1 has no CORS filter, so nothing to refuse there
    assert GATEWAYAPI_V1BETA1.objects(ctx_for(bad_origin))
    bad_type = canary(service=service(rewrite={"uri": "/", "type": "Sideways"}))
    with pytest.raises(RouterConfigError, match=r"^spec\.service\.rewrite\.type: "):
        V1.objects(ctx_for(bad_type))
    ab = canary(analysis={**AB_ANALYSIS, "match": [{"headers": {"x": {"suffix": "y"}}}]})
    with pytest.raises(RouterConfigError, match=r"^spec\.analysis\.match\[0\]\.headers\.x: "):
        V1.objects(ctx_for(ab))


@pytest.mark.parametrize(
    "routes", [Routes(100, 0), Routes(95, 5), Routes(50, 50), Routes(0, 100), Routes(100, 0, mirrored=True)]
)
@pytest.mark.parametrize("router", [GATEWAYAPI_V1, GATEWAYAPI_V1BETA1])
def test_round_trip(routes: Routes, router: GatewayAPIRouter) -> None:
    assert read(canary(), routes, router) == routes


# ---------------------------------------------------------------------------------------------- A/B


AB_ANALYSIS: dict[str, Any] = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
        {"queryParams": {"canary": {"exact": "true"}}},
    ],
}


def test_ab_testing_headers_cookies_and_query_params() -> None:
    c = canary(
        service=service(
            match=[{"uri": {"prefix": "/api"}, "headers": {"x-tenant": {"exact": "a"}}}], timeout="5s"
        ),
        analysis=AB_ANALYSIS,
    )
    api = {"type": "PathPrefix", "value": "/api"}
    rules = rules_of(c, Routes(0, 100))
    assert rules == [
        {
            "matches": [
                {"path": api, "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}]},
                {
                    "path": api,
                    "headers": [
                        {
                            "name": "cookie",
                            "type": "RegularExpression",
                            "value": "^(.*?;)?(canary=always)(;.*)?$",
                        }
                    ],
                },
                {
                    "path": api,
                    "headers": [{"name": "x-tenant", "type": "Exact", "value": "a"}],
                    "queryParams": [{"name": "canary", "type": "Exact", "value": "true"}],
                },
            ],
            "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)],
            "timeouts": {"request": "5s"},
        },
        {
            "matches": [{"path": api, "headers": [{"name": "x-tenant", "type": "Exact", "value": "a"}]}],
            "backendRefs": [backend("podinfo-primary", 100)],
            "timeouts": {"request": "5s"},
        },
    ]
    # read back from the rule with both backends, not the default rule
    assert read(c, Routes(0, 100)) == Routes(0, 100)
    assert read(c, Routes(100, 0)) == Routes(100, 0)


def test_ab_without_service_match_uses_the_default_path() -> None:
    rules = rules_of(canary(analysis=AB_ANALYSIS), Routes(100, 0))
    assert rules[0]["matches"][0] == {
        "path": {"type": "PathPrefix", "value": "/"},
        "headers": [{"name": "x-canary", "type": "Exact", "value": "insider"}],
    }
    assert rules[1] == {"matches": [PREFIX_ROOT], "backendRefs": [backend("podinfo-primary", 100)]}


# ---------------------------------------------------------------------------------------------- blue/green, mirror


BLUE_GREEN: dict[str, Any] = {"interval": "30s", "threshold": 2, "iterations": 10}


def test_blue_green_moves_all_traffic_at_once() -> None:
    c = canary(analysis={**BLUE_GREEN, "mirror": True})
    assert rules_of(c, Routes(100, 0))[0]["backendRefs"] == [
        backend("podinfo-primary", 100),
        backend("podinfo-canary", 0),
    ]
    assert rules_of(c, Routes(0, 100))[0]["backendRefs"] == [
        backend("podinfo-primary", 0),
        backend("podinfo-canary", 100),
    ]
    assert read(c, Routes(0, 100)) == Routes(0, 100)
    # the kubernetes provider runs the same blue/green without any routing object
    k8s = podinfo.canary(provider="kubernetes", analysis=BLUE_GREEN)
    assert KUBERNETES.desired(ctx_for(k8s), Routes(100, 0)) == []
    assert KUBERNETES.routes(ctx_for(k8s, iterations=0), {}) == Routes(100, 0)
    assert KUBERNETES.routes(ctx_for(k8s, iterations=1), {}) == Routes(0, 100)


def test_mirroring_adds_a_request_mirror_to_the_canary() -> None:
    c = canary(
        service=service(headers={"request": {"set": {"x-a": "1"}}}), analysis={**BLUE_GREEN, "mirror": True}
    )
    rule = rules_of(c, Routes(100, 0, mirrored=True))[0]
    assert rule["filters"] == [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-a", "value": "1"}]}},
        {
            "type": "RequestMirror",
            "requestMirror": {
                "backendRef": {"group": "", "kind": "Service", "name": "podinfo-canary", "port": 9898}
            },
        },
    ]
    assert rule["backendRefs"] == [backend("podinfo-primary", 100), backend("podinfo-canary", 0)]
    assert read(c, Routes(100, 0, mirrored=True)) == Routes(100, 0, mirrored=True)
    assert read(c, Routes(100, 0)) == Routes(100, 0, mirrored=False)
    # a mirror of the user's own (spec.service.mirror) is not the canary mirror
    own = canary(service=service(mirror=[{"backendRef": {"name": "shadow", "port": 80}}]))
    assert read(own, Routes(100, 0)) == Routes(100, 0, mirrored=False)


# ---------------------------------------------------------------------------------------------- session affinity


AFFINITY: dict[str, Any] = {
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
COOKIE_ATTRS = "; HttpOnly; Path=/; SameSite=Strict; Secure"


def cookie_match(name: str, value: str, path: str = "/api") -> dict[str, Any]:
    return {
        "path": {"type": "PathPrefix", "value": path},
        "headers": [{"name": "Cookie", "type": "RegularExpression", "value": f".*{name}.*{value}.*"}],
    }


def set_cookie(value: str) -> list[dict[str, Any]]:
    return [
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": "Set-Cookie", "value": value}]},
        }
    ]


def test_session_affinity_rules_v1() -> None:
    c = canary(service=service(match=[{"uri": {"prefix": "/api"}}]), analysis=AFFINITY)
    cookies = next_affinity_cookies(
        c, 10, AffinityCookies(), fresh_canary="abcdefghij", fresh_primary="klmnopqrst"
    )
    api = [{"path": {"type": "PathPrefix", "value": "/api"}}]
    rules = rules_of(c, Routes(90, 10), cookies=cookies)
    assert rules == [
        {
            "matches": [cookie_match("flagger-cookie", "abcdefghij")],
            "backendRefs": [backend("podinfo-primary", 0), backend("podinfo-canary", 100)],
        },
        {
            "matches": [cookie_match("primary-cookie", "klmnopqrst")],
            "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)],
        },
        {
            "matches": api,
            "backendRefs": [
                backend(
                    "podinfo-primary",
                    90,
                    filters=set_cookie(f"primary-cookie=klmnopqrst; Max-Age=60{COOKIE_ATTRS}"),
                ),
                backend(
                    "podinfo-canary",
                    10,
                    filters=set_cookie(f"flagger-cookie=abcdefghij; Max-Age=21600{COOKIE_ATTRS}"),
                ),
            ],
        },
    ]
    assert read(c, Routes(90, 10), cookies=cookies) == Routes(90, 10)

    # back to 0: the previous canary cookie is expired by a rule-level filter
    after = next_affinity_cookies(c, 0, cookies, fresh_canary="zzz", fresh_primary="yyy")
    rules0 = rules_of(c, Routes(100, 0), cookies=after)
    weighted = {
        "matches": api,
        "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)],
    }
    assert rules0 == [
        {
            "matches": [cookie_match("flagger-cookie", "abcdefghij")],
            "filters": set_cookie("flagger-cookie=abcdefghij; Max-Age=-1"),
            "backendRefs": [backend("podinfo-primary", 100), backend("podinfo-canary", 0)],
        },
        weighted,
    ]
    assert read(c, Routes(100, 0), cookies=after) == Routes(100, 0)
    # without any cookie yet: only the weighted rule
    assert rules_of(c, Routes(100, 0), cookies=AffinityCookies()) == [weighted]

    # the reconcile policy ignores the cookie rules and the backend filters
    ctx = ctx_for(c, cookies=cookies)
    running = stored(route_of(c, Routes(90, 10), cookies=cookies))
    assert not V1.needs_update(ctx, running, route_of(c, Routes(100, 0), cookies=AffinityCookies()))
    expiring = stored(route_of(c, Routes(100, 0), cookies=after))
    assert not V1.needs_update(ctx, expiring, route_of(c, Routes(100, 0), cookies=AffinityCookies()))


def test_session_affinity_expiry_joins_the_existing_response_header_filter() -> None:
    c = canary(service=service(headers={"response": {"add": {"x-served-by": "podinfo"}}}), analysis=AFFINITY)
    rules = rules_of(c, Routes(100, 0), cookies=AffinityCookies(previous="flagger-cookie=old"))
    assert rules[0]["filters"] == [
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {
                "add": [
                    {"name": "x-served-by", "value": "podinfo"},
                    {"name": "Set-Cookie", "value": "flagger-cookie=old; Max-Age=-1"},
                ]
            },
        }
    ]
    assert rules[0]["matches"] == [cookie_match("flagger-cookie", "old", "/")]
    assert rules[1]["filters"] == [
        {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": "x-served-by", "value": "podinfo"}]},
        }
    ]


def test_session_affinity_v1beta1_has_no_primary_cookie() -> None:
    c = canary(analysis=AFFINITY)
    cookies = AffinityCookies(canary="flagger-cookie=abc", primary="primary-cookie=def")
    rules = rules_of(c, Routes(80, 20), GATEWAYAPI_V1BETA1, cookies=cookies)
    assert len(rules) == 2
    assert rules[0]["matches"] == [cookie_match("flagger-cookie", "abc", "/")]
    assert rules[1]["backendRefs"] == [
        backend("podinfo-primary", 80),
        backend("podinfo-canary", 20, filters=set_cookie(f"flagger-cookie=abc; Max-Age=21600{COOKIE_ATTRS}")),
    ]
    assert read(c, Routes(80, 20), GATEWAYAPI_V1BETA1, cookies=cookies) == Routes(80, 20)
    assert len(rules_of(c, Routes(80, 20), cookies=cookies)) == 3  # v1: the sticky primary rule too


# ---------------------------------------------------------------------------------------------- read back


def test_routes_requires_every_parent_to_have_accepted_the_current_generation() -> None:
    c = canary(service=service(gatewayRefs=[GATEWAY, {"name": "internal"}]))
    ctx = ctx_for(c)
    route = route_of(c, Routes(90, 10))
    assert V1.routes(ctx, observed([accepted(route)])) == Routes(90, 10)

    stale = accepted(route, generation=3, observed_generation=2)
    with pytest.raises(RoutesError) as err:
        V1.routes(ctx, observed([stale]))
    assert str(err.value) == (
        "HTTPRoute podinfo.test parent gateway is not ready (status: True, observed generation: 2, "
        "current generation: 3)"
    )

    refused = accepted(route, status="False")
    with pytest.raises(RoutesError) as err:
        V1.routes(ctx, observed([refused]))
    assert str(err.value) == (
        "HTTPRoute podinfo.test parent gateway is not ready (status: False, observed generation: 2, "
        "current generation: 2)"
    )

    one_missing = accepted(route)
    one_missing["status"]["parents"] = one_missing["status"]["parents"][:1]
    with pytest.raises(RoutesError) as err:
        V1.routes(ctx, observed([one_missing]))
    assert str(err.value) == (
        "HTTPRoute podinfo.test parent internal is not ready (status: Unknown, observed generation: 0, "
        "current generation: 2)"
    )

    fresh = stored(route)  # just created: no controller reported yet
    fresh["metadata"]["generation"] = 1
    with pytest.raises(RoutesError, match="parent gateway is not ready"):
        V1.routes(ctx, observed([fresh]))

    # a status entry is matched to its parentRef with the defaults filled in (same namespace, Gateway)
    other_ns = accepted(route)
    other_ns["status"]["parents"][1]["parentRef"] = {"name": "internal", "namespace": "test"}
    assert V1.routes(ctx, observed([other_ns])) == Routes(90, 10)
    other_ns["status"]["parents"][1]["parentRef"] = {"name": "internal", "namespace": "elsewhere"}
    with pytest.raises(RoutesError, match="parent internal is not ready"):
        V1.routes(ctx, observed([other_ns]))


def test_routes_errors() -> None:
    ctx = ctx_for(canary())
    with pytest.raises(RoutesError, match=r"^HTTPRoute podinfo.test get error: not found$"):
        V1.routes(ctx, {})
    route = accepted(route_of(canary(), Routes(100, 0)))
    route["spec"]["rules"] = [{"backendRefs": [{"name": "somewhere-else", "port": 80}]}]
    with pytest.raises(RoutesError) as err:
        V1.routes(ctx, observed([route]))
    assert (
        str(err.value)
        == "HTTPRoute podinfo.test does not contain routes for podinfo-primary and podinfo-canary"
    )
    # a backend without weight has the Gateway API default weight 1
    route["spec"]["rules"] = [
        {"backendRefs": [{"name": "podinfo-primary"}, {"name": "podinfo-canary", "weight": 0}]}
    ]
    assert V1.routes(ctx, observed([route])) == Routes(1, 0)


# ---------------------------------------------------------------------------------------------- reconcile


def test_needs_update_ignores_weights_mirror_and_api_server_defaults() -> None:
    c = canary(analysis={**BLUE_GREEN, "mirror": True})
    ctx = ctx_for(c)
    current = stored(route_of(c, Routes(0, 100, mirrored=True)))
    baseline = route_of(c, Routes(100, 0))
    assert not V1.needs_update(ctx, current, baseline)
    assert V1.merge(ctx, current, baseline) == current  # weights and mirror of the running analysis stay
    # what the API server fills in is no difference
    defaulted = copy.deepcopy(current)
    defaulted["spec"]["parentRefs"][0].update(group="gateway.networking.k8s.io", kind="Gateway")
    defaulted["spec"]["rules"][0]["backendRefs"][0].pop("group")
    assert not V1.needs_update(ctx, defaulted, baseline)
    # a changed service is
    changed = canary(service=service(timeout="10s"), analysis={**BLUE_GREEN, "mirror": True})
    assert V1.needs_update(ctx_for(changed), current, route_of(changed, Routes(100, 0)))
    moved = canary(service=service(hosts=["other.example.com"]))
    assert V1.needs_update(ctx_for(moved), current, route_of(moved, Routes(100, 0)))
    relabelled = canary(service=service(apex={"labels": {"team": "b"}}))
    assert V1.needs_update(ctx_for(relabelled), current, route_of(relabelled, Routes(100, 0)))


def test_reconcile_of_an_unchanged_route_writes_nothing() -> None:
    c = canary(service=service(apex={"annotations": {"a": "1"}}))
    ctx = ctx_for(c)
    for routes in (Routes(100, 0), Routes(70, 30)):
        desired = route_of(c, routes)
        written = stored(desired)
        assert "labels" not in written["metadata"]
        assert not V1.needs_update(ctx, written, desired)
        assert V1.merge(ctx, written, desired) == written


def test_merge_keeps_foreign_annotations_and_user_fields() -> None:
    c = canary(service=service(apex={"annotations": {"mine": "2"}}))
    ctx = ctx_for(c)
    written = stored(route_of(c, Routes(60, 40)))
    written["metadata"]["annotations"]["application-networking.k8s.aws/lattice-assigned-domain-name"] = (
        "x.aws"
    )
    written["metadata"]["annotations"]["mine"] = "1"
    written["metadata"]["finalizers"] = ["example.com/cleanup"]
    written["status"] = {"parents": []}
    desired = route_of(c, Routes(100, 0))
    assert V1.needs_update(ctx, written, desired)  # the apex annotation changed
    merged = V1.merge(ctx, written, desired)
    assert merged["metadata"]["annotations"] == {
        "application-networking.k8s.aws/lattice-assigned-domain-name": "x.aws",
        "mine": "2",
        **FLUX,
    }
    assert merged["metadata"]["finalizers"] == ["example.com/cleanup"]
    assert merged["metadata"]["resourceVersion"] == "7"
    assert merged["status"] == {"parents": []}
    assert merged["spec"] == written["spec"]  # only the weights differ: kept
    assert ORIGINAL not in merged["metadata"]["annotations"]  # our own route: no backup
    assert not V1.needs_update(ctx, stored(merged), desired)


def test_route_without_the_flux_opt_out_gets_it_and_keeps_its_routes() -> None:
    ctx = ctx_for(canary())
    written = stored(route_of(canary(), Routes(60, 40)))
    del written["metadata"]["annotations"]
    desired = route_of(canary(), Routes(100, 0))
    assert V1.needs_update(ctx, written, desired)
    updated = V1.merge(ctx, written, desired)
    assert updated["metadata"]["annotations"] == FLUX
    assert updated["spec"] == written["spec"]
    assert not V1.needs_update(ctx, updated, desired)


def test_set_routes_merge_only_touches_rules() -> None:
    c = canary()
    ctx = ctx_for(c)
    written = stored(route_of(c, Routes(100, 0)))
    written["metadata"]["annotations"] = {"keep": "me"}
    written["spec"]["parentRefs"] = [{"name": "changed-by-user"}]
    out = V1.merge(ctx, written, route_of(c, Routes(95, 5)), set_routes=True)
    assert out["metadata"] == written["metadata"]
    assert out["spec"]["parentRefs"] == [{"name": "changed-by-user"}]
    assert out["spec"]["rules"][0]["backendRefs"] == [
        backend("podinfo-primary", 95),
        backend("podinfo-canary", 5),
    ]


USER_ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "77", "labels": {"owner": "me"}},
    "spec": {
        "parentRefs": [{"name": "gateway"}],
        "rules": [{"backendRefs": [{"name": "podinfo", "port": 9898}]}],
    },
}


def test_takeover_stores_the_original_spec_and_revert_restores_it() -> None:
    ctx = ctx_for(canary())
    desired = route_of(canary(), Routes(100, 0))
    user = copy.deepcopy(USER_ROUTE)
    assert V1.needs_update(ctx, user, desired)
    taken = V1.merge(ctx, user, desired)
    assert taken["metadata"]["resourceVersion"] == "77"
    assert "ownerReferences" not in taken["metadata"]
    assert "labels" not in taken["metadata"]
    assert taken["spec"] == desired["spec"]
    backup = taken["metadata"]["annotations"][ORIGINAL]
    assert json.loads(backup) == USER_ROUTE["spec"]
    # a later update keeps the first backup
    c2 = canary(service=service(timeout="3s"))
    again = V1.merge(ctx_for(c2), stored(taken), route_of(c2, Routes(100, 0)))
    assert again["metadata"]["annotations"][ORIGINAL] == backup
    assert again["spec"]["rules"][0]["timeouts"] == {"request": "3s"}
    [reverted] = V1.revert(ctx, observed([again]))
    assert reverted["spec"] == USER_ROUTE["spec"]
    assert not (set(FLUX) | {ORIGINAL}) & set(reverted["metadata"].get("annotations") or {})


def test_revert_from_the_kubectl_annotation_and_errors() -> None:
    ctx = ctx_for(canary())
    user = copy.deepcopy(USER_ROUTE)
    user["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {
                "metadata": {"annotations": {"helm.toolkit.fluxcd.io/driftDetection": "disabled"}},
                "spec": USER_ROUTE["spec"],
            }
        ),
        "helm.toolkit.fluxcd.io/driftDetection": "disabled",
    }
    taken = stored(V1.merge(ctx, user, route_of(canary(), Routes(100, 0))))
    assert ORIGINAL not in taken["metadata"]["annotations"]
    [reverted] = V1.revert(ctx, observed([taken]))
    assert reverted["spec"] == USER_ROUTE["spec"]
    assert reverted["metadata"]["annotations"] == user["metadata"]["annotations"]  # the user's own value back
    assert V1.revert(ctx, {}) == []
    # created by the canary: nothing to restore, the owner reference deletes it
    assert V1.revert(ctx, observed([stored(route_of(canary(), Routes(100, 0)))])) == []
    foreign = stored(route_of(canary(), Routes(100, 0), set_owner_refs=False))
    with pytest.raises(RevertError) as err:
        V1.revert(ctx, observed([foreign]))
    assert str(err.value) == "HTTPRoute podinfo.test original configuration not found, unable to revert"
    foreign["metadata"]["annotations"][ORIGINAL] = "{not json"
    with pytest.raises(RevertError, match="original configuration unreadable"):
        V1.revert(ctx, observed([foreign]))
