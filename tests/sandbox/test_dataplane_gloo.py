"""The Gloo translator: the Upstreams and RouteTable the Gloo router writes, delegated to by the tutorial's
VirtualService (``app.example.com``), become the gateway's virtual host with Gloo's cluster names; delegation
(refs, selectors, path and matcher inheritance, cycles), matchers, options and statuses as Gloo handles them;
then a real Envoy routes by weight and by header, and its stats carry the names Gloo's builtin query selects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.kube.resources import VIRTUAL_SERVICE, lookup
from canarist.metrics.builtin import GLOO as GLOO_OBSERVER
from canarist.routers.base import RouteContext
from canarist.routers.gloo import GLOO, ROUTE_TABLE, UPSTREAM
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj
from canarist.sandbox.dataplane.gloo import (
    GLOO_NAMESPACE,
    GLOO_VIRTUAL_SERVICE,
    GlooTranslator,
    upstream_cluster,
)
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, envoy_config, listener_key
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint, versions_until, wait_for_listeners
from tests.workloads import podinfo

NS = "test"
PRIMARY = "test-podinfo-primaryupstream-9898_test"
CANARY = "test-podinfo-canaryupstream-9898_test"
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [
        {"headers": {"x-canary": {"exact": "insider"}}},
        {"headers": {"x-user": {"regex": "^beta-.*"}}, "method": {"exact": "POST"}},
    ],
}


def service(name: str, port: int = 9898) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"ports": [{"name": "http", "port": port}]}}


SERVICES = [service("podinfo"), service("podinfo-primary"), service("podinfo-canary")]
PRIMARY_POD = Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})
CANARY_POD = Endpoint("127.0.0.1", 4002, {"app": "podinfo", "track": "beta"})
ENDPOINTS = {
    (NS, "podinfo"): [PRIMARY_POD, CANARY_POD],
    (NS, "podinfo-primary"): [PRIMARY_POD],
    (NS, "podinfo-canary"): [CANARY_POD],
}


def operator_objects(routes: Routes, analysis: dict[str, Any] | None = None) -> list[Obj]:
    """What the Gloo router writes: the two Upstreams and the RouteTable."""
    kw: dict[str, Any] = {"provider": "gloo"}
    if analysis is not None:
        kw["analysis"] = analysis
    return GLOO.desired(RouteContext.from_canary(podinfo.canary(**kw)), routes)


def virtual_service(
    routes: list[Obj] | None = None, domains: list[str] | None = None, name: str = "podinfo"
) -> Obj:
    """The tutorial's VirtualService (``app.example.com``, ``/`` delegated to RouteTable ``podinfo``)."""
    return {
        "apiVersion": GLOO_VIRTUAL_SERVICE.api_version,
        "kind": GLOO_VIRTUAL_SERVICE.kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "virtualHost": {
                "domains": ["app.example.com"] if domains is None else domains,
                "routes": routes
                if routes is not None
                else [
                    {
                        "matchers": [{"prefix": "/"}],
                        "delegateAction": {"ref": {"name": "podinfo", "namespace": NS}},
                    }
                ],
            }
        },
    }


def route_table(name: str, routes: list[Obj], namespace: str = NS, **metadata: Any) -> Obj:
    spec: Obj = {"routes": routes}
    if "weight" in metadata:
        spec["weight"] = metadata.pop("weight")
    return {
        "apiVersion": ROUTE_TABLE.api_version,
        "kind": ROUTE_TABLE.kind,
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": spec,
    }


def upstream(name: str, service_name: str, **kube: Any) -> Obj:
    return {
        "apiVersion": UPSTREAM.api_version,
        "kind": UPSTREAM.kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {"kube": {"serviceName": service_name, "serviceNamespace": NS, "servicePort": 9898, **kube}},
    }


def to(upstream_name: str) -> Obj:
    return {"routeAction": {"single": {"upstream": {"name": upstream_name, "namespace": NS}}}}


KINDS = {(k.api_version, k.kind): k for k in (GLOO_VIRTUAL_SERVICE, ROUTE_TABLE, UPSTREAM)}


def build(*objects: Obj) -> dict[str, Any]:
    by_kind: dict[Any, list[Obj]] = {GLOO_VIRTUAL_SERVICE: [], ROUTE_TABLE: [], UPSTREAM: []}
    for obj in objects:
        by_kind[KINDS[(obj["apiVersion"], obj["kind"])]].append(obj)
    ports = {GATEWAY_LISTENER: 10000} | {
        listener_key(NS, s["metadata"]["name"], 9898): 10001 + i for i, s in enumerate(SERVICES)
    }
    return envoy_config(
        by_kind,
        SERVICES,
        ENDPOINTS,
        ports=ports,
        routes_dir="/r",
        weight_header="x-seq",
        translators=[GlooTranslator()],
    )


