"""Fixtures for the access-layer tests: a `KubeClient` on the local control plane and a fresh namespace."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from canarist.api.crds import crds as flagger_crds
from canarist.kube import AlreadyExists, KubeClient, NotFound, RequestLog
from canarist.kube import resources as r

from ._net import ClusterControl, TcpProxy

_counter = itertools.count()


def istio_crd(plural: str, kind: str) -> dict[str, Any]:
    """A minimal networking.istio.io CRD (no schema beyond preserve-unknown-fields), as Istio's are."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.networking.istio.io"},
        "spec": {
            "group": "networking.istio.io",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": "v1beta1",
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


@pytest.fixture
async def control(local_cluster: Any) -> AsyncIterator[ClusterControl]:
    """Fault injection and compaction; faults are cleared after the test."""
    ctl = ClusterControl(local_cluster.url)
    try:
        yield ctl
    finally:
        await ctl.clear_faults()


@pytest.fixture
async def proxy(local_cluster: Any) -> AsyncIterator[TcpProxy]:
    url = urlsplit(local_cluster.url)
    p = TcpProxy(url.hostname or "127.0.0.1", url.port or 80)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


@pytest.fixture
async def proxied(local_cluster: Any, proxy: TcpProxy, request_log: RequestLog) -> AsyncIterator[KubeClient]:
    """A client that talks to the control plane through `proxy`."""
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig, server=proxy.url, on_request=request_log)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog(keep=10_000)


@pytest.fixture
async def kube(local_cluster: Any, request_log: RequestLog) -> AsyncIterator[KubeClient]:
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig, on_request=request_log)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def ns(kube: KubeClient) -> str:
    name = f"kt-{os.getpid()}-{next(_counter)}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
async def crds(kube: KubeClient) -> None:
    """Install the flagger.app and networking.istio.io CRDs (idempotent across tests)."""
    wanted = [
        *flagger_crds(),
        istio_crd("virtualservices", "VirtualService"),
        istio_crd("destinationrules", "DestinationRule"),
    ]
    for crd in wanted:
        with contextlib.suppress(AlreadyExists):
            await kube.create(crd)
    # A CRD is served once it is Established; the local control plane does that synchronously, a real
    # server shortly after. Wait for the list endpoint of each kind to answer.
    for kind in (r.CANARY, r.METRIC_TEMPLATE, r.ALERT_PROVIDER, r.VIRTUAL_SERVICE, r.DESTINATION_RULE):
        for _ in range(50):
            try:
                await kube.list(kind, namespace="default")
                break
            except NotFound:
                await asyncio.sleep(0.05)


def deployment(name: str, ns: str, image: str = "podinfo:6.0.0", **labels: str) -> dict[str, Any]:
    app = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {**app, **labels}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": app},
            "template": {
                "metadata": {"labels": app},
                "spec": {
                    "containers": [
                        {"name": "app", "image": image, "ports": [{"containerPort": 9898, "name": "http"}]},
                        {"name": "sidecar", "image": "envoy:1"},
                    ]
                },
            },
        },
    }


def configmap(name: str, ns: str, data: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "data": data or {"k": "v"},
    }


def canary(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "service": {"port": 9898},
            "analysis": {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10},
        },
    }
