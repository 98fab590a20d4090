"""The App Mesh translator: the VirtualNodes, VirtualRouters and VirtualServices the ``appmesh:v1beta2``
router writes for the example Canary (examples/appmesh), in the example's Mesh, become routes on the apex
Service's listener and its gateway host, egress clusters named like the sidecar's, and the controller's
statuses; then a real Envoy splits and header-routes the apex's traffic by them."""

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
from canarist.kube.resources import NAMESPACE, ResourceKind
from canarist.routers.appmesh import (
    APPMESH_V1BETA2,
    VIRTUAL_NODE_V1BETA2,
    VIRTUAL_ROUTER_V1BETA2,
    VIRTUAL_SERVICE_V1BETA2,
)
from canarist.routers.base import RouteContext
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane.appmesh import MESH, AppMeshTranslator, egress_cluster_name
from canarist.sandbox.dataplane.base import Obj, condition
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, cluster_name, envoy_config, listener_key
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint

NS = "test"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "appmesh"
PRIMARY = egress_cluster_name("global", "podinfo-primary_test", "http", 9898)
CANARY = egress_cluster_name("global", "podinfo-canary_test", "http", 9898)
ARN = "arn:aws:appmesh:us-west-2:000000000000:mesh/global"


def routing() -> dict[str, Obj]:
    """The example's routing.yaml by kind: the Mesh and the labelled Namespace."""
    documents = list(yaml.safe_load_all((EXAMPLES / "routing.yaml").read_text()))
    return {d["kind"]: d for d in documents}


def example_canary(analysis: Mapping[str, Any] | None = None, **service: Any) -> Canary:
    manifest = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    manifest["metadata"]["uid"] = "11111111-2222-3333-4444-555555555555"
    manifest["spec"]["service"].update(service)
    manifest["spec"]["analysis"].update(analysis or {})
    return Canary.model_validate(manifest)


def mesh_objects(canary: Canary, primary: int, canary_weight: int) -> dict[ResourceKind, list[Obj]]:
    """What the router writes for these weights, with the example's Mesh and Namespace."""
    docs = routing()
    out: dict[ResourceKind, list[Obj]] = {MESH: [docs["Mesh"]], NAMESPACE: [docs["Namespace"]]}
    by_kind = {k.kind: k for k in APPMESH_V1BETA2.kinds}
    ctx = RouteContext.from_canary(canary)
    for obj in APPMESH_V1BETA2.desired(ctx, Routes(primary=primary, canary=canary_weight)):
        out.setdefault(by_kind[obj["kind"]], []).append(obj)
    return out


def service(name: str, app: str, port: int = 9898, target: int | str = "http") -> Obj:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": port, "targetPort": target}]},
    }


SERVICES = [
    service("podinfo", "podinfo-primary"),
    service("podinfo-primary", "podinfo-primary"),
    service("podinfo-canary", "podinfo"),
]
PRIMARY_POD = Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})
CANARY_POD = Endpoint("127.0.0.1", 4002, {"app": "podinfo"})
ENDPOINTS = {
    (NS, "podinfo"): [PRIMARY_POD],
    (NS, "podinfo-primary"): [PRIMARY_POD],
    (NS, "podinfo-canary"): [CANARY_POD],
}


def build(
    objects: Mapping[ResourceKind, Sequence[Obj]],
    services: Sequence[Obj] = SERVICES,
    endpoints: Mapping[tuple[str, str], Sequence[Endpoint]] = ENDPOINTS,
    ports: Mapping[str, int] | None = None,
    routes_dir: str = "/r",
) -> dict[str, Any]:
    if ports is None:
        ports = {GATEWAY_LISTENER: 10000}
        for s in services:
            for p in s["spec"]["ports"]:
                ports[listener_key(NS, s["metadata"]["name"], p["port"])] = 10001 + len(ports)
    return envoy_config(
        objects,
        services,
        endpoints,
        ports=ports,
        routes_dir=routes_dir,
        weight_header="x-seq",
        translators=[AppMeshTranslator()],
    )


