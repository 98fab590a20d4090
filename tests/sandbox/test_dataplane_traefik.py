"""The Traefik translator: the TraefikService the Traefik router writes, targeted by the tutorial's IngressRoute
(``app.example.com``), becomes the gateway's virtual host with weighted clusters named as Traefik names its
services; rules, priorities, nested and mirroring TraefikServices and refused references as Traefik handles
them; then a real Envoy splits by weight and the demo apps export Traefik's series under the name Traefik's
builtin query selects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.metrics.builtin import TRAEFIK as TRAEFIK_OBSERVER
from canarist.routers.base import RouteContext
from canarist.routers.traefik import TRAEFIK, TRAEFIK_SERVICE
from canarist.sandbox import dataplane, telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj
from canarist.sandbox.dataplane.traefik import (
    INGRESS_ROUTE,
    Matcher,
    RuleError,
    TraefikTranslator,
    parse_rule,
)
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, envoy_config, listener_key
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint, versions_until, wait_for_listeners
from tests.workloads import podinfo

NS = "test"
PRIMARY = "test-podinfo-primary-9898@kubernetescrd"
CANARY = "test-podinfo-canary-9898@kubernetescrd"
KINDS = {(k.api_version, k.kind): k for k in (INGRESS_ROUTE, TRAEFIK_SERVICE)}


def service(name: str, port: int = 9898) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"ports": [{"name": "http", "port": port}]}}


SERVICES = [service("podinfo"), service("podinfo-primary"), service("podinfo-canary")]
PRIMARY_POD = Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})
CANARY_POD = Endpoint("127.0.0.1", 4002, {"app": "podinfo"})
ENDPOINTS = {
    (NS, "podinfo"): [PRIMARY_POD, CANARY_POD],
    (NS, "podinfo-primary"): [PRIMARY_POD],
    (NS, "podinfo-canary"): [CANARY_POD],
}


def operator_objects(routes: Routes) -> list[Obj]:
    """What the Traefik router writes: the TraefikService ``podinfo``."""
    return TRAEFIK.desired(RouteContext.from_canary(podinfo.canary(provider="traefik")), routes)


def ingress_route(routes: list[Obj] | None = None, name: str = "podinfo", **spec: Any) -> Obj:
    """The tutorial's IngressRoute (``Host(`app.example.com`)`` to the TraefikService ``podinfo``)."""
    return {
        "apiVersion": INGRESS_ROUTE.api_version,
        "kind": INGRESS_ROUTE.kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "routes": routes
            if routes is not None
            else [
                {
                    "match": "Host(`app.example.com`)",
                    "kind": "Rule",
                    "services": [{"name": "podinfo", "kind": "TraefikService"}],
                }
            ],
            **spec,
        },
    }


def traefik_service(name: str, spec: Obj) -> Obj:
    return {
        "apiVersion": TRAEFIK_SERVICE.api_version,
        "kind": TRAEFIK_SERVICE.kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


def build(*objects: Obj) -> dict[str, Any]:
    by_kind: dict[Any, list[Obj]] = {INGRESS_ROUTE: [], TRAEFIK_SERVICE: []}
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
        translators=[TraefikTranslator()],
    )


def hosts(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        h["name"]: h
        for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
        if h["name"].startswith("traefik.")
    }


def split(route: Obj) -> list[tuple[str, int]]:
    return [(c["name"], c["weight"]) for c in route["route"]["weighted_clusters"]["clusters"]]


def test_registered() -> None:
    assert any(isinstance(t, TraefikTranslator) for t in dataplane.translators())
    assert {INGRESS_ROUTE, TRAEFIK_SERVICE} <= set(dataplane.watched_kinds())


