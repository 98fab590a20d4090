"""The NGINX ingress translator: the nginx router's own canary Ingress next to the user's, rendered into Envoy.

The canary Ingresses come from `canarist.routers.nginx.NGINX.desired` (weights, A/B header and cookie), or
are the router's object with the annotations a user could write (``always``/``never`` headers, a pattern,
``canary-weight-total``). Pure checks of the routes first, then a real Envoy in front of two demo apps
(where requests land, and the NGINX controller series the apps export from the gateway's headers), then the
`MeshWatcher` writing the Ingresses' status to the local control plane.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.kube.client import KubeClient
from canarist.kube.resources import INGRESS
from canarist.routers.base import RouteContext, object_key
from canarist.routers.nginx import NGINX
from canarist.sandbox import dataplane, telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.nginx import NginxTranslator, upstream_name
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyFiles, EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, cluster_name, envoy_config
from canarist.sandbox.mesh import MeshWatcher
from canarist.sandbox.pods import PodManager
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint
from tests.workloads import podinfo

NS = "test"
P = "nginx.ingress.kubernetes.io"
PORT = 9898
MAIN = cluster_name(NS, "podinfo", PORT)
CANARY = cluster_name(NS, "podinfo-canary", PORT)
CANARY_UPSTREAM = f"{NS}-podinfo-canary-{PORT}"
AB_MATCH = [{"headers": {"x-canary": {"exact": "insider"}}}, {"headers": {"cookie": {"exact": "canary"}}}]


def service(name: str, port: int = PORT) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS}, "spec": {"ports": [{"name": "http", "port": port}]}}


SERVICES = [service("podinfo"), service("podinfo-primary"), service("podinfo-canary")]
PRIMARY_POD = Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})
CANARY_POD = Endpoint("127.0.0.1", 4002, {"app": "podinfo"})
ENDPOINTS = {
    (NS, "podinfo"): [PRIMARY_POD],
    (NS, "podinfo-primary"): [PRIMARY_POD],
    (NS, "podinfo-canary"): [CANARY_POD],
}


def user_ingress(
    name: str = "podinfo", host: str = "app.example.com", paths: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Flagger's tutorial Ingress (as examples/nginx/routing.yaml writes it)."""
    backend = {"service": {"name": "podinfo", "port": {"number": PORT}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app": "podinfo"},
            "creationTimestamp": "2024-01-01T00:00:00Z",
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": host,
                    "http": {"paths": paths or [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ],
        },
    }


def nginx_canary(ingress: str = "podinfo", **kw: Any) -> Canary:
    ref = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ingress}
    spec = {"ingressRef": ref, **kw.pop("spec", {})}
    return podinfo.canary(provider="nginx", service={"port": PORT}, spec=spec, **kw)


def router_canary(ingress: Mapping[str, Any], routes: Routes, canary: Canary | None = None) -> dict[str, Any]:
    """The canary Ingress the nginx router writes for ``routes``, next to ``ingress``."""
    base = RouteContext.from_canary(canary or nginx_canary(str(ingress["metadata"]["name"])))
    ctx = RouteContext(**{**base.__dict__, "references": {object_key(ingress): ingress}})
    (obj,) = NGINX.desired(ctx, routes)
    obj["metadata"]["creationTimestamp"] = "2024-01-02T00:00:00Z"
    return obj


def annotated(obj: dict[str, Any], **annotations: str) -> dict[str, Any]:
    """``obj`` with ``<prefix>/<key>`` annotations set (keys with ``_`` for ``-``; ``""`` removes)."""
    out = copy.deepcopy(obj)
    current = out["metadata"].setdefault("annotations", {})
    for key, value in annotations.items():
        full = f"{P}/{key.replace('_', '-')}"
        if value:
            current[full] = value
        else:
            current.pop(full, None)
    return out


def build(*ingresses: dict[str, Any], translator: NginxTranslator | None = None, **kw: Any) -> dict[str, Any]:
    return envoy_config(
        {INGRESS: list(ingresses)},
        SERVICES,
        ENDPOINTS,
        ports={GATEWAY_LISTENER: 10000},
        routes_dir="/r",
        weight_header="x-seq",
        translators=[translator or NginxTranslator()],
        **kw,
    )