def routes_of(config: dict[str, Any], route_config: str, host: str | None = None) -> list[dict[str, Any]]:
    hosts = config["routes"][route_config]["virtual_hosts"]
    routes: list[dict[str, Any]] = next(h for h in hosts if host is None or h["name"] == host)["routes"]
    return routes


def weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    action = route["route"]
    if "cluster" in action:
        return [(action["cluster"], 100)]
    return [(c["name"], c["weight"]) for c in action["weighted_clusters"]["clusters"]]


def endpoints_of(config: dict[str, Any], name: str) -> list[int]:
    cluster = next(c for c in config["clusters"] if c["name"] == name)
    return [
        lb["endpoint"]["address"]["socket_address"]["port_value"]
        for lb in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ]


# ------------------------------------------------------------------------------------------------ registry


def test_registered_with_the_kinds_it_reads() -> None:
    [translator] = [t for t in dataplane.translators() if t.name == "appmesh"]
    assert isinstance(translator, AppMeshTranslator)
    assert set(translator.kinds) == {
        VIRTUAL_SERVICE_V1BETA2,
        VIRTUAL_ROUTER_V1BETA2,
        VIRTUAL_NODE_V1BETA2,
        MESH,
        NAMESPACE,
    }
    assert (MESH.api_version, MESH.plural, MESH.namespaced) == ("appmesh.k8s.aws/v1beta2", "meshes", False)


# ------------------------------------------------------------------------------------------------ routes


def test_the_weighted_router_becomes_the_apex_route_with_retries_and_timeout() -> None:
    config = build(mesh_objects(example_canary(), 70, 30))
    [apex, default] = routes_of(config, "svc.test.podinfo.9898")
    assert default["name"] == "podinfo.test.default"
    assert apex["name"] == "podinfo.podinfo.test"
    assert apex["match"] == {"prefix": "/"}
    assert weights(apex) == [(CANARY, 30), (PRIMARY, 70)]
    action = apex["route"]
    assert action["weighted_clusters"]["header_name"] == "x-seq"
    assert action["timeout"] == "15.000s"  # service.timeout
    # retryOn gateway-error,client-error,stream-error: Envoy's gateway-error, HTTP 409, refused streams.
    assert action["retry_policy"] == {
        "retry_on": "gateway-error,refused-stream,retriable-status-codes",
        "num_retries": 3,
        "retriable_status_codes": [409],
        "per_try_timeout": "5.000s",
    }
    # A meshed ingress: the gateway's host for the Service routes as the Service's listener.
    assert routes_of(config, GATEWAY_LISTENER, "svc.test.podinfo") == [apex, default]
    # The canary's virtual service goes to the canary node (the router writes the primary at 0); the
    # primary Service is not a virtual service: its default route.
    [to_canary, _] = routes_of(config, "svc.test.podinfo-canary.9898")
    assert weights(to_canary) == [(CANARY, 100), (PRIMARY, 0)]
    [primary_default] = routes_of(config, "svc.test.podinfo-primary.9898")
    assert primary_default["route"]["cluster"] == cluster_name(NS, "podinfo-primary", 9898)


def test_egress_clusters_hold_the_pods_each_virtual_node_selects() -> None:
    endpoints = ENDPOINTS | {
        # a stray pod behind the canary Service that the canary node's podSelector does not select
        (NS, "podinfo-canary"): [CANARY_POD, Endpoint("127.0.0.1", 4003, {"app": "other"})],
    }
    config = build(mesh_objects(example_canary(), 100, 0), endpoints=endpoints)
    assert endpoints_of(config, CANARY) == [4002]
    assert endpoints_of(config, PRIMARY) == [4001]
    assert CANARY == "cds_egress_global_podinfo-canary_test_http_9898"


