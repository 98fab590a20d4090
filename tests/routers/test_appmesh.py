"""App Mesh VirtualNodes, VirtualRouters and VirtualServices: the v1beta2 objects for canary, A/B and
blue/green, the legacy v1beta1 shapes, read-back, the reconcile policy and SetRoutes."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.routers.appmesh import (
    APPMESH,
    APPMESH_V1BETA2,
    ROUTERS,
    VIRTUAL_NODE_V1BETA1,
    VIRTUAL_NODE_V1BETA2,
    VIRTUAL_ROUTER_V1BETA2,
    VIRTUAL_SERVICE_V1BETA1,
    VIRTUAL_SERVICE_V1BETA2,
    AppMeshRouter,
    pod_selector,
)
from canarist.routers.base import RouteContext, RouterConfigError, RoutesError, object_key
from tests.fixtures.canaries import canary_manifest
from tests.workloads.podinfo import CANARY_UID, OWNER, stored

#: the Canary of Flagger's App Mesh tutorial (service section).
SERVICE: dict[str, Any] = {
    "port": 9898,
    "timeout": "15s",
    "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "gateway-error,client-error,stream-error"},
    "match": [{"uri": {"prefix": "/"}}],
    "rewrite": {"uri": "/"},
}
HEADER_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}]


def canary(
    *, annotations: dict[str, str] | None = None, provider: str = "appmesh:v1beta2", **overrides: Any
) -> Canary:
    """The tutorial's canary; ``service`` replaces its service section, ``service_fields`` are merged in."""
    service = copy.deepcopy(overrides.pop("service", SERVICE))
    service.update(overrides.pop("service_fields", {}))
    manifest = canary_manifest(uid=CANARY_UID, provider=provider, service=service, **overrides)
    if annotations:
        manifest["metadata"]["annotations"] = annotations
    return Canary.model_validate(manifest)


def ctx_for(c: Canary) -> RouteContext:
    return RouteContext.from_canary(c)