def host_routes(config: dict[str, Any], host: str) -> list[dict[str, Any]]:
    for virtual_host in config["routes"][GATEWAY_LISTENER]["virtual_hosts"]:
        if host in virtual_host["domains"]:
            routes: list[dict[str, Any]] = virtual_host["routes"]
            return routes
    raise AssertionError(f"no virtual host for {host}")


def destinations(route: dict[str, Any]) -> list[tuple[str, int]]:
    action = route["route"]
    if "cluster" in action:
        return [(action["cluster"], 100)]
    return [(c["name"], c["weight"]) for c in action["weighted_clusters"]["clusters"]]


def summary(routes: list[dict[str, Any]]) -> list[tuple[list[Any], list[tuple[str, int]]]]:
    """Each route as (its header matchers, its destinations)."""
    return [(r["match"].get("headers", []), destinations(r)) for r in routes]


TELEMETRY = [
    e.header_set(telemetry.INGRESS_HEADER, f"{NS}/podinfo"),
    e.header_set(telemetry.INGRESS_SERVICE_HEADER, "podinfo"),
    e.header_set(telemetry.INGRESS_PATH_HEADER, "/"),
]


# ------------------------------------------------------------------------------------------------ routes


def test_registered() -> None:
    assert "nginx" in [t.name for t in dataplane.translators()]
    assert INGRESS in dataplane.watched_kinds()


