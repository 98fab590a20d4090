"""The APISIX translator: the apisix router's canary ApisixRoute next to the user's, rendered into Envoy.

The canary routes come from `canarist.routers.apisix.APISIX.desired` (priority 10000, weighted primary and
canary backends), or carry matches a user could write. Pure checks of the routes first, then a real Envoy
in front of two demo apps (where requests land, and the APISIX series the apps export from the gateway's
route header).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.metrics.builtin import APISIX as APISIX_OBSERVER
from canarist.metrics.builtin import REQUEST_SUCCESS_RATE, builtin_query
from canarist.metrics.template import TemplateModel
from canarist.routers.apisix import APISIX, APISIX_ROUTE
from canarist.routers.base import RouteContext, object_key
from canarist.sandbox import dataplane, telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.apisix import ApisixTranslator, rule_headers
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, cluster_name, envoy_config
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint
from tests.sandbox.test_dataplane_nginx import ENDPOINTS, SERVICES, destinations, host_routes
from tests.workloads import podinfo

NS = "test"
PORT = 9898
MAIN = cluster_name(NS, "podinfo", PORT)
PRIMARY = cluster_name(NS, "podinfo-primary", PORT)
CANARY = cluster_name(NS, "podinfo-canary", PORT)


def user_route(
    name: str = "podinfo",
    host: str | None = "app.example.com",
    paths: tuple[str, ...] = ("/*",),
    klass: str = "",
    **rule: Any,
) -> dict[str, Any]:
    """The tutorial's ApisixRoute (as examples/apisix/routing.yaml writes it, with the services' port)."""
    match: dict[str, Any] = {"paths": list(paths)}
    if host is not None:
        match["hosts"] = [host]
    spec: dict[str, Any] = {
        "http": [
            {
                "name": "rule1",
                "match": match,
                "backends": [{"serviceName": "podinfo", "servicePort": PORT}],
                **rule,
            }
        ]
    }
    if klass:
        spec["ingressClassName"] = klass
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": name, "namespace": NS, "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": spec,
    }


def apisix_canary(route: str = "podinfo") -> Canary:
    ref = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": route}
    return podinfo.canary(provider="apisix", service={"port": PORT}, spec={"routeRef": ref})


def router_canary(route: Mapping[str, Any], routes: Routes, canary: Canary | None = None) -> dict[str, Any]:
    """The canary ApisixRoute the apisix router writes for ``routes``, next to ``route``."""
    base = RouteContext.from_canary(canary or apisix_canary(str(route["metadata"]["name"])))
    ctx = RouteContext(**{**base.__dict__, "references": {object_key(route): dict(route)}})
    (obj,) = APISIX.desired(ctx, routes)
    obj["metadata"]["creationTimestamp"] = "2024-01-02T00:00:00Z"
    return obj


def build(*routes: dict[str, Any]) -> dict[str, Any]:
    return envoy_config(
        {APISIX_ROUTE: list(routes)},
        SERVICES,
        ENDPOINTS,
        ports={GATEWAY_LISTENER: 10000},
        routes_dir="/r",
        weight_header="x-seq",
        translators=[ApisixTranslator()],
    )


def tags(route: str, path: str = "/*") -> list[dict[str, Any]]:
    return [
        e.header_set(telemetry.APISIX_ROUTE_HEADER, f"{NS}_{route}_rule1"),
        e.header_set(telemetry.APISIX_URI_HEADER, path),
    ]


# ------------------------------------------------------------------------------------------------ routes


def test_registered() -> None:
    assert "apisix" in [t.name for t in dataplane.translators()]
    assert APISIX_ROUTE in dataplane.watched_kinds()


def test_route_names_are_the_ingress_controllers() -> None:
    assert telemetry.apisix_route_name("test", "podinfo-podinfo-canary", "rule1") == (
        "test_podinfo-podinfo-canary_rule1"
    )


def test_the_users_route_alone_routes_to_its_backend_with_the_route_name() -> None:
    config = build(user_route())
    [only] = host_routes(config, "app.example.com")
    assert only["name"] == "apisix.test_podinfo_rule1.0"
    assert only["match"] == {"prefix": "/"}
    assert only["route"]["weighted_clusters"]["clusters"] == [
        {"name": MAIN, "weight": 100, "request_headers_to_add": tags("podinfo")}
    ]
    assert only["route"]["timeout"] == "60.000s"
    hosts = config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    apisix_hosts = [(h["name"], h["domains"]) for h in hosts if h["name"].startswith("apisix.")]
    assert apisix_hosts == [("apisix.app.example.com", ["app.example.com"])]


def test_the_canary_route_wins_by_priority_with_its_weights() -> None:
    main = user_route()
    for weight in (0, 5, 50, 100):
        routes = host_routes(
            build(main, router_canary(main, Routes(100 - weight, weight))), "app.example.com"
        )
        assert [r["name"] for r in routes] == [
            "apisix.test_podinfo-podinfo-canary_rule1.0",
            "apisix.test_podinfo_rule1.0",
        ]
        expected = [(PRIMARY, 100 - weight), (CANARY, weight)]
        assert destinations(routes[0]) == [d for d in expected if d[1] > 0]
        assert routes[0]["route"]["weighted_clusters"]["header_name"] == "x-seq"
        clusters = routes[0]["route"]["weighted_clusters"]["clusters"]
        assert all(c["request_headers_to_add"] == tags("podinfo-podinfo-canary") for c in clusters)


def test_path_order_timeout_and_zero_weights() -> None:
    route = user_route(paths=("/*", "/api/*", "/api/x"), timeout={"read": "5s"})
    weightless = user_route("weightless", "w.example.com")
    weightless["spec"]["http"][0]["backends"][0]["weight"] = 0
    config = build(route, weightless)
    routes = host_routes(config, "app.example.com")
    assert [r["match"] for r in routes] == [{"path": "/api/x"}, {"prefix": "/api/"}, {"prefix": "/"}]
    assert {r["route"]["timeout"] for r in routes} == {"5.000s"}
    [gone] = host_routes(config, "w.example.com")
    assert gone["direct_response"] == {"status": 503}


def test_methods_and_expressions() -> None:
    match = {
        "methods": ["GET", "head"],
        "exprs": [
            {"subject": {"scope": "Header", "name": "X-Env"}, "op": "Equal", "value": "beta"},
            {"subject": {"scope": "Header", "name": "X-User"}, "op": "RegexNotMatch", "value": "^bot"},
            {"subject": {"scope": "Query", "name": "v"}, "op": "In", "set": ["1", "2"]},
        ],
    }
    headers, query = rule_headers(match)
    assert headers == [
        e.header_match(":method", "regex", "^(?:GET|HEAD)$"),
        e.header_match("X-Env", "exact", "beta"),
        e.header_match("X-User", "regex", ".*(?:^bot).*", invert=True),
    ]
    assert query == [e.query_match("v", "regex", "^(?:1|2)$")]


def test_unknown_expressions_classes_and_missing_backends() -> None:
    cookie = user_route("cookie", "c.example.com")
    cookie["spec"]["http"][0]["match"]["exprs"] = [
        {"subject": {"scope": "Cookie", "name": "a"}, "op": "Equal", "value": "b"}
    ]
    other_class = user_route("other", "o.example.com", klass="nginx")
    own_class = user_route("own", "a.example.com", klass="apisix")
    missing = user_route("missing", "m.example.com")
    missing["spec"]["http"][0]["backends"][0]["serviceName"] = "nowhere"
    anywhere = user_route("anywhere", None, paths=("/healthz",))
    config = build(cookie, other_class, own_class, missing, anywhere)
    hosts = config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    domains = [h["domains"] for h in hosts if h["name"].startswith("apisix.")]
    assert domains == [["a.example.com"], ["m.example.com"], ["*"]]
    [healthz, gone] = host_routes(config, "m.example.com")  # a rule without hosts serves every host
    assert healthz["match"] == {"path": "/healthz"}
    assert destinations(gone) == [(f"apisix|{NS}-nowhere-{PORT}", 100)]


# ------------------------------------------------------------------------------------------------ Envoy


def _apisix_samples(app: DemoApp) -> dict[tuple[str, str], float]:
    """``apisix_http_status`` of the app by (route, code)."""
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(app.exposition().decode()):
        for sample in family.samples:
            if sample.name == "apisix_http_status":
                assert sample.labels["matched_host"] in ("w.example.com", "i.example.com")
                assert sample.labels["matched_uri"] == "/*"
                key = (sample.labels["route"], sample.labels["code"])
                out[key] = out.get(key, 0.0) + sample.value
            if sample.name.startswith("apisix_"):
                assert "kubernetes_pod_name" not in sample.labels  # APISIX's pod exports them, not the app's
    return out


async def test_the_real_envoy_routes_as_apisix(tmp_path: Path) -> None:
    assert envoy_binary() is not None
    envoy = EnvoyProcess(tmp_path / "envoy")
    primary, canary_app = DemoApp("podinfo-primary", NS, "1.0.0"), DemoApp("podinfo", NS, "2.0.0")
    await primary.start()
    await canary_app.start()
    endpoints = {
        (NS, "podinfo"): [endpoint(primary, {"app": "podinfo-primary"})],
        (NS, "podinfo-primary"): [endpoint(primary, {"app": "podinfo-primary"})],
        (NS, "podinfo-canary"): [endpoint(canary_app, {"app": "podinfo"})],
    }
    weighted = user_route("weighted", "w.example.com")
    idle = user_route("idle", "i.example.com")
    objects = [weighted, router_canary(weighted, Routes(70, 30)), idle, router_canary(idle, Routes(100, 0))]
    ports = {GATEWAY_LISTENER: free_port()}
    envoy.start()
    try:
        envoy.files.write(
            envoy_config(
                {APISIX_ROUTE: objects},
                SERVICES,
                endpoints,
                ports=ports,
                routes_dir=str(envoy.files.routes_dir),
                weight_header="x-seq",
                translators=[ApisixTranslator()],
            )
        )
        for _ in range(500):
            if str(ports[GATEWAY_LISTENER]) in envoy.admin_get("/listeners"):
                break
            await asyncio.sleep(0.01)
        gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}/"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def versions(host: str, count: int, **headers: str) -> list[str]:
                out = []
                for n in range(count):
                    sent = {"Host": host, "x-seq": str(n), **headers}
                    async with http.get(gateway, headers=sent) as response:
                        assert response.status == 200, (host, response.status)
                        out.append((await response.json(content_type=None))["version"])
                return out

            # backend weights 70/30: the weight header picks exactly 30 of 100 for the canary.
            assert (await versions("w.example.com", 100)).count("2.0.0") == 30
            # A client cannot fake the route label: the gateway overwrites it.
            faked = {telemetry.APISIX_ROUTE_HEADER: f"{NS}_idle-podinfo-canary_x"}
            assert (await versions("i.example.com", 10, **faked)).count("2.0.0") == 0
            async with http.get(gateway, headers={"Host": "nowhere.example.com"}) as response:
                assert response.status == 404
        assert envoy.rejected_updates() == 0
        on_canary, on_primary = _apisix_samples(canary_app), _apisix_samples(primary)
        assert on_canary == {(f"{NS}_weighted-podinfo-canary_rule1", "200"): 30}
        assert on_primary == {
            (f"{NS}_weighted-podinfo-canary_rule1", "200"): 70,
            (f"{NS}_idle-podinfo-canary_rule1", "200"): 10,
        }
        # The builtin success-rate query selects the canary route's series (target = podinfo).
        query = builtin_query(
            APISIX_OBSERVER,
            REQUEST_SUCCESS_RATE,
            TemplateModel(
                name="podinfo", namespace=NS, target="weighted", service="x", route="weighted", interval="1m"
            ),
        )
        assert 'route=~"test_weighted-weighted-canary_.+"' in query
    finally:
        envoy.stop()
        await primary.stop()
        await canary_app.stop()


# ------------------------------------------------------------------------------------------------ examples


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_examples_route_app_example_com_through_the_canary_route() -> None:
    canary_doc = yaml.safe_load((EXAMPLES / "apisix" / "canary.yaml").read_text())
    walkthrough = yaml.safe_load((EXAMPLES / "podinfo" / "canary.yaml").read_text())
    for key in ("interval", "threshold", "maxWeight", "stepWeight", "metrics"):
        assert canary_doc["spec"]["analysis"][key] == walkthrough["spec"]["analysis"][key], key
    assert canary_doc["spec"]["provider"] == "apisix"
    [route] = [d for d in yaml.safe_load_all((EXAMPLES / "apisix" / "routing.yaml").read_text()) if d]
    assert object_key(route) == "ApisixRoute/podinfo"
    canary = Canary.model_validate(canary_doc)
    route = copy.deepcopy(route)
    route["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    services = [
        {"metadata": {"name": n, "namespace": NS}, "spec": {"ports": [{"name": "http", "port": 80}]}}
        for n in ("podinfo", "podinfo-primary", "podinfo-canary")
    ]
    config = envoy_config(
        {APISIX_ROUTE: [route, router_canary(route, Routes(95, 5), canary)]},
        services,
        ENDPOINTS,
        ports={GATEWAY_LISTENER: 10000},
        routes_dir="/r",
        translators=[ApisixTranslator()],
    )
    first = host_routes(config, "app.example.com")[0]
    assert first["name"] == "apisix.test_podinfo-podinfo-canary_rule1.0"
    assert destinations(first) == [
        (cluster_name(NS, "podinfo-primary", 80), 95),
        (cluster_name(NS, "podinfo-canary", 80), 5),
    ]
