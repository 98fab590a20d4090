"""Routers by provider name: ``routers.registry.get("istio")``. Adding a mesh is one module and one line here."""

from __future__ import annotations

from canarist.routers.base import Router
from canarist.routers.istio import ISTIO
from canarist.routers.kubernetes import KUBERNETES

_ROUTERS: dict[str, Router] = {
    "istio": ISTIO,
    "kubernetes": KUBERNETES,
}

#: providers Flagger knows that canarist does not route yet.
KNOWN_PROVIDERS = frozenset(
    {
        "apisix",
        "appmesh",
        "appmesh:v1beta2",
        "contour",
        "gatewayapi:v1",
        "gatewayapi:v1beta1",
        "gloo",
        "istio",
        "knative",
        "kubernetes",
        "kuma",
        "linkerd",
        "nginx",
        "osm",
        "skipper",
        "smi:v1alpha1",
        "smi:v1alpha2",
        "smi:v1alpha3",
        "traefik",
    }
)


class UnknownProviderError(LookupError):
    """No router for this provider name."""


def supported() -> list[str]:
    return sorted(_ROUTERS)


def get(provider: str) -> Router:
    """The router for ``provider`` (``spec.provider`` or ``-mesh-provider``).

    Raises :class:`UnknownProviderError` naming the provider and the supported ones; a provider Flagger
    supports but canarist does not yet is reported as such.
    """
    router = _ROUTERS.get(provider)
    if router is not None:
        return router
    if provider in KNOWN_PROVIDERS:
        raise UnknownProviderError(
            f"provider {provider!r} is not supported by canarist yet (supported: {', '.join(supported())})"
        )
    raise UnknownProviderError(f"unknown provider {provider!r} (supported: {', '.join(supported())})")
