"""The Knative translator: a Knative Service's ``status.traffic`` (the split Knative applied) becomes one gateway
host for its URL's host and cluster-local names, weighted across clusters named as Kourier names them
(``<namespace>/<revision>``) over each revision's Service; tags get hosts of their own. Then a real Envoy
splits ``Host: podinfo.test.example.com`` by it, and Envoy's own stats carry the cluster names the
``knative`` builtin queries select."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from canarist.kube import resources as kinds
from canarist.metrics.builtin import KNATIVE
from canarist.sandbox import dataplane
from canarist.sandbox.dataplane.base import Obj
from canarist.sandbox.dataplane.knative import KnativeTranslator, knative_cluster_name, traffic_split
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy import EnvoyProcess, envoy_binary
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, envoy_config
from canarist.sandbox.prometheus import free_port
from tests.sandbox.live import endpoint, wait_for_listeners

NS = "test"
HOST = "podinfo.test.example.com"


def revision_service(name: str) -> dict[str, Any]:
    """A revision's Service as the local control plane's Knative stand-in creates it."""
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 9898}]},
    }


SERVICES = [revision_service("podinfo-00001"), revision_service("podinfo-00002")]
ENDPOINTS = {
    (NS, "podinfo-00001"): [Endpoint("127.0.0.1", 4001, {})],
    (NS, "podinfo-00002"): [Endpoint("127.0.0.1", 4002, {})],
}


def ksvc(*traffic: Obj, url: str = f"http://{HOST}") -> Obj:
    """A Knative Service with ``status.traffic`` as Knative resolves the router's ``spec.traffic``."""
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NS},
        "status": {"url": url, "traffic": list(traffic)},
    }


def split(canary: int, primary: str = "podinfo-00001", latest: str = "podinfo-00002") -> Obj:
    return ksvc(
        {"revisionName": latest, "latestRevision": True, "percent": canary},
        {"revisionName": primary, "latestRevision": False, "percent": 100 - canary},
    )


def build(services: list[Obj], core: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return envoy_config(
        {kinds.KNATIVE_SERVICE: services},
        SERVICES if core is None else core,
        ENDPOINTS,
        ports={GATEWAY_LISTENER: 10000},
        routes_dir="/r",
        weight_header="x-seq",
        translators=[KnativeTranslator()],
    )


def hosts(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in config["routes"][GATEWAY_LISTENER]["virtual_hosts"]}


def weights(route: dict[str, Any]) -> list[tuple[str, int]]:
    return [(c["name"], c["weight"]) for c in route["route"]["weighted_clusters"]["clusters"]]


# ------------------------------------------------------------------------------------------------ pure


def test_registered_and_the_split_of_a_traffic_status() -> None:
    assert "knative" in [t.name for t in dataplane.translators()]
    assert kinds.KNATIVE_SERVICE in dataplane.watched_kinds()
    assert knative_cluster_name(NS, "podinfo-00002") == "test/podinfo-00002"
    # a revision named twice gets the sum; 0 % entries and entries without a revision are left out
    assert traffic_split(
        [
            {"revisionName": "a", "percent": 0, "latestRevision": True},
            {"revisionName": "b", "percent": 60},
            {"percent": 10},
            {"revisionName": "a", "percent": 30},
            {"revisionName": "b", "percent": 10},
            "junk",
        ]
    ) == [("b", 70), ("a", 30)]
    assert traffic_split(None) == []


def test_the_applied_split_becomes_a_gateway_host_for_the_url_and_the_cluster_local_names() -> None:
    config = build([split(10)])
    host = hosts(config)["knative.test.podinfo"]
    assert host["domains"] == [
        HOST,
        "podinfo.test",
        "podinfo.test.svc",
        "podinfo.test.svc.cluster.local",
    ]
    [route] = host["routes"]
    assert route["match"] == {"prefix": "/"}
    assert route["route"]["weighted_clusters"]["header_name"] == "x-seq"
    assert weights(route) == [("test/podinfo-00002", 10), ("test/podinfo-00001", 90)]
    # each request tells its revision, as Kourier's do
    added = [
        {h["header"]["key"]: h["header"]["value"] for h in c["request_headers_to_add"]}
        for c in route["route"]["weighted_clusters"]["clusters"]
    ]
    assert added == [
        {"knative-serving-namespace": NS, "knative-serving-revision": "podinfo-00002"},
        {"knative-serving-namespace": NS, "knative-serving-revision": "podinfo-00001"},
    ]
    # the clusters carry Kourier's names, over the revisions' Services on port 80
    cluster = {c["name"]: c for c in config["clusters"]}["test/podinfo-00002"]
    assert cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ] == {"address": "127.0.0.1", "port_value": 4002}
    assert config["cluster_services"]["test/podinfo-00002"] == (NS, "podinfo-00002")


