"""The SMI translator: the TrafficSplits the SMI routers write (v1alpha1 quantities, v1alpha2/v1alpha3 integers)
become weighted routes on the apex Service's listeners and its gateway host; then a real Envoy splits the
apex's traffic by them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp

from canarist.engine.model import Routes
from canarist.routers.base import RouteContext
from canarist.routers.smi import (
    LINKERD,
    SMI_V1ALPHA2,
    SMI_V1ALPHA3,
    TRAFFIC_SPLIT_V1ALPHA1,
    TRAFFIC_SPLIT_V1ALPHA2,
    TRAFFIC_SPLIT_V1ALPHA3,
    SmiRouter,
)
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane.base import Obj
from canarist.sandbox.dataplane.smi import SmiTranslator, split_percentages
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, cluster_name, envoy_config, listener_key
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint, wait_for_listeners
from tests.workloads import podinfo

NS = "test"
PRIMARY = cluster_name(NS, "podinfo-primary", 9898)
CANARY = cluster_name(NS, "podinfo-canary", 9898)


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


def split(router: SmiRouter, canary: int) -> Obj:
    ctx = RouteContext.from_canary(podinfo.canary(provider=router.name, service={"port": 9898}))
    [obj] = router.desired(ctx, Routes(primary=100 - canary, canary=canary))
    return obj


def build(objects: dict[Any, list[Obj]], services: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    services = SERVICES if services is None else services
    ports = {GATEWAY_LISTENER: 10000}
    for s in services:
        for p in s["spec"]["ports"]:
            ports[listener_key(NS, s["metadata"]["name"], p["port"])] = 10001 + len(ports)
    return envoy_config(
        objects,
        services,
        ENDPOINTS,
        ports=ports,
        routes_dir="/r",
        weight_header="x-seq",
        translators=[SmiTranslator()],
    )


def routes_of(config: dict[str, Any], route_config: str, host: str | None = None) -> list[dict[str, Any]]:
    hosts = config["routes"][route_config]["virtual_hosts"]
    found: list[dict[str, Any]] = next(h for h in hosts if h["name"] == (host or route_config))["routes"]
    return found


def weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    return [(c["name"], c["weight"]) for c in route["route"]["weighted_clusters"]["clusters"]]


# ------------------------------------------------------------------------------------------------ pure


def test_registered() -> None:
    assert "smi" in [t.name for t in dataplane.translators()]
    assert {TRAFFIC_SPLIT_V1ALPHA1, TRAFFIC_SPLIT_V1ALPHA2, TRAFFIC_SPLIT_V1ALPHA3} <= set(
        dataplane.watched_kinds()
    )


def test_the_routers_split_becomes_the_apex_route_on_its_listener_and_gateway_host() -> None:
    config = build({TRAFFIC_SPLIT_V1ALPHA2: [split(SMI_V1ALPHA2, 10)]})
    listener = routes_of(config, "svc.test.podinfo.9898")
    [ts, default] = listener
    assert ts["name"] == "ts.test.podinfo"
    assert ts["match"] == {"prefix": "/"}
    assert ts["route"]["weighted_clusters"]["header_name"] == "x-seq"
    assert ts["route"]["timeout"] == "0.000s"  # the meshes set no route timeout
    assert weights(ts) == [(CANARY, 10), (PRIMARY, 90)]
    assert default["route"]["cluster"] == cluster_name(NS, "podinfo", 9898)
    # Entering by the apex name through the gateway, the split applies too.
    assert routes_of(config, GATEWAY_LISTENER, "svc.test.podinfo") == listener
    # The backends themselves are not split.
    [only] = routes_of(config, "svc.test.podinfo-canary.9898")
    assert only["route"]["cluster"] == CANARY


def test_quantity_weights_of_v1alpha1_are_relative_shares() -> None:
    linkerd = split(LINKERD, 25)
    assert [b["weight"] for b in linkerd["spec"]["backends"]] == ["25", "75"]
    [ts, _] = routes_of(build({TRAFFIC_SPLIT_V1ALPHA1: [linkerd]}), "svc.test.podinfo.9898")
    assert weights(ts) == [(CANARY, 25), (PRIMARY, 75)]
    linkerd["spec"]["backends"][0]["weight"] = "100m"
    linkerd["spec"]["backends"][1]["weight"] = "900m"
    [ts, _] = routes_of(build({TRAFFIC_SPLIT_V1ALPHA1: [linkerd]}), "svc.test.podinfo.9898")
    assert weights(ts) == [(CANARY, 10), (PRIMARY, 90)]
    assert split_percentages([Fraction(1), Fraction(1), Fraction(1)]) == [34, 33, 33]
    assert split_percentages([Fraction(0), Fraction(0)]) == []


def test_every_port_of_the_apex_is_split_to_the_same_port_of_the_backends() -> None:
    services = [
        service("podinfo", 9898, 8080),
        service("podinfo-primary", 9898, 8080),
        service("podinfo-canary"),
    ]
    config = build({TRAFFIC_SPLIT_V1ALPHA3: [split(SMI_V1ALPHA3, 40)]}, services)
    [ts, _] = routes_of(config, "svc.test.podinfo.8080")
    # podinfo-canary has no port 8080: a cluster that does not exist, so Envoy answers 503 there.
    assert weights(ts) == [
        (cluster_name(NS, "podinfo-canary", 8080), 40),
        (cluster_name(NS, "podinfo-primary", 8080), 60),
    ]
    assert cluster_name(NS, "podinfo-canary", 8080) not in {c["name"] for c in config["clusters"]}
    [ts, _] = routes_of(config, "svc.test.podinfo.9898")
    assert weights(ts) == [(CANARY, 40), (PRIMARY, 60)]


def test_one_split_per_apex_read_once_across_versions() -> None:
    first = split(SMI_V1ALPHA2, 20)
    same_in_v1alpha3 = first | {"apiVersion": TRAFFIC_SPLIT_V1ALPHA3.api_version}
    later = split(SMI_V1ALPHA2, 70)
    later["metadata"]["name"] = "zz-other"
    later["spec"]["service"] = "podinfo.test.svc.cluster.local"
    config = build({TRAFFIC_SPLIT_V1ALPHA2: [later, first], TRAFFIC_SPLIT_V1ALPHA3: [same_in_v1alpha3]})
    routes = routes_of(config, "svc.test.podinfo.9898")
    assert [r["name"] for r in routes] == ["ts.test.podinfo", "podinfo.test.default"]
    assert weights(routes[0]) == [(CANARY, 20), (PRIMARY, 80)]


def test_splits_that_cannot_apply() -> None:
    zero = split(SMI_V1ALPHA2, 0)
    zero["spec"]["backends"][1]["weight"] = 0
    unknown_apex = split(SMI_V1ALPHA2, 10) | {"metadata": {"name": "b", "namespace": NS}}
    unknown_apex["spec"] = dict(unknown_apex["spec"], service="nowhere")
    config = build({TRAFFIC_SPLIT_V1ALPHA2: [zero, unknown_apex]})
    [default] = routes_of(config, "svc.test.podinfo.9898")
    assert default["name"] == "podinfo.test.default"
    missing = split(SMI_V1ALPHA2, 50)
    missing["spec"]["backends"][0]["service"] = "podinfo-gone"
    [ts, _] = routes_of(build({TRAFFIC_SPLIT_V1ALPHA2: [missing]}), "svc.test.podinfo.9898")
    [(gone, gone_weight), (primary, primary_weight)] = weights(ts)
    assert (gone_weight, primary, primary_weight) == (50, PRIMARY, 50)
    assert gone not in {c["name"] for c in build({TRAFFIC_SPLIT_V1ALPHA2: [missing]})["clusters"]}


# ------------------------------------------------------------------------------------------------ real Envoy


async def test_a_real_envoy_splits_the_apex_by_the_linkerd_split(tmp_path: Path) -> None:
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
                {TRAFFIC_SPLIT_V1ALPHA1: [split(LINKERD, 30)]},
                SERVICES,
                endpoints,
                ports=ports,
                routes_dir=str(envoy.files.routes_dir),
                weight_header="x-seq",
                translators=[SmiTranslator()],
            )
        )
        await wait_for_listeners(envoy, ports)
        apex = f"http://127.0.0.1:{ports[listener_key(NS, 'podinfo', 9898)]}/"
        gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}/"
        canary_listener = f"http://127.0.0.1:{ports[listener_key(NS, 'podinfo-canary', 9898)]}/"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for url, host in ((apex, None), (gateway, "podinfo.test"), (canary_listener, None)):
                versions = []
                for n in range(100):
                    headers = {"x-seq": str(n)} | ({"Host": host} if host else {})
                    async with http.get(url, headers=headers) as response:
                        versions.append((await response.json(content_type=None))["version"])
                expected = 100 if url == canary_listener else 30
                assert versions.count("2.0.0") == expected, (url, host)
        assert envoy.rejected_updates() == 0
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()
