"""The routing providers `canarist demo --provider NAME` can play the walkthrough with.

One `ProviderDemo` per provider: where its examples are (``canary.yaml``, and ``routing.yaml`` with the
user-side objects of that provider's tutorial), the operator's ``-mesh-provider``, which provider CRDs the
local control plane installs (a key of `canarist.localcluster.PROVIDER_CRDS`, or ``None`` for a provider
whose kinds are built in), the ``Host`` the demo's user traffic sends through the gateway listener, and the
header of an A/B run (``None``: the provider has no header routing), and the Service through which that
provider's tutorial reaches its ingress proxy (`GatewayService`: Istio's ``istio-ingressgateway`` in
``istio-system``...; ``None`` for the meshes without an ingress, whose gateway listener stays on a local port).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EXAMPLES_ROOT",
    "PROVIDERS",
    "GatewayPort",
    "GatewayService",
    "ProviderDemo",
    "UnknownProvider",
    "provider_demo",
    "provider_names",
]

EXAMPLES_ROOT = Path(__file__).resolve().parents[3] / "examples"


@dataclass(frozen=True)
class GatewayPort:
    name: str
    port: int
    target_port: int


@dataclass(frozen=True)
class GatewayService:
    """The Service (type LoadBalancer) in front of a provider's ingress proxy, as the provider installs it.

    The sandbox creates it with a ClusterIP, writes that address as ``status.loadBalancer.ingress[0].ip``,
    has Envoy's gateway listener listen on it (the ``http`` port, 80; no listener on the TLS port) and
    creates a Running Pod ``<pod_prefix>-<hash>-<x>`` with ``labels`` standing for the sandbox's Envoy.
    """

    namespace: str
    name: str
    labels: tuple[tuple[str, str], ...]
    container: str  # the proxy container's name in the Pod
    image: str
    ports: tuple[GatewayPort, ...] = (GatewayPort("http", 80, 8080), GatewayPort("https", 443, 8443))
    http_port: int = 80  # the port the gateway listener serves (plain HTTP)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def pod_prefix(self) -> str:
        return self.name


ISTIO_GATEWAY = GatewayService(
    "istio-system",
    "istio-ingressgateway",
    (("app", "istio-ingressgateway"), ("istio", "ingressgateway")),
    "istio-proxy",
    "docker.io/istio/proxyv2:1.22.0",
    (GatewayPort("http2", 80, 8080), GatewayPort("https", 443, 8443)),
)
#: Contour's Envoy (examples/contour in Contour's quickstart: Service `envoy`, DaemonSet pods `app: envoy`).
CONTOUR_GATEWAY = GatewayService(
    "projectcontour", "envoy", (("app", "envoy"),), "envoy", "docker.io/envoyproxy/envoy:v1.30.1"
)
#: ingress-nginx's Helm chart and static manifests: Service `ingress-nginx-controller`.
NGINX_GATEWAY = GatewayService(
    "ingress-nginx",
    "ingress-nginx-controller",
    (
        ("app.kubernetes.io/name", "ingress-nginx"),
        ("app.kubernetes.io/instance", "ingress-nginx"),
        ("app.kubernetes.io/component", "controller"),
    ),
    "controller",
    "registry.k8s.io/ingress-nginx/controller:v1.10.1",
    (GatewayPort("http", 80, 80), GatewayPort("https", 443, 443)),
)
#: Gloo Edge's Helm chart: Service `gateway-proxy` in `gloo-system`.
GLOO_GATEWAY = GatewayService(
    "gloo-system",
    "gateway-proxy",
    (("gloo", "gateway-proxy"), ("gateway-proxy-id", "gateway-proxy")),
    "gateway-proxy",
    "quay.io/solo-io/gloo-envoy-wrapper:1.17.0",
)
#: Traefik's Helm chart (Flagger's Traefik tutorial installs it in `traefik`): Service `traefik`, entry point
#: `web` on port 80 (the pods' 8000), `websecure` on 443.
TRAEFIK_GATEWAY = GatewayService(
    "traefik",
    "traefik",
    (("app.kubernetes.io/name", "traefik"), ("app.kubernetes.io/instance", "traefik-traefik")),
    "traefik",
    "docker.io/traefik:v3.0.4",
    (GatewayPort("web", 80, 8000), GatewayPort("websecure", 443, 8443)),
)
#: Skipper's Kubernetes deployment (Flagger's Skipper tutorial installs it in `kube-system`): Service
#: `skipper-ingress`, port 80 in front of the proxy's 9999.
SKIPPER_GATEWAY = GatewayService(
    "kube-system",
    "skipper-ingress",
    (("application", "skipper-ingress"), ("component", "ingress")),
    "skipper-ingress",
    "registry.opensource.zalan.do/teapot/skipper:v0.21.0",
    (GatewayPort("http", 80, 9999),),
)
#: APISIX's Helm chart (Flagger's APISIX tutorial installs it in `apisix` with the ingress controller):
#: Service `apisix-gateway`, port 80 in front of the proxy's 9080.
APISIX_GATEWAY = GatewayService(
    "apisix",
    "apisix-gateway",
    (("app.kubernetes.io/name", "apisix"), ("app.kubernetes.io/instance", "apisix")),
    "apisix",
    "docker.io/apache/apisix:3.9.1-debian",
    (GatewayPort("http", 80, 9080),),
)
#: Kourier, Knative's ingress (net-kourier's kourier.yaml): Service `kourier` in `kourier-system` in front of
#: its Envoy gateway pods (`app: 3scale-kourier-gateway`), port 80 to the pods' 8080.
KOURIER_GATEWAY = GatewayService(
    "kourier-system",
    "kourier",
    (("app", "3scale-kourier-gateway"), ("networking.knative.dev/ingress-provider", "kourier")),
    "kourier-gateway",
    "docker.io/envoyproxy/envoy:v1.31-latest",
    (GatewayPort("http2", 80, 8080), GatewayPort("https", 443, 8443)),
)
#: The data plane of the Gateway `gateway-system/gateway` (examples/gatewayapi/routing.yaml, class
#: `sandbox`), named `<Gateway>-<GatewayClass>` as Istio's Gateway API deployments are (Flagger's Gateway API
#: tutorial reaches its Gateway as `gateway-istio.istio-ingress`): `gateway-sandbox.gateway-system`.
GATEWAYAPI_GATEWAY = GatewayService(
    "gateway-system",
    "gateway-sandbox",
    (("gateway.networking.k8s.io/gateway-name", "gateway"),),
    "envoy",
    "docker.io/envoyproxy/envoy:v1.30.1",
    (GatewayPort("http", 80, 80),),
)


@dataclass(frozen=True)
class ProviderDemo:
    name: str  # the value of `canarist demo --provider`
    examples_dir: str  # under examples/: canary.yaml, routing.yaml (optional)
    mesh_provider: str  # the operator's -mesh-provider
    crds: str | None  # a key of canarist.localcluster.PROVIDER_CRDS; None: built-in kinds only
    host: str  # the Host of user traffic through the gateway listener
    ab_header: tuple[str, str] | None  # (name, value) of an A/B run; None: no header routing
    # Where the tutorial's `curl /status/500` goes: through the ingress proxy with `host` (the analysis reads
    # that proxy's view: Contour's and Gloo's Envoy stats, NGINX's series), else to the canary Service.
    fault_via_gateway: bool = False
    # The Service users reach the ingress through; None: no ingress (a mesh), the gateway listener stays on a
    # local port of 127.0.0.1.
    gateway: GatewayService | None = None
    # The walkthrough's target (`canarist.sandbox.story_targets`): "deployment" (examples/podinfo's
    # Deployment) or "knative" (the provider's service.yaml, a Knative Service).
    target: str = "deployment"

    @property
    def examples(self) -> Path:
        return EXAMPLES_ROOT / self.examples_dir


_AB = ("x-canary", "insider")

PROVIDERS: dict[str, ProviderDemo] = {
    p.name: p
    for p in (
        ProviderDemo(
            "istio", "podinfo", "istio", "istio", "app.istio.example.com", _AB, gateway=ISTIO_GATEWAY
        ),
        ProviderDemo(
            "gatewayapi:v1",
            "gatewayapi",
            "gatewayapi:v1",
            "gatewayapi",
            "app.example.com",
            _AB,
            fault_via_gateway=True,
            gateway=GATEWAYAPI_GATEWAY,
        ),
        ProviderDemo("linkerd", "linkerd", "linkerd", "smi", "podinfo.test", None),
        ProviderDemo("appmesh:v1beta2", "appmesh", "appmesh:v1beta2", "appmesh", "podinfo.test", _AB),
        ProviderDemo(
            "contour",
            "contour",
            "contour",
            "contour",
            "app.example.com",
            _AB,
            fault_via_gateway=True,
            gateway=CONTOUR_GATEWAY,
        ),
        ProviderDemo(
            "nginx",
            "nginx",
            "nginx",
            None,
            "app.example.com",
            _AB,
            fault_via_gateway=True,
            gateway=NGINX_GATEWAY,
        ),
        ProviderDemo(
            "gloo",
            "gloo",
            "gloo",
            "gloo",
            "app.example.com",
            _AB,
            fault_via_gateway=True,
            gateway=GLOO_GATEWAY,
        ),
        ProviderDemo(
            "traefik",
            "traefik",
            "traefik",
            "traefik",
            "app.example.com",
            None,
            fault_via_gateway=True,
            gateway=TRAEFIK_GATEWAY,
        ),
        ProviderDemo(
            "skipper",
            "skipper",
            "skipper",
            None,
            "app.example.com",
            None,
            fault_via_gateway=True,
            gateway=SKIPPER_GATEWAY,
        ),
        ProviderDemo(
            "apisix",
            "apisix",
            "apisix",
            "apisix",
            "app.example.com",
            None,
            fault_via_gateway=True,
            gateway=APISIX_GATEWAY,
        ),
        ProviderDemo("kuma", "kuma", "kuma", "kuma", "podinfo.test", None),
        ProviderDemo(
            "knative",
            "knative",
            "knative",
            "knative",
            "podinfo.test.example.com",
            None,
            fault_via_gateway=True,
            gateway=KOURIER_GATEWAY,
            target="knative",
        ),
    )
}


class UnknownProvider(ValueError):
    pass


def provider_names() -> list[str]:
    """Every ``--provider`` value, in table order (``istio`` first: the default)."""
    return list(PROVIDERS)


def provider_demo(name: str) -> ProviderDemo:
    """The table row of ``name``; `UnknownProvider` (a `ValueError`) naming the choices otherwise."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise UnknownProvider(
            f"unknown demo provider {name!r}; choose one of: {', '.join(PROVIDERS)}"
        ) from None
