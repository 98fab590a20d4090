"""The sandbox's data-plane seam: one translator per routing provider, each programming the sandbox's Envoy
the way that provider's controller programs its proxy.

A translator (`Translator`: ``name``, ``kinds``, ``program(objects, world) -> Program``) lives in a module of
this package and is listed in `TRANSLATORS`; `canarist.sandbox.mesh.MeshWatcher` watches `watched_kinds()`
and :func:`canarist.sandbox.envoy_config.envoy_config` runs `translators()` in order and merges their
programs. Adding a provider is one module and one line below.
"""

from __future__ import annotations

from canarist.kube.resources import ResourceKind
from canarist.sandbox.dataplane.apisix import ApisixTranslator
from canarist.sandbox.dataplane.appmesh import AppMeshTranslator
from canarist.sandbox.dataplane.base import (
    ClusterDecl,
    Endpoint,
    Obj,
    PortKey,
    Program,
    ServiceKey,
    StatusWrite,
    Translator,
    World,
)
from canarist.sandbox.dataplane.contour import ContourTranslator
from canarist.sandbox.dataplane.gatewayapi import GatewayAPITranslator
from canarist.sandbox.dataplane.gloo import GlooTranslator
from canarist.sandbox.dataplane.istio import IstioTranslator
from canarist.sandbox.dataplane.knative import KnativeTranslator
from canarist.sandbox.dataplane.kuma import KumaTranslator
from canarist.sandbox.dataplane.nginx import NginxTranslator
from canarist.sandbox.dataplane.skipper import SkipperTranslator
from canarist.sandbox.dataplane.smi import SmiTranslator
from canarist.sandbox.dataplane.traefik import TraefikTranslator

__all__ = [
    "TRANSLATORS",
    "ClusterDecl",
    "Endpoint",
    "Obj",
    "PortKey",
    "Program",
    "ServiceKey",
    "StatusWrite",
    "Translator",
    "World",
    "register",
    "translators",
    "unregister",
    "watched_kinds",
]

# In order: earlier translators claim gateway domains first and their Service routes come first.
TRANSLATORS: list[Translator] = [
    IstioTranslator(),
    GatewayAPITranslator(),
    SmiTranslator(),
    AppMeshTranslator(),
    ContourTranslator(),
    NginxTranslator(),
    GlooTranslator(),
    TraefikTranslator(),
    SkipperTranslator(),
    ApisixTranslator(),
    KumaTranslator(),
    KnativeTranslator(),
]


def register(translator: Translator) -> Translator:
    """Add a translator at the end (replacing one of the same ``name`` in place); returns it."""
    for index, existing in enumerate(TRANSLATORS):
        if existing.name == translator.name:
            TRANSLATORS[index] = translator
            return translator
    TRANSLATORS.append(translator)
    return translator


def unregister(name: str) -> None:
    """Remove the translator called ``name`` (if registered)."""
    TRANSLATORS[:] = [t for t in TRANSLATORS if t.name != name]


def translators() -> tuple[Translator, ...]:
    """The registered translators, in order."""
    return tuple(TRANSLATORS)


def watched_kinds() -> tuple[ResourceKind, ...]:
    """Every kind some registered translator reads, once each, in translator order."""
    return tuple(dict.fromkeys(kind for t in TRANSLATORS for kind in t.kinds))