def test_after_a_promotion_the_one_revision_gets_everything() -> None:
    """Promoted: the latest revision is the primary, named twice (0 % as latest, 100 % by name)."""
    [route] = hosts(build([split(0, primary="podinfo-00002")]))["knative.test.podinfo"]["routes"]
    assert weights(route) == [("test/podinfo-00002", 100)]


def test_tags_a_missing_revision_service_and_no_traffic() -> None:
    tagged = split(20)
    tagged["status"]["traffic"][0]["tag"] = "candidate"
    found = hosts(build([tagged]))
    [route] = found["knative.test.podinfo.candidate"]["routes"]
    assert found["knative.test.podinfo.candidate"]["domains"] == ["candidate-podinfo.test.example.com"]
    assert weights(route) == [("test/podinfo-00002", 100)]
    # a revision without its Service: a cluster that does not exist, so Envoy answers 503 for its share
    config = build([split(50)], core=[revision_service("podinfo-00001")])
    [route] = hosts(config)["knative.test.podinfo"]["routes"]
    assert weights(route) == [("test/podinfo-00002.unknown", 50), ("test/podinfo-00001", 50)]
    assert "test/podinfo-00002.unknown" not in {c["name"] for c in config["clusters"]}
    # nothing applied yet (no status.traffic, or all of it at 0 %): no host
    empty = ksvc()
    del empty["status"]["traffic"]
    assert "knative.test.podinfo" not in hosts(build([empty]))
    assert "knative.test.podinfo" not in hosts(build([ksvc({"revisionName": "podinfo-00001", "percent": 0})]))


# ------------------------------------------------------------------------------------------------ real Envoy


def cluster_requests(stats: str) -> dict[tuple[str, str], int]:
    """Envoy's ``envoy_cluster_upstream_rq`` by (cluster, response code)."""
    out: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(stats):
        for sample in family.samples:
            # (the parser names a counter's samples with ``_total``; Envoy exports them without)
            code = sample.labels.get("envoy_response_code")
            if code and sample.name in ("envoy_cluster_upstream_rq", "envoy_cluster_upstream_rq_total"):
                key = (sample.labels["envoy_cluster_name"], code)
                out[key] = int(sample.value)
    return out


async def test_a_real_envoy_splits_the_host_and_its_stats_name_the_revisions(tmp_path: Path) -> None:
    assert envoy_binary() is not None
    envoy = EnvoyProcess(tmp_path / "envoy")
    primary, canary = (
        DemoApp("podinfo-00001-deployment", NS, "1.0.0"),
        DemoApp("podinfo-00002-deployment", NS, "2.0.0"),
    )
    await primary.start()
    await canary.start()
    endpoints = {(NS, "podinfo-00001"): [endpoint(primary)], (NS, "podinfo-00002"): [endpoint(canary)]}
    ports = {GATEWAY_LISTENER: free_port()}
    envoy.start()
    try:
        envoy.files.write(
            envoy_config(
                {kinds.KNATIVE_SERVICE: [split(30)]},
                SERVICES,
                endpoints,
                ports=ports,
                routes_dir=str(envoy.files.routes_dir),
                weight_header="x-seq",
                translators=[KnativeTranslator()],
            )
        )
        await wait_for_listeners(envoy, ports)
        gateway = f"http://127.0.0.1:{ports[GATEWAY_LISTENER]}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            versions = []
            for n in range(100):
                async with http.get(f"{gateway}/", headers={"x-seq": str(n), "Host": HOST}) as response:
                    versions.append((await response.json(content_type=None))["version"])
            assert versions.count("2.0.0") == 30
            assert versions.count("1.0.0") == 70
            for n in range(10):  # the fault, through the gateway (x-seq 0-9: the canary's first 30 %)
                async with http.get(
                    f"{gateway}/status/500", headers={"x-seq": str(n), "Host": "podinfo.test"}
                ) as response:
                    assert response.status == 500
        assert envoy.rejected_updates() == 0
        counted = cluster_requests(envoy.admin_get("/stats/prometheus"))
        assert counted[("test/podinfo-00002", "200")] == 30
        assert counted[("test/podinfo-00002", "500")] == 10
        assert counted[("test/podinfo-00001", "200")] == 70
        assert ("test/podinfo-00001", "500") not in counted
        # the knative builtin selector (route: the latest created revision) picks the canary's cluster only
        selector = re.search(r'envoy_cluster_name=~"([^"]+)"', KNATIVE.success_rate)
        assert selector is not None
        pattern = selector.group(1).replace("{{ namespace }}", NS).replace("{{ route }}", "podinfo-00002")
        assert re.fullmatch(pattern, "test/podinfo-00002")
        assert not re.fullmatch(pattern, "test/podinfo-00001")
    finally:
        envoy.stop()
        await primary.stop()
        await canary.stop()
