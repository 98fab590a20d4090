"""`ObjectCache.watch`: a router's kinds are watched on demand, and a kind the cluster does not serve is
reported as missing (not waited for forever), then picked up once its CRD is installed."""

from __future__ import annotations

import contextlib
from typing import Any

from canarist.kube import AlreadyExists, KubeClient
from canarist.kube import resources as r
from canarist.kube.cache import MISSING, PENDING, SYNCED, ObjectCache, StaticCache
from canarist.kube.resources import ResourceKind

from .conftest import istio_crd
from .test_informer import eventually

GADGET = ResourceKind("networking.istio.io", "v1beta1", "gadgets", "Gadget")
r.register(GADGET)


async def test_a_kind_is_watched_from_the_first_caller_that_needs_it(kube: KubeClient, ns: str) -> None:
    cache = ObjectCache(kube, [r.NAMESPACE])
    await cache.start()
    try:
        assert not cache.watches(r.CONFIG_MAP)
        await kube.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "early", "namespace": ns}}
        )
        assert cache.watch(r.CONFIG_MAP) == PENDING
        assert cache.watches(r.CONFIG_MAP)
        await eventually(lambda: cache.watch(r.CONFIG_MAP) == SYNCED, within=60)
        assert cache.get(r.CONFIG_MAP, ns, "early") is not None
    finally:
        await cache.stop()


async def test_a_kind_without_its_crd_is_missing_until_the_crd_is_installed(
    kube: KubeClient, ns: str
) -> None:
    cache = ObjectCache(kube, [r.NAMESPACE])
    await cache.start()
    try:
        assert cache.watch(GADGET) == PENDING
        await eventually(lambda: cache.watch(GADGET) == MISSING, within=60)
        assert cache.synced  # the kinds listed at start are unaffected
        with contextlib.suppress(AlreadyExists):
            await kube.create(istio_crd("gadgets", "Gadget"))
        gadget: dict[str, Any] = {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "Gadget",
            "metadata": {"name": "g", "namespace": ns},
        }
        await kube.create(gadget)
        # The informer keeps checking (slowly) and syncs once the kind is served.
        await eventually(lambda: cache.watch(GADGET) == SYNCED, within=60)
        await eventually(lambda: cache.get(GADGET, ns, "g") is not None, within=60)
    finally:
        await cache.stop()


def test_a_static_cache_has_every_kind() -> None:
    assert StaticCache().watch(GADGET) == SYNCED
