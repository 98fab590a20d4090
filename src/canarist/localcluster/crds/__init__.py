"""CustomResourceDefinitions of the routing providers (and of KEDA), with structural schemas.

`PROVIDER_CRDS` maps a provider name to its CRDs (plain `apiextensions.k8s.io/v1` objects):

- ``istio``: networking.istio.io VirtualService, DestinationRule, Gateway (open specs, see `istio.py`)
- ``gatewayapi``: gateway.networking.k8s.io GatewayClass, Gateway, HTTPRoute, ReferenceGrant
- ``smi``: split.smi-spec.io TrafficSplit (v1alpha1, v1alpha2, v1alpha3)
- ``appmesh``: appmesh.k8s.aws Mesh, VirtualNode, VirtualRouter, VirtualService, VirtualGateway, GatewayRoute
- ``contour``: projectcontour.io HTTPProxy
- ``gloo``: gloo.solo.io Upstream, gateway.solo.io RouteTable and VirtualService
- ``traefik``: traefik.io IngressRoute and TraefikService
- ``apisix``: apisix.apache.org ApisixRoute
- ``kuma``: kuma.io TrafficRoute (cluster-scoped)
- ``knative``: serving.knative.dev Service and Revision (a Knative Service target and its router)
- ``keda``: keda.sh ScaledObject (not a router: the autoscaler of ``spec.autoscalerRef``)

Each call of `provider_crds` returns fresh copies, so callers may change them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from canarist.localcluster.crds import (
    apisix,
    appmesh,
    contour,
    gatewayapi,
    gloo,
    keda,
    knative,
    kuma,
    smi,
    traefik,
)
from canarist.localcluster.istio import istio_crds

Obj = dict[str, Any]

PROVIDER_CRDS: dict[str, list[Obj]] = {
    "istio": istio_crds(),
    "gatewayapi": gatewayapi.CRDS,
    "smi": smi.CRDS,
    "appmesh": appmesh.CRDS,
    "contour": contour.CRDS,
    "gloo": gloo.CRDS,
    "traefik": traefik.CRDS,
    "apisix": apisix.CRDS,
    "kuma": kuma.CRDS,
    "knative": knative.CRDS,
    "keda": keda.CRDS,
}


def provider_names(selection: bool | str | Iterable[str]) -> list[str]:
    """The providers a `install_provider_crds` value names (True: all; False: none); unknown names raise."""
    if selection is True:
        return list(PROVIDER_CRDS)
    if selection is False:
        return []
    names = [selection] if isinstance(selection, str) else list(selection)
    unknown = [n for n in names if n not in PROVIDER_CRDS]
    if unknown:
        known = ", ".join(PROVIDER_CRDS)
        raise ValueError(f"unknown routing provider(s) {', '.join(unknown)}; known: {known}")
    return list(dict.fromkeys(names))


def provider_crds(selection: bool | str | Iterable[str] = True) -> list[Obj]:
    """Copies of the CRDs of the selected providers, in registry order per name."""
    return [copy.deepcopy(c) for name in provider_names(selection) for c in PROVIDER_CRDS[name]]


__all__ = ["PROVIDER_CRDS", "provider_crds", "provider_names"]
