"""ClusterIP allocation from the service CIDR (`LocalCluster(service_cidr=...)`), through kubectl."""

from __future__ import annotations

import json

import pytest


def cluster_ip(local_cluster, name: str, ns: str = "default") -> str:
    svc = json.loads(local_cluster.kubectl("get", "svc", name, "-n", ns, "-o", "json", check=True).stdout)
    assert svc["spec"]["clusterIPs"] == [svc["spec"]["clusterIP"]]
    return str(svc["spec"]["clusterIP"])


def create_service(local_cluster, name: str, *extra: str, check: bool = True):
    return local_cluster.kubectl("create", "service", "clusterip", name, "--tcp=80:8080", *extra, check=check)


def test_default_range_is_unchanged(local_cluster):
    create_service(local_cluster, "one")
    create_service(local_cluster, "two")
    assert [cluster_ip(local_cluster, "one"), cluster_ip(local_cluster, "two")] == [
        "10.96.0.11",
        "10.96.0.12",
    ]
    outside = create_service(local_cluster, "three", "--clusterip=127.96.0.20", check=False)
    assert outside.returncode != 0
    assert "The range of valid IPs is 10.96.0.0/12" in outside.stderr


@pytest.mark.localcluster(service_cidr="127.96.0.0/28")
def test_loopback_range_allocation(local_cluster):
    # /28: .0 and .15 are the network and broadcast, .1-.10 are left to well-known Services: .11-.14 remain.
    local_cluster.kubectl("create", "namespace", "test", check=True)
    for name in ("a", "b"):
        create_service(local_cluster, name)
    create_service(local_cluster, "c", "-n", "test")
    assert [cluster_ip(local_cluster, n) for n in ("a", "b")] == ["127.96.0.11", "127.96.0.12"]
    assert cluster_ip(local_cluster, "c", "test") == "127.96.0.13"

    # Headless stays headless and takes no address.
    create_service(local_cluster, "headless", "--clusterip=None")
    assert cluster_ip(local_cluster, "headless") == "None"

    # A user-set address: inside the range and free is kept (even a low reserved one) ...
    create_service(local_cluster, "fixed", "--clusterip=127.96.0.5")
    assert cluster_ip(local_cluster, "fixed") == "127.96.0.5"
    # ... outside the range, or held by a live Service, is refused as the API server does.
    outside = create_service(local_cluster, "outside", "--clusterip=10.96.0.20", check=False)
    assert outside.returncode != 0
    assert "provided IP is not in the valid range. The range of valid IPs is 127.96.0.0/28" in outside.stderr
    taken = create_service(local_cluster, "taken", "--clusterip=127.96.0.12", check=False)
    assert taken.returncode != 0
    assert "provided IP is already allocated" in taken.stderr

    # The last free address, then the range is full.
    create_service(local_cluster, "d")
    assert cluster_ip(local_cluster, "d") == "127.96.0.14"
    full = create_service(local_cluster, "e", check=False)
    assert full.returncode != 0
    assert "range is full" in full.stderr

    # An update keeps the address; a deleted Service's address is free again, never a live one's.
    local_cluster.kubectl(
        "patch",
        "svc",
        "a",
        "--type=merge",
        "-p",
        '{"spec":{"ports":[{"port":81,"targetPort":8081}]}}',
        check=True,
    )
    assert cluster_ip(local_cluster, "a") == "127.96.0.11"
    local_cluster.kubectl("delete", "svc", "b", check=True)
    create_service(local_cluster, "e")
    assert cluster_ip(local_cluster, "e") == "127.96.0.12"
    ips = [cluster_ip(local_cluster, n) for n in ("a", "e", "d", "fixed")] + [
        cluster_ip(local_cluster, "c", "test")
    ]
    assert len(set(ips)) == len(ips)
