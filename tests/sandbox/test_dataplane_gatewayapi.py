"""The Gateway API translator: the HTTPRoutes the router writes (built with the router itself from the
walkthrough's Canary, examples/gatewayapi/canary.yaml) become Envoy routes on the gateway listener (a
Gateway parent) or on a Service's listeners (GAMMA), with the statuses a Gateway API controller writes.
The pure tests check the rendered configuration; one test runs it in a real Envoy in front of demo apps.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.kube.resources import NAMESPACE, ResourceKind, lookup
from canarist.routers.base import AffinityCookies, RouteContext, next_affinity_cookies
from canarist.routers.gatewayapi import GATEWAYAPI_V1, GATEWAYAPI_V1BETA1, HTTP_ROUTE_V1, HTTP_ROUTE_V1BETA1
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane.base import Obj
from canarist.sandbox.dataplane.gatewayapi import (
    CONTROLLER_NAME,
    GATEWAY_CLASS_V1,
    GATEWAY_V1,
    GATEWAY_V1BETA1,
    REFERENCE_GRANT_V1BETA1,
    GatewayAPITranslator,
    hostname_intersection,
)
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, cluster_name, envoy_config, listener_key
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint

NS = "test"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gatewayapi"
PRIMARY = cluster_name(NS, "podinfo-primary", 9898)
CANARY = cluster_name(NS, "podinfo-canary", 9898)
TRANSLATOR = GatewayAPITranslator()


def service(name: str, namespace: str = NS, port: int = 9898) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"ports": [{"name": "http", "port": port}]},
    }


SERVICES = [service("podinfo"), service("podinfo-primary"), service("podinfo-canary")]
PRIMARY_POD = Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})
CANARY_POD = Endpoint("127.0.0.1", 4002, {"app": "podinfo"})
ENDPOINTS = {
    (NS, "podinfo"): [PRIMARY_POD, CANARY_POD],
    (NS, "podinfo-primary"): [PRIMARY_POD],
    (NS, "podinfo-canary"): [CANARY_POD],
}
PORTS = {GATEWAY_LISTENER: 10000} | {
    listener_key(NS, s["metadata"]["name"], 9898): 10001 + i for i, s in enumerate(SERVICES)
}


def routing() -> list[dict[str, Any]]:
    """The documents of examples/gatewayapi/routing.yaml."""
    return [d for d in yaml.safe_load_all((EXAMPLES / "routing.yaml").read_text()) if d]


def example(kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for d in routing() if d["kind"] == kind))


def canary(**service_fields: Any) -> Canary:
    """The walkthrough's Canary (examples/gatewayapi/canary.yaml) with ``spec.service`` fields replaced and
    ``analysis`` fields from ``analysis=``."""
    manifest = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    analysis = service_fields.pop("analysis", {})
    manifest["spec"]["service"].update(service_fields)
    manifest["spec"]["analysis"].update(analysis)
    return Canary.model_validate(manifest)


def http_route(c: Canary, routes: Routes, *, generation: int = 2, **kw: Any) -> dict[str, Any]:
    """The HTTPRoute the router writes, as the API server holds it (generation, defaults of the CRD)."""
    [route] = GATEWAYAPI_V1.desired(RouteContext.from_canary(c, **kw), routes)
    route["metadata"]["generation"] = generation
    route["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    for ref in route["spec"]["parentRefs"]:
        ref.setdefault("group", "gateway.networking.k8s.io")
        ref.setdefault("kind", "Gateway")
    return route


def world_objects(
    *routes: dict[str, Any], gateway: dict[str, Any] | None = None
) -> dict[ResourceKind, list[Obj]]:
    return {
        HTTP_ROUTE_V1: list(routes),
        GATEWAY_V1: [gateway if gateway is not None else example("Gateway")],
        GATEWAY_CLASS_V1: [example("GatewayClass")],
        NAMESPACE: [example("Namespace"), {"metadata": {"name": NS, "labels": {"env": "test"}}}],
    }


def build(objects: Mapping[ResourceKind, Sequence[Obj]], **kw: Any) -> dict[str, Any]:
    return envoy_config(
        objects,
        kw.pop("services", SERVICES),
        ENDPOINTS,
        ports=PORTS,
        routes_dir="/r",
        weight_header="x-seq",
        translators=[TRANSLATOR],
        **kw,
    )


def vhost(config: dict[str, Any], domain: str) -> dict[str, Any]:
    hosts: list[dict[str, Any]] = config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    return next(h for h in hosts if domain in h["domains"])


def weights(route: Mapping[str, Any]) -> list[tuple[str, int]]:
    return [(c["name"], c["weight"]) for c in route["route"]["weighted_clusters"]["clusters"]]


def statuses(config: dict[str, Any], kind: ResourceKind) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s.namespace, s.name): dict(s.status) for s in config["statuses"] if s.kind == kind}


def conditions(parent: Mapping[str, Any]) -> dict[str, tuple[str, str, int]]:
    return {c["type"]: (c["status"], c["reason"], c.get("observedGeneration")) for c in parent["conditions"]}


AB = {"match": [{"headers": {"x-canary": {"exact": "insider"}}}]}
AFFINITY = {"sessionAffinity": {"cookieName": "flagger-cookie", "maxAge": 21600}}


# ------------------------------------------------------------------------------------------------ registry


def test_registered_with_its_kinds() -> None:
    assert "gatewayapi" in [t.name for t in dataplane.translators()]
    for kind in (HTTP_ROUTE_V1, HTTP_ROUTE_V1BETA1, GATEWAY_V1, GATEWAY_V1BETA1):
        assert kind in dataplane.watched_kinds()
    assert lookup("gateway.networking.k8s.io/v1", "Gateway") == GATEWAY_V1
    assert lookup("gateway.networking.k8s.io/v1beta1", "ReferenceGrant") == REFERENCE_GRANT_V1BETA1


# ------------------------------------------------------------------------------------------------ layouts


def test_canary_route_on_the_gateway_with_weights_and_statuses() -> None:
    c = canary()
    config = build(world_objects(http_route(c, Routes(90, 10))))
    host = vhost(config, "app.example.com")
    assert host["domains"] == ["app.example.com"]
    [route] = host["routes"]
    assert route["match"] == {"prefix": "/"}
    assert weights(route) == [(PRIMARY, 90), (CANARY, 10)]
    assert route["route"]["weighted_clusters"]["header_name"] == "x-seq"
    assert route["route"]["timeout"] == "0.000s"
    # the per-Service hosts stay (podinfo.test is not claimed by the route)
    assert vhost(config, "podinfo.test")["name"] == "svc.test.podinfo"

    [parent] = statuses(config, HTTP_ROUTE_V1)[(NS, "podinfo")]["parents"]
    assert parent["controllerName"] == CONTROLLER_NAME
    assert parent["parentRef"]["name"] == "gateway"
    assert parent["parentRef"]["namespace"] == "gateway-system"
    assert conditions(parent) == {
        "Accepted": ("True", "Accepted", 2),
        "ResolvedRefs": ("True", "ResolvedRefs", 2),
    }
    gateway = statuses(config, GATEWAY_V1)[("gateway-system", "gateway")]
    assert {c["type"]: c["status"] for c in gateway["conditions"]} == {
        "Accepted": "True",
        "Programmed": "True",
    }
    assert gateway["listeners"][0]["name"] == "http"
    assert gateway["listeners"][0]["attachedRoutes"] == 1
    [gateway_class] = statuses(config, GATEWAY_CLASS_V1).values()
    assert gateway_class["conditions"][0]["status"] == "True"


def test_the_router_trusts_the_weights_once_the_status_is_written() -> None:
    c = canary()
    ctx = RouteContext.from_canary(c)
    route = http_route(c, Routes(70, 30))
    config = build(world_objects(route))
    route["status"] = statuses(config, HTTP_ROUTE_V1)[(NS, "podinfo")]
    assert GATEWAYAPI_V1.routes(ctx, {"HTTPRoute/podinfo": route}) == Routes(70, 30)


def test_ab_rules_header_first_then_the_primary() -> None:
    c = canary(analysis=AB)
    host = vhost(build(world_objects(http_route(c, Routes(0, 100)))), "app.example.com")
    insider, everyone = host["routes"]
    assert insider["match"]["headers"] == [{"name": "x-canary", "string_match": {"exact": "insider"}}]
    assert weights(insider) == [(PRIMARY, 0), (CANARY, 100)]
    assert "headers" not in everyone["match"]
    assert everyone["route"]["cluster"] == PRIMARY


def test_a_header_rule_precedes_a_plain_one_whatever_the_rule_order() -> None:
    c = canary(analysis=AB)
    route = http_route(c, Routes(0, 100))
    route["spec"]["rules"].reverse()
    [insider, everyone] = vhost(build(world_objects(route)), "app.example.com")["routes"]
    assert insider["match"].get("headers")
    assert not everyone["match"].get("headers")


def test_mirroring_copies_requests_to_the_canary() -> None:
    c = canary()
    [route] = vhost(build(world_objects(http_route(c, Routes(100, 0, mirrored=True)))), "app.example.com")[
        "routes"
    ]
    assert weights(route) == [(PRIMARY, 100), (CANARY, 0)]
    [mirror] = route["route"]["request_mirror_policies"]
    assert mirror["cluster"] == CANARY
    assert mirror["runtime_fraction"]["default_value"] == {"numerator": 1_000_000, "denominator": "MILLION"}


def test_session_affinity_cookie_rules_and_set_cookie_headers() -> None:
    c = canary(analysis=AFFINITY)
    cookies = next_affinity_cookies(c, 10, AffinityCookies(), fresh_canary="abcdefghij", fresh_primary="x")
    route = http_route(c, Routes(90, 10), cookies=cookies)
    sticky, weighted = vhost(build(world_objects(route)), "app.example.com")["routes"]
    assert sticky["match"]["headers"] == [
        {"name": "cookie", "string_match": {"safe_regex": {"regex": ".*flagger-cookie.*abcdefghij.*"}}}
    ]
    assert weights(sticky) == [(PRIMARY, 0), (CANARY, 100)]
    assert weights(weighted) == [(PRIMARY, 90), (CANARY, 10)]
    primary, canary_entry = weighted["route"]["weighted_clusters"]["clusters"]
    assert "response_headers_to_add" not in primary
    assert canary_entry["response_headers_to_add"] == [
        {
            "header": {"key": "Set-Cookie", "value": "flagger-cookie=abcdefghij; Max-Age=21600"},
            "append_action": "APPEND_IF_EXISTS_OR_ADD",
        }
    ]
    # after the promotion, the previous cookie is expired by a rule of its own
    after = next_affinity_cookies(c, 0, cookies, fresh_canary="zzz", fresh_primary="y")
    expire, _ = vhost(build(world_objects(http_route(c, Routes(100, 0), cookies=after))), "app.example.com")[
        "routes"
    ]
    assert expire["response_headers_to_add"][0]["header"]["value"] == "flagger-cookie=abcdefghij; Max-Age=-1"


def test_service_filters_rewrite_timeout_and_headers() -> None:
    c = canary(
        match=[
            {"uri": {"prefix": "/api"}, "method": {"exact": "GET"}, "queryParams": {"v": {"regex": "2.*"}}}
        ],
        rewrite={"uri": "/", "type": "ReplacePrefixMatch", "authority": "podinfo.internal"},
        timeout="5s",
        headers={
            "request": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["x-c"]},
            "response": {"set": {"x-d": "3"}},
        },
    )
    [route] = vhost(build(world_objects(http_route(c, Routes(90, 10)))), "app.example.com")["routes"]
    assert route["match"] == {
        "path_separated_prefix": "/api",
        "headers": [{"name": ":method", "string_match": {"exact": "GET"}}],
        "query_parameters": [{"name": "v", "string_match": {"safe_regex": {"regex": "2.*"}}}],
    }
    action = route["route"]
    assert action["regex_rewrite"] == {"pattern": {"regex": "^/api/?"}, "substitution": "/"}
    assert action["host_rewrite_literal"] == "podinfo.internal"
    assert action["timeout"] == "5.000s"
    assert [h["header"]["key"] for h in route["request_headers_to_add"]] == ["x-a", "x-b"]
    assert [h["append_action"] for h in route["request_headers_to_add"]] == [
        "OVERWRITE_IF_EXISTS_OR_ADD",
        "APPEND_IF_EXISTS_OR_ADD",
    ]
    assert route["request_headers_to_remove"] == ["x-c"]
    assert route["response_headers_to_add"][0]["header"] == {"key": "x-d", "value": "3"}


def test_full_path_rewrite_exact_and_regex_paths_and_mirror_percent() -> None:
    route = http_route(canary(), Routes(90, 10))
    route["spec"]["rules"] = [
        {
            "matches": [
                {"path": {"type": "Exact", "value": "/x"}},
                {"path": {"type": "RegularExpression", "value": "/r.*"}},
            ],
            "filters": [
                {
                    "type": "URLRewrite",
                    "urlRewrite": {"path": {"type": "ReplaceFullPath", "replaceFullPath": "/y"}},
                },
                {
                    "type": "RequestMirror",
                    "requestMirror": {"backendRef": {"name": "podinfo-canary", "port": 9898}, "percent": 25},
                },
            ],
            "backendRefs": [{"name": "podinfo-primary", "port": 9898}],
        }
    ]
    exact, regex = vhost(build(world_objects(route)), "app.example.com")["routes"]
    assert exact["match"] == {"path": "/x"}
    assert regex["match"] == {"safe_regex": {"regex": "/r.*"}}
    assert exact["route"]["regex_rewrite"] == {"pattern": {"regex": "^.*$"}, "substitution": "/y"}
    assert exact["route"]["cluster"] == PRIMARY  # one backend with the default weight
    assert (
        exact["route"]["request_mirror_policies"][0]["runtime_fraction"]["default_value"]["numerator"]
        == 250_000
    )


def test_gamma_parent_programs_the_service_listeners() -> None:
    c = canary(analysis=AB)
    route = http_route(c, Routes(0, 100))
    route["spec"]["parentRefs"] = [{"group": "", "kind": "Service", "name": "podinfo", "port": 9898}]
    config = build(world_objects(route))
    svc_routes = config["routes"]["svc.test.podinfo.9898"]["virtual_hosts"][0]["routes"]
    assert [r["name"] for r in svc_routes] == [
        "httproute.test.podinfo.rule.0.match.0",
        "httproute.test.podinfo.rule.1.match.0",
        "podinfo.test.default",
    ]
    assert weights(svc_routes[0]) == [(PRIMARY, 0), (CANARY, 100)]
    # not on the gateway under the route's hostnames: only the Service's own names (the meshed ingress)
    assert all(
        "app.example.com" not in h["domains"] for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    )
    assert vhost(config, "podinfo.test")["routes"][0] == svc_routes[0]
    [parent] = statuses(config, HTTP_ROUTE_V1)[(NS, "podinfo")]["parents"]
    assert parent["parentRef"]["kind"] == "Service"
    assert conditions(parent)["Accepted"] == ("True", "Accepted", 2)
    # a Service that does not exist is no parent
    route["spec"]["parentRefs"] = [{"group": "", "kind": "Service", "name": "nothing"}]
    [parent] = statuses(build(world_objects(route)), HTTP_ROUTE_V1)[(NS, "podinfo")]["parents"]
    assert conditions(parent)["Accepted"] == ("False", "NoMatchingParent", 2)


# ------------------------------------------------------------------------------------------------ binding


def test_missing_gateway_and_listener_rules() -> None:
    c = canary()
    route = http_route(c, Routes(90, 10))
    route["spec"]["parentRefs"] = [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "absent"}
    ]
    config = build(world_objects(route))
    [parent] = statuses(config, HTTP_ROUTE_V1)[(NS, "podinfo")]["parents"]
    assert conditions(parent)["Accepted"] == ("False", "NoMatchingParent", 2)
    assert all(
        "app.example.com" not in h["domains"] for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    )

    def accepted(gateway: dict[str, Any], **ref: Any) -> tuple[str, str, int]:
        r = http_route(c, Routes(90, 10))
        r["spec"]["parentRefs"][0].update(ref)
        [p] = statuses(build(world_objects(r, gateway=gateway)), HTTP_ROUTE_V1)[(NS, "podinfo")]["parents"]
        return conditions(p)["Accepted"]

    gateway = example("Gateway")
    assert accepted(gateway, sectionName="https") == ("False", "NoMatchingParent", 2)
    assert accepted(gateway, sectionName="http", port=80) == ("True", "Accepted", 2)
    same = copy.deepcopy(gateway)
    same["spec"]["listeners"][0]["allowedRoutes"] = {"namespaces": {"from": "Same"}}
    assert accepted(same) == ("False", "NotAllowedByListeners", 2)
    selector = copy.deepcopy(gateway)
    selector["spec"]["listeners"][0]["allowedRoutes"] = {
        "namespaces": {"from": "Selector", "selector": {"matchLabels": {"env": "test"}}}
    }
    assert accepted(selector) == ("True", "Accepted", 2)
    selector["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["selector"] = {
        "matchLabels": {"env": "prod"}
    }
    assert accepted(selector) == ("False", "NotAllowedByListeners", 2)
    other = copy.deepcopy(gateway)
    other["spec"]["listeners"][0]["hostname"] = "*.example.org"
    assert accepted(other) == ("False", "NoMatchingListenerHostname", 2)
    wildcard = copy.deepcopy(gateway)
    wildcard["spec"]["listeners"][0]["hostname"] = "*.example.com"
    assert accepted(wildcard) == ("True", "Accepted", 2)


def test_hostname_intersection() -> None:
    assert hostname_intersection(None, []) == ["*"]
    assert hostname_intersection(None, ["App.Example.com"]) == ["app.example.com"]
    assert hostname_intersection("*.example.com", []) == ["*.example.com"]
    assert hostname_intersection("*.example.com", ["a.example.com", "b.example.org", "example.com"]) == [
        "a.example.com"
    ]
    assert hostname_intersection("a.example.com", ["*.example.com"]) == ["a.example.com"]
    assert hostname_intersection("*.example.com", ["*.example.com"]) == ["*.example.com"]


def test_routes_sharing_a_hostname_are_merged_by_precedence() -> None:
    c = canary()
    older = http_route(c, Routes(90, 10))
    newer = copy.deepcopy(older)
    newer["metadata"].update(name="api", creationTimestamp="2024-06-01T00:00:00Z")
    newer["spec"]["rules"] = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
            "backendRefs": [{"name": "podinfo-canary", "port": 9898}],
        }
    ]
    host = vhost(build(world_objects(newer, older)), "app.example.com")
    # the longer prefix first, then the older route's catch-all
    assert [r["name"] for r in host["routes"]] == [
        "httproute.test.api.rule.0.match.0",
        "httproute.test.podinfo.rule.0.match.0",
    ]


def test_v1_and_v1beta1_copies_of_a_route_are_one_route() -> None:
    c = canary()
    v1 = http_route(c, Routes(90, 10))
    [beta] = GATEWAYAPI_V1BETA1.desired(RouteContext.from_canary(c), Routes(90, 10))
    beta["metadata"]["generation"] = 2
    objects = world_objects(v1) | {HTTP_ROUTE_V1BETA1: [beta]}
    config = build(objects)
    assert len(vhost(config, "app.example.com")["routes"]) == 1
    assert list(statuses(config, HTTP_ROUTE_V1)) == [(NS, "podinfo")]
    assert statuses(config, HTTP_ROUTE_V1BETA1) == {}
    only_beta = build(world_objects() | {HTTP_ROUTE_V1BETA1: [beta]})
    assert list(statuses(only_beta, HTTP_ROUTE_V1BETA1)) == [(NS, "podinfo")]


# ------------------------------------------------------------------------------------------------ backends


def test_unresolved_backends_answer_500_and_are_reported() -> None:
    c = canary()
    route = http_route(c, Routes(90, 10))
    route["spec"]["rules"][0]["backendRefs"][1]["name"] = "absent"
    config = build(world_objects(route))
    [envoy_route] = vhost(config, "app.example.com")["routes"]
    assert envoy_route["route"]["cluster_not_found_response_code"] == "INTERNAL_SERVER_ERROR"
    assert envoy_route["route"]["weighted_clusters"]["clusters"][1]["name"] not in {
        cl["name"] for cl in config["clusters"]
    }
    [parent] = statuses(config, HTTP_ROUTE_V1)[(NS, "podinfo")]["parents"]
    assert conditions(parent)["ResolvedRefs"][:2] == ("False", "BackendNotFound")
    assert conditions(parent)["Accepted"][0] == "True"

    route["spec"]["rules"][0]["backendRefs"] = [
        {"name": "podinfo-primary", "port": 9898, "weight": 0},
        {"name": "podinfo-canary", "port": 9898, "weight": 0},
    ]
    [envoy_route] = vhost(build(world_objects(route)), "app.example.com")["routes"]
    assert envoy_route["direct_response"] == {"status": 500}


def test_cross_namespace_backends_need_a_reference_grant() -> None:
    route = http_route(canary(), Routes(100, 0))
    route["spec"]["rules"][0]["backendRefs"] = [{"name": "podinfo", "namespace": "other", "port": 9898}]
    services = [*SERVICES, service("podinfo", "other")]

    def resolved(grants: list[dict[str, Any]]) -> tuple[str, str, int]:
        objects = world_objects(route) | {REFERENCE_GRANT_V1BETA1: grants}
        [p] = statuses(build(objects, services=services), HTTP_ROUTE_V1)[(NS, "podinfo")]["parents"]
        return conditions(p)["ResolvedRefs"]

    assert resolved([])[:2] == ("False", "RefNotPermitted")
    grant = {
        "metadata": {"name": "from-test", "namespace": "other"},
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": NS}],
            "to": [{"group": "", "kind": "Service"}],
        },
    }
    assert resolved([grant]) == ("True", "ResolvedRefs", 2)


def test_unchanged_statuses_render_identically_and_other_controllers_entries_stay() -> None:
    c = canary()
    route = http_route(c, Routes(90, 10))
    other = {
        "parentRef": {"name": "elsewhere"},
        "controllerName": "example.com/other",
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "",
                "lastTransitionTime": "2020-01-01T00:00:00Z",
            }
        ],
    }
    route["status"] = {"parents": [other]}
    first = statuses(build(world_objects(route)), HTTP_ROUTE_V1)[(NS, "podinfo")]
    assert first["parents"][0] == other
    assert len(first["parents"]) == 2
    for entry in first["parents"][1]["conditions"]:
        entry["lastTransitionTime"] = "2021-01-01T00:00:00Z"
    route["status"] = first
    assert statuses(build(world_objects(route)), HTTP_ROUTE_V1)[(NS, "podinfo")] == first


# ------------------------------------------------------------------------------------------------ real Envoy


async def test_the_routes_in_a_real_envoy(tmp_path: Path) -> None:
    """Weights split exactly by the weight header, the canary cookie pins a client to the canary and the
    canary backend sets it, a mirrored route copies requests to the canary, a prefix rewrite reaches the
    app's path; Envoy accepts every update."""
    assert envoy_binary() is not None
    envoy = EnvoyProcess(tmp_path / "envoy")
    primary, canary_app = DemoApp("podinfo-primary", NS, "1.0.0"), DemoApp("podinfo", NS, "2.0.0")
    await primary.start()
    await canary_app.start()
    ports = {key: free_port() for key in PORTS}

    endpoints = {
        (NS, "podinfo"): [endpoint(primary, {"app": "podinfo-primary"})],
        (NS, "podinfo-primary"): [endpoint(primary, {"app": "podinfo-primary"})],
        (NS, "podinfo-canary"): [endpoint(canary_app, {"app": "podinfo"})],
    }
    c = canary(analysis=AFFINITY)
    cookies = next_affinity_cookies(c, 30, AffinityCookies(), fresh_canary="abcdefghij", fresh_primary="x")
    sticky = http_route(c, Routes(70, 30), cookies=cookies)
    mirrored = http_route(canary(hosts=["mirror.example.com"]), Routes(100, 0, mirrored=True))
    mirrored["metadata"]["name"] = "mirrored"
    rewritten = http_route(
        canary(
            hosts=["rewrite.example.com"],
            match=[{"uri": {"prefix": "/api"}}],
            rewrite={"uri": "/", "type": "ReplacePrefixMatch"},
        ),
        Routes(100, 0),
    )
    rewritten["metadata"]["name"] = "rewritten"
    envoy.start()
    try:
        config = envoy_config(
            world_objects(sticky, mirrored, rewritten),
            SERVICES,
            endpoints,
            ports=ports,
            routes_dir=str(envoy.files.routes_dir),
            weight_header="x-seq",
            translators=[TRANSLATOR],
        )
        envoy.files.write(config)
        for _ in range(500):
            if all(str(port) in envoy.admin_get("/listeners") for port in ports.values()):
                break
            await asyncio.sleep(0.01)
        gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def get(path: str, host: str, **headers: str) -> tuple[int, str, list[str]]:
                async with http.get(gateway + path, headers={"Host": host, **headers}) as response:
                    body = await response.json(content_type=None) if response.status == 200 else {}
                    return response.status, body.get("version", ""), response.headers.getall("Set-Cookie", [])

            answers = [await get("/", "app.example.com", **{"x-seq": str(n)}) for n in range(100)]
            assert [v for _, v, _ in answers].count("2.0.0") == 30
            for _, version, set_cookie in answers:  # only the canary backend hands out the cookie
                assert set_cookie == (
                    ["flagger-cookie=abcdefghij; Max-Age=21600"] if version == "2.0.0" else []
                )
            for n in range(20):  # the cookie wins over the weights
                _, version, _ = await get(
                    "/", "app.example.com", Cookie="flagger-cookie=abcdefghij", **{"x-seq": str(n)}
                )
                assert version == "2.0.0"

            served = canary_app.served
            for _ in range(10):
                status, version, _ = await get("/", "mirror.example.com")
                assert (status, version) == (200, "1.0.0")
            for _ in range(500):  # mirrored copies are sent asynchronously
                if canary_app.served - served >= 10:
                    break
                await asyncio.sleep(0.01)
            assert canary_app.served - served == 10

            status, version, _ = await get("/api/version", "rewrite.example.com")
            assert (status, version) == (200, "1.0.0")  # /api/version → /version
            assert (await get("/apiversion", "rewrite.example.com"))[0] == 404  # segment-wise prefix
        assert envoy.rejected_updates() == 0
    finally:
        envoy.stop()
        await primary.stop()
        await canary_app.stop()