def test_the_main_ingress_alone_routes_to_its_backend_with_the_ingress_headers() -> None:
    config = build(user_ingress())
    [only] = host_routes(config, "app.example.com")
    assert only["match"] == {"prefix": "/"}
    assert only["request_headers_to_add"] == TELEMETRY
    assert only["route"]["weighted_clusters"]["clusters"] == [
        {"name": MAIN, "weight": 100, "request_headers_to_remove": [telemetry.INGRESS_CANARY_HEADER]}
    ]
    assert only["route"]["timeout"] == "60.000s"  # nginx's proxy-read-timeout
    hosts = config["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    assert hosts[0]["name"] == "ingress.app.example.com"
    assert hosts[0]["domains"] == ["app.example.com"]


@pytest.mark.parametrize("weight", [5, 30, 50, 99])
def test_router_weights_split_between_main_and_canary(weight: int) -> None:
    main = user_ingress()
    [split] = host_routes(build(main, router_canary(main, Routes(100 - weight, weight))), "app.example.com")
    assert split["match"] == {"prefix": "/"}
    assert split["request_headers_to_add"] == TELEMETRY  # counted under the main Ingress's name
    weighted = split["route"]["weighted_clusters"]
    assert weighted == {
        "clusters": [
            {
                "name": MAIN,
                "weight": 100 - weight,
                "request_headers_to_remove": [telemetry.INGRESS_CANARY_HEADER],
            },
            {
                "name": CANARY,
                "weight": weight,
                "request_headers_to_add": [e.header_set(telemetry.INGRESS_CANARY_HEADER, CANARY_UPSTREAM)],
            },
        ],
        "header_name": "x-seq",
    }


def test_weight_zero_and_one_hundred() -> None:
    main = user_ingress()
    [zero] = host_routes(build(main, router_canary(main, Routes(100, 0))), "app.example.com")
    assert destinations(zero) == [(MAIN, 100)]
    assert telemetry.INGRESS_CANARY_HEADER not in str(zero.get("request_headers_to_add"))
    assert "request_headers_to_add" not in zero["route"]["weighted_clusters"]["clusters"][0]
    [full] = host_routes(build(main, router_canary(main, Routes(0, 100))), "app.example.com")
    assert destinations(full) == [(CANARY, 100)]
    assert full["route"]["weighted_clusters"]["clusters"][0]["request_headers_to_add"] == [
        e.header_set(telemetry.INGRESS_CANARY_HEADER, CANARY_UPSTREAM)
    ]


def test_weight_total() -> None:
    main = user_ingress()
    canary = annotated(router_canary(main, Routes(75, 25)), canary_weight="250", canary_weight_total="1000")
    [split] = host_routes(build(main, canary), "app.example.com")
    assert destinations(split) == [(MAIN, 750), (CANARY, 250)]
    # A total below 100 does not count (ingress-nginx uses 100 then); a weight above the total is all.
    small = annotated(canary, canary_weight="30", canary_weight_total="50")
    assert destinations(host_routes(build(main, small), "app.example.com")[0]) == [(MAIN, 70), (CANARY, 30)]
    over = annotated(canary, canary_weight="2000")
    assert destinations(host_routes(build(main, over), "app.example.com")[0]) == [(CANARY, 100)]


def test_router_ab_header_value_then_cookie_then_weight() -> None:
    main = user_ingress()
    canary = router_canary(main, Routes(0, 100), nginx_canary(analysis={"iterations": 10, "match": AB_MATCH}))
    assert canary["metadata"]["annotations"][f"{P}/canary-by-header-value"] == "insider"
    routes = host_routes(build(main, canary), "app.example.com")
    cookie = r"(?:.*;)?\s*canary=always\s*(?:;.*)?"
    assert summary(routes) == [
        ([e.header_match("x-canary", "exact", "insider")], [(CANARY, 100)]),
        ([e.header_match("cookie", "regex", cookie)], [(CANARY, 100)]),
        ([e.header_match("cookie", "regex", cookie.replace("always", "never"))], [(MAIN, 100)]),
        ([], [(MAIN, 100)]),  # canary-weight "0"
    ]
    # With a value, "always" and "never" are just other values: no route of their own.
    assert "never" not in str(routes[0])
    assert all("x-canary" not in str(r["match"]) for r in routes[1:])
    assert all(r["match"]["prefix"] == "/" for r in routes)


def test_router_ab_header_pattern() -> None:
    main = user_ingress()
    match = [{"headers": {"user-agent": {"regex": "(?i).*firefox.*"}}}]
    canary = router_canary(main, Routes(0, 100), nginx_canary(analysis={"iterations": 10, "match": match}))
    [by_header, rest] = host_routes(build(main, canary), "app.example.com")
    assert by_header["match"]["headers"] == [e.header_match("user-agent", "regex", ".*(?:(?i).*firefox.*).*")]
    assert destinations(by_header) == [(CANARY, 100)]
    assert destinations(rest) == [(MAIN, 100)]


def test_header_always_and_never_and_value_beats_pattern() -> None:
    main = user_ingress()
    canary = annotated(router_canary(main, Routes(90, 10)), canary_by_header="x-canary")
    routes = host_routes(build(main, canary), "app.example.com")
    assert summary(routes) == [
        ([e.header_match("x-canary", "exact", "always")], [(CANARY, 100)]),
        ([e.header_match("x-canary", "exact", "never")], [(MAIN, 100)]),
        ([], [(MAIN, 90), (CANARY, 10)]),  # header and weight together
    ]
    both = annotated(canary, canary_by_header_value="on", canary_by_header_pattern="o.*")
    assert host_routes(build(main, both), "app.example.com")[0]["match"]["headers"] == [
        e.header_match("x-canary", "exact", "on")
    ]


def test_cookie_only() -> None:
    main = user_ingress()
    canary = router_canary(
        main, Routes(0, 100), nginx_canary(analysis={"iterations": 10, "match": AB_MATCH[1:]})
    )
    routes = host_routes(build(main, canary), "app.example.com")
    assert [d for _, d in summary(routes)] == [[(CANARY, 100)], [(MAIN, 100)], [(MAIN, 100)]]
    assert all(h[0]["name"] == "cookie" for h, _ in summary(routes)[:2])


def test_custom_annotation_prefix() -> None:
    prefix = "custom.ingress.kubernetes.io"
    main = user_ingress()
    base = RouteContext.from_canary(nginx_canary(), ingress_annotations_prefix=prefix)
    ctx = RouteContext(**{**base.__dict__, "references": {object_key(main): main}})
    (canary,) = NGINX.desired(ctx, Routes(60, 40))
    canary["metadata"]["creationTimestamp"] = "2024-01-02T00:00:00Z"
    # nginx with the default prefix sees a second main Ingress for the same location: the older one wins.
    assert destinations(host_routes(build(main, canary), "app.example.com")[0]) == [(MAIN, 100)]
    custom = NginxTranslator(annotations_prefix=prefix)
    split = host_routes(build(main, canary, translator=custom), "app.example.com")[0]
    assert destinations(split) == [(MAIN, 60), (CANARY, 40)]


def test_path_types_order_and_canary_location_matching() -> None:
    backend = {"service": {"name": "podinfo", "port": {"number": PORT}}}
    paths = [
        {"path": "/", "pathType": "Prefix", "backend": backend},
        {"path": "/api/", "pathType": "Prefix", "backend": backend},
        {"path": "/token", "pathType": "Exact", "backend": backend},
        {"path": "/static", "pathType": "ImplementationSpecific", "backend": backend},
    ]
    main = user_ingress(paths=paths)
    canary = router_canary(main, Routes(50, 50))
    # A canary path the main Ingress does not have is ignored (ingress-nginx finds no location for it).
    canary["spec"]["rules"][0]["http"]["paths"] = [
        p for p in canary["spec"]["rules"][0]["http"]["paths"] if p["path"] != "/api/"
    ] + [{"path": "/other", "pathType": "Prefix", "backend": backend}]
    routes = host_routes(build(main, canary), "app.example.com")
    assert [(r["match"], destinations(r)) for r in routes] == [
        ({"path": "/token"}, [(MAIN, 50), (CANARY, 50)]),
        ({"prefix": "/static"}, [(MAIN, 50), (CANARY, 50)]),
        ({"path_separated_prefix": "/api"}, [(MAIN, 100)]),
        ({"prefix": "/"}, [(MAIN, 50), (CANARY, 50)]),
    ]
    assert routes[0]["request_headers_to_add"][2] == e.header_set(telemetry.INGRESS_PATH_HEADER, "/token")


def test_oldest_ingress_keeps_a_location_and_other_hosts_get_their_own() -> None:
    older = user_ingress("first")
    newer = user_ingress("second")
    newer["metadata"]["creationTimestamp"] = "2024-06-01T00:00:00Z"
    newer["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "podinfo-primary"
    [only] = host_routes(build(newer, older), "app.example.com")
    assert only["request_headers_to_add"][0] == e.header_set(telemetry.INGRESS_HEADER, f"{NS}/first")
    hostless = user_ingress("catch-all", host="")
    assert host_routes(build(older, hostless), "*")[0]["request_headers_to_add"][0] == e.header_set(
        telemetry.INGRESS_HEADER, f"{NS}/catch-all"
    )


def test_ingress_class() -> None:
    main = user_ingress()
    contour = copy.deepcopy(main)
    contour["spec"]["ingressClassName"] = "contour"
    by_annotation = copy.deepcopy(contour)
    by_annotation["metadata"]["annotations"] = {"kubernetes.io/ingress.class": "nginx"}
    classless = copy.deepcopy(main)
    del classless["spec"]["ingressClassName"]
    hosts = build(contour)["routes"][GATEWAY_LISTENER]["virtual_hosts"]
    assert [h["name"] for h in hosts if h["name"].startswith("ingress.")] == []
    assert build(contour)["statuses"] == []
    for served in (main, by_annotation, classless):
        assert host_routes(build(served), "app.example.com")


def test_missing_backends_are_clusters_that_do_not_exist() -> None:
    main = user_ingress()
    main["spec"]["rules"][0]["http"]["paths"][0]["backend"] = {
        "service": {"name": "absent", "port": {"name": "http"}}
    }
    [only] = host_routes(build(main), "app.example.com")
    [(cluster, _)] = destinations(only)
    assert cluster == "ingress|test-absent-http"
    assert cluster not in {c["name"] for c in build(main)["clusters"]}
    named = user_ingress()
    named["spec"]["rules"][0]["http"]["paths"][0]["backend"] = {
        "service": {"name": "podinfo", "port": {"name": "http"}}
    }
    assert destinations(host_routes(build(named), "app.example.com")[0]) == [(MAIN, 100)]
    assert upstream_name(NS, "podinfo", "http") == "test-podinfo-http"


def test_read_timeout_and_statuses() -> None:
    main = annotated(user_ingress(), proxy_read_timeout="5")
    canary = router_canary(main, Routes(90, 10))
    config = build(main, canary)
    assert host_routes(config, "app.example.com")[0]["route"]["timeout"] == "5.000s"
    assert [(s.kind, s.namespace, s.name, s.status) for s in config["statuses"]] == [
        (INGRESS, NS, name, {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}})
        for name in ("podinfo", "podinfo-canary")
    ]


def test_statuses_carry_the_controller_services_address() -> None:
    """With ingress-nginx's controller Service in the cluster, the Ingresses get its ClusterIP, as the
    controller publishes its Service's address."""
    controller = {
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
        "spec": {"type": "LoadBalancer", "clusterIP": "127.97.0.12", "ports": [{"name": "http", "port": 80}]},
    }
    config = envoy_config(
        {INGRESS: [user_ingress()]},
        [*SERVICES, controller],
        ENDPOINTS,
        ports={GATEWAY_LISTENER: 10000},
        routes_dir="/r",
        translators=[NginxTranslator()],
    )
    assert [s.status for s in config["statuses"]] == [{"loadBalancer": {"ingress": [{"ip": "127.97.0.12"}]}}]


# ------------------------------------------------------------------------------------------------ real Envoy


def _nginx_samples(app: DemoApp) -> dict[tuple[str, str], float]:
    """``nginx_ingress_controller_requests`` of the app by (ingress, canary)."""
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(app.exposition().decode()):
        for sample in family.samples:
            if sample.name == "nginx_ingress_controller_requests":
                key = (sample.labels["ingress"], sample.labels["canary"])
                out[key] = out.get(key, 0.0) + sample.value
    return out


async def test_the_real_envoy_routes_as_ingress_nginx(tmp_path: Path) -> None:
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
    ab = user_ingress("ab", "ab.example.com")
    header = user_ingress("header", "h.example.com")
    pattern = user_ingress("pattern", "p.example.com")
    objects = [
        weighted,
        router_canary(weighted, Routes(70, 30)),
        ab,
        router_canary(ab, Routes(0, 100), nginx_canary("ab", analysis={"iterations": 10, "match": AB_MATCH})),
        header,
        annotated(
            router_canary(header, Routes(90, 10)),
            canary_by_header="x-canary",
            canary_weight="50",
            canary_weight_total="200",
        ),
        pattern,
        annotated(
            router_canary(pattern, Routes(100, 0)),
            canary_by_header="x-user",
            canary_by_header_pattern="^beta-",
        ),
    ]
    ports = {GATEWAY_LISTENER: free_port()}
    envoy.start()
    try:
        config = envoy_config(
            {INGRESS: objects},
            SERVICES,
            endpoints,
            ports=ports,
            routes_dir=str(envoy.files.routes_dir),
            weight_header="x-seq",
            translators=[NginxTranslator()],
        )
        envoy.files.write(config)
        for _ in range(500):
            if str(ports[GATEWAY_LISTENER]) in envoy.admin_get("/listeners"):
                break
            await asyncio.sleep(0.01)
        gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}/"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def versions(host: str, count: int = 1, **headers: str) -> list[str]:
                out = []
                for n in range(count):
                    sent = {"Host": host, "x-seq": str(n)} | {
                        k.replace("_", "-"): v for k, v in headers.items()
                    }
                    async with http.get(gateway, headers=sent) as response:
                        assert response.status == 200, (host, headers, response.status)
                        out.append((await response.json(content_type=None))["version"])
                return out

            def canary_share(found: list[str]) -> int:
                return found.count("2.0.0")

            # Weights: the weight header picks exactly 30 of 100.
            assert canary_share(await versions("w.example.com", 100)) == 30
            # A client cannot fake the canary label: the main backend's requests lose the header.
            faked = {telemetry.INGRESS_CANARY_HEADER.replace("-", "_"): CANARY_UPSTREAM}
            assert canary_share(await versions("w.example.com", 1, **faked)) == 0
            # A/B from the router: the header's value or the cookie, else never the canary.
            assert canary_share(await versions("ab.example.com", 20, x_canary="insider")) == 20
            assert canary_share(await versions("ab.example.com", 20)) == 0
            assert canary_share(await versions("ab.example.com", 20, x_canary="always")) == 0
            for cookie, expected in (
                ("canary=always", 20),
                ("session=1; canary=always; theme=dark", 20),
                ("canary=never", 0),
                ("xcanary=always", 0),
                ("canary=alwaysx", 0),
            ):
                assert canary_share(await versions("ab.example.com", 20, cookie=cookie)) == expected, cookie
            # Header always/never, then canary-weight 50 of a total of 200.
            assert canary_share(await versions("h.example.com", 20, x_canary="always")) == 20
            assert canary_share(await versions("h.example.com", 200, x_canary="never")) == 0
            assert canary_share(await versions("h.example.com", 200, x_canary="maybe")) == 50
            assert canary_share(await versions("h.example.com", 200)) == 50
            # The pattern is searched for in the value, as ngx.re.match does.
            assert canary_share(await versions("p.example.com", 10, x_user="beta-tester")) == 10
            assert canary_share(await versions("p.example.com", 10, x_user="not-beta-tester")) == 0
            # A host no Ingress names: no virtual host.
            async with http.get(gateway, headers={"Host": "nowhere.example.com"}) as response:
                assert response.status == 404
        assert envoy.rejected_updates() == 0
        # The NGINX controller series, under the main Ingress's name; `canary` only on the canary's requests.
        on_canary = _nginx_samples(canary_app)
        on_primary = _nginx_samples(primary)
        assert on_canary[("weighted", CANARY_UPSTREAM)] == 30
        assert on_primary[("weighted", "")] == 71
        assert on_canary[("ab", CANARY_UPSTREAM)] == 60
        assert all(canary_label == "" for _, canary_label in on_primary)
        assert all(canary_label == CANARY_UPSTREAM for _, canary_label in on_canary)
    finally:
        envoy.stop()
        await primary.stop()
        await canary_app.stop()


