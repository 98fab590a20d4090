"""The executor against a real local control plane, reading from a dict-backed cache: what a decision writes,
and that applying it again writes nothing (every action is idempotent, through the writer's one policy)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from canarist.api import Canary
from canarist.api.crds import crds
from canarist.engine.model import Initialize, Promote, Routes, ScaleDownTarget, ScaleUpTarget, SetRoutes
from canarist.kube import resources as kinds
from canarist.kube.cache import StaticCache
from canarist.kube.client import KubeClient, RequestRecord
from canarist.kube.events import EventRecorder
from canarist.kube.writer import Writer
from canarist.localcluster.crds.keda import keda_crds
from canarist.localcluster.crds.knative import knative_crds
from canarist.notify.outbox import Outbox
from canarist.operator.alerts import AlertSender
from canarist.operator.executor import Executor
from canarist.operator.observe import observe
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry
from tests.e2e.harness import wait_for
from tests.fixtures.canaries import canary_manifest
from tests.workloads.podinfo import deployment as podinfo_deployment

pytestmark = pytest.mark.localcluster(install_istio_crds=True)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WRITES = {"create", "update", "patch", "delete"}


@dataclass
class Rig:
    client: KubeClient
    cache: StaticCache
    executor: Executor
    settings: OperatorSettings
    writes: list[RequestRecord]

    async def put(self, kind: kinds.ResourceKind, obj: dict[str, Any]) -> dict[str, Any]:
        created = await self.client.create(obj, kind=kind)
        self.cache.put(kind, created)
        return created

    async def refresh(self, kind: kinds.ResourceKind, name: str) -> None:
        """What an informer would hold by now (the local control plane's controllers update status)."""
        self.cache.put(kind, await self.client.get(kind, name, namespace="test"))

    async def canary(self, manifest: dict[str, Any]) -> Canary:
        created = await self.put(kinds.CANARY, manifest)
        return Canary.model_validate(created)

    async def apply(self, canary: Canary, *actions: Any) -> list[RequestRecord]:
        """Apply ``actions`` as one decision; the write requests it made."""
        before = len(self.writes)
        observed = observe(canary, self.cache, self.settings, NOW, None)
        await self.executor.apply(canary, observed, tuple(actions))
        return [r for r in self.writes[before:] if r.resource != "events"]


@pytest.fixture
async def rig(local_cluster: Any) -> AsyncIterator[Rig]:
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig)
    for crd in crds():
        await client.create(crd, kind=kinds.CUSTOM_RESOURCE_DEFINITION)
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}})
    writes: list[RequestRecord] = []
    client.add_request_hook(lambda record: writes.append(record) if record.verb in WRITES else None)
    cache = StaticCache()
    settings = OperatorSettings()
    telemetry = Telemetry("istio")
    outbox = Outbox()
    alerts = AlertSender(cache, settings, telemetry, outbox)
    executor = Executor(
        client, cache, Writer(client, cache), EventRecorder(client), settings, telemetry, alerts, outbox
    )
    try:
        yield Rig(client, cache, executor, settings, writes)
    finally:
        await alerts.close(1.0)
        await client.close()


def daemonset(image: str = "podinfo:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "podinfo", "namespace": "test", "labels": {"app": "podinfo"}},
        "spec": {
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": image,
                            "ports": [{"name": "http", "containerPort": 9898}],
                            "envFrom": [{"configMapRef": {"name": "settings"}}],
                        }
                    ]
                },
            },
        },
    }


SETTINGS_MAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "settings", "namespace": "test"},
}


async def _initialized(rig: Rig) -> Canary:
    await rig.put(kinds.CONFIG_MAP, {**SETTINGS_MAP, "data": {"color": "blue"}})
    await rig.put(kinds.DAEMON_SET, daemonset())
    canary = await rig.canary(canary_manifest(target_kind="DaemonSet", autoscaler=None))
    writes = await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget())
    assert writes, "initialization wrote nothing"
    return canary


async def test_initialization_of_a_daemonset_writes_a_daemonset_primary_once(rig: Rig) -> None:
    canary = await _initialized(rig)
    primary = await rig.client.get(kinds.DAEMON_SET, "podinfo-primary", namespace="test")
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert await rig.client.get_or_none(kinds.DEPLOYMENT, "podinfo-primary", namespace="test") is None
    copy = await rig.client.get(kinds.CONFIG_MAP, "settings-primary", namespace="test")
    assert copy["data"] == {"color": "blue"}
    for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
        service = await rig.client.get(kinds.SERVICE, name, namespace="test")
        assert service["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    target = await rig.client.get(kinds.DAEMON_SET, "podinfo", namespace="test")
    assert target["spec"]["template"]["spec"]["nodeSelector"] == {"flagger.app/scale-to-zero": "true"}

    # The same decision again, with the cache holding what was written: not one write.
    assert await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget()) == []


