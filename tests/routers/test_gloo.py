"""Gloo Edge Upstreams and RouteTable: names, the upstreamRef template, the canary / A/B / blue-green
layouts, read-back, refusals and the reconcile/SetRoutes policy."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.routers import base
from canarist.routers.base import RouteContext, RouterConfigError, RoutesError, object_key
from canarist.routers.gloo import GLOO, ROUTE_TABLE, UPSTREAM, GlooRouter
from tests.workloads import podinfo
from tests.workloads.podinfo import OWNER, stored

PRIMARY_UP = "test-podinfo-primaryupstream-9898"
CANARY_UP = "test-podinfo-canaryupstream-9898"

TEMPLATE: dict[str, Any] = {
    "apiVersion": "gloo.solo.io/v1",
    "kind": "Upstream",
    "metadata": {
        "name": "config-upstream",
        "namespace": "gloo-system",
        "labels": {"team": "web", "kustomize.toolkit.fluxcd.io/name": "apps"},
        "annotations": {"not": "copied"},
    },
    "spec": {
        "sslConfig": {"sni": "podinfo.example.com"},
        "circuitBreakers": {"maxConnections": 100},
        "connectionConfig": {"maxRequestsPerConnection": 10},
        "loadBalancerConfig": {"roundRobin": {"slowStartConfig": {"slowStartWindow": "60s"}}},
        "useHttp2": True,
        "initialStreamWindowSize": 65536,
        "initialConnectionWindowSize": 1048576,
        "httpProxyHostname": "proxy.example.com",
        "healthChecks": [{"timeout": "1s"}],
        "kube": {"serviceName": "elsewhere", "serviceNamespace": "x", "servicePort": 1},
    },
}
UPSTREAM_REF = {
    "apiVersion": "gloo.solo.io/v1",
    "kind": "Upstream",
    "name": "config-upstream",
    "namespace": "gloo-system",
}


def gloo_canary(**kw: Any) -> Canary:
    kw.setdefault("service", {"port": 9898})
    return podinfo.canary(provider="gloo", **kw)


def ctx_for(canary: Canary, **kw: Any) -> RouteContext:
    return RouteContext.from_canary(canary, **kw)


def with_template(canary: Canary, template: dict[str, Any] = TEMPLATE) -> RouteContext:
    ctx = ctx_for(canary)
    refs = GLOO.references(ctx)
    return dataclasses.replace(ctx, references={refs[0].key: copy.deepcopy(template)})


def observed(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {object_key(o): o for o in objs}


def dest(name: str, weight: Any) -> dict[str, Any]:
    return {"destination": {"upstream": {"name": name, "namespace": "test"}}, "weight": weight}


def table_routes(ctx: RouteContext, routes: Routes) -> list[dict[str, Any]]:
    routes_: list[dict[str, Any]] = GLOO.desired(ctx, routes)[2]["spec"]["routes"]
    return routes_


def ab_canary(match: list[dict[str, Any]]) -> Canary:
    return gloo_canary(iterations=10, match=match, stepWeight=None, maxWeight=None)


# ---------------------------------------------------------------------------------------------- declaration


def test_declaration() -> None:
    assert GLOO.name == "gloo"
    assert GLOO.kinds == (UPSTREAM, ROUTE_TABLE)
    assert (UPSTREAM.api_version, UPSTREAM.plural, ROUTE_TABLE.api_version, ROUTE_TABLE.plural) == (
        "gloo.solo.io/v1",
        "upstreams",
        "gateway.solo.io/v1",
        "routetables",
    )
    caps = GLOO.capabilities
    assert (caps.weights, caps.matches, caps.mirroring, caps.session_affinity) == (True, True, False, False)
    assert GLOO.settings == frozenset()
    router: base.Router = GlooRouter()  # satisfies the protocol
    assert router.name == "gloo"


def test_object_names_carry_namespace_apex_and_port() -> None:
    canary = gloo_canary(service={"name": "web", "port": 8080})
    ctx = ctx_for(canary)
    assert [(r.api_version, r.key, r.namespace) for r in GLOO.objects(ctx)] == [
        ("gloo.solo.io/v1", "Upstream/test-web-primaryupstream-8080", "test"),
        ("gloo.solo.io/v1", "Upstream/test-web-canaryupstream-8080", "test"),
        ("gateway.solo.io/v1", "RouteTable/web", "test"),
    ]
    primary, canary_up, table = GLOO.desired(ctx, Routes(100, 0))
    assert primary["spec"]["kube"] == {
        "serviceName": "web-primary",
        "serviceNamespace": "test",
        "servicePort": 8080,
    }
    assert canary_up["spec"]["kube"] == {
        "serviceName": "web-canary",
        "serviceNamespace": "test",
        "servicePort": 8080,
    }
    assert [
        d["destination"]["upstream"]["name"]
        for d in table["spec"]["routes"][0]["routeAction"]["multi"]["destinations"]
    ] == [
        "test-web-primaryupstream-8080",
        "test-web-canaryupstream-8080",
    ]


def test_podinfo_objects_without_upstream_ref() -> None:
    canary = gloo_canary(service={"port": 9898, "apex": {"labels": {"l": "1"}, "annotations": {"a": "2"}}})
    ctx = ctx_for(canary)
    assert GLOO.references(ctx) == []
    primary, canary_up, table = GLOO.desired(ctx, Routes(100, 0))
    assert primary == {
        "apiVersion": "gloo.solo.io/v1",
        "kind": "Upstream",
        "metadata": {"name": PRIMARY_UP, "namespace": "test", "ownerReferences": [OWNER]},
        "spec": {"kube": {"serviceName": "podinfo-primary", "serviceNamespace": "test", "servicePort": 9898}},
    }
    assert canary_up["metadata"]["name"] == CANARY_UP
    assert table == {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "labels": {"l": "1"},
            "annotations": {"a": "2"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "routes": [
                {
                    "inheritablePathMatchers": True,
                    "routeAction": {"multi": {"destinations": [dest(PRIMARY_UP, 100), dest(CANARY_UP, 0)]}},
                }
            ]
        },
    }
    no_owner = GLOO.desired(ctx_for(canary, set_owner_refs=False), Routes(100, 0))
    assert all("ownerReferences" not in o["metadata"] for o in no_owner)


# ---------------------------------------------------------------------------------------------- upstreamRef


def test_references_name_the_upstream_ref_with_its_namespace_or_the_canarys() -> None:
    ref = GLOO.references(ctx_for(gloo_canary(spec={"upstreamRef": UPSTREAM_REF})))
    assert [(r.api_version, r.kind, r.name, r.namespace, r.path, r.key) for r in ref] == [
        (
            "gloo.solo.io/v1",
            "Upstream",
            "config-upstream",
            "gloo-system",
            "spec.upstreamRef",
            "Upstream/config-upstream",
        )
    ]
    local = {k: v for k, v in UPSTREAM_REF.items() if k != "namespace"}
    assert GLOO.references(ctx_for(gloo_canary(spec={"upstreamRef": local})))[0].namespace == "test"


def test_upstreams_copy_the_template_settings_and_labels() -> None:
    ctx = with_template(gloo_canary(spec={"upstreamRef": UPSTREAM_REF}))
    primary, canary_up, _ = GLOO.desired(ctx, Routes(100, 0))
    expected_spec: dict[str, Any] = {
        "sslConfig": {"sni": "podinfo.example.com"},
        "circuitBreakers": {"maxConnections": 100},
        "connectionConfig": {"maxRequestsPerConnection": 10},
        "loadBalancerConfig": {"roundRobin": {"slowStartConfig": {"slowStartWindow": "60s"}}},
        "useHttp2": True,
        "initialStreamWindowSize": 65536,
        "initialConnectionWindowSize": 1048576,
        "httpProxyHostname": "proxy.example.com",
        "kube": {"serviceName": "podinfo-primary", "serviceNamespace": "test", "servicePort": 9898},
    }
    assert primary["spec"] == expected_spec  # no healthChecks, the template's kube replaced
    assert canary_up["spec"] == {
        **expected_spec,
        "kube": {**expected_spec["kube"], "serviceName": "podinfo-canary"},
    }
    assert primary["metadata"]["labels"] == {"team": "web"}  # Flux's labels dropped, no annotations
    assert "annotations" not in primary["metadata"]
    # the copies are independent of the template
    primary["spec"]["loadBalancerConfig"]["roundRobin"] = {}
    assert (
        ctx.references["Upstream/config-upstream"]["spec"]["loadBalancerConfig"]
        == TEMPLATE["spec"]["loadBalancerConfig"]
    )


def test_a_missing_template_is_refused_rather_than_ignored() -> None:
    ctx = ctx_for(gloo_canary(spec={"upstreamRef": UPSTREAM_REF}))
    with pytest.raises(
        RouterConfigError, match=r"spec.upstreamRef: Upstream config-upstream.gloo-system not found"
    ):
        GLOO.desired(ctx, Routes(100, 0))


def test_reconcile_of_an_upstream_keeps_user_fields_and_resyncs_load_balancing() -> None:
    ctx = with_template(gloo_canary(spec={"upstreamRef": UPSTREAM_REF}))
    desired = GLOO.desired(ctx, Routes(100, 0))[0]
    existing = stored(desired)
    existing["spec"]["kube"]["selector"] = {"app": "podinfo-primary"}
    existing["spec"]["sslConfig"] = {"sni": "edited"}
    existing["metadata"]["labels"] = {"mine": "yes"}
    assert not GLOO.needs_update(ctx, existing, desired)  # other fields are not re-synced

    changed = copy.deepcopy(TEMPLATE)
    changed["spec"]["loadBalancerConfig"] = {"leastRequest": {"choiceCount": 3}}
    changed["spec"]["sslConfig"] = {"sni": "template-changed"}
    ctx2 = with_template(ctx.canary, changed)
    desired2 = GLOO.desired(ctx2, Routes(100, 0))[0]
    assert GLOO.needs_update(ctx2, existing, desired2)
    merged = GLOO.merge(ctx2, existing, desired2)
    assert merged["spec"]["loadBalancerConfig"] == {"leastRequest": {"choiceCount": 3}}
    assert merged["spec"]["sslConfig"] == {"sni": "edited"}
    assert merged["spec"]["kube"]["selector"] == {"app": "podinfo-primary"}
    assert merged["metadata"] == existing["metadata"]
    assert not GLOO.needs_update(ctx2, merged, desired2)

    # the template dropped its load-balancer configuration: so do the Upstreams
    bare = copy.deepcopy(TEMPLATE)
    del bare["spec"]["loadBalancerConfig"]
    ctx3 = with_template(ctx.canary, bare)
    desired3 = GLOO.desired(ctx3, Routes(100, 0))[0]
    assert GLOO.needs_update(ctx3, merged, desired3)
    assert "loadBalancerConfig" not in GLOO.merge(ctx3, merged, desired3)["spec"]
    # SetRoutes never touches an Upstream
    assert GLOO.merge(ctx2, existing, desired2, set_routes=True) == existing


def test_reconcile_of_an_upstream_repairs_the_service_fields() -> None:
    ctx = ctx_for(gloo_canary())
    desired = GLOO.desired(ctx, Routes(100, 0))[1]
    existing = stored(desired)
    existing["spec"]["kube"]["serviceName"] = "podinfo"
    existing["spec"]["loadBalancerConfig"] = {"random": {}}
    assert GLOO.needs_update(ctx, existing, desired)
    merged = GLOO.merge(ctx, existing, desired)
    assert merged["spec"]["kube"]["serviceName"] == "podinfo-canary"
    assert merged["spec"]["loadBalancerConfig"] == {"random": {}}  # no upstreamRef: nothing re-synced


# ---------------------------------------------------------------------------------------------- layouts


def test_canary_and_blue_green_use_one_weighted_route() -> None:
    canary = gloo_canary()
    assert table_routes(ctx_for(canary), Routes(95, 5)) == [
        {
            "inheritablePathMatchers": True,
            "routeAction": {"multi": {"destinations": [dest(PRIMARY_UP, 95), dest(CANARY_UP, 5)]}},
        }
    ]
    blue_green = gloo_canary(iterations=10, stepWeight=None, maxWeight=None)
    assert table_routes(ctx_for(blue_green), Routes(0, 100)) == [
        {
            "inheritablePathMatchers": True,
            "routeAction": {"multi": {"destinations": [dest(PRIMARY_UP, 0), dest(CANARY_UP, 100)]}},
        }
    ]


def test_ab_headers_exact_and_regex_and_method() -> None:
    canary = ab_canary(
        [
            {
                "headers": {
                    "x-canary": {"exact": "insider"},
                    "cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"},
                }
            },
            {"method": {"exact": "POST"}},
        ]
    )
    assert table_routes(ctx_for(canary), Routes(0, 100)) == [
        {
            "matchers": [
                {
                    "headers": [
                        {"name": "x-canary", "value": "insider"},
                        {"name": "cookie", "value": "^(.*?;)?(canary=always)(;.*)?$", "regex": True},
                    ]
                },
                {"methods": ["POST"]},
            ],
            "inheritablePathMatchers": True,
            "routeAction": {"multi": {"destinations": [dest(PRIMARY_UP, 0), dest(CANARY_UP, 100)]}},
        },
        {
            "inheritablePathMatchers": True,
            "routeAction": {"multi": {"destinations": [dest(PRIMARY_UP, 100)]}},
        },
    ]


def test_ab_prefix_suffix_presence_and_without_headers() -> None:
    canary = ab_canary(
        [
            {
                "headers": {"x-user": {"prefix": "beta.user+"}, "x-region": {"suffix": "-eu"}, "x-debug": {}},
                "withoutHeaders": {"x-bot": {"exact": "1"}},
                "method": {"exact": "GET"},
            }
        ]
    )
    [matcher] = table_routes(ctx_for(canary), Routes(0, 100))[0]["matchers"]
    assert matcher == {
        "headers": [
            {"name": "x-user", "value": r"beta\.user\+.*", "regex": True},
            {"name": "x-region", "value": r".*\-eu", "regex": True},
            {"name": "x-debug"},
            {"name": "x-bot", "value": "1", "invertMatch": True},
        ],
        "methods": ["GET"],
    }


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ({"queryParams": {"canary": {"exact": "1"}}}, "spec.analysis.match[1].queryParams"),
        ({"uri": {"prefix": "/api"}}, "spec.analysis.match[1].uri"),
        ({"sourceLabels": {"app": "x"}}, "spec.analysis.match[1].sourceLabels"),
        ({"authority": {"exact": "a"}}, "spec.analysis.match[1].authority"),
        ({"method": {"regex": "P.*"}}, "spec.analysis.match[1].method"),
        ({"headers": {"": {"exact": "a"}}}, "spec.analysis.match[1].headers."),
    ],
)
def test_refusals_are_path_qualified(entry: dict[str, Any], path: str) -> None:
    canary = ab_canary([{"headers": {"x": {"exact": "1"}}}, entry])
    with pytest.raises(RouterConfigError) as error:
        GLOO.objects(ctx_for(canary))
    assert str(error.value).startswith(path + ":")
    with pytest.raises(RouterConfigError):
        GLOO.desired(ctx_for(canary), Routes(100, 0))


# ---------------------------------------------------------------------------------------------- read back


@pytest.mark.parametrize("split", [Routes(100, 0), Routes(70, 30), Routes(0, 100)])
def test_round_trip(split: Routes) -> None:
    for canary in (gloo_canary(), ab_canary([{"headers": {"x": {"exact": "1"}}}])):
        ctx = ctx_for(canary)
        assert GLOO.routes(ctx, observed([stored(o) for o in GLOO.desired(ctx, split)])) == split


def _table_with(spec: Any) -> dict[str, dict[str, Any]]:
    return {"RouteTable/podinfo": {"kind": "RouteTable", "metadata": {"name": "podinfo"}, "spec": spec}}


@pytest.mark.parametrize(
    ("objs", "message"),
    [
        ({}, "RouteTable podinfo.test query error: not found"),
        (_table_with({}), "routes not found"),
        (_table_with({"routes": []}), "routes not found"),
        (_table_with({"routes": [{"routeAction": {"single": {}}}]}), "destinations not found"),
        (
            _table_with({"routes": [{"routeAction": {"multi": {"destinations": [dest(PRIMARY_UP, 100)]}}}]}),
            "destinations not found",
        ),
        (
            _table_with(
                {
                    "routes": [
                        {
                            "routeAction": {
                                "multi": {"destinations": [dest(PRIMARY_UP, 100), dest("other", 0)]}
                            }
                        }
                    ]
                }
            ),
            f"does not contain destinations for {PRIMARY_UP} and {CANARY_UP}",
        ),
        (
            _table_with(
                {
                    "routes": [
                        {
                            "routeAction": {
                                "multi": {"destinations": [dest(PRIMARY_UP, 100), dest(CANARY_UP, "x")]}
                            }
                        }
                    ]
                }
            ),
            "invalid weight 'x'",
        ),
        (
            _table_with(
                {
                    "routes": [
                        {
                            "routeAction": {
                                "multi": {"destinations": [dest(PRIMARY_UP, 0), dest(CANARY_UP, 0)]}
                            }
                        }
                    ]
                }
            ),
            "no valid weights",
        ),
    ],
)
def test_routes_errors(objs: dict[str, dict[str, Any]], message: str) -> None:
    with pytest.raises(RoutesError, match=message):
        GLOO.routes(ctx_for(gloo_canary()), objs)


def test_routes_reads_the_first_route_and_a_missing_weight_as_zero() -> None:
    spec = {
        "routes": [
            {
                "routeAction": {
                    "multi": {
                        "destinations": [
                            dest(CANARY_UP, 40),
                            {"destination": {"upstream": {"name": PRIMARY_UP}}, "weight": 60},
                        ]
                    }
                }
            },
            {"routeAction": {"multi": {"destinations": [dest(PRIMARY_UP, 100), dest(CANARY_UP, 0)]}}},
        ]
    }
    assert GLOO.routes(ctx_for(gloo_canary()), _table_with(spec)) == Routes(60, 40)
    no_weight = {
        "routes": [
            {
                "routeAction": {
                    "multi": {
                        "destinations": [
                            dest(PRIMARY_UP, 100),
                            {"destination": {"upstream": {"name": CANARY_UP}}},
                        ]
                    }
                }
            }
        ]
    }
    assert GLOO.routes(ctx_for(gloo_canary()), _table_with(no_weight)) == Routes(100, 0)


# ---------------------------------------------------------------------------------------------- policy


def test_needs_update_ignores_weights_only() -> None:
    ctx = ctx_for(gloo_canary())
    table = stored(GLOO.desired(ctx, Routes(60, 40))[2])
    assert not GLOO.needs_update(ctx, table, GLOO.desired(ctx, Routes(100, 0))[2])
    ab = ctx_for(ab_canary([{"headers": {"x": {"exact": "1"}}}]))
    assert GLOO.needs_update(ab, table, GLOO.desired(ab, Routes(100, 0))[2])
    relabelled = ctx_for(gloo_canary(service={"port": 9898, "apex": {"labels": {"l": "2"}}}))
    assert GLOO.needs_update(relabelled, table, GLOO.desired(relabelled, Routes(60, 40))[2])


def test_merge_reconcile_and_set_routes() -> None:
    ctx = ctx_for(ab_canary([{"headers": {"x": {"exact": "1"}}}]))
    table = stored(GLOO.desired(ctx, Routes(100, 0))[2])
    table["metadata"]["annotations"] = {"foreign": "kept"}
    table["spec"]["routes"][0]["options"] = {"timeout": "5s"}  # something the user added to the route

    set_routes = GLOO.merge(ctx, table, GLOO.desired(ctx, Routes(0, 100))[2], set_routes=True)
    assert set_routes["spec"]["routes"][0]["routeAction"]["multi"]["destinations"] == [
        dest(PRIMARY_UP, 0),
        dest(CANARY_UP, 100),
    ]
    assert set_routes["spec"]["routes"][0]["options"] == {"timeout": "5s"}
    assert set_routes["spec"]["routes"][0]["matchers"] == table["spec"]["routes"][0]["matchers"]
    assert set_routes["metadata"] == table["metadata"]
    assert GLOO.routes(ctx, observed([set_routes])) == Routes(0, 100)

    # another shape (the A/B match was removed): SetRoutes writes the whole route list
    plain = ctx_for(gloo_canary())
    reshaped = GLOO.merge(plain, table, GLOO.desired(plain, Routes(90, 10))[2], set_routes=True)
    assert reshaped["spec"]["routes"] == table_routes(plain, Routes(90, 10))

    desired = GLOO.desired(plain, Routes(0, 100))[2]
    desired["metadata"]["labels"] = {"l": "1"}
    reconciled = GLOO.merge(plain, table, desired)
    assert reconciled["spec"] == desired["spec"]
    assert reconciled["metadata"]["annotations"] == {"foreign": "kept"}
    assert reconciled["metadata"]["labels"] == {"l": "1"}
    assert reconciled["metadata"]["resourceVersion"] == "7"
    assert not GLOO.needs_update(plain, reconciled, desired)
    assert table["spec"]["routes"][0]["options"] == {"timeout": "5s"}  # inputs untouched


def test_revert_has_nothing_to_restore() -> None:
    ctx = ctx_for(gloo_canary())
    assert GLOO.revert(ctx, observed(GLOO.desired(ctx, Routes(100, 0)))) == []
