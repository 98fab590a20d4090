"""The Contour translator: the HTTPProxy the Contour router writes, included by the tutorial's root HTTPProxy
(``app.example.com``), becomes the gateway's virtual host with Contour's cluster names and policies; includes,
conditions, ordering, ingress classes and statuses as Contour handles them; then a real Envoy routes by weight
and by header, and its stats carry the names Contour's builtin query selects."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canarist.engine.model import Routes
from canarist.metrics.builtin import CONTOUR as CONTOUR_OBSERVER
from canarist.routers.base import RouteContext
from canarist.routers.contour import CONTOUR, HTTP_PROXY
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj
from canarist.sandbox.dataplane.contour import ORPHANED, VALID, ContourTranslator, join_prefixes
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, envoy_config, listener_key
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint, versions_until, wait_for_listeners
from tests.workloads import podinfo

NS = "test"
# The Contour tutorial's service: port 80 in front of the pods' 9898, a timeout and retries.
SERVICE = {
    "port": 80,
    "targetPort": 9898,
    "timeout": "15s",
    "retries": {"attempts": 3, "perTryTimeout": "5s"},
}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
}
PRIMARY, CANARY = "test_podinfo-primary_80", "test_podinfo-canary_80"


def service(name: str, port: int = 80) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"ports": [{"name": "http", "port": port, "targetPort": 9898}]},
    }


SERVICES = [service("podinfo"), service("podinfo-primary"), service("podinfo-canary")]
PRIMARY_POD = Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})
CANARY_POD = Endpoint("127.0.0.1", 4002, {"app": "podinfo"})
ENDPOINTS = {
    (NS, "podinfo"): [PRIMARY_POD],
    (NS, "podinfo-primary"): [PRIMARY_POD],
    (NS, "podinfo-canary"): [CANARY_POD],
}


def operator_proxy(routes: Routes, analysis: dict[str, Any] | None = None, **ctx: Any) -> Obj:
    kw: dict[str, Any] = {"provider": "contour", "service": SERVICE}
    if analysis is not None:
        kw["analysis"] = analysis
    [obj] = CONTOUR.desired(RouteContext.from_canary(podinfo.canary(**kw), **ctx), routes)
    return obj


def proxy(name: str, spec: dict[str, Any], namespace: str = NS, **metadata: Any) -> Obj:
    return {
        "apiVersion": HTTP_PROXY.api_version,
        "kind": HTTP_PROXY.kind,
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": spec,
    }


def root(
    includes: list[dict[str, Any]] | None = None, fqdn: str = "app.example.com", name: str = "podinfo-ingress"
) -> Obj:
    """The tutorial's root HTTPProxy."""
    return proxy(
        name,
        {
            "virtualhost": {"fqdn": fqdn},
            "includes": includes
            if includes is not None
            else [{"name": "podinfo", "namespace": NS, "conditions": [{"prefix": "/"}]}],
        },
    )


def build(*proxies: Obj) -> dict[str, Any]:
    ports = {GATEWAY_LISTENER: 10000} | {
        listener_key(NS, s["metadata"]["name"], 80): 10001 + i for i, s in enumerate(SERVICES)
    }
    return envoy_config(
        {HTTP_PROXY: list(proxies)},
        SERVICES,
        ENDPOINTS,
        ports=ports,
        routes_dir="/r",
        weight_header="x-seq",
        translators=[ContourTranslator()],
    )


def host(config: dict[str, Any], name: str = "contour.test.podinfo-ingress") -> dict[str, Any]:
    found: dict[str, Any] = next(
        h for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"] if h["name"] == name
    )
    return found


def hosts(config: dict[str, Any]) -> list[str]:
    return [
        h["name"]
        for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
        if h["name"].startswith("contour.")
    ]