def test_rules_parse_into_alternatives() -> None:
    assert parse_rule("Host(`app.example.com`)") == [[Matcher("Host", ("app.example.com",))]]
    assert parse_rule("Host(`a`) && (PathPrefix(`/api`) || Header(`x-canary`, `insider`))") == [
        [Matcher("Host", ("a",)), Matcher("PathPrefix", ("/api",))],
        [Matcher("Host", ("a",)), Matcher("Header", ("x-canary", "insider"))],
    ]
    # the v2 syntax: several hosts are alternatives; a negated header matcher
    assert parse_rule('Host(`a`, "b") && !Headers(`x`, `1`)') == [
        [Matcher("Host", ("a",)), Matcher("Headers", ("x", "1"), negated=True)],
        [Matcher("Host", ("b",)), Matcher("Headers", ("x", "1"), negated=True)],
    ]
    for bad in ("Host(`a`", "Host(`a`) &&", "Host(`a`) Path(`/`)", "Host(a)", "!(Host(`a`) || Host(`b`))"):
        with pytest.raises(RuleError):
            parse_rule(bad)


def test_the_operators_traefik_service_splits_app_example_com_by_weight() -> None:
    config = build(ingress_route(), *operator_objects(Routes(70, 30)))
    [route] = hosts(config)["traefik.app.example.com"]["routes"]
    assert hosts(config)["traefik.app.example.com"]["domains"] == ["app.example.com"]
    assert route["match"] == {"prefix": "/"}
    assert split(route) == [(PRIMARY, 7), (CANARY, 3)]
    assert route["route"]["timeout"] == "0.000s"  # Traefik's responseHeaderTimeout: none
    assert route["route"]["weighted_clusters"]["header_name"] == "x-seq"
    # each Service port's requests carry the name Traefik's metrics give that service
    clusters = route["route"]["weighted_clusters"]["clusters"]
    assert [c["request_headers_to_add"] for c in clusters] == [
        [e.header_set(telemetry.TRAEFIK_SERVICE_HEADER, PRIMARY)],
        [e.header_set(telemetry.TRAEFIK_SERVICE_HEADER, CANARY)],
    ]
    names = {c["name"] for c in config["clusters"]}
    assert {PRIMARY, CANARY} <= names
    assert config["statuses"] == []  # Traefik writes no status on its CRDs
    # at weight 0 the router leaves the canary out: everything goes to the primary
    [route] = hosts(build(ingress_route(), *operator_objects(Routes(100, 0))))["traefik.app.example.com"][
        "routes"
    ]
    assert split(route) == [(PRIMARY, 1)]


def test_builtin_query_selects_the_canary_service_name() -> None:
    selector = re.search(r'service=~"([^"]+)"', TRAEFIK_OBSERVER.success_rate)
    assert selector is not None
    pattern = selector.group(1).replace("{{ namespace }}", NS).replace("{{ target }}", "podinfo")
    assert re.fullmatch(pattern, CANARY)
    assert not re.fullmatch(pattern, PRIMARY)
    assert re.fullmatch(pattern, telemetry.traefik_service_name(NS, "podinfo-canary", 80))