def by_key(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {object_key(o): o for o in objs}


def ref(name: str, weight: int) -> dict[str, Any]:
    return {"virtualNodeRef": {"name": name}, "weight": weight}


RETRY_V1BETA2 = {
    "perRetryTimeout": {"unit": "ms", "value": 5000},
    "maxRetries": 3,
    "httpRetryEvents": ["gateway-error", "client-error", "stream-error"],
}
TIMEOUT = {"perRequest": {"unit": "ms", "value": 15000}}


# ---------------------------------------------------------------------------------------------- declaration


def test_the_two_routers_and_their_kinds() -> None:
    assert ROUTERS == (APPMESH_V1BETA2, APPMESH)
    assert (APPMESH_V1BETA2.name, APPMESH.name) == ("appmesh:v1beta2", "appmesh")
    assert APPMESH_V1BETA2.kinds == (VIRTUAL_NODE_V1BETA2, VIRTUAL_ROUTER_V1BETA2, VIRTUAL_SERVICE_V1BETA2)
    assert [k.api_version for k in APPMESH_V1BETA2.kinds] == ["appmesh.k8s.aws/v1beta2"] * 3
    # v1beta1 has no VirtualRouter kind: the router lives inside the VirtualService
    assert APPMESH.kinds == (VIRTUAL_NODE_V1BETA1, VIRTUAL_SERVICE_V1BETA1)
    assert [k.group_resource for k in APPMESH.kinds] == [
        "virtualnodes.appmesh.k8s.aws",
        "virtualservices.appmesh.k8s.aws",
    ]
    for router in ROUTERS:
        caps = router.capabilities
        assert (caps.weights, caps.matches, caps.mirroring, caps.session_affinity) == (
            True,
            True,
            False,
            False,
        )
        assert router.settings == frozenset()
    with pytest.raises(ValueError, match="unknown App Mesh API version"):
        AppMeshRouter("appmesh:v9", "v9")


def test_v1beta2_object_identities() -> None:
    refs = APPMESH_V1BETA2.objects(ctx_for(canary()))
    assert [r.key for r in refs] == [
        "VirtualNode/podinfo-primary",
        "VirtualNode/podinfo-canary",
        "VirtualRouter/podinfo",
        "VirtualRouter/podinfo-canary",
        "VirtualService/podinfo",
        "VirtualService/podinfo-canary",
    ]
    assert {(r.api_version, r.namespace) for r in refs} == {("appmesh.k8s.aws/v1beta2", "test")}
    assert [object_key(o) for o in APPMESH_V1BETA2.desired(ctx_for(canary()), Routes(100, 0))] == [
        r.key for r in refs
    ]
    assert APPMESH_V1BETA2.references(ctx_for(canary())) == []


# ---------------------------------------------------------------------------------------------- v1beta2 objects


def test_v1beta2_canary_objects() -> None:
    objs = by_key(APPMESH_V1BETA2.desired(ctx_for(canary()), Routes(primary=95, canary=5)))
    meta = {"namespace": "test", "ownerReferences": [OWNER]}
    assert objs["VirtualNode/podinfo-primary"] == {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": {"name": "podinfo-primary", **meta},
        "spec": {
            "podSelector": {"matchLabels": {"app": "podinfo-primary"}},
            "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}, "timeout": {"http": TIMEOUT}}],
            "serviceDiscovery": {"dns": {"hostname": "podinfo-primary.test.svc.cluster.local."}},
        },
    }
    canary_node = objs["VirtualNode/podinfo-canary"]["spec"]
    assert canary_node["podSelector"] == {"matchLabels": {"app": "podinfo"}}
    assert canary_node["serviceDiscovery"] == {"dns": {"hostname": "podinfo-canary.test.svc.cluster.local."}}
    assert "logging" not in canary_node
    assert "backends" not in canary_node
    assert objs["VirtualRouter/podinfo"] == {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualRouter",
        "metadata": {"name": "podinfo", **meta},
        "spec": {
            "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}],
            "routes": [
                {
                    "name": "podinfo",
                    "httpRoute": {
                        "match": {"prefix": "/"},
                        "timeout": TIMEOUT,
                        "retryPolicy": RETRY_V1BETA2,
                        "action": {"weightedTargets": [ref("podinfo-canary", 5), ref("podinfo-primary", 95)]},
                    },
                }
            ],
        },
    }
    canary_routes = objs["VirtualRouter/podinfo-canary"]["spec"]["routes"]
    assert [r["name"] for r in canary_routes] == ["podinfo-canary"]
    assert canary_routes[0]["httpRoute"]["action"] == {
        "weightedTargets": [ref("podinfo-canary", 100), ref("podinfo-primary", 0)]
    }
    assert objs["VirtualService/podinfo"] == {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", **meta},
        "spec": {"provider": {"virtualRouter": {"virtualRouterRef": {"name": "podinfo"}}}},
    }
    assert objs["VirtualService/podinfo-canary"]["spec"] == {
        "provider": {"virtualRouter": {"virtualRouterRef": {"name": "podinfo-canary"}}}
    }


def test_no_timeout_no_retries_and_defaults() -> None:
    c = canary(service={"port": 9898})
    objs = by_key(APPMESH_V1BETA2.desired(ctx_for(c), Routes(100, 0)))
    route = objs["VirtualRouter/podinfo"]["spec"]["routes"][0]["httpRoute"]
    assert route == {
        "match": {"prefix": "/"},
        "action": {"weightedTargets": [ref("podinfo-canary", 0), ref("podinfo-primary", 100)]},
    }
    assert objs["VirtualNode/podinfo-primary"]["spec"]["listeners"] == [
        {"portMapping": {"port": 9898, "protocol": "http"}}
    ]
    # an unparsable perTryTimeout and no attempts/retryOn: Flagger's defaults (250ms, 1, gateway-error)
    c = canary(service={"port": 9898, "retries": {"perTryTimeout": "soon", "retryOn": "5xx, reset"}})
    route = by_key(APPMESH_V1BETA2.desired(ctx_for(c), Routes(100, 0)))["VirtualRouter/podinfo"]
    assert route["spec"]["routes"][0]["httpRoute"]["retryPolicy"] == {
        "perRetryTimeout": {"unit": "ms", "value": 250},
        "maxRetries": 1,
        "httpRetryEvents": ["5xx", "reset"],
    }


def test_route_prefix_target_port_and_backends() -> None:
    c = canary(
        service_fields={
            "match": [{"uri": {"prefix": "/api"}}],
            "targetPort": 8080,
            "timeout": "1m30s",
            "backends": ["backend1", "arn:aws:appmesh:eu-west-1:12345678910:mesh/m/virtualService/backend2"],
        }
    )
    objs = by_key(APPMESH_V1BETA2.desired(ctx_for(c), Routes(100, 0)))
    node = objs["VirtualNode/podinfo-canary"]["spec"]
    assert node["listeners"][0]["portMapping"] == {"port": 8080, "protocol": "http"}
    assert node["listeners"][0]["timeout"] == {"http": {"perRequest": {"unit": "ms", "value": 90000}}}
    assert node["backends"] == [
        {"virtualService": {"virtualServiceRef": {"name": "backend1"}}},
        {
            "virtualService": {
                "virtualServiceARN": "arn:aws:appmesh:eu-west-1:12345678910:mesh/m/virtualService/backend2"
            }
        },
    ]
    router = objs["VirtualRouter/podinfo"]["spec"]
    assert router["listeners"][0]["portMapping"]["port"] == 8080
    assert router["routes"][0]["httpRoute"]["match"] == {"prefix": "/api"}
    # a named targetPort is not a number: the service port
    named = canary(service_fields={"targetPort": "http"})
    node = by_key(APPMESH_V1BETA2.desired(ctx_for(named), Routes(100, 0)))["VirtualNode/podinfo-primary"]
    assert node["spec"]["listeners"][0]["portMapping"]["port"] == 9898


def test_grpc_port_name() -> None:
    c = canary(service_fields={"portName": "grpc-api"})
    objs = APPMESH_V1BETA2.desired(ctx_for(c), Routes(100, 0))
    protocols = {
        object_key(o): o["spec"]["listeners"][0]["portMapping"]["protocol"]
        for o in objs
        if "listeners" in o["spec"]
    }
    assert protocols == {
        "VirtualNode/podinfo-primary": "grpc",
        "VirtualNode/podinfo-canary": "grpc",
        "VirtualRouter/podinfo": "grpc",
        "VirtualRouter/podinfo-canary": "grpc",
    }
    legacy = APPMESH.desired(
        ctx_for(canary(service_fields={"portName": "grpc", "meshName": "global"})), Routes(100, 0)
    )
    assert {
        o["spec"]["listeners"][0]["portMapping"]["protocol"] for o in legacy if o["kind"] == "VirtualNode"
    } == {"grpc"}
    http = APPMESH_V1BETA2.desired(
        ctx_for(canary(service_fields={"portName": "http-metrics"})), Routes(100, 0)
    )
    assert http[0]["spec"]["listeners"][0]["portMapping"]["protocol"] == "http"


def test_access_log_annotation() -> None:
    on = canary(annotations={"appmesh.flagger.app/accesslog": "enabled"})
    for obj in APPMESH_V1BETA2.desired(ctx_for(on), Routes(100, 0))[:2]:
        assert obj["spec"]["logging"] == {"accessLog": {"file": {"path": "/dev/stdout"}}}
    off = canary(annotations={"appmesh.flagger.app/accesslog": "disabled"})
    for obj in APPMESH_V1BETA2.desired(ctx_for(off), Routes(100, 0))[:2]:
        assert "logging" not in obj["spec"]


def test_gateway_annotations_on_the_apex_virtual_service_only() -> None:
    c = canary(service_fields={"hosts": ["a.example.com", "b.example.com"]})
    objs = by_key(APPMESH_V1BETA2.desired(ctx_for(c), Routes(100, 0)))
    assert objs["VirtualService/podinfo"]["metadata"]["annotations"] == {
        "gateway.appmesh.k8s.aws/expose": "true",
        "gateway.appmesh.k8s.aws/domain": "a.example.com,b.example.com,",
        "gateway.appmesh.k8s.aws/timeout": "15s",
        "gateway.appmesh.k8s.aws/retries": "3",
    }
    assert "annotations" not in objs["VirtualService/podinfo-canary"]["metadata"]
    bare = canary(service={"port": 9898, "hosts": ["a.example.com"]})
    vs = by_key(APPMESH_V1BETA2.desired(ctx_for(bare), Routes(100, 0)))["VirtualService/podinfo"]
    assert vs["metadata"]["annotations"] == {
        "gateway.appmesh.k8s.aws/expose": "true",
        "gateway.appmesh.k8s.aws/domain": "a.example.com,",
    }
    no_hosts = by_key(APPMESH_V1BETA2.desired(ctx_for(canary()), Routes(100, 0)))["VirtualService/podinfo"]
    assert "annotations" not in no_hosts["metadata"]


def test_ab_testing_routes() -> None:
    match = [
        {"headers": {"x-canary": {"exact": "insider"}, "user-agent": {"regex": ".*Firefox.*"}}},
        {
            "headers": {
                "x-tier": {"prefix": "beta"},
                "x-env": {"suffix": "-qa"},
                "cookie": {"regex": "^(.*?;)?(canary=insider)(;.*)?$"},
            }
        },
    ]
    c = canary(iterations=10, match=match, maxWeight=None, stepWeight=None)
    objs = by_key(APPMESH_V1BETA2.desired(ctx_for(c), Routes(primary=0, canary=100)))
    routes = objs["VirtualRouter/podinfo"]["spec"]["routes"]
    assert routes == [
        {
            "name": "podinfo-a",
            "httpRoute": {
                "match": {
                    "prefix": "/",
                    "headers": [
                        {"name": "x-canary", "match": {"exact": "insider"}},
                        {"name": "user-agent", "match": {"regex": ".*Firefox.*"}},
                        {"name": "x-tier", "match": {"prefix": "beta"}},
                        {"name": "x-env", "match": {"suffix": "-qa"}},
                        {"name": "cookie", "match": {"regex": "^(.*?;)?(canary=insider)(;.*)?$"}},
                    ],
                },
                "timeout": TIMEOUT,
                "retryPolicy": RETRY_V1BETA2,
                "action": {"weightedTargets": [ref("podinfo-canary", 100), ref("podinfo-primary", 0)]},
            },
            "priority": 10,
        },
        {
            "name": "podinfo-b",
            "httpRoute": {
                "match": {"prefix": "/"},
                "timeout": TIMEOUT,
                "retryPolicy": RETRY_V1BETA2,
                "action": {"weightedTargets": [ref("podinfo-primary", 100)]},
            },
            "priority": 20,
        },
    ]
    # the canary router keeps its single route
    assert [r["name"] for r in objs["VirtualRouter/podinfo-canary"]["spec"]["routes"]] == ["podinfo-canary"]
    # read back from the first route of the apex router
    assert APPMESH_V1BETA2.routes(ctx_for(c), objs) == Routes(primary=0, canary=100)


def test_blue_green_uses_the_weighted_layout() -> None:
    c = canary(iterations=10, maxWeight=None, stepWeight=None)
    objs = by_key(APPMESH_V1BETA2.desired(ctx_for(c), Routes(primary=0, canary=100)))
    routes = objs["VirtualRouter/podinfo"]["spec"]["routes"]
    assert [r["name"] for r in routes] == ["podinfo"]
    assert "priority" not in routes[0]
    assert "headers" not in routes[0]["httpRoute"]["match"]
    assert routes[0]["httpRoute"]["action"]["weightedTargets"] == [
        ref("podinfo-canary", 100),
        ref("podinfo-primary", 0),
    ]


def test_matches_app_mesh_cannot_route_are_refused_with_their_path() -> None:
    query = canary(iterations=10, match=[{"queryParams": {"canary": {"exact": "1"}}}])
    with pytest.raises(RouterConfigError, match=r"spec\.analysis\.match\[0\]\.queryParams: App Mesh"):
        APPMESH_V1BETA2.objects(ctx_for(query))
    with pytest.raises(RouterConfigError, match=r"spec\.analysis\.match\[0\]\.queryParams"):
        APPMESH_V1BETA2.desired(ctx_for(query), Routes(100, 0))
    mixed = canary(
        iterations=10, match=[HEADER_MATCH[0], {"headers": {"a": {"exact": "b"}}, "uri": {"prefix": "/x"}}]
    )
    with pytest.raises(RouterConfigError, match=r"spec\.analysis\.match\[1\]\.uri"):
        APPMESH.objects(ctx_for(mixed))
    # header matches, the cookie header included, are fine
    ok = canary(iterations=10, match=[{"name": "insiders", "headers": {"cookie": {"regex": "canary=1"}}}])
    assert len(APPMESH_V1BETA2.objects(ctx_for(ok))) == 6


def test_pod_selector_default_and_context_override() -> None:
    ctx = ctx_for(canary())
    assert pod_selector(ctx) == ("app", "podinfo-primary", "podinfo")

    extended = dataclasses.replace(ctx, selector_label="app.kubernetes.io/name", selector_value="web")
    nodes = by_key(APPMESH_V1BETA2.desired(extended, Routes(100, 0)))
    assert nodes["VirtualNode/podinfo-primary"]["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "web-primary"}
    }
    assert nodes["VirtualNode/podinfo-canary"]["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "web"}
    }


def test_service_name_is_the_apex_and_owner_refs_optional() -> None:
    c = canary(service_fields={"name": "frontend"}, annotations=None)
    ctx = RouteContext.from_canary(c, set_owner_refs=False)
    objs = by_key(APPMESH_V1BETA2.desired(ctx, Routes(100, 0)))
    assert sorted(objs) == [
        "VirtualNode/frontend-canary",
        "VirtualNode/frontend-primary",
        "VirtualRouter/frontend",
        "VirtualRouter/frontend-canary",
        "VirtualService/frontend",
        "VirtualService/frontend-canary",
    ]
    assert all("ownerReferences" not in o["metadata"] for o in objs.values())
    # the pod selectors still name the target's pods
    assert objs["VirtualNode/frontend-primary"]["spec"]["podSelector"] == {
        "matchLabels": {"app": "podinfo-primary"}
    }


# ---------------------------------------------------------------------------------------------- legacy v1beta1


def test_legacy_requires_mesh_name() -> None:
    with pytest.raises(RouterConfigError, match=r"^spec\.service\.meshName: required for provider appmesh$"):
        APPMESH.objects(ctx_for(canary(provider="appmesh")))
    with pytest.raises(RouterConfigError, match="meshName"):
        APPMESH.desired(ctx_for(canary(provider="appmesh")), Routes(100, 0))
    # v1beta2 finds the mesh by namespace selector: no meshName needed
    assert APPMESH_V1BETA2.objects(ctx_for(canary()))


def test_legacy_objects() -> None:
    c = canary(
        provider="appmesh",
        service_fields={"meshName": "global", "backends": ["backend1"], "hosts": ["a.example.com"]},
    )
    ctx = ctx_for(c)
    refs = APPMESH.objects(ctx)
    assert [r.key for r in refs] == [
        "VirtualNode/podinfo",
        "VirtualNode/podinfo-primary",
        "VirtualNode/podinfo-canary",
        "VirtualService/podinfo.test",
        "VirtualService/podinfo-canary.test",
    ]
    assert {r.api_version for r in refs} == {"appmesh.k8s.aws/v1beta1"}
    objs = by_key(APPMESH.desired(ctx, Routes(primary=90, canary=10)))
    assert list(objs) == [r.key for r in refs]
    node = objs["VirtualNode/podinfo-canary"]
    assert node == {
        "apiVersion": "appmesh.k8s.aws/v1beta1",
        "kind": "VirtualNode",
        "metadata": {"name": "podinfo-canary", "namespace": "test", "ownerReferences": [OWNER]},
        "spec": {
            "meshName": "global",
            "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}],
            "serviceDiscovery": {"dns": {"hostName": "podinfo-canary.test"}},
            "backends": [{"virtualService": {"virtualServiceName": "backend1"}}],
        },
    }
    # the apex virtual node discovers the primary
    assert objs["VirtualNode/podinfo"]["spec"]["serviceDiscovery"] == {
        "dns": {"hostName": "podinfo-primary.test"}
    }
    vs = objs["VirtualService/podinfo.test"]
    assert vs["metadata"]["name"] == "podinfo.test"
    assert vs["metadata"]["annotations"]["gateway.appmesh.k8s.aws/domain"] == "a.example.com,"
    assert vs["spec"] == {
        "meshName": "global",
        "virtualRouter": {
            "name": "podinfo",
            "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}],
        },
        "routes": [
            {
                "name": "podinfo",
                "http": {
                    "match": {"prefix": "/"},
                    "retryPolicy": {
                        "perRetryTimeoutMillis": 5000,
                        "maxRetries": 3,
                        "httpRetryEvents": ["gateway-error", "client-error", "stream-error"],
                    },
                    "action": {
                        "weightedTargets": [
                            {"virtualNodeName": "podinfo-canary", "weight": 10},
                            {"virtualNodeName": "podinfo-primary", "weight": 90},
                        ]
                    },
                },
            }
        ],
    }
    canary_vs = objs["VirtualService/podinfo-canary.test"]
    assert "annotations" not in canary_vs["metadata"]
    assert canary_vs["spec"]["virtualRouter"]["name"] == "podinfo-canary"
    assert canary_vs["spec"]["routes"][0]["http"]["action"]["weightedTargets"] == [
        {"virtualNodeName": "podinfo-canary", "weight": 100},
        {"virtualNodeName": "podinfo-primary", "weight": 0},
    ]
    assert APPMESH.routes(ctx, objs) == Routes(primary=90, canary=10)


def test_legacy_differs_from_v1beta2() -> None:
    """No pod selector, no timeouts, the service port even with a targetPort, and ``http``/``hostName``."""
    c = canary(provider="appmesh", service_fields={"meshName": "global", "targetPort": 8080})
    objs = APPMESH.desired(ctx_for(c), Routes(100, 0))
    text = repr(objs)
    for absent in ("podSelector", "timeout", "httpRoute", "hostname", "virtualNodeRef", "perRetryTimeout'"):
        assert absent not in text
    assert {o["spec"]["listeners"][0]["portMapping"]["port"] for o in objs if o["kind"] == "VirtualNode"} == {
        9898
    }
    modern = APPMESH_V1BETA2.desired(ctx_for(c), Routes(100, 0))
    assert {
        o["spec"]["listeners"][0]["portMapping"]["port"] for o in modern if o["kind"] == "VirtualNode"
    } == {8080}


def test_legacy_ab_testing_and_access_log() -> None:
    c = canary(
        provider="appmesh",
        service_fields={"meshName": "global"},
        annotations={"appmesh.flagger.app/accesslog": "enabled"},
        iterations=10,
        match=HEADER_MATCH,
    )
    objs = by_key(APPMESH.desired(ctx_for(c), Routes(primary=0, canary=100)))
    routes = objs["VirtualService/podinfo.test"]["spec"]["routes"]
    assert [(r["name"], r["priority"]) for r in routes] == [("podinfo-a", 10), ("podinfo-b", 20)]
    assert routes[0]["http"]["match"]["headers"] == [{"name": "x-canary", "match": {"exact": "insider"}}]
    assert routes[1]["http"]["action"] == {
        "weightedTargets": [{"virtualNodeName": "podinfo-primary", "weight": 100}]
    }
    for key in ("VirtualNode/podinfo", "VirtualNode/podinfo-primary", "VirtualNode/podinfo-canary"):
        assert objs[key]["spec"]["logging"] == {"accessLog": {"file": {"path": "/dev/stdout"}}}


# ---------------------------------------------------------------------------------------------- read back


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.name)
@pytest.mark.parametrize("split", [Routes(100, 0), Routes(95, 5), Routes(50, 50), Routes(0, 100)])
def test_round_trip(router: AppMeshRouter, split: Routes) -> None:
    c = canary(provider=router.name, service_fields={"meshName": "global"})
    ctx = ctx_for(c)
    assert router.routes(ctx, by_key([stored(o) for o in router.desired(ctx, split)])) == split


