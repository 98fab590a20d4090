"""The data-plane seam: a translator's `Program` rendered into Envoy, next to Istio's.

A test-only translator (``WeightRoute``, a tiny CRD: split a Service's traffic between a primary and a
canary Service) declares alias clusters with provider-chosen names, weighted Service routes tagged per
destination, gateway hosts and a status. The tests check the merged configuration (pure), then a real Envoy
(the alias names are what Envoy's Prometheus stats carry) and the `MeshWatcher` against the local control
plane (status written once per change, a kind the server does not serve skipped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from canarist.kube.client import KubeClient
from canarist.kube.resources import VIRTUAL_SERVICE, ResourceKind
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane import Program, StatusWrite, World
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj, condition, meta, name_of, namespace_of, sort_key, spec_of
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyFiles, EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, cluster_name, envoy_config, listener_key
from canarist.sandbox.mesh import MeshWatcher
from canarist.sandbox.pods import PodManager
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint, wait_for_listeners

NS = "test"
WEIGHT_ROUTE = ResourceKind("test.canarist.dev", "v1", "weightroutes", "WeightRoute", status_subresource=True)
UNSERVED = ResourceKind("test.canarist.dev", "v1", "absentthings", "AbsentThing")


class WeightRouteTranslator:
    """``spec: {service, primary, canary, canaryWeight, hosts}``: the Service's traffic split between two
    alias clusters (Contour-style names ``<ns>_<service>_<port>``), each request tagged ``x-backend``."""

    name = "weightroute"

    def __init__(self, *extra_kinds: ResourceKind) -> None:
        self.kinds: tuple[ResourceKind, ...] = (WEIGHT_ROUTE, *extra_kinds)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        program = Program()
        for obj in sorted(objects.get(WEIGHT_ROUTE, ()), key=sort_key):
            ns, spec = namespace_of(obj), spec_of(obj)
            service = str(spec["service"])
            port = world.port(ns, service)
            if port is None:
                continue
            weight = int(spec.get("canaryWeight") or 0)
            backends = []
            for role, share in (("primary", 100 - weight), ("canary", weight)):
                target = str(spec[role])
                cluster = world.alias_cluster(f"{ns}_{target}_{port}", ns, target, port)
                backends.append(e.Backend(cluster, share, (e.header_set("x-backend", role),)))
            # A label-filtered alias over the Service's own endpoints.
            world.alias_cluster(f"{ns}_{service}-v2_{port}", ns, service, port, {"app": "podinfo"})
            route = e.route(
                e.route_match(),
                e.route_action(backends, weight_header=world.weight_header, timeout=0),
                name=f"wr.{ns}.{name_of(obj)}",
            )
            program.service_routes[(ns, service, port)] = [route]
            hosts = [str(h) for h in spec.get("hosts") or []]
            if hosts:
                program.gateway_hosts.append(
                    {"name": f"wr.{ns}.{name_of(obj)}", "domains": hosts, "routes": [route]}
                )
            generation = int(meta(obj).get("generation") or 0)
            previous = ((obj.get("status") or {}).get("conditions")) or []
            program.statuses.append(
                StatusWrite(
                    WEIGHT_ROUTE,
                    ns,
                    name_of(obj),
                    {
                        "canaryWeight": weight,
                        "conditions": [
                            condition("Accepted", True, "Accepted", generation=generation, previous=previous)
                        ],
                    },
                )
            )
        return program


class Broken:
    name = "broken"
    kinds: tuple[ResourceKind, ...] = ()

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        raise RuntimeError("a bug")


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
PORTS = {GATEWAY_LISTENER: 10000} | {
    listener_key(NS, s["metadata"]["name"], 9898): 10001 + i for i, s in enumerate(SERVICES)
}


def weight_route(weight: int, hosts: list[str], name: str = "podinfo") -> dict[str, Any]:
    return {
        "apiVersion": WEIGHT_ROUTE.api_version,
        "kind": WEIGHT_ROUTE.kind,
        "metadata": {"name": name, "namespace": NS, "generation": 3},
        "spec": {
            "service": "podinfo",
            "primary": "podinfo-primary",
            "canary": "podinfo-canary",
            "canaryWeight": weight,
            "hosts": hosts,
        },
    }


def istio_vs(hosts: list[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": "public", "namespace": NS},
        "spec": {
            "hosts": hosts,
            "gateways": ["public-gateway"],
            "http": [{"route": [{"destination": {"host": "podinfo-primary"}}]}],
        },
    }


@pytest.fixture
def registered() -> Iterator[WeightRouteTranslator]:
    translator = WeightRouteTranslator()
    dataplane.register(translator)
    try:
        yield translator
    finally:
        dataplane.unregister(translator.name)


def build(objects: Mapping[ResourceKind, Sequence[Obj]], **kw: Any) -> dict[str, Any]:
    return envoy_config(
        objects, SERVICES, ENDPOINTS, ports=PORTS, routes_dir="/r", weight_header="x-seq", **kw
    )


def virtual_host(config: dict[str, Any], route_config: str, name: str) -> dict[str, Any]:
    hosts: list[dict[str, Any]] = config["routes"][route_config]["virtual_hosts"]
    return next(h for h in hosts if h["name"] == name)


def endpoints_of(cluster: dict[str, Any]) -> list[int]:
    return [
        lb["endpoint"]["address"]["socket_address"]["port_value"]
        for lb in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ]


# ------------------------------------------------------------------------------------------------ registry


def test_registry_orders_translators_and_their_kinds(registered: WeightRouteTranslator) -> None:
    assert [t.name for t in dataplane.translators()][:1] == ["istio"]
    assert dataplane.translators()[-1] is registered
    assert WEIGHT_ROUTE in dataplane.watched_kinds()
    assert dataplane.watched_kinds()[:2] == dataplane.translators()[0].kinds
    dataplane.register(WeightRouteTranslator())  # the same name replaces, in place
    assert [t.name for t in dataplane.translators()].count("weightroute") == 1
    dataplane.unregister("weightroute")
    assert WEIGHT_ROUTE not in dataplane.watched_kinds()


# ------------------------------------------------------------------------------------------------ render


def test_alias_clusters_have_the_chosen_names_and_the_services_endpoints(
    registered: WeightRouteTranslator,
) -> None:
    config = build({WEIGHT_ROUTE: [weight_route(30, [])]})
    by_name = {c["name"]: c for c in config["clusters"]}
    assert endpoints_of(by_name["test_podinfo-primary_9898"]) == [4001]
    assert endpoints_of(by_name["test_podinfo-canary_9898"]) == [4002]
    assert endpoints_of(by_name["test_podinfo-v2_9898"]) == [4002]  # filtered by pod labels
    assert endpoints_of(by_name[cluster_name(NS, "podinfo", 9898)]) == [4001, 4002]  # defaults stay
    # Default clusters first (per Service port), then the declared ones by name.
    assert [c["name"] for c in config["clusters"]][:3] == [
        cluster_name(NS, n, 9898) for n in ("podinfo", "podinfo-canary", "podinfo-primary")
    ]


def test_service_routes_reach_the_service_listener_and_its_gateway_host(
    registered: WeightRouteTranslator,
) -> None:
    config = build({WEIGHT_ROUTE: [weight_route(30, [])]})
    listener_routes = virtual_host(config, "svc.test.podinfo.9898", "svc.test.podinfo.9898")["routes"]
    [split, default] = listener_routes
    assert split["route"]["weighted_clusters"] == {
        "clusters": [
            {
                "name": "test_podinfo-primary_9898",
                "weight": 70,
                "request_headers_to_add": [e.header_set("x-backend", "primary")],
            },
            {
                "name": "test_podinfo-canary_9898",
                "weight": 30,
                "request_headers_to_add": [e.header_set("x-backend", "canary")],
            },
        ],
        "header_name": "x-seq",
    }
    assert default["route"]["cluster"] == cluster_name(NS, "podinfo", 9898)
    # A meshed ingress: the gateway's host for the Service by name routes as the Service's listener.
    gateway_host = virtual_host(config, GATEWAY_LISTENER, "svc.test.podinfo")
    assert gateway_host["domains"] == [
        "podinfo",
        "podinfo.test",
        "podinfo.test.svc",
        "podinfo.test.svc.cluster.local",
    ]
    assert gateway_host["routes"] == listener_routes
    # Other Services keep their default routes.
    [only] = virtual_host(config, "svc.test.podinfo-canary.9898", "svc.test.podinfo-canary.9898")["routes"]
    assert only["route"]["cluster"] == cluster_name(NS, "podinfo-canary", 9898)


def test_service_routes_of_several_translators_come_in_registry_order(
    registered: WeightRouteTranslator,
) -> None:
    mesh_vs = {
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo-canary"}}]}]},
    }
    config = build({VIRTUAL_SERVICE: [mesh_vs], WEIGHT_ROUTE: [weight_route(30, [])]})
    routes = virtual_host(config, "svc.test.podinfo.9898", "svc.test.podinfo.9898")["routes"]
    assert [r["name"] for r in routes] == ["podinfo.test.0", "wr.test.podinfo", "podinfo.test.default"]


def test_gateway_hosts_claim_domains_first_come(registered: WeightRouteTranslator) -> None:
    objects = {
        VIRTUAL_SERVICE: [istio_vs(["app.example.com"])],
        WEIGHT_ROUTE: [
            weight_route(30, ["App.Example.com", "other.example.com", "podinfo.test"], name="a"),
            weight_route(60, ["other.example.com", "third.example.com"], name="b"),
        ],
    }
    config = build(objects)
    hosts = config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    assert [(h["name"], h["domains"]) for h in hosts[:3]] == [
        ("vs.test.public", ["app.example.com"]),  # Istio is first in the registry
        ("wr.test.a", ["other.example.com", "podinfo.test"]),
        ("wr.test.b", ["third.example.com"]),
    ]
    # The per-Service host keeps only the names nobody claimed.
    assert virtual_host(config, GATEWAY_LISTENER, "svc.test.podinfo")["domains"] == [
        "podinfo",
        "podinfo.test.svc",
        "podinfo.test.svc.cluster.local",
    ]


def test_statuses_are_collected(registered: WeightRouteTranslator) -> None:
    previous = condition("Accepted", True, "Accepted", now="2024-01-01T00:00:00Z")
    obj = weight_route(30, []) | {"status": {"conditions": [previous]}}
    [status] = build({WEIGHT_ROUTE: [obj]})["statuses"]
    assert (status.kind, status.namespace, status.name) == (WEIGHT_ROUTE, NS, "podinfo")
    assert status.status == {
        "canaryWeight": 30,
        "conditions": [
            {
                "type": "Accepted",
                "status": "True",
                "reason": "Accepted",
                "message": "",
                "lastTransitionTime": "2024-01-01T00:00:00Z",  # unchanged status: the old transition time
                "observedGeneration": 3,
            }
        ],
    }


def test_explicit_translators_and_a_broken_one(caplog: pytest.LogCaptureFixture) -> None:
    objects = {WEIGHT_ROUTE: [weight_route(30, ["app.example.com"])]}
    with caplog.at_level(logging.ERROR, "canarist.sandbox"):
        config = build(objects, translators=[Broken(), WeightRouteTranslator()])
    assert "translator broken failed" in caplog.text
    assert virtual_host(config, GATEWAY_LISTENER, "wr.test.podinfo")["domains"] == ["app.example.com"]
    # Not registered: the registry's translators (Istio alone) ignore WeightRoutes.
    assert "test_podinfo-canary_9898" not in {c["name"] for c in build(objects)["clusters"]}


# ------------------------------------------------------------------------------------------------ builders


def test_envoy_builders() -> None:
    assert e.path_match("path_separated_prefix", "/api/") == {"path_separated_prefix": "/api"}
    assert e.path_match("path_separated_prefix", "/") == {"prefix": "/"}
    assert e.header_match("X-Canary", invert=True) == {
        "name": "x-canary",
        "invert_match": True,
        "present_match": True,
    }
    assert e.header_match(":method", "exact", "GET") == {"name": ":method", "string_match": {"exact": "GET"}}
    assert e.query_match("q", "regex", "^a") == {"name": "q", "string_match": {"safe_regex": {"regex": "^a"}}}
    assert e.route_match(
        e.path_match("exact", "/x"), headers=[e.header_match("a")], case_sensitive=False
    ) == {
        "path": "/x",
        "case_sensitive": False,
        "headers": [{"name": "a", "present_match": True}],
    }
    tagged = e.route_action([e.Backend("c", 100, (e.header_set("x", "1"),))])
    assert tagged["weighted_clusters"]["clusters"] == [
        {"name": "c", "weight": 100, "request_headers_to_add": [e.header_set("x", "1")]}
    ]
    assert e.route_action([e.Backend("c")], timeout=1.5, host_rewrite="h", regex_rewrite=("^/a", "/b")) == {
        "cluster": "c",
        "timeout": "1.500s",
        "host_rewrite_literal": "h",
        "regex_rewrite": {"pattern": {"regex": "^/a"}, "substitution": "/b"},
    }
    assert e.retry_policy("5xx", 2, retriable_status_codes=[503]) == {
        "retry_on": "5xx,retriable-status-codes",
        "num_retries": 2,
        "retriable_status_codes": [503],
    }
    assert e.mirror_policy("m", 25)["runtime_fraction"]["default_value"] == {
        "numerator": 250000,
        "denominator": "MILLION",
    }
    assert e.fault_config() is None


# ------------------------------------------------------------------------------------------------ real Envoy


async def test_a_translator_programs_the_real_envoy(tmp_path: Path) -> None:
    assert envoy_binary() is not None
    envoy = EnvoyProcess(tmp_path / "envoy")
    primary, canary = DemoApp("podinfo-primary", NS, "1.0.0"), DemoApp("podinfo", NS, "2.0.0")
    await primary.start()
    await canary.start()
    ports = {key: free_port() for key in PORTS}

    endpoints = {
        (NS, "podinfo"): [endpoint(primary, {"app": "podinfo-primary"})],
        (NS, "podinfo-primary"): [endpoint(primary, {"app": "podinfo-primary"})],
        (NS, "podinfo-canary"): [endpoint(canary, {"app": "podinfo"})],
    }
    envoy.start()
    try:
        config = envoy_config(
            {WEIGHT_ROUTE: [weight_route(30, ["app.example.com"])]},
            SERVICES,
            endpoints,
            ports=ports,
            routes_dir=str(envoy.files.routes_dir),
            weight_header="x-seq",
            translators=[WeightRouteTranslator()],
        )
        envoy.files.write(config)
        await wait_for_listeners(envoy, ports)
        gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}/"
        listener = f"http://127.0.0.1:{ports[listener_key(NS, 'podinfo', 9898)]}/"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for url, host in ((listener, None), (gateway, "app.example.com"), (gateway, "podinfo.test")):
                versions = []
                for n in range(100):  # the weight header splits exactly
                    headers = {"x-seq": str(n)} | ({"Host": host} if host else {})
                    async with http.get(url, headers=headers) as response:
                        versions.append((await response.json(content_type=None))["version"])
                assert versions.count("2.0.0") == 30, (url, host)
        assert envoy.rejected_updates() == 0
        # Envoy's own stats carry the provider's cluster names, as its builtin PromQL selects them.
        stats = envoy.admin_get("/stats/prometheus")
        assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="test_podinfo-canary_9898"} 90' in stats
        assert 'envoy_cluster_upstream_rq_total{envoy_cluster_name="test_podinfo-primary_9898"} 210' in stats
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()


# ------------------------------------------------------------------------------------------------ watcher


class _Services:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def list(self) -> list[dict[str, Any]]:
        return self.items


class _Pods:
    """What MeshWatcher reads from a PodManager."""

    def __init__(self) -> None:
        self.services = _Services(SERVICES)
        self.listeners: list[Any] = []

    def endpoints(self) -> dict[tuple[str, str], list[Endpoint]]:
        return {k: list(v) for k, v in ENDPOINTS.items()}


def weight_route_crd() -> dict[str, Any]:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{WEIGHT_ROUTE.plural}.{WEIGHT_ROUTE.group}"},
        "spec": {
            "group": WEIGHT_ROUTE.group,
            "scope": "Namespaced",
            "names": {"plural": WEIGHT_ROUTE.plural, "singular": "weightroute", "kind": WEIGHT_ROUTE.kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": schema, "status": schema},
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
async def kube(local_cluster: Any) -> AsyncIterator[KubeClient]:
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


async def _eventually(check: Any, attempts: int = 250) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached within 5 s")


async def test_the_watcher_skips_unserved_kinds_and_writes_statuses_once_per_change(
    kube: KubeClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    await kube.create(weight_route_crd())
    await _eventually(lambda: _served(kube))
    obj = weight_route(30, ["app.example.com"])
    del obj["metadata"]["generation"]
    await kube.create(obj, kind=WEIGHT_ROUTE)

    pods = cast(PodManager, _Pods())
    watcher = MeshWatcher(
        kube, pods, EnvoyFiles(tmp_path / "xds"), translators=[WeightRouteTranslator(UNSERVED)]
    )
    with caplog.at_level(logging.INFO, "canarist.sandbox"):
        await watcher.start()
    try:
        assert watcher.skipped == [UNSERVED]
        assert caplog.text.count("does not serve") == 1
        assert WEIGHT_ROUTE in watcher.informers

        async def accepted(weight: int) -> bool:
            current = await kube.get(WEIGHT_ROUTE, "podinfo", namespace=NS)
            status = current.get("status") or {}
            generation = current["metadata"].get("generation") or 0
            return bool(
                status.get("canaryWeight") == weight
                and status["conditions"][0]["observedGeneration"] == generation
                and watcher.informers[WEIGHT_ROUTE].get(NS, "podinfo") == current
            )

        await _eventually(lambda: accepted(30))
        routes = (tmp_path / "xds" / "routes" / "gateway.json").read_text()
        assert "test_podinfo-canary_9898" in routes
        assert "app.example.com" in routes
        await asyncio.sleep(0.3)  # the status write's own event must not cause another write
        assert watcher.status_writes == 1

        def bump(o: dict[str, Any]) -> None:
            o["spec"]["canaryWeight"] = 60

        await kube.update(WEIGHT_ROUTE, "podinfo", NS, bump)
        await _eventually(lambda: accepted(60))
        await asyncio.sleep(0.3)
        assert watcher.status_writes == 2
        assert watcher.writes[-1].weights["gateway/wr.test.podinfo"] == [
            ("test_podinfo-primary_9898", 40),
            ("test_podinfo-canary_9898", 60),
        ]
    finally:
        await watcher.stop()


async def _served(kube: KubeClient) -> bool:
    try:
        await kube.list(WEIGHT_ROUTE, limit=1)
    except Exception:
        return False
    return True