def test_ab_testing_routes_the_header_to_the_canary_before_the_primary_route() -> None:
    canary = example_canary({"match": [{"headers": {"x-canary": {"exact": "insider"}}}]})
    objects = mesh_objects(canary, 0, 100)
    [router] = [r for r in objects[VIRTUAL_ROUTER_V1BETA2] if r["metadata"]["name"] == "podinfo"]
    router["spec"]["routes"].reverse()  # priorities, not list order, decide
    [a, b, _] = routes_of(build(objects), "svc.test.podinfo.9898")
    assert (a["name"], b["name"]) == ("podinfo-a.podinfo.test", "podinfo-b.podinfo.test")
    assert a["match"] == {
        "prefix": "/",
        "headers": [{"name": "x-canary", "string_match": {"exact": "insider"}}],
    }
    assert weights(a) == [(CANARY, 100), (PRIMARY, 0)]
    assert b["match"] == {"prefix": "/"}
    assert weights(b) == [(PRIMARY, 100)]


def test_match_fields_and_the_order_of_routes_without_priority() -> None:
    objects = mesh_objects(example_canary(), 100, 0)
    [router] = [r for r in objects[VIRTUAL_ROUTER_V1BETA2] if r["metadata"]["name"] == "podinfo"]
    target = {"action": {"weightedTargets": [{"virtualNodeRef": {"name": "podinfo-canary"}, "weight": 1}]}}
    router["spec"]["routes"] = [
        {"name": "root", "httpRoute": {"match": {"prefix": "/"}, **target}},
        {
            "name": "api",
            "http2Route": {
                "match": {
                    "prefix": "/api",
                    "method": "POST",
                    "scheme": "http",
                    "headers": [
                        {"name": "X-Prefix", "match": {"prefix": "a"}},
                        {"name": "x-suffix", "match": {"suffix": "z"}, "invert": True},
                        {"name": "x-regex", "match": {"regex": "^b+$"}},
                        {"name": "x-range", "match": {"range": {"start": 1, "end": 5}}},
                        {"name": "x-present"},
                    ],
                    "queryParameters": [{"name": "q", "match": {"exact": "1"}}, {"name": "p"}],
                },
                "timeout": {"perRequest": {"unit": "s", "value": 0}, "idle": {"unit": "ms", "value": 1500}},
                **target,
            },
        },
        {"name": "exact", "httpRoute": {"match": {"path": {"exact": "/api/v1/items"}}, **target}},
        {"name": "other-port", "httpRoute": {"match": {"prefix": "/x", "port": 8080}, **target}},
        {"name": "grpc", "grpcRoute": {"match": {}, **target}},
    ]
    routes = routes_of(build(objects), "svc.test.podinfo.9898")
    assert [r["name"] for r in routes] == [
        "exact.podinfo.test",  # the longest match first
        "api.podinfo.test",
        "root.podinfo.test",
        "podinfo.test.default",
    ]
    assert routes[0]["match"] == {"path": "/api/v1/items"}
    api = routes[1]
    assert api["match"] == {
        "prefix": "/api",
        "headers": [
            {"name": "x-prefix", "string_match": {"prefix": "a"}},
            {"name": "x-suffix", "invert_match": True, "string_match": {"suffix": "z"}},
            {"name": "x-regex", "string_match": {"safe_regex": {"regex": "^b+$"}}},
            {"name": "x-range", "range_match": {"start": 1, "end": 5}},
            {"name": "x-present", "present_match": True},
            {"name": ":method", "string_match": {"exact": "POST"}},
            {"name": ":scheme", "string_match": {"exact": "http"}},
        ],
        "query_parameters": [
            {"name": "q", "string_match": {"exact": "1"}},
            {"name": "p", "present_match": True},
        ],
    }
    assert api["route"]["timeout"] == "0.000s"  # 0 turns the per-request timeout off
    assert api["route"]["idle_timeout"] == "1.500s"
    assert "retry_policy" not in api["route"]
    assert routes[2]["route"]["timeout"] == "15.000s"  # App Mesh's default


