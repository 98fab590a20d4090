"""The Kuma translator: the TrafficRoute the kuma router writes becomes a weighted route on the apex Service's
listeners and its gateway host, to clusters named after Kuma's service tags, each request tagged with its
destination; the split's Services get Kuma's default route to themselves. Then a real Envoy splits the apex's
traffic by the route, and the demo apps count it in Kuma's Envoy series, which the builtin queries select."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from canarist.engine.model import Routes
from canarist.metrics.builtin import KUMA
from canarist.routers.base import RouteContext
from canarist.routers.kuma import KUMA as KUMA_ROUTER
from canarist.routers.kuma import TRAFFIC_ROUTE
from canarist.sandbox import dataplane, telemetry
from canarist.sandbox.dataplane.base import Obj
from canarist.sandbox.dataplane.kuma import KumaTranslator, parse_service_tag
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, envoy_config, listener_key
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint, wait_for_listeners
from tests.workloads import podinfo

NS = "test"
PRIMARY = "podinfo-primary_test_svc_9898"
CANARY = "podinfo-canary_test_svc_9898"


def service(name: str, *ports: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"ports": [{"name": f"http-{p}", "port": p} for p in ports or (9898,)]},
    }


SERVICES = [service("podinfo"), service("podinfo-primary"), service("podinfo-canary")]
PRIMARY_POD = Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})
CANARY_POD = Endpoint("127.0.0.1", 4002, {"app": "podinfo"})
ENDPOINTS = {
    (NS, "podinfo"): [PRIMARY_POD],
    (NS, "podinfo-primary"): [PRIMARY_POD],
    (NS, "podinfo-canary"): [CANARY_POD],
}


def traffic_route(canary: int) -> Obj:
    ctx = RouteContext.from_canary(podinfo.canary(provider="kuma", service={"port": 9898}))
    [obj] = KUMA_ROUTER.desired(ctx, Routes(primary=100 - canary, canary=canary))
    return obj


def build(routes: list[Obj], services: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    services = SERVICES if services is None else services
    ports = {GATEWAY_LISTENER: 10000}
    for s in services:
        for p in s["spec"]["ports"]:
            ports[listener_key(NS, s["metadata"]["name"], p["port"])] = 10001 + len(ports)
    return envoy_config(
        {TRAFFIC_ROUTE: routes},
        services,
        ENDPOINTS,
        ports=ports,
        routes_dir="/r",
        weight_header="x-seq",
        translators=[KumaTranslator()],
    )


def routes_of(config: dict[str, Any], route_config: str, host: str | None = None) -> list[dict[str, Any]]:
    hosts = config["routes"][route_config]["virtual_hosts"]
    found: list[dict[str, Any]] = next(h for h in hosts if h["name"] == (host or route_config))["routes"]
    return found


def weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    return [(c["name"], c["weight"]) for c in route["route"]["weighted_clusters"]["clusters"]]


def kuma_requests(app: DemoApp) -> dict[tuple[str, str, str], int]:
    """``envoy_cluster_upstream_rq`` samples with a ``service`` (Kuma's), by (code, cluster, service)."""
    out: dict[tuple[str, str, str], int] = {}
    for family in text_string_to_metric_families(app.exposition().decode()):
        for sample in family.samples:
            if sample.name == "envoy_cluster_upstream_rq" and sample.labels.get("service"):
                labels = sample.labels
                key = (labels["envoy_response_code"], labels["envoy_cluster_name"], labels["service"])
                out[key] = int(sample.value)
    return out


def tags(route: dict[str, Any]) -> list[str]:
    return [
        c["request_headers_to_add"][0]["header"]["value"]
        for c in route["route"]["weighted_clusters"]["clusters"]
    ]


# ------------------------------------------------------------------------------------------------ pure


def test_registered_and_tags() -> None:
    assert "kuma" in [t.name for t in dataplane.translators()]
    assert TRAFFIC_ROUTE in dataplane.watched_kinds()
    assert parse_service_tag("podinfo-canary_test_svc_9898") == ("test", "podinfo-canary", 9898)
    assert parse_service_tag("*") is None
    assert parse_service_tag("podinfo_test_svc_http") is None


def test_the_routers_split_becomes_the_apex_route_on_its_listener_and_gateway_host() -> None:
    config = build([traffic_route(10)])
    listener = routes_of(config, "svc.test.podinfo.9898")
    [split, default] = listener
    assert split["name"] == "kuma.podinfo.podinfo_test_svc_9898"
    assert split["match"] == {"prefix": "/"}
    assert split["route"]["weighted_clusters"]["header_name"] == "x-seq"
    assert split["route"]["timeout"] == "0.000s"
    assert weights(split) == [(PRIMARY, 90), (CANARY, 10)]
    assert tags(split) == [PRIMARY, CANARY]
    assert all(
        c["request_headers_to_add"][0]["header"]["key"] == telemetry.KUMA_SERVICE_HEADER
        for c in split["route"]["weighted_clusters"]["clusters"]
    )
    assert default["name"] == "podinfo.test.default"
    # Entering by the apex name through the gateway, the split applies too.
    assert routes_of(config, GATEWAY_LISTENER, "svc.test.podinfo") == listener
    # The clusters carry Kuma's names, over the Services' endpoints.
    clusters = {c["name"]: c for c in config["clusters"]}
    assert {PRIMARY, CANARY} <= set(clusters)
    # The split's Services get Kuma's default route to themselves, tagged.
    [route_all, _] = routes_of(config, "svc.test.podinfo-canary.9898")
    assert route_all["name"] == f"kuma.route-all.{CANARY}"
    assert route_all["route"]["cluster"] == CANARY
    assert route_all["request_headers_to_add"] == [
        {
            "header": {"key": telemetry.KUMA_SERVICE_HEADER, "value": CANARY},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
        }
    ]


def test_weights_are_relative_shares_and_a_zero_split_is_not_applied() -> None:
    route = traffic_route(0)
    route["spec"]["conf"]["split"][0]["weight"] = 3
    route["spec"]["conf"]["split"][1]["weight"] = 1
    [split, _] = routes_of(build([route]), "svc.test.podinfo.9898")
    assert weights(split) == [(PRIMARY, 75), (CANARY, 25)]
    route["spec"]["conf"]["split"][0]["weight"] = 0
    route["spec"]["conf"]["split"][1]["weight"] = 0
    [default] = routes_of(build([route]), "svc.test.podinfo.9898")
    assert default["name"] == "podinfo.test.default"


def test_routes_that_do_not_apply_or_reach_nothing() -> None:
    narrow = traffic_route(50)
    narrow["spec"]["sources"] = [{"match": {"kuma.io/service": "frontend_test_svc_80"}}]
    [default] = routes_of(build([narrow]), "svc.test.podinfo.9898")
    assert default["name"] == "podinfo.test.default"
    # the first by name wins for a destination
    later = copy.deepcopy(traffic_route(70))
    later["metadata"]["name"] = "zz-later"
    [split, _] = routes_of(build([later, traffic_route(20)]), "svc.test.podinfo.9898")
    assert weights(split) == [(PRIMARY, 80), (CANARY, 20)]
    # a split tag naming no Service port: a cluster that does not exist, so Envoy answers 503 there
    gone = traffic_route(50)
    gone["spec"]["conf"]["split"][1]["destination"]["kuma.io/service"] = "podinfo-gone_test_svc_9898"
    config = build([gone])
    [split, _] = routes_of(config, "svc.test.podinfo.9898")
    assert weights(split) == [(PRIMARY, 50), ("podinfo-gone_test_svc_9898.unknown", 50)]
    assert "podinfo-gone_test_svc_9898.unknown" not in {c["name"] for c in config["clusters"]}
    # a single destination (conf.destination), as after a revert
    reverted = traffic_route(0)
    reverted["spec"]["conf"] = {"destination": {"kuma.io/service": "podinfo_test_svc_9898"}}
    [single, _] = routes_of(build([reverted]), "svc.test.podinfo.9898")
    assert single["route"]["weighted_clusters"]["clusters"][0]["name"] == "podinfo_test_svc_9898"


# ------------------------------------------------------------------------------------------------ real Envoy


async def test_a_real_envoy_splits_the_apex_and_the_apps_count_kumas_series(tmp_path: Path) -> None:
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
    envoy.start()
    try:
        envoy.files.write(
            envoy_config(
                {TRAFFIC_ROUTE: [traffic_route(30)]},
                SERVICES,
                endpoints,
                ports=ports,
                routes_dir=str(envoy.files.routes_dir),
                weight_header="x-seq",
                translators=[KumaTranslator()],
            )
        )
        await wait_for_listeners(envoy, ports)
        gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}/"
        canary_listener = f"http://127.0.0.1:{ports[listener_key(NS, 'podinfo-canary', 9898)]}/status/500"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            versions = []
            for n in range(100):
                async with http.get(gateway, headers={"x-seq": str(n), "Host": "podinfo.test"}) as response:
                    versions.append((await response.json(content_type=None))["version"])
            assert versions.count("2.0.0") == 30
            for _ in range(5):  # the tutorial's fault, straight to the canary Service
                async with http.get(canary_listener) as response:
                    assert response.status == 500
        assert envoy.rejected_updates() == 0
        inbound = telemetry.kuma_inbound_cluster_name()
        assert inbound == "localhost:9898"
        # the canary's dataplane counted the 30 split requests and the 5 faults under its tag
        assert kuma_requests(canary) == {("200", inbound, CANARY): 30, ("500", inbound, CANARY): 5}
        assert kuma_requests(primary) == {("200", inbound, PRIMARY): 70}
        # which is what Kuma's builtin queries select (the target podinfo, namespace test)
        selector = re.search(r'service=~"([^"]+)"', KUMA.success_rate)
        assert selector is not None
        pattern = selector.group(1).replace("{{ target }}", "podinfo").replace("{{ namespace }}", NS)
        assert re.fullmatch(pattern, CANARY)
        assert not re.fullmatch(pattern, PRIMARY)
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()
