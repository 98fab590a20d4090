"""Routers by provider name: ``routers.registry.get("istio")``.

Adding a router is one module and one line in ``_BUILTIN`` (or one `register` call from outside): the
router's declaration (`Router.kinds`, `.capabilities`, `.settings`) is all the rest of canarist reads —
the access layer learns its kinds, the operator watches them, RBAC grants them, and validation refuses
what it cannot route.
"""

from __future__ import annotations

from collections.abc import Callable

from canarist.api import Canary
from canarist.kube import resources
from canarist.kube.resources import ResourceKind
from canarist.routers import appmesh, smi
from canarist.routers.apisix import APISIX
from canarist.routers.base import RouteContext, Router, RouterConfigError
from canarist.routers.contour import CONTOUR
from canarist.routers.gatewayapi import GATEWAYAPI_V1, GATEWAYAPI_V1BETA1
from canarist.routers.gloo import GLOO
from canarist.routers.istio import ISTIO
from canarist.routers.knative import KNATIVE
from canarist.routers.kubernetes import KUBERNETES
from canarist.routers.kuma import KUMA
from canarist.routers.nginx import NGINX
from canarist.routers.skipper import SKIPPER
from canarist.routers.traefik import TRAEFIK

_ROUTERS: dict[str, Router] = {}
#: provider names with a variable part (``smi:v1alpha3:<mesh>``): prefix → a function building the router.
_FAMILIES: dict[str, Callable[[str], Router | None]] = {"smi": smi.router_for}

#: every ``spec.provider`` value Flagger accepts; the ones without a router here are "not supported yet".
FLAGGER_PROVIDERS = frozenset(
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
KNOWN_PROVIDERS = FLAGGER_PROVIDERS  # the former name


def base_provider(provider: str) -> str:
    """``smi:v1alpha3:istio`` → ``smi:v1alpha3``: Flagger's SMI names may carry the target mesh as a third
    part; the router is the one of the first two (it reads the mesh itself)."""
    parts = provider.split(":")
    return ":".join(parts[:2]) if parts[0] == "smi" and len(parts) > 2 else provider


class UnknownProviderError(LookupError):
    """No router for this provider name."""


def register(router: Router, *, replace: bool = False) -> Router:
    """Make ``router`` available under ``router.name``, and its kinds known to the access layer."""
    existing = _ROUTERS.get(router.name)
    if existing is not None and existing is not router and not replace:
        raise ValueError(f"a router named {router.name!r} is already registered")
    resources.register(*router.kinds)
    _ROUTERS[router.name] = router
    return router


def unregister(name: str) -> None:
    """Remove a router (for tests that register their own)."""
    _ROUTERS.pop(name, None)


def supported() -> list[str]:
    return sorted(_ROUTERS)


def routers() -> list[Router]:
    return [_ROUTERS[name] for name in supported()]


def all_kinds() -> list[ResourceKind]:
    """The kinds of every registered router, each once (what RBAC must grant)."""
    return list(dict.fromkeys(kind for router in routers() for kind in router.kinds))


def get(provider: str) -> Router:
    """The router for ``provider`` (``spec.provider`` or ``-mesh-provider``).

    Raises :class:`UnknownProviderError` naming the provider and the supported ones; a provider Flagger
    supports but canarist does not yet is reported as such.
    """
    router = _ROUTERS.get(provider)
    if router is None and base_provider(provider) in _ROUTERS:
        family = _FAMILIES.get(provider.split(":", 1)[0])
        router = family(provider) if family is not None else None
    if router is not None:
        return router
    if base_provider(provider) in FLAGGER_PROVIDERS:
        raise UnknownProviderError(
            f"provider {provider!r} is not supported by canarist yet (supported: {', '.join(supported())})"
        )
    raise UnknownProviderError(f"unknown provider {provider!r} (supported: {', '.join(supported())})")


def capability_problems(canary: Canary, router: Router) -> list[str]:
    """Path-qualified reasons why ``router`` cannot run ``canary`` as written (Flagger ignores these)."""
    analysis = canary.analysis()
    if analysis is None:
        return []
    caps, name = router.capabilities, router.name
    problems: list[str] = []
    if analysis.match and not caps.matches:
        problems.append(
            f"spec.analysis.match: provider {name} cannot route by header, cookie or query (A/B testing); "
            "use a provider that can, or remove match"
        )
    if analysis.mirror and not caps.mirroring:
        problems.append(f"spec.analysis.mirror: provider {name} cannot mirror traffic; remove mirror")
    if analysis.session_affinity is not None and not caps.session_affinity:
        problems.append(
            f"spec.analysis.sessionAffinity: provider {name} cannot pin sessions by cookie; "
            "remove sessionAffinity"
        )
    return problems


def provider_problems(canary: Canary, mesh_provider: str) -> list[str]:
    """Everything that stops the router of ``canary`` (``spec.provider``, else ``mesh_provider``) from
    running it: an unknown or unsupported provider, or what it cannot route. Path-qualified."""
    try:
        router = get(canary.provider_or(mesh_provider))
    except UnknownProviderError as error:
        return [f"spec.provider: {error}"]
    problems = capability_problems(canary, router)
    if not problems:
        try:
            router.objects(RouteContext.from_canary(canary))
        except RouterConfigError as error:
            problems.append(str(error))
    return problems


_BUILTIN: tuple[Router, ...] = (
    ISTIO,
    KUBERNETES,
    GATEWAYAPI_V1,
    GATEWAYAPI_V1BETA1,
    *smi.ROUTERS,
    *appmesh.ROUTERS,
    CONTOUR,
    NGINX,
    GLOO,
    TRAEFIK,
    SKIPPER,
    APISIX,
    KUMA,
    KNATIVE,
)
for _router in _BUILTIN:  # the built-in routers: one entry each
    register(_router)