def test_routes_that_cannot_apply() -> None:
    objects = mesh_objects(example_canary(), 100, 0)
    [router] = [r for r in objects[VIRTUAL_ROUTER_V1BETA2] if r["metadata"]["name"] == "podinfo"]
    http = router["spec"]["routes"][0]["httpRoute"]
    for target in http["action"]["weightedTargets"]:
        target["weight"] = 0
    [default] = routes_of(build(objects), "svc.test.podinfo.9898")  # no weight at all: not programmed
    assert default["name"] == "podinfo.test.default"
    http["action"]["weightedTargets"] = [
        {"virtualNodeRef": {"name": "podinfo-gone"}, "weight": 50},
        {"virtualNodeRef": {"name": "podinfo-primary"}, "weight": 50},
    ]
    config = build(objects)
    [apex, _] = routes_of(config, "svc.test.podinfo.9898")
    gone = egress_cluster_name("global", "podinfo-gone_test", "http", 9898)
    assert weights(apex) == [(gone, 50), (PRIMARY, 50)]
    assert gone not in {c["name"] for c in config["clusters"]}  # Envoy answers 503 for that half


def test_service_ports_match_the_listener_by_port_or_target_port() -> None:
    objects = mesh_objects(example_canary(), 60, 40)
    services = [service("podinfo", "podinfo-primary", port=80, target=9898), *SERVICES[1:]]
    [apex, _] = routes_of(build(objects, services=services), "svc.test.podinfo.80")
    assert weights(apex) == [(CANARY, 40), (PRIMARY, 60)]
    services = [service("podinfo", "podinfo-primary", port=80, target=8080), *SERVICES[1:]]
    [default] = routes_of(build(objects, services=services), "svc.test.podinfo.80")
    assert default["name"] == "podinfo.test.default"


def test_a_virtual_node_provider_and_a_tcp_router() -> None:
    objects = mesh_objects(example_canary(), 100, 0)
    for vs in objects[VIRTUAL_SERVICE_V1BETA2]:
        if vs["metadata"]["name"] == "podinfo-canary":
            vs["spec"]["provider"] = {"virtualNode": {"virtualNodeRef": {"name": "podinfo-canary"}}}
    [router] = [r for r in objects[VIRTUAL_ROUTER_V1BETA2] if r["metadata"]["name"] == "podinfo"]
    router["spec"]["listeners"][0]["portMapping"]["protocol"] = "tcp"
    router["spec"]["routes"] = [
        {
            "name": "tcp",
            "tcpRoute": {
                "action": {
                    "weightedTargets": [
                        {"virtualNodeRef": {"name": "podinfo-canary"}, "weight": 1},
                        {"virtualNodeRef": {"name": "podinfo-primary"}, "weight": 3},
                    ]
                }
            },
        }
    ]
    config = build(objects)
    [to_canary, _] = routes_of(config, "svc.test.podinfo-canary.9898")
    assert weights(to_canary) == [(CANARY, 100)]
    listener = next(x for x in config["listeners"] if x["name"] == listener_key(NS, "podinfo", 9898))
    proxy = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert proxy["weighted_clusters"]["clusters"] == [
        {"name": CANARY, "weight": 1},
        {"name": PRIMARY, "weight": 3},
    ]


def test_service_hosts_expose_the_virtual_service_on_the_gateway() -> None:
    objects = mesh_objects(example_canary(hosts=["app.example.com", "www.example.com"]), 80, 20)
    config = build(objects)
    # The virtual service's routes, without the Service's default route.
    assert (
        routes_of(config, GATEWAY_LISTENER, "appmesh.test.podinfo")
        == routes_of(config, "svc.test.podinfo.9898")[:-1]
    )
    [host] = [
        h for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"] if h["name"].startswith("appmesh")
    ]
    assert host["domains"] == ["app.example.com", "www.example.com"]