def host(config: dict[str, Any], name: str = "gloo.test.podinfo") -> dict[str, Any]:
    found: dict[str, Any] = next(
        h for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"] if h["name"] == name
    )
    return found


def statuses(config: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """``(kind, name)``: ``(state, reason)`` of every status the translator wants written."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for s in config["statuses"]:
        entry = s.status["statuses"][GLOO_NAMESPACE]
        assert entry["reportedBy"] == "gateway"
        out[(s.kind.kind, s.name)] = (entry["state"], entry.get("reason", ""))
    return out


def test_registered() -> None:
    assert any(isinstance(t, GlooTranslator) for t in dataplane.translators())
    assert {GLOO_VIRTUAL_SERVICE, ROUTE_TABLE, UPSTREAM} <= set(dataplane.watched_kinds())
    # Istio's VirtualService is another kind: kinds are keyed by apiVersion and Kind.
    assert lookup("gateway.solo.io/v1", "VirtualService") is GLOO_VIRTUAL_SERVICE
    assert GLOO_VIRTUAL_SERVICE != VIRTUAL_SERVICE
    assert VIRTUAL_SERVICE in dataplane.watched_kinds()


def test_the_virtual_service_delegates_to_the_operators_route_table() -> None:
    config = build(virtual_service(), *operator_objects(Routes(70, 30)))
    vhost = host(config)
    assert vhost["domains"] == ["app.example.com"]
    [split] = vhost["routes"]
    assert split["match"] == {"prefix": "/"}
    assert split["route"]["weighted_clusters"] == {
        "clusters": [{"name": PRIMARY, "weight": 70}, {"name": CANARY, "weight": 30}],
        "header_name": "x-seq",
    }
    assert "timeout" not in split["route"]  # Gloo sets none: Envoy's default
    # Gloo's cluster per Upstream (<name>_<namespace>) over the kube Service port's pods.
    clusters = {c["name"]: c for c in config["clusters"]}
    for name, pod in ((PRIMARY, PRIMARY_POD), (CANARY, CANARY_POD)):
        [lb] = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        assert lb["endpoint"]["address"]["socket_address"]["port_value"] == pod.port
    # Gloo's builtin query selects the canary's cluster by that name, and not the primary's.
    [selector] = set(re.findall(r'envoy_cluster_name=~"([^"]+)"', GLOO_OBSERVER.success_rate or ""))
    pattern = selector.replace("{{ namespace }}", NS).replace("{{ target }}", "podinfo")
    assert re.fullmatch(pattern, CANARY)
    assert not re.fullmatch(pattern, PRIMARY)
    assert upstream_cluster("test-podinfo-canaryupstream-9898", NS) == CANARY
    # Statuses as Gloo's gateway reports them; the RouteTable's go through its /status.
    assert statuses(config) == {
        ("VirtualService", "podinfo"): ("Accepted", ""),
        ("RouteTable", "podinfo"): ("Accepted", ""),
    }
    [table_status] = [s for s in config["statuses"] if s.kind.kind == "RouteTable"]
    assert table_status.kind is ROUTE_TABLE
    assert ROUTE_TABLE.status_subresource


def test_promoted_weights_and_no_virtual_service() -> None:
    [split] = host(build(virtual_service(), *operator_objects(Routes(100, 0))))["routes"]
    assert split["route"]["weighted_clusters"]["clusters"] == [
        {"name": PRIMARY, "weight": 100},
        {"name": CANARY, "weight": 0},
    ]
    # Without the user's VirtualService the RouteTable routes nothing (Gloo needs a virtual host).
    config = build(*operator_objects(Routes(100, 0)))
    assert not [
        h for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"] if h["name"].startswith("gloo.")
    ]
    assert config["statuses"] == []


def test_ab_matchers_come_before_the_primary_route() -> None:
    config = build(virtual_service(), *operator_objects(Routes(0, 100), AB))
    [insider, beta, rest] = host(config)["routes"]
    assert insider["match"] == {
        "prefix": "/",
        "headers": [{"name": "x-canary", "string_match": {"exact": "insider"}}],
    }
    assert beta["match"] == {
        "prefix": "/",
        "headers": [
            {"name": "x-user", "string_match": {"safe_regex": {"regex": "^beta-.*"}}},
            {"name": ":method", "string_match": {"exact": "POST"}},
        ],
    }
    for route in (insider, beta):
        assert route["route"]["weighted_clusters"]["clusters"] == [
            {"name": PRIMARY, "weight": 0},
            {"name": CANARY, "weight": 100},
        ]
    assert rest["match"] == {"prefix": "/"}
    assert rest["route"] == {"cluster": PRIMARY}


def test_delegation_paths_and_inherited_matchers() -> None:
    vs = virtual_service(
        [
            {
                "matchers": [
                    {"prefix": "/api", "headers": [{"name": "x-team", "value": "a"}]},
                    {"prefix": "/v2", "caseSensitive": False},
                ],
                "delegateAction": {"ref": {"name": "api"}},  # the namespace defaults to the VS's
            },
            {"matchers": [{"exact": "/healthz"}], **to("primary")},
        ]
    )
    table = route_table(
        "api",
        [
            # Own path under the parent's prefix; parent's headers not inherited.
            {"matchers": [{"prefix": "/api/v1", "methods": ["GET", "HEAD"]}], **to("canary")},
            # The parent's path and headers inherited.
            {
                "matchers": [
                    {"headers": [{"name": "x-debug"}], "queryParameters": [{"name": "q", "value": "1"}]}
                ],
                "inheritablePathMatchers": True,
                "inheritableMatchers": True,
                **to("canary"),
            },
            # Escapes the /api prefix (and /v2): dropped, reported.
            {"matchers": [{"regex": "/other/.*"}], **to("canary")},
        ],
    )
    config = build(vs, table, upstream("primary", "podinfo-primary"), upstream("canary", "podinfo-canary"))
    routes = host(config)["routes"]
    assert [(r["name"], r["match"]) for r in routes] == [
        (
            "gloo.test.api.0",
            {
                "prefix": "/api/v1",
                "headers": [{"name": ":method", "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}],
            },
        ),
        (
            "gloo.test.api.1",
            {
                "prefix": "/api",
                "headers": [
                    {"name": "x-debug", "present_match": True},
                    {"name": "x-team", "string_match": {"exact": "a"}},
                ],
                "query_parameters": [{"name": "q", "string_match": {"exact": "1"}}],
            },
        ),
        (
            "gloo.test.api.1",
            {
                "prefix": "/v2",
                "case_sensitive": False,
                "headers": [{"name": "x-debug", "present_match": True}],
                "query_parameters": [{"name": "q", "string_match": {"exact": "1"}}],
            },
        ),
        ("gloo.test.podinfo.1", {"path": "/healthz"}),
    ]
    assert routes[0]["route"] == {"cluster": "canary_test"}
    assert routes[-1]["route"] == {"cluster": "primary_test"}
    state, reason = statuses(config)[("RouteTable", "api")]
    assert state == "Warning"
    assert "'/other/.*' does not start with the parent's prefix '/api'" in reason
    vs_state, vs_reason = statuses(config)[("VirtualService", "podinfo")]
    assert vs_state == "Warning"
    assert vs_reason.startswith("RouteTable test.api: ")


def test_selectors_order_by_weight_and_cycles_are_reported() -> None:
    vs = virtual_service(
        [{"delegateAction": {"selector": {"labels": {"team": "a"}, "namespaces": [NS, "other"]}}}]
    )
    tables = [
        route_table(
            "late", [{"matchers": [{"prefix": "/late"}], **to("primary")}], labels={"team": "a"}, weight=20
        ),
        route_table(
            "early", [{"matchers": [{"prefix": "/early"}], **to("primary")}], labels={"team": "a"}, weight=-5
        ),
        route_table(
            "elsewhere", [{"matchers": [{"prefix": "/x"}], **to("primary")}], "other", labels={"team": "a"}
        ),
        route_table(
            "far", [{"matchers": [{"prefix": "/far"}], **to("primary")}], "far", labels={"team": "a"}
        ),
        route_table("unlabelled", [{"matchers": [{"prefix": "/u"}], **to("primary")}]),
        # A table delegating to itself.
        route_table(
            "loop",
            [{"matchers": [{"prefix": "/loop"}], "delegateAction": {"ref": {"name": "loop"}}}],
            labels={"team": "a"},
            weight=30,
        ),
    ]
    config = build(vs, *tables, upstream("primary", "podinfo-primary"))
    assert [r["match"]["prefix"] for r in host(config)["routes"]] == ["/early", "/x", "/late"]
    found = statuses(config)
    assert found[("RouteTable", "loop")] == ("Warning", "delegation cycle through RouteTable test.loop")
    assert ("RouteTable", "unlabelled") not in found
    assert ("RouteTable", "far") not in found
    assert found[("RouteTable", "early")] == ("Accepted", "")
    # Expressions.
    vs = virtual_service(
        [
            {
                "delegateAction": {
                    "selector": {
                        "expressions": [
                            {"key": "team", "operator": "In", "values": ["a"]},
                            {"key": "tier", "operator": "DoesNotExist"},
                        ]
                    }
                }
            }
        ]
    )
    tables[0]["metadata"]["labels"]["tier"] = "x"
    config = build(vs, *tables, upstream("primary", "podinfo-primary"))
    assert [r["match"]["prefix"] for r in host(config)["routes"]] == ["/early"]


def test_missing_objects_direct_responses_and_zero_weights() -> None:
    vs = virtual_service(
        [
            {"matchers": [{"prefix": "/gone"}], "delegateAction": {"ref": {"name": "absent"}}},
            {"matchers": [{"prefix": "/nobody"}], **to("nobody")},
            {"matchers": [{"prefix": "/teapot"}], "directResponseAction": {"status": 418, "body": "short"}},
            {
                "matchers": [{"prefix": "/zero"}],
                "routeAction": {
                    "multi": {
                        "destinations": [{"destination": {"upstream": {"name": "primary"}}, "weight": 0}]
                    }
                },
            },
            {
                "matchers": [{"prefix": "/kube"}],
                "routeAction": {
                    "single": {"kube": {"ref": {"name": "podinfo-canary", "namespace": NS}, "port": 9898}}
                },
            },
        ],
        domains=[],
    )
    config = build(vs, upstream("primary", "podinfo-primary"))
    vhost = host(config)
    assert vhost["domains"] == ["*"]  # no domains: every domain
    assert [(r["match"]["prefix"], r.get("route"), r.get("direct_response")) for r in vhost["routes"]] == [
        ("/nobody", {"cluster": "nobody_test"}, None),  # no such cluster: Envoy answers 503
        ("/teapot", None, {"status": 418, "body": {"inline_string": "short"}}),
        ("/zero", None, {"status": 503}),
        ("/kube", {"cluster": "kube-svc:test-podinfo-canary-9898_test"}, None),
    ]
    clusters = {c["name"] for c in config["clusters"]}
    assert "nobody_test" not in clusters
    assert "kube-svc:test-podinfo-canary-9898_test" in clusters
    state, reason = statuses(config)[("VirtualService", "podinfo")]
    assert state == "Warning"
    assert reason.split("; ") == [
        "RouteTable test.absent not found",
        "Upstream test.nobody not found",
        "route gloo.test.podinfo.3 has destinations whose weights add up to 0",
    ]


def test_options_are_inherited_and_upstream_settings_apply() -> None:
    vs = virtual_service(
        [
            {
                "matchers": [{"prefix": "/"}],
                "options": {
                    "timeout": "3s",
                    "prefixRewrite": "/base",
                    "retries": {"retryOn": "5xx", "numRetries": 2},
                },
                "delegateAction": {"ref": {"name": "podinfo"}},
            }
        ]
    )
    table = route_table(
        "podinfo",
        [
            {
                "inheritablePathMatchers": True,
                "options": {
                    "timeout": "1.5s",
                    "headerManipulation": {
                        "requestHeadersToAdd": [{"header": {"key": "x-a", "value": "1"}, "append": False}],
                        "responseHeadersToRemove": ["server"],
                    },
                    "faults": {"abort": {"percentage": 25, "httpStatus": 503}},
                },
                **to("beta"),
            }
        ],
    )
    beta = upstream("beta", "podinfo", selector={"track": "beta"})
    beta["spec"]["loadBalancerConfig"] = {"leastRequest": {}}
    config = build(vs, table, beta)
    [route] = host(config)["routes"]
    assert route["route"] == {
        "cluster": "beta_test",
        "timeout": "1.500s",  # the child's wins
        "retry_policy": {"retry_on": "5xx", "num_retries": 2},
        "prefix_rewrite": "/base",
    }
    assert route["request_headers_to_add"] == [e.header_set("x-a", "1")]
    assert route["response_headers_to_remove"] == ["server"]
    assert route["typed_per_filter_config"][e.FAULT_FILTER]["abort"] == {
        "http_status": 503,
        "percentage": {"numerator": 250000, "denominator": "MILLION"},
    }
    [cluster] = [c for c in config["clusters"] if c["name"] == "beta_test"]
    assert cluster["lb_policy"] == "LEAST_REQUEST"
    [lb] = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]  # the selector: only the beta pod
    assert lb["endpoint"]["address"]["socket_address"]["port_value"] == CANARY_POD.port


async def test_a_real_envoy_routes_by_weight_and_header_and_names_gloos_clusters(tmp_path: Path) -> None:
    assert envoy_binary() is not None
    envoy = EnvoyProcess(tmp_path / "envoy")
    primary, canary = DemoApp("podinfo-primary", NS, "1.0.0"), DemoApp("podinfo", NS, "2.0.0")
    await primary.start()
    await canary.start()

    endpoints = {
        (NS, "podinfo"): [endpoint(primary)],
        (NS, "podinfo-primary"): [endpoint(primary)],
        (NS, "podinfo-canary"): [endpoint(canary)],
    }
    ports = {GATEWAY_LISTENER: free_port()} | {
        listener_key(NS, s["metadata"]["name"], 9898): free_port() for s in SERVICES
    }
    gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}/"
    canary_served = 0
    envoy.start()

    async def program(*objects: Obj) -> None:
        by_kind: dict[Any, list[Obj]] = {}
        for obj in objects:
            by_kind.setdefault(KINDS[(obj["apiVersion"], obj["kind"])], []).append(obj)
        envoy.files.write(
            envoy_config(
                by_kind,
                SERVICES,
                endpoints,
                ports=ports,
                routes_dir=str(envoy.files.routes_dir),
                weight_header="x-seq",
                translators=[GlooTranslator()],
            )
        )
        await wait_for_listeners(envoy, ports)

    async def versions(
        http: aiohttp.ClientSession, expected: dict[str, int], headers: dict[str, str], rounds: int = 100
    ) -> None:
        nonlocal canary_served
        canary_served += await versions_until(http, gateway, expected, headers, rounds=rounds)

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            await program(virtual_service(), *operator_objects(Routes(70, 30)))
            await versions(http, {"1.0.0": 70, "2.0.0": 30}, {})
            await program(virtual_service(), *operator_objects(Routes(0, 100), AB))
            await versions(http, {"2.0.0": 100}, {"X-Canary": "insider"})
            # Applied: from now on, every request without the header reaches the primary.
            await versions(http, {"1.0.0": 100}, {}, rounds=1)
            await versions(http, {"1.0.0": 100}, {"X-Canary": "outsider"}, rounds=1)
        assert envoy.rejected_updates() == 0
        stats = envoy.admin_get("/stats/prometheus")
        assert re.search(
            rf'envoy_cluster_upstream_rq\{{envoy_response_code="200",envoy_cluster_name="{CANARY}"\}} {canary_served}\b',
            stats,
        ), stats
        assert canary_served >= 130
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()


# ------------------------------------------------------------------------------------------------ examples


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_examples_route_app_example_com_through_the_canary_upstream() -> None:
    canary_doc = yaml.safe_load((EXAMPLES / "gloo" / "canary.yaml").read_text())
    walkthrough = yaml.safe_load((EXAMPLES / "podinfo" / "canary.yaml").read_text())
    assert canary_doc["spec"]["analysis"] == walkthrough["spec"]["analysis"]
    assert canary_doc["spec"]["provider"] == "gloo"
    [vs] = [d for d in yaml.safe_load_all((EXAMPLES / "gloo" / "routing.yaml").read_text()) if d]
    assert (vs["apiVersion"], vs["kind"], vs["metadata"]["namespace"]) == (
        "gateway.solo.io/v1",
        "VirtualService",
        NS,
    )
    canary = Canary.model_validate(canary_doc)
    objects = GLOO.desired(RouteContext.from_canary(canary), Routes(95, 5))
    config = build(vs, *objects)
    assert host(config)["domains"] == ["app.example.com"]
    [split] = host(config)["routes"]
    assert split["route"]["weighted_clusters"]["clusters"] == [
        {"name": PRIMARY, "weight": 95},
        {"name": CANARY, "weight": 5},
    ]
    # Before the operator's RouteTable exists, Gloo reports the VirtualService with a warning.
    assert statuses(build(vs))[("VirtualService", "podinfo")] == (
        "Warning",
        "RouteTable test.podinfo not found",
    )
