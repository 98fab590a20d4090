"""Routers meet a real cluster: a provider whose CRDs are not installed, and a reference that does not exist,
are each said on the Canary (a Blocked condition and one Warning Event, path-qualified), and the canary runs as
soon as the cluster is fixed — no restart, no edit of the Canary."""

from __future__ import annotations

from typing import Any

from canarist.kube import resources as kinds
from canarist.localcluster.crds import provider_crds
from canarist.routers.apisix import APISIX_ROUTE
from canarist.routers.contour import HTTP_PROXY
from canarist.routers.kuma import TRAFFIC_ROUTE
from tests.e2e.conftest import World
from tests.e2e.harness import NAMESPACE, apply, canary_status, fast_seed, load_example, ticks_pass, wait_for


def _canary(**spec: Any) -> dict[str, Any]:
    canary = fast_seed()
    canary["spec"].pop("autoscalerRef", None)
    canary["spec"]["service"].pop("hosts", None)
    canary["spec"]["service"].pop("gateways", None)
    canary["spec"]["service"].pop("trafficPolicy", None)
    canary["spec"].update(spec)
    return canary


def _contour_crd() -> dict[str, Any]:
    """Contour's HTTPProxy CRD, reduced to what this test needs (the local control plane validates the rest
    of canarist's objects against the full schemas in tests/localcluster)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "httpproxies.projectcontour.io"},
        "spec": {
            "group": "projectcontour.io",
            "scope": "Namespaced",
            "names": {
                "plural": "httpproxies",
                "singular": "httpproxy",
                "kind": "HTTPProxy",
                "listKind": "HTTPProxyList",
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


async def _blocked(world: World) -> dict[str, Any] | None:
    status = await canary_status(world.client, "podinfo")
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Blocked"), None)


async def _warnings(world: World) -> list[str]:
    events = (await world.client.list(kinds.EVENT, namespace=NAMESPACE)).items
    return [
        str(e.get("message"))
        for e in events
        if e.get("type") == "Warning" and (e.get("involvedObject") or {}).get("name") == "podinfo"
    ]


async def _initialized(world: World) -> bool:
    return (await canary_status(world.client, "podinfo")).get("phase") == "Initialized"


async def test_a_provider_without_its_crds_is_said_then_runs_once_they_are_installed(world: World) -> None:
    operator = await world.start_operator(control_loop_interval_s=0.3)
    for name in ("namespace.yaml", "deployment.yaml"):
        await apply(world.client, load_example(name))
    await apply(world.client, _canary(provider="contour"))

    await wait_for(lambda: _blocked(world), what="the Blocked condition", timeout_s=60)
    await ticks_pass(operator, 5, name="podinfo")
    condition = await _blocked(world)
    assert condition is not None
    expected = (
        "provider contour: the cluster does not serve httpproxies.projectcontour.io (projectcontour.io/v1); "
        "install the provider's CRDs"
    )
    assert (condition["reason"], condition["message"]) == ("ProviderNotInstalled", expected)
    assert (await _warnings(world)).count(expected) == 1

    await apply(world.client, _contour_crd())
    await wait_for(lambda: _initialized(world), what="Initialized once the CRD exists", timeout_s=90)
    proxy = await world.client.get(HTTP_PROXY, "podinfo", namespace=NAMESPACE)
    weights = {s["name"]: s["weight"] for s in proxy["spec"]["routes"][0]["services"]}
    assert weights == {"podinfo-primary": 100, "podinfo-canary": 0}
    assert await _blocked(world) is None


def _ingress() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "podinfo", "namespace": NAMESPACE, "labels": {"app": "podinfo"}},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "podinfo", "port": {"number": 9898}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


async def test_a_missing_ingress_ref_is_said_then_the_canary_ingress_follows_it(world: World) -> None:
    operator = await world.start_operator(control_loop_interval_s=0.3)
    for name in ("namespace.yaml", "deployment.yaml"):
        await apply(world.client, load_example(name))
    ref = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "podinfo"}
    await apply(world.client, _canary(provider="nginx", ingressRef=ref))

    await wait_for(lambda: _blocked(world), what="the Blocked condition", timeout_s=60)
    await ticks_pass(operator, 5, name="podinfo")
    condition = await _blocked(world)
    assert condition is not None
    expected = "provider nginx: spec.ingressRef: Ingress podinfo.test not found"
    assert (condition["reason"], condition["message"]) == ("MissingReference", expected)
    assert (await _warnings(world)).count(expected) == 1

    await apply(world.client, _ingress())
    await wait_for(lambda: _initialized(world), what="Initialized once the Ingress exists", timeout_s=60)
    canary_ingress = await world.client.get(kinds.INGRESS, "podinfo-canary", namespace=NAMESPACE)
    annotations = canary_ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert annotations["nginx.ingress.kubernetes.io/canary-weight"] == "0"
    backend = canary_ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "podinfo-canary", "port": {"number": 9898}}
    assert await _blocked(world) is None


def _apisix_route() -> dict[str, Any]:
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": "podinfo", "namespace": NAMESPACE, "labels": {"app": "podinfo"}},
        "spec": {
            "http": [
                {
                    "name": "rule1",
                    "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
                    "backends": [{"serviceName": "podinfo", "servicePort": 9898}],
                }
            ]
        },
    }


async def test_a_missing_route_ref_is_said_then_the_canary_route_follows_it(world: World) -> None:
    operator = await world.start_operator(control_loop_interval_s=0.3)
    for crd in provider_crds("apisix"):
        await apply(world.client, crd)
    for name in ("namespace.yaml", "deployment.yaml"):
        await apply(world.client, load_example(name))
    ref = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "podinfo"}
    await apply(world.client, _canary(provider="apisix", routeRef=ref))

    await wait_for(lambda: _blocked(world), what="the Blocked condition", timeout_s=60)
    await ticks_pass(operator, 5, name="podinfo")
    condition = await _blocked(world)
    assert condition is not None
    expected = "provider apisix: spec.routeRef: ApisixRoute podinfo.test not found"
    assert (condition["reason"], condition["message"]) == ("MissingReference", expected)
    assert (await _warnings(world)).count(expected) == 1

    await apply(world.client, _apisix_route())
    await wait_for(lambda: _initialized(world), what="Initialized once the ApisixRoute exists", timeout_s=60)
    canary_route = await world.client.get(APISIX_ROUTE, "podinfo-podinfo-canary", namespace=NAMESPACE)
    (rule,) = canary_route["spec"]["http"]
    assert rule["priority"] == 10000
    assert rule["backends"] == [
        {"serviceName": "podinfo-primary", "servicePort": 9898, "weight": 100},
        {"serviceName": "podinfo-canary", "servicePort": 9898, "weight": 0},
    ]
    assert await _blocked(world) is None


async def _traffic_route(world: World) -> dict[str, Any] | None:
    return await world.client.get_or_none(TRAFFIC_ROUTE, "podinfo")


async def test_kuma_traffic_route_is_cluster_scoped_and_given_back_to_the_apex_on_deletion(
    world: World,
) -> None:
    """The operator writes the cluster-scoped TrafficRoute (in the annotation's mesh, without an owner),
    moves its split through the access layer's cluster-scoped watch, and with revertOnDeletion leaves it
    sending the apex's traffic to the apex once the Canary is gone."""
    operator = await world.start_operator(control_loop_interval_s=0.3)
    for crd in provider_crds("kuma"):
        await apply(world.client, crd)
    for name in ("namespace.yaml", "deployment.yaml"):
        await apply(world.client, load_example(name))
    canary = _canary(provider="kuma", revertOnDeletion=True)
    canary["metadata"]["annotations"] = {"kuma.io/mesh": "payments"}
    await apply(world.client, canary)

    await wait_for(lambda: _initialized(world), what="Initialized", timeout_s=60)
    route = await _traffic_route(world)
    assert route is not None
    assert route["mesh"] == "payments"
    assert "namespace" not in route["metadata"]
    assert "ownerReferences" not in route["metadata"]
    assert route["spec"]["destinations"] == [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}]
    assert route["spec"]["conf"]["split"] == [
        {"weight": 100, "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"}},
        {"weight": 0, "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"}},
    ]
    # a few more ticks rewrite nothing (only weights could differ, and they do not)
    version = route["metadata"]["resourceVersion"]
    await ticks_pass(operator, 3, name="podinfo")
    route = await _traffic_route(world)
    assert route is not None
    assert route["metadata"]["resourceVersion"] == version

    await world.client.delete(kinds.CANARY, "podinfo", namespace=NAMESPACE)

    async def reverted() -> dict[str, Any] | None:
        gone = await world.client.get_or_none(kinds.CANARY, "podinfo", namespace=NAMESPACE) is None
        current = await _traffic_route(world)
        return (
            current if gone and current is not None and len(current["spec"]["conf"]["split"]) == 1 else None
        )

    route = await wait_for(reverted, what="the Canary gone and its TrafficRoute given back", timeout_s=60)
    assert route["mesh"] == "payments"
    assert route["spec"]["conf"]["split"] == [
        {"weight": 100, "destination": {"kuma.io/service": "podinfo_test_svc_9898"}}
    ]
