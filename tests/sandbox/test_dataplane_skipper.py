"""The Skipper translator: the skipper router's canary Ingress next to the user's, rendered into Envoy.

The canary Ingresses come from `canarist.routers.skipper.SKIPPER.desired` (backend weights and the
``Weight(100)``/``False()`` predicate), or carry predicates a user could write. Pure checks of the routes
first, then a real Envoy in front of two demo apps (where requests land, and the Skipper series the apps
export from the gateway's route header).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.kube.resources import INGRESS
from canarist.routers.base import RouteContext, object_key
from canarist.routers.skipper import SKIPPER
from canarist.sandbox import dataplane, telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.skipper import PREDICATE, SkipperTranslator, parse_predicates, route_id
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


def user_ingress(
    name: str = "podinfo", host: str = "app.example.com", predicate: str = "", klass: str = "skipper"
) -> dict[str, Any]:
    """The tutorial's Ingress (as examples/skipper/routing.yaml writes it, with the services' port)."""
    annotations = {PREDICATE: predicate} if predicate else {}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "annotations": annotations,
        },
        "spec": {
            "ingressClassName": klass,
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "podinfo", "port": {"number": PORT}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def skipper_canary(ingress: str = "podinfo") -> Canary:
    ref = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ingress}
    return podinfo.canary(provider="skipper", service={"port": PORT}, spec={"ingressRef": ref})


def router_canary(ingress: Mapping[str, Any], routes: Routes, canary: Canary | None = None) -> dict[str, Any]:
    """The canary Ingress the skipper router writes for ``routes``, next to ``ingress``."""
    base = RouteContext.from_canary(canary or skipper_canary(str(ingress["metadata"]["name"])))
    ctx = RouteContext(**{**base.__dict__, "references": {object_key(ingress): ingress}})
    (obj,) = SKIPPER.desired(ctx, routes)
    obj["metadata"]["creationTimestamp"] = "2024-01-02T00:00:00Z"
    return obj


def build(*ingresses: dict[str, Any]) -> dict[str, Any]:
    return envoy_config(
        {INGRESS: list(ingresses)},
        SERVICES,
        ENDPOINTS,
        ports={GATEWAY_LISTENER: 10000},
        routes_dir="/r",
        weight_header="x-seq",
        translators=[SkipperTranslator()],
    )


def route_header(ingress: str, service: str, host: str = "app.example.com") -> dict[str, Any]:
    return e.header_set(telemetry.SKIPPER_ROUTE_HEADER, route_id(NS, ingress, host, "/", service))


# ------------------------------------------------------------------------------------------------ routes


def test_registered() -> None:
    assert "skipper" in [t.name for t in dataplane.translators()]
    assert INGRESS in dataplane.watched_kinds()


def test_route_ids_are_skippers() -> None:
    assert route_id("test", "podinfo-canary", "app.example.com", "/", "podinfo-canary") == (
        "kube_test__podinfo_canary__app_example_com_____podinfo_canary"
    )


def test_the_users_ingress_alone_routes_to_its_backend_with_the_route_id() -> None:
    config = build(user_ingress())
    [only] = host_routes(config, "app.example.com")
    assert only["match"] == {"prefix": "/"}
    assert only["route"]["weighted_clusters"]["clusters"] == [
        {"name": MAIN, "weight": 1, "request_headers_to_add": [route_header("podinfo", "podinfo")]}
    ]
    assert only["route"]["timeout"] == "60.000s"
    hosts = config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    skipper_hosts = [(h["name"], h["domains"]) for h in hosts if h["name"].startswith("skipper.")]
    assert skipper_hosts == [("skipper.app.example.com", ["app.example.com"])]


def test_weight_zero_disables_the_canary_ingress() -> None:
    main = user_ingress()
    routes = host_routes(build(main, router_canary(main, Routes(100, 0))), "app.example.com")
    assert [destinations(r) for r in routes] == [[(MAIN, 1)]]


@pytest.mark.parametrize("weight", [5, 30, 50, 100])
def test_the_canary_ingress_takes_over_with_its_weights(weight: int) -> None:
    main = user_ingress()
    routes = host_routes(build(main, router_canary(main, Routes(100 - weight, weight))), "app.example.com")
    # Weight(100) ranks the canary Ingress's route first; the user's route comes after (never reached).
    assert [destinations(r) for r in routes][1] == [(MAIN, 1)]
    clusters = routes[0]["route"]["weighted_clusters"]["clusters"]
    expected: list[dict[str, Any]] = [
        {
            "name": PRIMARY,
            "weight": 100 - weight,
            "request_headers_to_add": [route_header("podinfo-canary", "podinfo-primary")],
        },
        {
            "name": CANARY,
            "weight": weight,
            "request_headers_to_add": [route_header("podinfo-canary", "podinfo-canary")],
        },
    ]
    assert clusters == [c for c in expected if c["weight"] > 0]
    assert routes[0]["route"]["weighted_clusters"]["header_name"] == "x-seq"


def test_predicates() -> None:
    parsed = parse_predicates('Weight(100) && Header("X-Env", "prod") && Method("get") && True()')
    assert parsed is not None
    assert (parsed.disabled, parsed.weight, parsed.count) == (False, 100, 4)
    assert parsed.headers == [
        e.header_match("X-Env", "exact", "prod"),
        e.header_match(":method", "exact", "GET"),
    ]
    regexp = parse_predicates('HeaderRegexp("X-User", "^beta-")')
    assert regexp is not None
    assert regexp.headers == [e.header_match("x-user", "regex", ".*(?:^beta-).*")]
    disabled = parse_predicates("False() && Weight(100)")
    assert disabled is not None
    assert disabled.disabled
    for bad in ("Cookie(1, 2)", "Weight(", "Traffic(0.5)", 'Header("only-one")', "nonsense"):
        assert parse_predicates(bad) is None, bad
    assert parse_predicates("") == parse_predicates("  ")


def test_user_predicates_match_headers_and_rank_above_the_plain_route() -> None:
    main = user_ingress()
    scoped = user_ingress("scoped", predicate='Header("X-Env", "beta")')
    canary_of_scoped = router_canary(scoped, Routes(50, 50))
    routes = host_routes(build(main, scoped, canary_of_scoped), "app.example.com")
    # canary Ingress (Weight(100) + Header: priority 101), the scoped Ingress (1), the plain one (0)
    assert [r["name"] for r in routes] == [
        "skipper.test.scoped-canary.0",
        "skipper.test.scoped.1",
        "skipper.test.podinfo.2",
    ]
    assert routes[0]["match"]["headers"] == [e.header_match("X-Env", "exact", "beta")]
    assert routes[1]["match"]["headers"] == [e.header_match("X-Env", "exact", "beta")]
    assert "headers" not in routes[2]["match"]


def test_unknown_predicates_classes_and_missing_backends() -> None:
    broken = user_ingress("broken", "b.example.com", predicate="Unknown()")
    other_class = user_ingress("nginx-one", "n.example.com", klass="nginx")
    by_annotation = user_ingress("annotated", "a.example.com", klass="")
    by_annotation["metadata"]["annotations"]["kubernetes.io/ingress.class"] = "skipper"
    missing = user_ingress("missing", "m.example.com")
    missing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "nowhere"
    config = build(broken, other_class, by_annotation, missing)
    hosts = config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    domains = [h["domains"] for h in hosts if h["name"].startswith("skipper.")]
    assert domains == [["a.example.com"], ["m.example.com"]]
    [gone] = host_routes(config, "m.example.com")
    assert destinations(gone) == [(f"skipper|{NS}-nowhere-{PORT}", 1)]


def test_path_types_order() -> None:
    ingress = user_ingress()
    ingress["spec"]["rules"][0]["http"]["paths"] += [
        {
            "path": "/api",
            "pathType": "Prefix",
            "backend": {"service": {"name": "podinfo", "port": {"number": PORT}}},
        },
        {
            "path": "/api/x",
            "pathType": "Exact",
            "backend": {"service": {"name": "podinfo", "port": {"number": PORT}}},
        },
        {
            "path": "/static",
            "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": "podinfo", "port": {"number": PORT}}},
        },
    ]
    routes = host_routes(build(ingress), "app.example.com")
    assert [r["match"] for r in routes] == [
        {"path": "/api/x"},
        {"prefix": "/static"},
        {"path_separated_prefix": "/api"},
        {"prefix": "/"},
    ]


# ------------------------------------------------------------------------------------------------ Envoy


def _skipper_samples(app: DemoApp) -> dict[tuple[str, str], float]:
    """``skipper_response_duration_seconds_count`` of the app by (route, code)."""
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(app.exposition().decode()):
        for sample in family.samples:
            if sample.name == "skipper_response_duration_seconds_count":
                key = (sample.labels["route"], sample.labels["code"])
                out[key] = out.get(key, 0.0) + sample.value
            if sample.name.startswith("skipper_"):
                assert "kubernetes_pod_name" not in sample.labels  # Skipper's pod exports them, not the app's
    return out


async def test_the_real_envoy_routes_as_skipper(tmp_path: Path) -> None:
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
    weighted = user_ingress("weighted", "w.example.com")
    idle = user_ingress("idle", "i.example.com")
    objects = [weighted, router_canary(weighted, Routes(70, 30)), idle, router_canary(idle, Routes(100, 0))]
    ports = {GATEWAY_LISTENER: free_port()}
    envoy.start()
    try:
        envoy.files.write(
            envoy_config(
                {INGRESS: objects},
                SERVICES,
                endpoints,
                ports=ports,
                routes_dir=str(envoy.files.routes_dir),
                weight_header="x-seq",
                translators=[SkipperTranslator()],
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

            # backend-weights 70/30: the weight header picks exactly 30 of 100 for the canary.
            assert (await versions("w.example.com", 100)).count("2.0.0") == 30
            # A client cannot fake the route label: the gateway overwrites it.
            faked = {telemetry.SKIPPER_ROUTE_HEADER: route_id(NS, "idle-canary", "i.example.com", "/", "x")}
            assert (await versions("i.example.com", 10, **faked)).count("2.0.0") == 0
            async with http.get(gateway, headers={"Host": "nowhere.example.com"}) as response:
                assert response.status == 404
        assert envoy.rejected_updates() == 0
        on_canary, on_primary = _skipper_samples(canary_app), _skipper_samples(primary)
        assert on_canary == {
            (route_id(NS, "weighted-canary", "w.example.com", "/", "podinfo-canary"), "200"): 30
        }
        assert on_primary == {
            (route_id(NS, "weighted-canary", "w.example.com", "/", "podinfo-primary"), "200"): 70,
            (route_id(NS, "idle", "i.example.com", "/", "podinfo"), "200"): 10,
        }
    finally:
        envoy.stop()
        await primary.stop()
        await canary_app.stop()


# ------------------------------------------------------------------------------------------------ examples


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_examples_route_app_example_com_through_the_canary_ingress() -> None:
    canary_doc = yaml.safe_load((EXAMPLES / "skipper" / "canary.yaml").read_text())
    walkthrough = yaml.safe_load((EXAMPLES / "podinfo" / "canary.yaml").read_text())
    # the same analysis; the webhooks reach the canary Service on the tutorial's port 80
    for key in ("interval", "threshold", "maxWeight", "stepWeight", "metrics"):
        assert canary_doc["spec"]["analysis"][key] == walkthrough["spec"]["analysis"][key], key
    assert canary_doc["spec"]["provider"] == "skipper"
    [ingress] = [d for d in yaml.safe_load_all((EXAMPLES / "skipper" / "routing.yaml").read_text()) if d]
    assert object_key(ingress) == "Ingress/podinfo"
    canary = Canary.model_validate(canary_doc)
    ingress = copy.deepcopy(ingress)
    ingress["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    services = [
        {"metadata": {"name": n, "namespace": NS}, "spec": {"ports": [{"name": "http", "port": 80}]}}
        for n in ("podinfo", "podinfo-primary", "podinfo-canary")
    ]
    config = envoy_config(
        {INGRESS: [ingress, router_canary(ingress, Routes(95, 5), canary)]},
        services,
        ENDPOINTS,
        ports={GATEWAY_LISTENER: 10000},
        routes_dir="/r",
        translators=[SkipperTranslator()],
    )
    first = host_routes(config, "app.example.com")[0]
    assert destinations(first) == [
        (cluster_name(NS, "podinfo-primary", 80), 95),
        (cluster_name(NS, "podinfo-canary", 80), 5),
    ]