def statuses(config: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {s.name: (s.status["currentStatus"], s.status["description"]) for s in config["statuses"]}


def weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    return [(c["name"], c["weight"]) for c in route["route"]["weighted_clusters"]["clusters"]]


def dst_override(name: str) -> dict[str, Any]:
    return e.header_set("l5d-dst-override", f"{name}.test.svc.cluster.local:80")


# ------------------------------------------------------------------------------------------------ pure


def test_registered() -> None:
    assert "contour" in [t.name for t in dataplane.translators()]
    assert HTTP_PROXY in dataplane.watched_kinds()


def test_the_root_includes_the_operators_proxy() -> None:
    config = build(root(), operator_proxy(Routes(90, 10)))
    vhost = host(config)
    assert vhost["domains"] == ["app.example.com"]
    [only] = vhost["routes"]
    assert only["name"] == "contour.test.podinfo.0"
    assert only["match"] == {"prefix": "/"}
    assert only["route"] == {
        "weighted_clusters": {
            "clusters": [
                {"name": PRIMARY, "weight": 90, "request_headers_to_add": [dst_override("podinfo-primary")]},
                {"name": CANARY, "weight": 10, "request_headers_to_add": [dst_override("podinfo-canary")]},
            ],
            "header_name": "x-seq",
        },
        "timeout": "15.000s",
        "retry_policy": {"retry_on": "5xx", "num_retries": 3, "per_try_timeout": "5.000s"},
        "idle_timeout": "300.000s",
    }
    clusters = {c["name"]: c for c in config["clusters"]}
    for name, pod in ((PRIMARY, PRIMARY_POD), (CANARY, CANARY_POD)):
        [lb] = clusters[name]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        assert lb["endpoint"]["address"]["socket_address"]["port_value"] == pod.port
    # Contour's builtin query selects the canary's cluster by that name.
    [selector] = set(re.findall(r'envoy_cluster_name=~"([^"]+)"', CONTOUR_OBSERVER.success_rate or ""))
    pattern = selector.replace("{{ namespace }}", NS).replace("{{ service }}", "podinfo")
    assert re.fullmatch(pattern, CANARY)
    assert not re.fullmatch(pattern, PRIMARY)
    assert statuses(config) == {"podinfo-ingress": ("valid", VALID), "podinfo": ("valid", VALID)}
    [status] = [s for s in config["statuses"] if s.name == "podinfo"]
    assert status.kind is HTTP_PROXY
    assert status.status["conditions"][0] | {"lastTransitionTime": "t"} == {
        "type": "Valid",
        "status": "True",
        "reason": "Valid",
        "message": VALID,
        "lastTransitionTime": "t",
    }


def test_ab_header_route_comes_before_the_default_route() -> None:
    config = build(root(), operator_proxy(Routes(0, 100), AB))
    [ab, default] = host(config)["routes"]
    assert ab["match"] == {"prefix": "/", "headers": [e.header_match("x-canary", "exact", "insider")]}
    assert weights(ab) == [(PRIMARY, 0), (CANARY, 100)]
    assert default["match"] == {"prefix": "/"}
    assert weights(default) == [(PRIMARY, 100), (CANARY, 0)]


def test_include_conditions_prefix_the_included_routes() -> None:
    parent = root(
        [
            {
                "name": "middle",
                "conditions": [{"prefix": "/app"}, {"header": {"name": "x-team", "present": True}}],
            }
        ]
    )
    middle = proxy(
        "middle", {"includes": [{"name": "podinfo", "namespace": NS, "conditions": [{"prefix": "/v1/"}]}]}
    )
    leaf = proxy(
        "podinfo",
        {
            "routes": [
                {"conditions": [{"prefix": "/"}], "services": [{"name": "podinfo-primary", "port": 80}]},
                {
                    "conditions": [
                        {"prefix": "/api"},
                        {"queryParameter": {"name": "debug", "exact": "1", "ignoreCase": True}},
                    ],
                    "services": [{"name": "podinfo-canary", "port": 80}],
                },
            ]
        },
    )
    config = build(parent, middle, leaf)
    [api, rest] = host(config)["routes"]  # the longer prefix first
    assert api["match"] == {
        "prefix": "/app/v1/api",
        "headers": [{"name": "x-team", "present_match": True}],
        "query_parameters": [{"name": "debug", "string_match": {"exact": "1", "ignore_case": True}}],
    }
    assert api["route"]["cluster"] == CANARY
    assert rest["match"] == {"prefix": "/app/v1", "headers": [{"name": "x-team", "present_match": True}]}
    assert rest["route"]["cluster"] == PRIMARY
    assert "timeout" not in rest["route"]  # Envoy's default (15 s), as Contour leaves it
    assert set(statuses(config).values()) == {("valid", VALID)}
    assert join_prefixes([]) == "/"
    assert join_prefixes(["/blog", "/"]) == "/blog"


def test_header_conditions_and_route_order() -> None:
    spec = {
        "routes": [
            {"services": [{"name": "podinfo-primary", "port": 80}]},
            {
                "conditions": [
                    {"header": {"name": "X-A", "notpresent": True}},
                    {"header": {"name": "x-b", "contains": "Beta", "ignoreCase": True}},
                    {"header": {"name": "x-c", "notcontains": "c"}},
                    {"header": {"name": "x-d", "notexact": "d", "treatMissingAsEmpty": True}},
                    {"header": {"name": "x-e", "regex": "^e+$"}},
                ],
                "services": [{"name": "podinfo-canary", "port": 80}],
            },
            {"conditions": [{"exact": "/healthz"}], "services": [{"name": "podinfo", "port": 80}]},
            {
                "conditions": [{"header": {"name": "x-one", "exact": "1"}}],
                "services": [{"name": "podinfo-canary", "port": 80}],
            },
        ]
    }
    routes = host(build(root([{"name": "podinfo"}]), proxy("podinfo", spec)))["routes"]
    assert [r["name"].rsplit(".", 1)[1] for r in routes] == ["2", "1", "3", "0"]
    assert routes[0]["match"] == {"path": "/healthz"}
    assert routes[1]["match"]["headers"] == [
        {"name": "x-a", "invert_match": True, "present_match": True},
        {"name": "x-b", "string_match": {"contains": "Beta", "ignore_case": True}},
        {"name": "x-c", "invert_match": True, "string_match": {"contains": "c"}},
        {
            "name": "x-d",
            "invert_match": True,
            "string_match": {"exact": "d"},
            "treat_missing_header_as_empty": True,
        },
        {"name": "x-e", "string_match": {"safe_regex": {"regex": "^e+$"}}},
    ]


def test_services_without_weights_split_evenly_and_other_policies() -> None:
    spec = {
        "routes": [
            {
                "services": [
                    {"name": "podinfo-primary", "port": 80, "requestHeadersPolicy": {"remove": ["x-debug"]}},
                    {"name": "podinfo-canary", "port": 80},
                    {"name": "podinfo", "port": 80, "mirror": True},
                ],
                "timeoutPolicy": {"response": "infinity"},
                "retryPolicy": {"retryOn": ["gateway-error"], "retriableStatusCodes": [503]},
                "requestHeadersPolicy": {
                    "set": [{"name": "Host", "value": "internal"}, {"name": "x-via", "value": "contour"}]
                },
                "responseHeadersPolicy": {"remove": ["server"]},
                "pathRewritePolicy": {"replacePrefix": [{"prefix": "/", "replacement": "/v2"}]},
            }
        ]
    }
    [only] = host(build(root([{"name": "podinfo"}]), proxy("podinfo", spec)))["routes"]
    action = only["route"]
    assert action["weighted_clusters"]["clusters"] == [
        {"name": PRIMARY, "weight": 1, "request_headers_to_remove": ["x-debug"]},
        {"name": CANARY, "weight": 1},
    ]
    assert action["request_mirror_policies"] == [e.mirror_policy("test_podinfo_80", 100)]
    assert action["timeout"] == "0.000s"
    assert action["retry_policy"] == e.retry_policy(["gateway-error"], 1, retriable_status_codes=[503])
    assert action["host_rewrite_literal"] == "internal"
    assert action["prefix_rewrite"] == "/v2"
    assert only["request_headers_to_add"] == [e.header_set("x-via", "contour")]
    assert only["response_headers_to_remove"] == ["server"]


def test_invalid_and_orphaned_proxies() -> None:
    broken = proxy(
        "podinfo",
        {
            "routes": [
                {"services": [{"name": "podinfo-gone", "port": 80}]},
                {"conditions": [{"prefix": "/x"}], "services": [{"name": "podinfo-canary", "port": 8080}]},
            ]
        },
    )
    lonely = proxy("lonely", {"routes": [{"services": [{"name": "podinfo", "port": 80}]}]})
    includer = proxy("includer", {"includes": [{"name": "podinfo-ingress"}]})
    other_root = root([{"name": "includer"}], fqdn="other.example.com", name="other-root")
    missing = root([{"name": "podinfo"}, {"name": "absent"}])
    config = build(missing, broken, lonely, includer, other_root)
    found = statuses(config)
    assert found["podinfo-ingress"] == ("invalid", "include test/absent not found")
    assert found["podinfo"] == (
        "invalid",
        'Spec.Routes unresolved service reference: service "test/podinfo-gone" not found',
    )
    assert found["lonely"] == ("orphaned", ORPHANED)
    assert found["includer"] == ("invalid", "root httpproxy cannot include another root httpproxy")
    assert found["other-root"] == ("valid", VALID)
    # The unresolved routes answer 503; what was found is still served.
    routes = host(config)["routes"]
    assert [r.get("direct_response") for r in routes] == [{"status": 503}, {"status": 503}]
    [status] = [s for s in config["statuses"] if s.name == "podinfo"]
    valid = status.status["conditions"][0]
    assert (valid["status"], valid["reason"]) == ("False", "ErrorPresent")
    assert [x["message"] for x in valid["errors"]] == [
        'Spec.Routes unresolved service reference: service "test/podinfo-gone" not found',
        'Spec.Routes unresolved service reference: service "test/podinfo-canary" port 8080 not defined',
    ]
    # A cycle through non-root proxies.
    a = proxy("a", {"includes": [{"name": "b"}]})
    b = proxy("b", {"includes": [{"name": "a"}]})
    assert statuses(build(root([{"name": "a"}]), a, b))["b"] == (
        "invalid",
        "include creates an include cycle: test/podinfo-ingress -> test/a -> test/b -> test/a",
    )


def test_a_duplicate_fqdn_is_served_by_neither_root() -> None:
    config = build(root(), root(name="again"), operator_proxy(Routes(100, 0)))
    assert hosts(config) == []
    found = statuses(config)
    assert found["again"][0] == found["podinfo-ingress"][0] == "invalid"
    assert (
        found["again"][1]
        == 'fqdn "app.example.com" is used in multiple HTTPProxies: test/again, test/podinfo-ingress'
    )
    assert found["podinfo"] == ("orphaned", ORPHANED)


@pytest.mark.parametrize("ingress_class", ["", "contour"])
def test_served_ingress_classes(ingress_class: str) -> None:
    config = build(root(), operator_proxy(Routes(100, 0), ingress_class=ingress_class))
    assert statuses(config)["podinfo"] == ("valid", VALID)


def test_other_ingress_classes_are_ignored() -> None:
    other = root()
    other["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    config = build(other, operator_proxy(Routes(100, 0), ingress_class="contour-external"))
    assert hosts(config) == []
    assert config["statuses"] == []


def test_an_unchanged_status_keeps_its_transition_time() -> None:
    first = build(root(), operator_proxy(Routes(90, 10)))
    [status] = [s for s in first["statuses"] if s.name == "podinfo"]
    stored = copy.deepcopy(operator_proxy(Routes(80, 20))) | {"status": copy.deepcopy(dict(status.status))}
    stored["status"]["conditions"][0]["lastTransitionTime"] = "2024-01-01T00:00:00Z"
    [again] = [s for s in build(root(), stored)["statuses"] if s.name == "podinfo"]
    assert again.status["conditions"][0]["lastTransitionTime"] == "2024-01-01T00:00:00Z"


# ------------------------------------------------------------------------------------------------ real Envoy


async def test_a_real_envoy_routes_by_weight_and_header_and_names_contours_clusters(tmp_path: Path) -> None:
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
        listener_key(NS, s["metadata"]["name"], 80): free_port() for s in SERVICES
    }
    gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}/"
    canary_served = 0
    envoy.start()

    async def program(*proxies: Obj) -> None:
        envoy.files.write(
            envoy_config(
                {HTTP_PROXY: list(proxies)},
                SERVICES,
                endpoints,
                ports=ports,
                routes_dir=str(envoy.files.routes_dir),
                weight_header="x-seq",
                translators=[ContourTranslator()],
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
            await program(root(), operator_proxy(Routes(70, 30)))
            await versions(http, {"1.0.0": 70, "2.0.0": 30}, {})
            await program(root(), operator_proxy(Routes(0, 100), AB))
            await versions(http, {"2.0.0": 100}, {"X-Canary": "insider"})
            # Applied: from now on, every request without the header reaches the primary.
            await versions(http, {"1.0.0": 100}, {}, rounds=1)
            await versions(http, {"1.0.0": 100}, {"X-Canary": "outsider"}, rounds=1)
        stats = envoy.admin_get("/stats/prometheus")
        assert re.search(
            rf'envoy_cluster_upstream_rq\{{envoy_response_code="200",envoy_cluster_name="{CANARY}"\}} {canary_served}\b',
            stats,
        )
        assert re.search(
            rf'envoy_cluster_upstream_rq_time_bucket\{{envoy_cluster_name="{CANARY}",le="[0-9.]+"\}}', stats
        )
        # The tutorial's retry policy (3 attempts on 5xx) hides a canary failing every other request: every
        # 500 is retried, users get 200s, and Envoy charges a response code only for the attempt it returns.
        canary.set_knobs(error_rate=0.5)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            await program(root(), operator_proxy(Routes(0, 100)))
            await versions(http, {"2.0.0": 100}, {})
        stats = envoy.admin_get("/stats/prometheus")
        assert not re.search(
            rf'envoy_cluster_upstream_rq\{{envoy_response_code="5\d\d",envoy_cluster_name="{CANARY}"', stats
        )
        [retried] = re.findall(
            rf'envoy_cluster_upstream_rq_retry\{{envoy_cluster_name="{CANARY}"\}} (\d+)', stats
        )
        assert int(retried) >= 50  # at least half of the 100 requests were retried
        assert envoy.rejected_updates() == 0
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()
