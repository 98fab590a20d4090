"""The routing providers `canarist demo --provider NAME` can play the walkthrough with.

One `ProviderDemo` per provider: where its examples are (``canary.yaml``, and ``routing.yaml`` with the
user-side objects of that provider's tutorial), the operator's ``-mesh-provider``, which provider CRDs the
local control plane installs (a key of `canarist.localcluster.PROVIDER_CRDS`, or ``None`` for a provider
whose kinds are built in), the ``Host`` the demo's user traffic sends through the gateway listener, and the
header of an A/B run (``None``: the provider has no header routing).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["EXAMPLES_ROOT", "PROVIDERS", "ProviderDemo", "UnknownProvider", "provider_demo", "provider_names"]

EXAMPLES_ROOT = Path(__file__).resolve().parents[3] / "examples"


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

    @property
    def examples(self) -> Path:
        return EXAMPLES_ROOT / self.examples_dir


_AB = ("x-canary", "insider")

PROVIDERS: dict[str, ProviderDemo] = {
    p.name: p
    for p in (
        ProviderDemo("istio", "podinfo", "istio", "istio", "app.istio.example.com", _AB),
        ProviderDemo(
            "gatewayapi:v1",
            "gatewayapi",
            "gatewayapi:v1",
            "gatewayapi",
            "app.example.com",
            _AB,
            fault_via_gateway=True,
        ),
        ProviderDemo("linkerd", "linkerd", "linkerd", "smi", "podinfo.test", None),
        ProviderDemo("appmesh:v1beta2", "appmesh", "appmesh:v1beta2", "appmesh", "podinfo.test", _AB),
        ProviderDemo(
            "contour", "contour", "contour", "contour", "app.example.com", _AB, fault_via_gateway=True
        ),
        ProviderDemo("nginx", "nginx", "nginx", None, "app.example.com", _AB, fault_via_gateway=True),
        ProviderDemo("gloo", "gloo", "gloo", "gloo", "app.example.com", _AB, fault_via_gateway=True),
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