async def test_a_replayed_promote_writes_nothing(rig: Rig) -> None:
    canary = await _initialized(rig)
    changed = await rig.client.get(kinds.DAEMON_SET, "podinfo", namespace="test")
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2"
    rig.cache.put(kinds.DAEMON_SET, await rig.client.replace(changed, kind=kinds.DAEMON_SET))

    await rig.refresh(kinds.DAEMON_SET, "podinfo-primary")
    writes = await rig.apply(canary, Promote())
    assert [(w.verb, w.resource, w.name) for w in writes] == [("update", "daemonsets", "podinfo-primary")]
    primary = await rig.client.get(kinds.DAEMON_SET, "podinfo-primary", namespace="test")
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"] == "podinfo:2"
    # After a crash or a lost answer the same Promote comes again: the primary already carries it.
    await rig.refresh(kinds.DAEMON_SET, "podinfo-primary")
    assert await rig.apply(canary, Promote()) == []


SERVICE_REF = {"apiVersion": "v1", "kind": "Service", "name": "podinfo"}


def target_service(selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test", "labels": {"app": "podinfo"}},
        "spec": {
            "selector": selector or {"app": "podinfo"},
            "ports": [{"name": "http", "port": 9898, "targetPort": 9898}],
        },
    }


async def _service_initialized(rig: Rig) -> Canary:
    await rig.put(kinds.SERVICE, target_service())
    canary = await rig.canary(canary_manifest(autoscaler=None, spec={"targetRef": SERVICE_REF}))
    writes = await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget())
    # creates carry no name in the request path: two Services (the copies), the Istio routing objects
    assert sorted((w.verb, w.resource) for w in writes) == [
        ("create", "destinationrules"),
        ("create", "destinationrules"),
        ("create", "services"),
        ("create", "services"),
        ("create", "virtualservices"),
    ]
    return canary


async def test_a_service_target_gets_a_canary_and_a_primary_copy_and_is_left_alone(rig: Rig) -> None:
    canary = await _service_initialized(rig)
    target = await rig.client.get(kinds.SERVICE, "podinfo", namespace="test")
    assert "ownerReferences" not in target["metadata"]  # the target is its own apex: not taken over
    ips = {target["spec"]["clusterIP"]}
    for name in ("podinfo-canary", "podinfo-primary"):
        copy = await rig.client.get(kinds.SERVICE, name, namespace="test")
        assert copy["spec"]["selector"] == {"app": "podinfo"}
        assert copy["metadata"]["ownerReferences"][0]["name"] == "podinfo"
        ips.add(copy["spec"]["clusterIP"])
    assert len(ips) == 3  # each copy has its own cluster IP
    vs = await rig.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace="test")
    hosts = [d["destination"]["host"] for d in vs["spec"]["http"][0]["route"]]
    assert hosts == ["podinfo-primary", "podinfo-canary"]
    # The same decision again: not one write.
    assert await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget()) == []


async def test_the_canary_copy_follows_the_target_and_promotion_copies_it_to_the_primary(rig: Rig) -> None:
    canary = await _service_initialized(rig)
    primary_ip = (await rig.client.get(kinds.SERVICE, "podinfo-primary", namespace="test"))["spec"][
        "clusterIP"
    ]
    changed = await rig.client.get(kinds.SERVICE, "podinfo", namespace="test")
    changed["spec"]["selector"] = {"app": "podinfo", "version": "v2"}
    rig.cache.put(kinds.SERVICE, await rig.client.replace(changed, kind=kinds.SERVICE))

    writes = await rig.apply(canary, Initialize())
    assert [(w.verb, w.name) for w in writes] == [("update", "podinfo-canary")]
    copy = await rig.client.get(kinds.SERVICE, "podinfo-canary", namespace="test")
    assert copy["spec"]["selector"] == {"app": "podinfo", "version": "v2"}
    primary = await rig.client.get(kinds.SERVICE, "podinfo-primary", namespace="test")
    assert primary["spec"]["selector"] == {"app": "podinfo"}  # created once, not refreshed

    writes = await rig.apply(canary, Promote())
    assert [(w.verb, w.resource, w.name) for w in writes] == [("update", "services", "podinfo-primary")]
    primary = await rig.client.get(kinds.SERVICE, "podinfo-primary", namespace="test")
    assert primary["spec"]["selector"] == {"app": "podinfo", "version": "v2"}
    assert primary["spec"]["clusterIP"] == primary_ip
    assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert await rig.apply(canary, Promote()) == []


