"""`ObjectCache.watch`: a router's kinds are watched on demand, and a kind the cluster does not serve is
reported as missing (not waited for forever), then picked up once its CRD is installed."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest

from canarist.kube import AlreadyExists, KubeClient
from canarist.kube import resources as r
from canarist.kube.cache import MISSING, PENDING, SYNCED, ObjectCache, StaticCache
from canarist.kube.resources import ResourceKind
from canarist.kube.writer import Writer
from canarist.localcluster.crds import provider_crds
from canarist.routers.kuma import TRAFFIC_ROUTE

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


async def test_a_cluster_scoped_custom_resource_through_a_namespaced_cache_and_the_writer(
    kube: KubeClient, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Kuma's TrafficRoute is cluster-scoped: an operator restricted to one namespace still lists and watches
    it cluster-wide, finds it under the empty namespace, and the writer creates and replaces it at the
    cluster path (its log names it without a namespace)."""
    caplog.set_level(logging.INFO)
    for crd in provider_crds("kuma"):
        with contextlib.suppress(AlreadyExists):
            await kube.create(crd)
    cache = ObjectCache(kube, [r.NAMESPACE], namespace=ns)
    await cache.start()
    try:
        assert cache.watch(TRAFFIC_ROUTE) == PENDING
        await eventually(lambda: cache.watch(TRAFFIC_ROUTE) == SYNCED, within=60)
        writer = Writer(kube, cache)
        route: dict[str, Any] = {
            "apiVersion": "kuma.io/v1alpha1",
            "kind": "TrafficRoute",
            "mesh": "default",
            "metadata": {"name": f"{ns}-route"},
            "spec": {"sources": [{"match": {"kuma.io/service": "*"}}], "conf": {"split": []}},
        }
        created = await writer.converge(TRAFFIC_ROUTE, route)
        assert created is not None
        assert "namespace" not in created["metadata"]
        await eventually(
            lambda: cache.informers[TRAFFIC_ROUTE].get(None, f"{ns}-route") is not None, within=60
        )
        assert cache.get(TRAFFIC_ROUTE, "", f"{ns}-route") is not None

        def reweigh(observed: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
            return {**observed, "mesh": "default", "spec": {**observed["spec"], "destinations": []}}

        replaced = await writer.converge(TRAFFIC_ROUTE, route, merge=reweigh)
        assert replaced is not None
        assert replaced["spec"]["destinations"] == []
        await eventually(
            lambda: (
                (cache.get(TRAFFIC_ROUTE, "", f"{ns}-route") or {}).get("spec", {}).get("destinations") == []
            ),
            within=60,
        )
        messages = [rec.getMessage() for rec in caplog.records]
        assert f"TrafficRoute {ns}-route created" in messages
        assert f"TrafficRoute {ns}-route updated" in messages
    finally:
        await cache.stop()


async def test_two_kinds_sharing_a_plural_stay_apart_and_a_later_kind_gets_its_handlers(
    kube: KubeClient, ns: str
) -> None:
    """A Knative Service and the Kubernetes Service of the same name (Knative makes one) are two objects:
    the cache, the overlay of our own writes and the read log key them by group and plural. A handler added
    before its kind is watched starts hearing from it when it is."""
    for crd in provider_crds("knative"):
        with contextlib.suppress(AlreadyExists):
            await kube.create(crd)
    cache = ObjectCache(kube, [r.SERVICE], namespace=ns)
    heard: list[str] = []
    cache.add_handler(r.KNATIVE_SERVICE, lambda event, obj, old: heard.append(str(obj["apiVersion"])))
    await cache.start()
    try:
        core = await kube.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "podinfo", "namespace": ns},
                "spec": {"ports": [{"port": 80}]},
            }
        )
        knative = await kube.create(
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Service",
                "metadata": {"name": "podinfo", "namespace": ns},
                "spec": {"template": {"spec": {"containers": [{"image": "podinfo:1"}]}}},
            },
            kind=r.KNATIVE_SERVICE,
        )
        assert cache.watch(r.KNATIVE_SERVICE) == PENDING
        await eventually(lambda: cache.watch(r.KNATIVE_SERVICE) == SYNCED, within=60)
        await eventually(lambda: cache.get(r.SERVICE, ns, "podinfo") is not None, within=60)
        await eventually(lambda: "serving.knative.dev/v1" in heard, within=60)
        assert (cache.get(r.SERVICE, ns, "podinfo") or {})["metadata"]["uid"] == core["metadata"]["uid"]
        assert (cache.get(r.KNATIVE_SERVICE, ns, "podinfo") or {})["metadata"]["uid"] == knative["metadata"][
            "uid"
        ]
        assert cache.kind_named("services") is r.SERVICE
        assert cache.kind_named("services.serving.knative.dev") is r.KNATIVE_SERVICE

        # our own write of the Knative Service is not mistaken for the Kubernetes one
        current = cache.get(r.KNATIVE_SERVICE, ns, "podinfo")
        assert current is not None
        written = await Writer(kube, cache).replace(
            r.KNATIVE_SERVICE, {**current, "metadata": {**current["metadata"], "labels": {"mine": "yes"}}}
        )
        assert written["metadata"]["labels"] == {"mine": "yes"}
        assert (cache.get(r.KNATIVE_SERVICE, ns, "podinfo") or {})["metadata"].get("labels") == {
            "mine": "yes"
        }
        assert (cache.get(r.SERVICE, ns, "podinfo") or {})["metadata"]["uid"] == core["metadata"]["uid"]
    finally:
        await cache.stop()