# ------------------------------------------------------------------------------------------------ watcher


class _Services:
    def list(self) -> list[dict[str, Any]]:
        return SERVICES


class _Pods:
    """What MeshWatcher reads from a PodManager."""

    def __init__(self) -> None:
        self.services = _Services()
        self.listeners: list[Any] = []

    def endpoints(self) -> dict[tuple[str, str], list[Endpoint]]:
        return {k: list(v) for k, v in ENDPOINTS.items()}


@pytest.fixture
async def kube(local_cluster: Any) -> AsyncIterator[KubeClient]:
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig)
    try:
        yield client
    finally:
        await client.close()


async def _eventually(check: Callable[[], Awaitable[bool]], attempts: int = 250) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached within 5 s")


async def test_the_watcher_writes_the_ingress_status(kube: KubeClient, tmp_path: Path) -> None:
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    main = user_ingress()
    del main["metadata"]["creationTimestamp"]
    await kube.create(main, kind=INGRESS)
    watcher = MeshWatcher(
        kube, cast(PodManager, _Pods()), EnvoyFiles(tmp_path / "xds"), translators=[NginxTranslator()]
    )
    await watcher.start()
    try:

        async def has_address() -> bool:
            current = await kube.get(INGRESS, "podinfo", namespace=NS)
            return bool(current.get("status") == {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}})

        await _eventually(has_address)
        routes = (tmp_path / "xds" / "routes" / "gateway.json").read_text()
        assert "app.example.com" in routes
        assert f"{NS}/podinfo" in routes
    finally:
        await watcher.stop()


# ------------------------------------------------------------------------------------------------ examples


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_examples_route_app_example_com_through_the_canary_ingress() -> None:
    canary_doc = yaml.safe_load((EXAMPLES / "nginx" / "canary.yaml").read_text())
    walkthrough = yaml.safe_load((EXAMPLES / "podinfo" / "canary.yaml").read_text())
    assert canary_doc["spec"]["analysis"] == walkthrough["spec"]["analysis"]
    assert canary_doc["spec"]["provider"] == "nginx"
    [ingress] = [d for d in yaml.safe_load_all((EXAMPLES / "nginx" / "routing.yaml").read_text()) if d]
    assert object_key(ingress) == "Ingress/podinfo"
    canary = Canary.model_validate(canary_doc)
    ingress["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z"
    [split] = host_routes(build(ingress, router_canary(ingress, Routes(95, 5), canary)), "app.example.com")
    assert destinations(split) == [(MAIN, 95), (CANARY, 5)]