def test_priorities_rules_and_weights() -> None:
    routes: list[Obj] = [
        {"match": "Host(`app.example.com`)", "services": [{"name": "podinfo-primary", "port": 9898}]},
        {
            "match": "Host(`app.example.com`) && PathPrefix(`/api`) && Method(`POST`, `PUT`)",
            "services": [
                {"name": "podinfo-primary", "port": "http", "weight": 1},
                {"name": "podinfo-canary", "weight": 3},
            ],
        },
        {
            "match": "Host(`app.example.com`) && HeaderRegexp(`x-user`, `^beta`) && Query(`debug`)",
            "priority": 1000,
            "services": [{"name": "podinfo-canary"}],
        },
        {"match": "Path(`/healthz`)", "services": [{"name": "podinfo-primary"}]},
    ]
    config = build(ingress_route(routes))
    vhost = hosts(config)["traefik.app.example.com"]
    by_name = {r["name"]: r for r in vhost["routes"]}
    assert [r["name"] for r in vhost["routes"]] == [
        "traefik.test.podinfo.2.0",  # priority 1000
        "traefik.test.podinfo.1.0",  # the longest rule first
        "traefik.test.podinfo.1.1",
        "traefik.test.podinfo.0.0",
        "traefik.test.podinfo.3.0",  # the host-less route applies to every host, by its priority
    ]
    header = by_name["traefik.test.podinfo.2.0"]["match"]
    assert header["headers"] == [e.header_match("x-user", "regex", ".*(?:^beta).*")]
    assert header["query_parameters"] == [e.query_match("debug")]
    post = by_name["traefik.test.podinfo.1.0"]
    assert post["match"]["prefix"] == "/api"
    assert post["match"]["headers"] == [e.header_match(":method", "exact", "POST")]
    assert by_name["traefik.test.podinfo.1.1"]["match"]["headers"] == [
        e.header_match(":method", "exact", "PUT")
    ]
    assert split(post) == [(PRIMARY, 1), (CANARY, 3)]
    assert hosts(config)["traefik._"]["domains"] == ["*"]
    [healthz] = hosts(config)["traefik._"]["routes"]
    assert healthz["match"] == {"path": "/healthz"}


def test_nested_and_mirroring_traefik_services() -> None:
    outer = traefik_service(
        "outer",
        {
            "weighted": {
                "services": [
                    {"name": "inner", "kind": "TraefikService", "weight": 1},
                    {"name": "podinfo-primary", "port": 9898, "weight": 1},
                ]
            }
        },
    )
    inner = traefik_service(
        "inner",
        {"weighted": {"services": [{"name": "podinfo-primary"}, {"name": "podinfo-canary", "weight": 2}]}},
    )
    mirror = traefik_service(
        "mirror",
        {
            "mirroring": {
                "name": "podinfo-primary",
                "port": 9898,
                "mirrors": [{"name": "podinfo-canary", "percent": 20}],
            }
        },
    )
    routes: list[Obj] = [
        {"match": "Host(`a.example.com`)", "services": [{"name": "outer", "kind": "TraefikService"}]},
        {"match": "Host(`m.example.com`)", "services": [{"name": "mirror", "kind": "TraefikService"}]},
    ]
    config = build(ingress_route(routes), outer, inner, mirror)
    [nested] = hosts(config)["traefik.a.example.com"]["routes"]
    # inner: primary 1/3, canary 2/3 of its half; outer's own primary the other half: 4/6 and 2/6
    assert split(nested) == [(PRIMARY, 2), (CANARY, 1)]
    [mirrored] = hosts(config)["traefik.m.example.com"]["routes"]
    assert split(mirrored) == [(PRIMARY, 1)]
    assert mirrored["route"]["request_mirror_policies"] == [e.mirror_policy(CANARY, 20)]


def test_an_ingress_route_with_an_error_is_skipped_and_zero_weights_answer_503() -> None:
    good = ingress_route(
        [{"match": "Host(`ok.example.com`)", "services": [{"name": "podinfo-primary", "weight": 0}]}],
        name="ok",
    )
    for bad_service in (
        {"name": "podinfo"},  # the TraefikService is not there yet: Service podinfo, fine
        {"name": "podinfo", "kind": "TraefikService"},  # not found
        {"name": "nobody"},
        {"name": "podinfo-primary", "port": 8080},
        {"name": "podinfo-primary", "namespace": "other"},
    ):
        bad = ingress_route([{"match": "Host(`app.example.com`)", "services": [bad_service]}])
        found = hosts(build(good, bad))
        assert found["traefik.ok.example.com"]["routes"][0]["direct_response"] == {"status": 503}
        if bad_service == {"name": "podinfo"}:
            assert "traefik.app.example.com" in found
        else:
            assert "traefik.app.example.com" not in found, bad_service
    cycle = traefik_service("loop", {"weighted": {"services": [{"name": "loop", "kind": "TraefikService"}]}})
    looping = ingress_route(
        [{"match": "Host(`app.example.com`)", "services": [{"name": "loop", "kind": "TraefikService"}]}]
    )
    assert hosts(build(looping, cycle)) == {}
    assert (
        hosts(build(ingress_route([{"match": "ClientIP(`10.0.0.0/8`)", "services": [{"name": "podinfo"}]}])))
        == {}
    )
    # another entry point than the sandbox's `web` is not served
    assert hosts(build(ingress_route(entryPoints=["websecure"]), *operator_objects(Routes(100, 0)))) == {}
    assert hosts(build(ingress_route(entryPoints=["web"]), *operator_objects(Routes(100, 0))))