async def test_reverting_a_service_target_leaves_the_target_and_its_copies_alone(rig: Rig) -> None:
    await rig.put(kinds.SERVICE, target_service())
    manifest = canary_manifest(autoscaler=None, spec={"targetRef": SERVICE_REF, "revertOnDeletion": True})
    canary = await rig.canary(manifest)
    await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget())
    before = len(rig.writes)
    await rig.executor.revert(canary, observe(canary, rig.cache, rig.settings, NOW, None))
    assert [w for w in rig.writes[before:] if w.resource == "services"] == []


KEDA_REF = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo-so"}
PAUSED = "autoscaling.keda.sh/paused-replicas"


def target_so(polling_interval: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "podinfo-so", "namespace": "test"},
        "spec": {
            "scaleTargetRef": {"name": "podinfo"},
            "pollingInterval": polling_interval,
            "minReplicaCount": 2,
            "maxReplicaCount": 4,
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "requests",
                    "metadata": {"query": 'sum(rate(http_requests_total{app="podinfo-canary"}[1m]))'},
                }
            ],
        },
    }


async def _keda_initialized(rig: Rig) -> Canary:
    for crd in keda_crds():
        await rig.client.create(crd, kind=kinds.CUSTOM_RESOURCE_DEFINITION)
    await rig.put(kinds.DEPLOYMENT, podinfo_deployment())
    await rig.put(kinds.SCALED_OBJECT, target_so())
    canary = await rig.canary(canary_manifest(autoscaler=KEDA_REF))
    await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget())
    return canary


async def test_a_keda_target_gets_a_primary_scaledobject_and_is_paused_while_scaled_down(rig: Rig) -> None:
    canary = await _keda_initialized(rig)
    primary = await rig.client.get(kinds.SCALED_OBJECT, "podinfo-so-primary", namespace="test")
    assert primary["spec"]["scaleTargetRef"] == {"name": "podinfo-primary"}
    assert primary["spec"]["triggers"][0]["metadata"]["query"] == (
        'sum(rate(http_requests_total{app="podinfo-primary"}[1m]))'
    )
    assert primary["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    target = await rig.client.get(kinds.SCALED_OBJECT, "podinfo-so", namespace="test")
    assert target["metadata"]["annotations"][PAUSED] == "0"
    deployment = await rig.client.get(kinds.DEPLOYMENT, "podinfo", namespace="test")
    assert deployment["spec"]["replicas"] == 0
    assert await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget()) == []

    # A new revision: the target's ScaledObject is resumed, the target scaled to its minReplicaCount.
    writes = await rig.apply(canary, ScaleUpTarget())
    assert [(w.verb, w.resource) for w in writes] == [("patch", "scaledobjects"), ("patch", "deployments")]
    target = await rig.client.get(kinds.SCALED_OBJECT, "podinfo-so", namespace="test")
    assert PAUSED not in (target["metadata"].get("annotations") or {})
    deployment = await rig.client.get(kinds.DEPLOYMENT, "podinfo", namespace="test")
    assert deployment["spec"]["replicas"] == 2


async def test_promotion_updates_the_primary_scaledobject_and_revert_resumes_the_target(rig: Rig) -> None:
    canary = await _keda_initialized(rig)
    changed = await rig.client.get(kinds.SCALED_OBJECT, "podinfo-so", namespace="test")
    changed["spec"]["pollingInterval"] = 20
    rig.cache.put(kinds.SCALED_OBJECT, await rig.client.replace(changed, kind=kinds.SCALED_OBJECT))
    # initialization creates the primary only once: an existing one is left as it is
    assert await rig.apply(canary, Initialize(takeover=True)) == []

    changed_target = await rig.client.get(kinds.DEPLOYMENT, "podinfo", namespace="test")
    changed_target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2"
    rig.cache.put(kinds.DEPLOYMENT, await rig.client.replace(changed_target, kind=kinds.DEPLOYMENT))
    await rig.refresh(kinds.DEPLOYMENT, "podinfo-primary")
    writes = await rig.apply(canary, Promote())
    assert ("update", "scaledobjects", "podinfo-so-primary") in [(w.verb, w.resource, w.name) for w in writes]
    primary = await rig.client.get(kinds.SCALED_OBJECT, "podinfo-so-primary", namespace="test")
    assert primary["spec"]["pollingInterval"] == 20

    await rig.executor.revert(canary, observe(canary, rig.cache, rig.settings, NOW, None))
    target = await rig.client.get(kinds.SCALED_OBJECT, "podinfo-so", namespace="test")
    assert PAUSED not in (target["metadata"].get("annotations") or {})


