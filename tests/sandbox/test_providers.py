"""The demo's provider table, and reading where a request goes from the routes written to Envoy whatever
provider wrote them (`RouteWrite.service_weights`, which the demo's recorder and A/B check use)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import yaml

from canarist.api.canary import Canary
from canarist.cli import cmd_demo
from canarist.kube.resources import VIRTUAL_SERVICE, ResourceKind
from canarist.localcluster import PROVIDER_CRDS
from canarist.routers import registry
from canarist.sandbox.dataplane import Obj, Program, World
from canarist.sandbox.dataplane.istio import IstioTranslator
from canarist.sandbox.demo import DemoOptions, Sandbox, ab_canary, canary_weight
from canarist.sandbox.envoy_config import GATEWAY_LISTENER, Endpoint, envoy_config, listener_key
from canarist.sandbox.mesh import RouteWrite
from canarist.sandbox.providers import PROVIDERS, UnknownProvider, provider_demo, provider_names

NS = "test"
CANARY = (NS, "podinfo-canary")
PRIMARY = (NS, "podinfo-primary")


# ------------------------------------------------------------------------------------------------ the table


def test_the_table() -> None:
    assert provider_names() == [
        "istio",
        "gatewayapi:v1",
        "linkerd",
        "appmesh:v1beta2",
        "contour",
        "nginx",
        "gloo",
        "traefik",
        "skipper",
        "apisix",
        "kuma",
        "knative",
    ]
    rows = {
        name: (p.examples_dir, p.mesh_provider, p.crds, p.host, p.ab_header) for name, p in PROVIDERS.items()
    }
    ab = ("x-canary", "insider")
    assert rows == {
        "istio": ("podinfo", "istio", "istio", "app.istio.example.com", ab),
        "gatewayapi:v1": ("gatewayapi", "gatewayapi:v1", "gatewayapi", "app.example.com", ab),
        "linkerd": ("linkerd", "linkerd", "smi", "podinfo.test", None),
        "appmesh:v1beta2": ("appmesh", "appmesh:v1beta2", "appmesh", "podinfo.test", ab),
        "contour": ("contour", "contour", "contour", "app.example.com", ab),
        "nginx": ("nginx", "nginx", None, "app.example.com", ab),
        "gloo": ("gloo", "gloo", "gloo", "app.example.com", ab),
        "traefik": ("traefik", "traefik", "traefik", "app.example.com", None),
        "skipper": ("skipper", "skipper", None, "app.example.com", None),
        "apisix": ("apisix", "apisix", "apisix", "app.example.com", None),
        "kuma": ("kuma", "kuma", "kuma", "podinfo.test", None),
        "knative": ("knative", "knative", "knative", "podinfo.test.example.com", None),
    }
    # Knative's walkthrough plays on its Knative Service, every other on podinfo's Deployment.
    assert {n for n, p in PROVIDERS.items() if p.target != "deployment"} == {"knative"}
    assert PROVIDERS["knative"].target == "knative"
    # The tutorials of the ingress providers send their /status/500 through the ingress proxy.
    assert {n for n, p in PROVIDERS.items() if p.fault_via_gateway} == {
        "gatewayapi:v1",
        "contour",
        "nginx",
        "gloo",
        "traefik",
        "skipper",
        "apisix",
        "knative",
    }


def test_every_row_names_installable_crds_and_a_router() -> None:
    for provider in PROVIDERS.values():
        assert provider.crds is None or provider.crds in PROVIDER_CRDS, provider
        assert registry.get(provider.mesh_provider) is not None, provider
        assert provider.examples.parent.name == "examples"
    assert (provider_demo("istio").examples / "canary.yaml").exists()


def test_every_walkthrough_canary_keeps_its_tutorials_in_cluster_webhooks() -> None:
    """The sandbox applies the examples as written (nothing rewritten): their webhooks name the cluster's
    hosts, never a local address."""
    for provider in PROVIDERS.values():
        canary = yaml.safe_load((provider.examples / "canary.yaml").read_text())
        hooks = canary["spec"]["analysis"]["webhooks"]
        assert {h["url"] for h in hooks} == {"http://flagger-loadtester.test/"}, provider.name
        commands = " ".join(str(h.get("metadata", {}).get("cmd", "")) for h in hooks)
        # Knative has no -canary Service: its load test goes through Kourier with the Service's host.
        reached = "kourier.kourier-system" if provider.target == "knative" else "podinfo-canary.test"
        assert reached in commands, (provider.name, commands)
        assert "127.0.0.1" not in commands, (provider.name, commands)
        assert "localhost" not in commands, (provider.name, commands)
    mirroring = yaml.safe_load((provider_demo("istio").examples / "canary-mirroring.yaml").read_text())
    analysis = mirroring["spec"]["analysis"]
    assert (analysis["iterations"], analysis["mirror"], analysis["interval"], analysis["threshold"]) == (
        10,
        True,
        "1m",
        5,
    )
    assert [h["metadata"]["cmd"] for h in analysis["webhooks"]] == [
        "curl -sd 't' podinfo-canary:9898/token | grep token",
        "hey -z 1m -q 10 -c 2 http://podinfo.test:9898/",
    ]
    Canary.model_validate(mirroring)  # a valid flagger.app/v1beta1 Canary


def test_the_ingress_gateways_are_the_providers_own_services() -> None:
    gateways = {
        name: (p.gateway.namespace, p.gateway.name, [(q.name, q.port) for q in p.gateway.ports])
        for name, p in PROVIDERS.items()
        if p.gateway is not None
    }
    assert gateways == {
        "istio": ("istio-system", "istio-ingressgateway", [("http2", 80), ("https", 443)]),
        "gatewayapi:v1": ("gateway-system", "gateway-sandbox", [("http", 80)]),
        "contour": ("projectcontour", "envoy", [("http", 80), ("https", 443)]),
        "nginx": ("ingress-nginx", "ingress-nginx-controller", [("http", 80), ("https", 443)]),
        "gloo": ("gloo-system", "gateway-proxy", [("http", 80), ("https", 443)]),
        "traefik": ("traefik", "traefik", [("web", 80), ("websecure", 443)]),
        "skipper": ("kube-system", "skipper-ingress", [("http", 80)]),
        "apisix": ("apisix", "apisix-gateway", [("http", 80)]),
        "knative": ("kourier-system", "kourier", [("http2", 80), ("https", 443)]),
    }
    istio = provider_demo("istio").gateway
    assert istio is not None
    assert istio.label_map == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert {p.gateway.http_port for p in PROVIDERS.values() if p.gateway is not None} == {80}


def test_an_unknown_provider_names_the_choices() -> None:
    with pytest.raises(UnknownProvider) as caught:
        provider_demo("envoy")
    message = str(caught.value)
    assert "'envoy'" in message
    assert all(name in message for name in PROVIDERS)
    with pytest.raises(ValueError, match="choose one of"):
        Sandbox(DemoOptions(provider="envoy"))


def test_the_cli_offers_the_table() -> None:
    parser = argparse.ArgumentParser()
    cmd_demo.register(parser.add_subparsers())
    assert parser.parse_args(["demo"]).provider == "istio"
    assert parser.parse_args(["demo", "--provider", "gloo"]).provider == "gloo"
    assert parser.parse_args(["demo", "--provider", "kuma"]).provider == "kuma"
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--provider", "envoy"])


def test_ab_canary() -> None:
    canary = {"spec": {"analysis": {"interval": "2s", "stepWeight": 5, "maxWeight": 50, "threshold": 10}}}
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    out = ab_canary(canary, match, iterations=4)
    assert out["spec"]["analysis"] == {"interval": "2s", "threshold": 10, "iterations": 4, "match": match}
    assert canary["spec"]["analysis"]["stepWeight"] == 5  # a copy


# ------------------------------------------------------------------------------------------------ where requests go


def service(name: str, app: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": app}, "ports": [{"name": "http", "port": 9898}]},
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
PORTS = {GATEWAY_LISTENER: 10000} | {listener_key(NS, s["metadata"]["name"], 9898): 0 for s in SERVICES}


def write_of(
    objects: Mapping[ResourceKind, Sequence[Obj]], translators: Sequence[Any] | None = None
) -> RouteWrite:
    """What the watcher hands the recorder for these objects (as MeshWatcher.rebuild does)."""
    config = envoy_config(objects, SERVICES, ENDPOINTS, ports=PORTS, translators=translators or _istio())
    return RouteWrite(0.0, {}, config["routes"], config["cluster_services"])


def _istio() -> list[Any]:
    return [IstioTranslator()]


def istio_vs(http: list[dict[str, Any]]) -> dict[ResourceKind, list[Obj]]:
    spec = {"hosts": ["app.istio.example.com", "podinfo"], "gateways": ["public-gateway"], "http": http}
    return {VIRTUAL_SERVICE: [{"metadata": {"name": "podinfo", "namespace": NS}, "spec": spec}]}


def destinations(primary: int, canary: int) -> list[dict[str, Any]]:
    return [
        {"destination": {"host": "podinfo-primary"}, "weight": primary},
        {"destination": {"host": "podinfo-canary"}, "weight": canary},
    ]


def test_istio_weights_per_service_on_the_gateway_host() -> None:
    write = write_of(istio_vs([{"route": destinations(70, 30)}]), _istio())
    assert write.service_weights("app.istio.example.com") == {PRIMARY: 70, CANARY: 30}
    assert write.service_weights("APP.istio.example.com:80") == {PRIMARY: 70, CANARY: 30}
    assert canary_weight(write, "app.istio.example.com", CANARY) == 30
    # No virtual host for another Host; one for a Service not routed by the VirtualService goes to its cluster.
    assert write.service_weights("other.example.com") is None
    assert write.service_weights("podinfo-primary.test") == {PRIMARY: 100}
    assert canary_weight(write, "podinfo-primary.test", CANARY) == 0


def test_istio_ab_routes_by_header_and_cookie() -> None:
    http = [
        {"match": [{"headers": {"x-canary": {"exact": "insider"}}}], "route": destinations(0, 100)},
        {
            "match": [{"headers": {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}}],
            "route": destinations(0, 100),
        },
        {"route": destinations(100, 0)},
    ]
    write = write_of(istio_vs(http), _istio())
    host = "app.istio.example.com"
    assert canary_weight(write, host, CANARY, {"x-canary": "insider"}) == 100
    assert canary_weight(write, host, CANARY, {"X-Canary": "insider"}) == 100
    assert canary_weight(write, host, CANARY, {"x-canary": "outsider"}) == 0
    assert canary_weight(write, host, CANARY, {"cookie": "a=b;canary=always"}) == 100
    assert canary_weight(write, host, CANARY, {"cookie": "canary=never"}) == 0
    assert canary_weight(write, host, CANARY) == 0


class AliasTranslator:
    """Test-only: a wildcard gateway host over clusters with provider-chosen names, and a redirect."""

    name = "alias-test"
    kinds: tuple[ResourceKind, ...] = ()

    def __init__(self, canary: int, total: int = 100) -> None:
        self.canary, self.total = canary, total

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        primary = world.alias_cluster("test_podinfo-primary_9898", NS, "podinfo-primary", 9898)
        canary = world.alias_cluster("test_podinfo-canary_9898", NS, "podinfo-canary", 9898)
        weighted = {
            "clusters": [
                {"name": primary, "weight": self.total - self.canary},
                {"name": canary, "weight": self.canary},
            ]
        }
        return Program(
            gateway_hosts=[
                {
                    "name": "alias",
                    "domains": ["*.example.com"],
                    "routes": [
                        {"match": {"path": "/old"}, "redirect": {"path_redirect": "/"}},
                        {
                            "match": {"prefix": "/", "query_parameters": [{"name": "x"}]},
                            "route": {"cluster": canary},
                        },
                        {"match": {"prefix": "/"}, "route": {"weighted_clusters": weighted}},
                    ],
                },
                {
                    "name": "exact",
                    "domains": ["api.example.com"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": primary}}],
                },
            ]
        )


def test_alias_clusters_map_back_to_their_services() -> None:
    write = write_of({}, [AliasTranslator(canary=25)])
    assert write.service_weights("app.example.com") == {PRIMARY: 75, CANARY: 25}
    # An exact domain wins over the wildcard; a redirect forwards nowhere.
    assert write.service_weights("api.example.com") == {PRIMARY: 100}
    assert write.service_weights("app.example.com", path="/old") is None
    # Weights that do not add up to 100 are read as shares.
    assert write_of({}, [AliasTranslator(canary=1, total=4)]).service_weights("app.example.com") == {
        PRIMARY: 75,
        CANARY: 25,
    }