async def test_a_real_envoy_splits_by_weight_and_the_apps_export_traefiks_series(tmp_path: Path) -> None:
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
                translators=[TraefikTranslator()],
            )
        )
        await wait_for_listeners(envoy, ports)

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            await program(ingress_route(), *operator_objects(Routes(70, 30)))
            canary_served = await versions_until(http, gateway, {"1.0.0": 70, "2.0.0": 30}, {})
            await program(ingress_route(), *operator_objects(Routes(100, 0)))
            await versions_until(http, gateway, {"1.0.0": 100}, {})
            async with http.get(gateway, headers={"Host": "other.example.com"}) as r:
                assert r.status == 404  # no route for another host
        assert envoy.rejected_updates() == 0
        exported = canary.exposition().decode()
        # Traefik's series, under the canary service's Traefik name, without the pod's identity labels
        assert re.search(
            rf'traefik_service_request_duration_seconds_bucket\{{code="200",le="\+Inf",method="GET",'
            rf'protocol="http",service="{re.escape(CANARY)}"\}} {canary_served}\.0',
            exported,
        ), exported
        assert re.search(
            rf'traefik_service_requests_total\{{code="200",.*service="{re.escape(CANARY)}"\}}', exported
        )
        assert "test-podinfo-primary" not in exported
        assert canary_served >= 30
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()


# ------------------------------------------------------------------------------------------------ examples


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_examples_route_app_example_com_through_the_traefik_service() -> None:
    canary_doc = yaml.safe_load((EXAMPLES / "traefik" / "canary.yaml").read_text())
    walkthrough = yaml.safe_load((EXAMPLES / "podinfo" / "canary.yaml").read_text())
    for key in ("interval", "threshold", "maxWeight", "stepWeight", "metrics"):
        assert canary_doc["spec"]["analysis"][key] == walkthrough["spec"]["analysis"][key], key
    assert canary_doc["spec"]["provider"] == "traefik"
    [route] = [d for d in yaml.safe_load_all((EXAMPLES / "traefik" / "routing.yaml").read_text()) if d]
    assert (route["apiVersion"], route["kind"], route["metadata"]["namespace"]) == (
        "traefik.io/v1alpha1",
        "IngressRoute",
        NS,
    )
    canary = Canary.model_validate(canary_doc)
    services = [service("podinfo", 80), service("podinfo-primary", 80), service("podinfo-canary", 80)]
    objects = TRAEFIK.desired(RouteContext.from_canary(canary), Routes(95, 5))
    by_kind: dict[Any, list[Obj]] = {INGRESS_ROUTE: [route], TRAEFIK_SERVICE: objects}
    config = envoy_config(
        by_kind, services, ENDPOINTS, translators=[TraefikTranslator()], ports={GATEWAY_LISTENER: 10000}
    )
    [split_route] = hosts(config)["traefik.app.example.com"]["routes"]
    assert split(split_route) == [
        ("test-podinfo-primary-80@kubernetescrd", 19),
        ("test-podinfo-canary-80@kubernetescrd", 1),
    ]
    # Before the operator's TraefikService exists, Traefik skips the IngressRoute.
    assert (
        hosts(
            envoy_config(
                {INGRESS_ROUTE: [route]},
                services,
                ENDPOINTS,
                translators=[TraefikTranslator()],
                ports={GATEWAY_LISTENER: 10000},
            )
        )
        == {}
    )