# ------------------------------------------------------------------------------------------------ mesh


def test_only_objects_in_a_mesh_are_programmed() -> None:
    def apex_names(objects: dict[ResourceKind, list[Obj]]) -> list[str]:
        return [r["name"] for r in routes_of(build(objects), "svc.test.podinfo.9898")]

    programmed = ["podinfo.podinfo.test", "podinfo.test.default"]
    not_programmed = ["podinfo.test.default"]
    objects = mesh_objects(example_canary(), 50, 50)
    assert apex_names(objects) == programmed
    assert apex_names(objects | {MESH: []}) == not_programmed  # no Mesh
    bare = {"metadata": {"name": NS, "labels": {"istio-injection": "enabled"}}}
    assert apex_names(objects | {NAMESPACE: [bare]}) == not_programmed  # not selected
    assert apex_names(objects | {NAMESPACE: []}) == not_programmed  # no such namespace
    everywhere = {"metadata": {"name": "everywhere"}, "spec": {"namespaceSelector": {}}}
    nowhere = {"metadata": {"name": "nowhere"}, "spec": {}}
    assert apex_names(objects | {NAMESPACE: [bare], MESH: [everywhere, nowhere]}) == programmed
    assert (
        apex_names(objects | {MESH: [*objects[MESH], everywhere]}) == not_programmed
    )  # two meshes select it
    # A meshRef (set by the controller's webhook) decides, whatever the selectors.
    pinned = copy.deepcopy(objects) | {MESH: [*objects[MESH], everywhere]}
    for kind in (VIRTUAL_NODE_V1BETA2, VIRTUAL_ROUTER_V1BETA2, VIRTUAL_SERVICE_V1BETA2):
        for obj in pinned[kind]:
            obj["spec"]["meshRef"] = {"name": "everywhere", "uid": "u"}
    config = build(pinned)
    [apex, _] = routes_of(config, "svc.test.podinfo.9898")
    assert weights(apex) == [
        (egress_cluster_name("everywhere", "podinfo-canary_test", "http", 9898), 50),
        (egress_cluster_name("everywhere", "podinfo-primary_test", "http", 9898), 50),
    ]
    # A router in another mesh than its virtual service is not used.
    for obj in pinned[VIRTUAL_ROUTER_V1BETA2]:
        obj["spec"]["meshRef"] = {"name": "global", "uid": "g"}
    assert apex_names(pinned) == not_programmed


def test_statuses_as_the_controller_writes_them() -> None:
    objects = mesh_objects(example_canary(), 50, 50)
    for kind in (VIRTUAL_NODE_V1BETA2, VIRTUAL_ROUTER_V1BETA2, VIRTUAL_SERVICE_V1BETA2):
        for obj in objects[kind]:
            obj["metadata"]["generation"] = 2
    previous = condition("VirtualServiceActive", True, "", now="2024-01-01T00:00:00Z")
    [apex_vs] = [v for v in objects[VIRTUAL_SERVICE_V1BETA2] if v["metadata"]["name"] == "podinfo"]
    apex_vs["status"] = {"conditions": [previous]}
    # A virtual service whose router does not exist is not created in App Mesh: no status.
    orphan = copy.deepcopy(apex_vs)
    orphan["metadata"]["name"] = "orphan"
    orphan["spec"]["provider"]["virtualRouter"]["virtualRouterRef"]["name"] = "missing"
    objects[VIRTUAL_SERVICE_V1BETA2].append(orphan)
    statuses = {(s.kind.kind, s.name): dict(s.status) for s in build(objects)["statuses"]}
    assert set(statuses) == {
        ("Mesh", "global"),
        ("VirtualNode", "podinfo-primary"),
        ("VirtualNode", "podinfo-canary"),
        ("VirtualRouter", "podinfo"),
        ("VirtualRouter", "podinfo-canary"),
        ("VirtualService", "podinfo"),
        ("VirtualService", "podinfo-canary"),
    }
    assert statuses[("Mesh", "global")]["meshARN"] == ARN
    assert (
        statuses[("VirtualNode", "podinfo-canary")]["virtualNodeARN"]
        == f"{ARN}/virtualNode/podinfo-canary_test"
    )
    assert statuses[("VirtualRouter", "podinfo")]["virtualRouterARN"] == f"{ARN}/virtualRouter/podinfo_test"
    assert statuses[("VirtualService", "podinfo")] == {
        "virtualServiceARN": f"{ARN}/virtualService/podinfo.test",
        "conditions": [
            {
                "type": "VirtualServiceActive",
                "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:00Z",  # unchanged: the old transition time
            }
        ],
        "observedGeneration": 2,
    }
    [router_condition] = statuses[("VirtualRouter", "podinfo")]["conditions"]
    assert (router_condition["type"], router_condition["status"]) == ("VirtualRouterActive", "True")