KNATIVE_REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}


def knative_service(image: str = "podinfo:1") -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}},
    }


async def _knative_settled(rig: Rig, revision: str) -> None:
    """The cache once the local control plane's Knative stand-in made ``revision`` and it is ready."""

    async def settled() -> bool:
        service = await rig.client.get(kinds.KNATIVE_SERVICE, "podinfo", namespace="test")
        status = service.get("status") or {}
        return (
            status.get("latestReadyRevisionName") == revision
            and status.get("observedGeneration") == service["metadata"]["generation"]
        )

    await wait_for(settled, what=f"Knative revision {revision} ready", timeout_s=20)
    await rig.refresh(kinds.KNATIVE_SERVICE, "podinfo")
    for obj in (await rig.client.list(kinds.KNATIVE_REVISION, namespace="test")).items:
        rig.cache.put(kinds.KNATIVE_REVISION, obj)


async def test_a_knative_target_is_annotated_routed_and_promoted_in_place(rig: Rig) -> None:
    for crd in knative_crds():
        await rig.client.create(crd, kind=kinds.CUSTOM_RESOURCE_DEFINITION)
    await rig.put(kinds.KNATIVE_SERVICE, knative_service())
    await _knative_settled(rig, "podinfo-00001")
    canary = await rig.canary(
        canary_manifest(autoscaler=None, provider="knative", spec={"targetRef": KNATIVE_REF})
    )

    writes = await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget())
    # one update of the target itself: nothing created, nothing scaled
    assert [(w.verb, w.group, w.resource, w.name) for w in writes] == [
        ("update", "serving.knative.dev", "services", "podinfo")
    ]
    service = await rig.client.get(kinds.KNATIVE_SERVICE, "podinfo", namespace="test")
    assert service["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00001"
    assert service["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00001", "percent": 100},
    ]
    await _knative_settled(rig, "podinfo-00001")
    assert await rig.apply(canary, Initialize(takeover=True), ScaleDownTarget()) == []

    changed = await rig.client.get(kinds.KNATIVE_SERVICE, "podinfo", namespace="test")
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2"
    await rig.client.replace(changed, kind=kinds.KNATIVE_SERVICE)
    await _knative_settled(rig, "podinfo-00002")
    writes = await rig.apply(canary, SetRoutes(Routes(primary=60, canary=40)))
    assert [(w.verb, w.resource, w.name) for w in writes] == [("update", "services", "podinfo")]
    await _knative_settled(rig, "podinfo-00002")
    observed = observe(canary, rig.cache, rig.settings, NOW, None)
    assert observed.observation.routes == Routes(primary=60, canary=40)  # read back from status.traffic

    writes = await rig.apply(canary, Promote())
    assert [(w.verb, w.resource, w.name) for w in writes] == [("update", "services", "podinfo")]
    service = await rig.client.get(kinds.KNATIVE_SERVICE, "podinfo", namespace="test")
    assert service["metadata"]["annotations"]["flagger.app/primary-revision"] == "podinfo-00002"
    assert service["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 40},
        {"revisionName": "podinfo-00002", "percent": 60},
    ]
    await _knative_settled(rig, "podinfo-00002")
    assert await rig.apply(canary, Promote()) == []
    await rig.apply(canary, SetRoutes(Routes(primary=100, canary=0)))
    service = await rig.client.get(kinds.KNATIVE_SERVICE, "podinfo", namespace="test")
    assert service["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00002", "percent": 100},
    ]

    # revertOnDeletion: the annotation goes, Knative's default routing (all to the latest revision) comes back
    await _knative_settled(rig, "podinfo-00002")
    await rig.executor.revert(canary, observe(canary, rig.cache, rig.settings, NOW, None))
    service = await rig.client.get(kinds.KNATIVE_SERVICE, "podinfo", namespace="test")
    assert "flagger.app/primary-revision" not in (service["metadata"].get("annotations") or {})
    assert service["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
