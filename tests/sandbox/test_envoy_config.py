"""The Envoy configuration renderer (pure) with the Istio translator: Istio objects in, listeners/clusters/routes
out."""

from __future__ import annotations

from typing import Any

from canarist.kube.resources import DESTINATION_RULE, VIRTUAL_SERVICE
from canarist.sandbox.envoy_config import (
    GATEWAY_LISTENER,
    Endpoint,
    cluster_name,
    envoy_config,
    listener_key,
    parse_duration_s,
)

NS = "test"


def service(name: str, app: str, port: int = 9898, port_name: str = "http") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"app": app},
            "ports": [{"name": port_name, "port": port, "targetPort": "http"}],
        },
    }


SERVICES = [
    service("podinfo", "podinfo-primary"),
    service("podinfo-primary", "podinfo-primary"),
    service("podinfo-canary", "podinfo"),
]
ENDPOINTS = {
    (NS, "podinfo"): [Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})],
    (NS, "podinfo-primary"): [Endpoint("127.0.0.1", 4001, {"app": "podinfo-primary"})],
    (NS, "podinfo-canary"): [Endpoint("127.0.0.1", 4002, {"app": "podinfo"})],
}
PORTS = {
    GATEWAY_LISTENER: 10000,
    listener_key(NS, "podinfo", 9898): 10001,
    listener_key(NS, "podinfo-primary", 9898): 10002,
    listener_key(NS, "podinfo-canary", 9898): 10003,
}
PRIMARY = cluster_name(NS, "podinfo-primary", 9898)
CANARY = cluster_name(NS, "podinfo-canary", 9898)


def virtual_service(http: list[dict[str, Any]], gateways: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"hosts": ["app.istio.example.com", "podinfo"], "http": http}
    if gateways is not None:
        spec["gateways"] = gateways
    return {"metadata": {"name": "podinfo", "namespace": NS}, "spec": spec}


def weighted(primary: int, canary: int) -> dict[str, Any]:
    return {
        "route": [
            {"destination": {"host": "podinfo-primary"}, "weight": primary},
            {"destination": {"host": "podinfo-canary"}, "weight": canary},
        ]
    }


def build(vs: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None, **kw: Any) -> dict[str, Any]:
    objects = {VIRTUAL_SERVICE: vs, DESTINATION_RULE: rules or []}
    return envoy_config(objects, SERVICES, ENDPOINTS, ports=PORTS, routes_dir="/x/routes", **kw)


def host_routes(config: dict[str, Any], route: str, host: str) -> list[dict[str, Any]]:
    for virtual_host in config["routes"][route]["virtual_hosts"]:
        if host in virtual_host["domains"]:
            routes: list[dict[str, Any]] = virtual_host["routes"]
            return routes
    raise AssertionError(f"no virtual host for {host} in {route}")