def test_read_back_errors() -> None:
    ctx = ctx_for(canary())
    with pytest.raises(RoutesError, match=r"VirtualRouter podinfo\.test query error: not found"):
        APPMESH_V1BETA2.routes(ctx, {})
    objs = by_key(APPMESH_V1BETA2.desired(ctx, Routes(100, 0)))
    router = objs["VirtualRouter/podinfo"]
    router["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"].pop()
    with pytest.raises(RoutesError, match=r"VirtualRouter podinfo\.test routes not found"):
        APPMESH_V1BETA2.routes(ctx, objs)
    router["spec"]["routes"] = []
    with pytest.raises(RoutesError, match="routes not found"):
        APPMESH_V1BETA2.routes(ctx, objs)
    router["spec"]["routes"] = [
        {
            "name": "podinfo",
            "httpRoute": {"action": {"weightedTargets": [ref("other", 50), ref("podinfo-primary", 0)]}},
        }
    ]
    with pytest.raises(RoutesError, match="does not contain routes for podinfo-primary and podinfo-canary"):
        APPMESH_V1BETA2.routes(ctx, objs)
    legacy = ctx_for(canary(provider="appmesh", service_fields={"meshName": "global"}))
    with pytest.raises(RoutesError, match=r"VirtualService podinfo\.test query error: not found"):
        APPMESH.routes(legacy, {"VirtualRouter/podinfo": router})