# ------------------------------------------------------------------------------------------------ real Envoy


async def test_a_real_envoy_splits_and_header_routes_the_apex(tmp_path: Path) -> None:
    assert envoy_binary() is not None
    envoy = EnvoyProcess(tmp_path / "envoy")
    primary, canary = DemoApp("podinfo-primary", NS, "1.0.0"), DemoApp("podinfo", NS, "2.0.0")
    await primary.start()
    await canary.start()

    endpoints = {
        (NS, "podinfo"): [endpoint(primary, {"app": "podinfo-primary"})],
        (NS, "podinfo-primary"): [endpoint(primary, {"app": "podinfo-primary"})],
        (NS, "podinfo-canary"): [endpoint(canary, {"app": "podinfo"})],
    }
    ports = {GATEWAY_LISTENER: free_port()} | {
        listener_key(NS, s["metadata"]["name"], 9898): free_port() for s in SERVICES
    }
    apex = f"http://127.0.0.1:{ports[listener_key(NS, 'podinfo', 9898)]}/"
    gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}/"

    async def versions(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> list[str]:
        out = []
        for n in range(100):
            async with http.get(url, headers={"x-seq": str(n)} | headers) as response:
                out.append((await response.json(content_type=None))["version"])
        return out

    async def program(objects: dict[ResourceKind, list[Obj]]) -> None:
        before = envoy.admin_get("/config_dump?resource=dynamic_route_configs")
        envoy.files.write(
            build(objects, endpoints=endpoints, ports=ports, routes_dir=str(envoy.files.routes_dir))
        )
        for _ in range(500):
            dump = envoy.admin_get("/config_dump?resource=dynamic_route_configs")
            listening = all(str(port) in envoy.admin_get("/listeners") for port in ports.values())
            if listening and dump != before:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("Envoy did not take the new routes within 5 s")

    envoy.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            await program(mesh_objects(example_canary(), 70, 30))
            for url, host in ((apex, {}), (gateway, {"Host": "podinfo.test"})):
                assert (await versions(http, url, host)).count("2.0.0") == 30, url
            ab = example_canary({"match": [{"headers": {"x-canary": {"exact": "insider"}}}]})
            await program(mesh_objects(ab, 0, 100))
            for url, host in ((apex, {}), (gateway, {"Host": "podinfo.test"})):
                assert set(await versions(http, url, host | {"X-Canary": "insider"})) == {"2.0.0"}, url
                assert set(await versions(http, url, host)) == {"1.0.0"}, url
                assert set(await versions(http, url, host | {"X-Canary": "outsider"})) == {"1.0.0"}, url
        assert envoy.rejected_updates() == 0
        # Envoy's own stats carry the sidecar's egress cluster names.
        stats = envoy.admin_get("/stats/prometheus")
        assert f'envoy_cluster_upstream_rq_total{{envoy_cluster_name="{CANARY}"}} 260' in stats
        assert f'envoy_cluster_upstream_rq_total{{envoy_cluster_name="{PRIMARY}"}} 540' in stats
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()