def test_clusters_per_service_port_with_static_endpoints() -> None:
    config = build([])
    names = [c["name"] for c in config["clusters"]]
    assert names == [cluster_name(NS, n, 9898) for n in ("podinfo", "podinfo-canary", "podinfo-primary")]
    canary = next(c for c in config["clusters"] if c["name"] == CANARY)
    assert canary["type"] == "STATIC"
    endpoint = canary["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 4002}
    assert CANARY == "outbound|9898||podinfo-canary.test.svc.cluster.local"


def test_flaggers_virtual_service_weights_on_the_gateway() -> None:
    vs = virtual_service([weighted(90, 10)], gateways=["public-gateway.istio-system.svc.cluster.local"])
    config = build([vs], weight_header="x-seq")
    [route] = host_routes(config, GATEWAY_LISTENER, "app.istio.example.com")
    assert route["match"] == {"prefix": "/"}
    assert route["route"]["weighted_clusters"] == {
        "clusters": [{"name": PRIMARY, "weight": 90}, {"name": CANARY, "weight": 10}],
        "header_name": "x-seq",
    }
    assert route["route"]["timeout"] == "0.000s"
    # Short names are expanded to the Service's DNS names.
    assert host_routes(config, GATEWAY_LISTENER, "podinfo.test.svc.cluster.local") == [route]
    # Bound to a gateway only: the sidecar view of `podinfo` keeps the Service's own default route.
    [default] = host_routes(config, f"svc.{NS}.podinfo.9898", "*")
    assert default["route"]["cluster"] == cluster_name(NS, "podinfo", 9898)


def test_mesh_bound_virtual_service_applies_to_the_service_listener() -> None:
    config = build([virtual_service([weighted(50, 50)])])
    routes = host_routes(config, f"svc.{NS}.podinfo.9898", "*")
    assert [c["weight"] for c in routes[0]["route"]["weighted_clusters"]["clusters"]] == [50, 50]
    assert routes[-1]["route"]["cluster"] == cluster_name(NS, "podinfo", 9898)  # the fallback


def test_ab_header_and_cookie_matches() -> None:
    http: list[dict[str, Any]] = [
        {
            "match": [
                {"headers": {"x-canary": {"exact": "insider"}}},
                {"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}},
            ],
            "route": [{"destination": {"host": "podinfo-canary"}}],
        },
        {"route": [{"destination": {"host": "podinfo-primary"}}]},
    ]
    config = build([virtual_service(http, gateways=["mesh"])])
    routes = host_routes(config, f"svc.{NS}.podinfo.9898", "*")
    assert routes[0]["match"]["headers"] == [{"name": "x-canary", "string_match": {"exact": "insider"}}]
    assert routes[1]["match"]["headers"] == [
        {"name": "cookie", "string_match": {"safe_regex": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}
    ]
    assert routes[0]["route"]["cluster"] == routes[1]["route"]["cluster"] == CANARY
    assert routes[2]["route"]["cluster"] == PRIMARY


def test_uri_method_and_without_headers() -> None:
    http = [
        {
            "match": [
                {
                    "uri": {"prefix": "/api"},
                    "method": {"exact": "POST"},
                    "withoutHeaders": {"x-skip": {"exact": "1"}},
                }
            ],
            "route": [{"destination": {"host": "podinfo-canary"}}],
        }
    ]
    [route, _] = host_routes(build([virtual_service(http)]), f"svc.{NS}.podinfo.9898", "*")
    assert route["match"]["prefix"] == "/api"
    assert {"name": ":method", "string_match": {"exact": "POST"}} in route["match"]["headers"]
    assert {"name": "x-skip", "invert_match": True, "string_match": {"exact": "1"}} in route["match"][
        "headers"
    ]


def test_mirroring_retries_timeout_rewrite_and_fault() -> None:
    http = [
        {
            **weighted(100, 0),
            "mirror": {"host": "podinfo-canary"},
            "mirrorPercentage": {"value": 50.0},
            "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "gateway-error,503"},
            "timeout": "5s",
            "rewrite": {"uri": "/v2"},
            "headers": {"request": {"set": {"x-a": "1"}, "remove": ["x-b"]}},
            "fault": {"abort": {"httpStatus": 503, "percentage": {"value": 10}}},
        }
    ]
    [route, _] = host_routes(build([virtual_service(http)]), f"svc.{NS}.podinfo.9898", "*")
    action = route["route"]
    assert action["request_mirror_policies"] == [
        {
            "cluster": CANARY,
            "runtime_fraction": {"default_value": {"numerator": 500000, "denominator": "MILLION"}},
        }
    ]
    assert action["retry_policy"] == {
        "retry_on": "gateway-error,retriable-status-codes",
        "num_retries": 3,
        "retriable_status_codes": [503],
        "per_try_timeout": "1.000s",
    }
    assert action["timeout"] == "5.000s"
    assert action["prefix_rewrite"] == "/v2"
    assert route["request_headers_to_remove"] == ["x-b"]
    assert route["request_headers_to_add"][0]["header"] == {"key": "x-a", "value": "1"}
    fault = route["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["abort"] == {
        "http_status": 503,
        "percentage": {"numerator": 100000, "denominator": "MILLION"},
    }


def test_destination_rule_subsets_and_policies() -> None:
    rule = {
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "host": "podinfo",
            "trafficPolicy": {
                "loadBalancer": {"simple": "LEAST_CONN"},
                "outlierDetection": {"consecutive5xxErrors": 3},
            },
            "subsets": [{"name": "v2", "labels": {"app": "nobody"}}],
        },
    }
    config = build([], [rule])
    by_name = {c["name"]: c for c in config["clusters"]}
    base = by_name[cluster_name(NS, "podinfo", 9898)]
    assert base["lb_policy"] == "LEAST_REQUEST"
    assert base["outlier_detection"] == {"consecutive_5xx": 3}
    subset = by_name[cluster_name(NS, "podinfo", 9898, "v2")]
    assert subset["load_assignment"]["endpoints"][0]["lb_endpoints"] == []  # no pod has app=nobody


def test_tcp_routes_become_a_weighted_tcp_proxy() -> None:
    vs = {
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"hosts": ["podinfo"], "tcp": [weighted(70, 30)]},
    }
    config = build([vs])
    listener = next(x for x in config["listeners"] if x["name"] == listener_key(NS, "podinfo", 9898))
    proxy = listener["filter_chains"][0]["filters"][0]["typed_config"]
    assert proxy["weighted_clusters"]["clusters"] == [
        {"name": PRIMARY, "weight": 70},
        {"name": CANARY, "weight": 30},
    ]


def test_listeners_only_for_allocated_ports_and_rds_file_paths() -> None:
    config = envoy_config({}, SERVICES, ENDPOINTS, ports={GATEWAY_LISTENER: 10000}, routes_dir="/r")
    assert [x["name"] for x in config["listeners"]] == [GATEWAY_LISTENER]
    hcm = config["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["rds"]["config_source"]["path_config_source"] == {"path": "/r/gateway.json"}
    assert hcm["strip_any_host_port"] is True


def test_unknown_destination_host_routes_to_a_missing_cluster() -> None:
    http = [{"route": [{"destination": {"host": "elsewhere.example.com", "port": {"number": 80}}}]}]
    [route, _] = host_routes(build([virtual_service(http)]), f"svc.{NS}.podinfo.9898", "*")
    assert route["route"]["cluster"] == "outbound|80||elsewhere.example.com"


def test_durations() -> None:
    assert parse_duration_s("1m30s") == 90
    assert parse_duration_s("250ms") == 0.25
    assert parse_duration_s("soon") is None