# ---------------------------------------------------------------------------------------------- reconcile / set routes


def with_system_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` as the App Mesh controller stores it: awsName, meshRef, a status, a foreign annotation."""
    out = stored(obj)
    out["spec"]["awsName"] = f"{obj['metadata']['name']}_test"
    out["spec"]["meshRef"] = {"name": "global", "uid": "mesh-uid"}
    out["status"] = {"conditions": [{"type": "VirtualRouterActive", "status": "True"}]}
    out["metadata"].setdefault("annotations", {})["example.com/owner"] = "team-a"
    return out


def test_reconcile_ignores_weights_and_system_fields() -> None:
    ctx = ctx_for(canary(service_fields={"hosts": ["a.example.com"]}))
    observed = {object_key(o): with_system_fields(o) for o in APPMESH_V1BETA2.desired(ctx, Routes(60, 40))}
    for desired in APPMESH_V1BETA2.desired(ctx, Routes(100, 0)):
        assert not APPMESH_V1BETA2.needs_update(ctx, observed[object_key(desired)], desired)
    # a changed timeout is an update, and the merge keeps the weights and the controller's fields
    changed = ctx_for(canary(service_fields={"hosts": ["a.example.com"], "timeout": "30s"}))
    desired_router = by_key(APPMESH_V1BETA2.desired(changed, Routes(100, 0)))["VirtualRouter/podinfo"]
    observed_router = observed["VirtualRouter/podinfo"]
    assert APPMESH_V1BETA2.needs_update(changed, observed_router, desired_router)
    merged = APPMESH_V1BETA2.merge(changed, observed_router, desired_router)
    route = merged["spec"]["routes"][0]["httpRoute"]
    assert route["timeout"] == {"perRequest": {"unit": "ms", "value": 30000}}
    assert route["action"]["weightedTargets"] == [ref("podinfo-canary", 40), ref("podinfo-primary", 60)]
    assert merged["spec"]["awsName"] == "podinfo_test"
    assert merged["spec"]["meshRef"] == {"name": "global", "uid": "mesh-uid"}
    assert merged["status"] == observed_router["status"]
    assert merged["metadata"]["resourceVersion"] == "7"
    assert merged["metadata"]["annotations"] == {"example.com/owner": "team-a"}
    assert not APPMESH_V1BETA2.needs_update(changed, merged, desired_router)


def test_reconcile_switching_to_ab_takes_the_new_routes() -> None:
    ctx = ctx_for(canary())
    observed = with_system_fields(
        by_key(APPMESH_V1BETA2.desired(ctx, Routes(100, 0)))["VirtualRouter/podinfo"]
    )
    ab = ctx_for(canary(iterations=10, match=HEADER_MATCH))
    desired = by_key(APPMESH_V1BETA2.desired(ab, Routes(100, 0)))["VirtualRouter/podinfo"]
    assert APPMESH_V1BETA2.needs_update(ab, observed, desired)
    merged = APPMESH_V1BETA2.merge(ab, observed, desired)
    assert [r["name"] for r in merged["spec"]["routes"]] == ["podinfo-a", "podinfo-b"]
    assert merged["spec"]["awsName"] == "podinfo_test"


def test_reconcile_gateway_annotations() -> None:
    before = ctx_for(canary(service_fields={"hosts": ["a.example.com"]}))
    observed = with_system_fields(
        by_key(APPMESH_V1BETA2.desired(before, Routes(100, 0)))["VirtualService/podinfo"]
    )
    after = ctx_for(canary())
    desired = by_key(APPMESH_V1BETA2.desired(after, Routes(100, 0)))["VirtualService/podinfo"]
    assert APPMESH_V1BETA2.needs_update(after, observed, desired)
    merged = APPMESH_V1BETA2.merge(after, observed, desired)
    assert merged["metadata"]["annotations"] == {"example.com/owner": "team-a"}
    assert merged["spec"]["provider"] == {"virtualRouter": {"virtualRouterRef": {"name": "podinfo"}}}
    assert merged["spec"]["meshRef"] == {"name": "global", "uid": "mesh-uid"}
    again = APPMESH_V1BETA2.merge(before, merged, observed)
    assert again["metadata"]["annotations"]["gateway.appmesh.k8s.aws/expose"] == "true"


def test_reconcile_of_virtual_nodes() -> None:
    ctx = ctx_for(canary())
    desired = APPMESH_V1BETA2.desired(ctx, Routes(100, 0))[0]
    observed = with_system_fields(desired)
    assert not APPMESH_V1BETA2.needs_update(ctx, observed, desired)
    logged = ctx_for(canary(annotations={"appmesh.flagger.app/accesslog": "enabled"}))
    desired_logged = APPMESH_V1BETA2.desired(logged, Routes(100, 0))[0]
    assert APPMESH_V1BETA2.needs_update(logged, observed, desired_logged)
    merged = APPMESH_V1BETA2.merge(logged, observed, desired_logged)
    assert merged["spec"]["logging"] == {"accessLog": {"file": {"path": "/dev/stdout"}}}
    assert merged["spec"]["awsName"] == "podinfo-primary_test"


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.name)
def test_set_routes_replaces_only_the_actions(router: AppMeshRouter) -> None:
    ctx = ctx_for(canary(provider=router.name, service_fields={"meshName": "global"}))
    observed = by_key([with_system_fields(o) for o in router.desired(ctx, Routes(100, 0))])
    kind, name = router.weighted_object(ctx)
    weighted = observed[f"{kind}/{name}"]
    # a field the operator does not write survives SetRoutes
    route_key = "http" if router is APPMESH else "httpRoute"
    weighted["spec"]["routes"][0][route_key]["match"]["method"] = "GET"
    desired = by_key(router.desired(ctx, Routes(70, 30)))
    merged = router.merge(ctx, weighted, desired[f"{kind}/{name}"], set_routes=True)
    assert router.routes(ctx, {f"{kind}/{name}": merged}) == Routes(primary=70, canary=30)
    expected = copy.deepcopy(weighted)
    expected["spec"]["routes"][0][route_key]["action"] = desired[f"{kind}/{name}"]["spec"]["routes"][0][
        route_key
    ]["action"]
    assert merged == expected
    # objects without routes come back unchanged
    node = observed[f"VirtualNode/{ctx.primary}"]
    assert router.merge(ctx, node, desired[f"VirtualNode/{ctx.primary}"], set_routes=True) == node


def test_set_routes_in_ab_keeps_the_b_route() -> None:
    ctx = ctx_for(canary(iterations=10, match=HEADER_MATCH))
    observed = with_system_fields(
        by_key(APPMESH_V1BETA2.desired(ctx, Routes(100, 0)))["VirtualRouter/podinfo"]
    )
    desired = by_key(APPMESH_V1BETA2.desired(ctx, Routes(0, 100)))["VirtualRouter/podinfo"]
    merged = APPMESH_V1BETA2.merge(ctx, observed, desired, set_routes=True)
    a, b = merged["spec"]["routes"]
    assert a["httpRoute"]["action"]["weightedTargets"] == [
        ref("podinfo-canary", 100),
        ref("podinfo-primary", 0),
    ]
    assert a["httpRoute"]["match"]["headers"] == [{"name": "x-canary", "match": {"exact": "insider"}}]
    assert b["httpRoute"]["action"]["weightedTargets"] == [ref("podinfo-primary", 100)]
    assert APPMESH_V1BETA2.routes(ctx, {"VirtualRouter/podinfo": merged}) == Routes(0, 100)


def test_legacy_reconcile_keeps_weights() -> None:
    ctx = ctx_for(canary(provider="appmesh", service_fields={"meshName": "global"}))
    observed = with_system_fields(by_key(APPMESH.desired(ctx, Routes(80, 20)))["VirtualService/podinfo.test"])
    other_mesh = ctx_for(canary(provider="appmesh", service_fields={"meshName": "other"}))
    desired = by_key(APPMESH.desired(other_mesh, Routes(100, 0)))["VirtualService/podinfo.test"]
    assert APPMESH.needs_update(other_mesh, observed, desired)
    merged = APPMESH.merge(other_mesh, observed, desired)
    assert merged["spec"]["meshName"] == "other"
    assert APPMESH.routes(other_mesh, {"VirtualService/podinfo.test": merged}) == Routes(80, 20)


@pytest.mark.parametrize("router", ROUTERS, ids=lambda r: r.name)
def test_revert_has_nothing_to_restore(router: AppMeshRouter) -> None:
    ctx = ctx_for(canary(provider=router.name, service_fields={"meshName": "global"}))
    assert router.revert(ctx, by_key(router.desired(ctx, Routes(100, 0)))) == []
