"""The operator's ClusterRole is enough, and no more: every Kubernetes API request the real operator makes
during a promotion and a rollback (with leader election and config tracking on), and during the run of a
canary with a KEDA ScaledObject, is checked against the rules of deploy/base/operator/rbac.yaml, and every
grant the runs do not exercise must be justified below.

The local control plane has no authorizer, so this is where least privilege is proven: the operator's own
client records each request (verb, group, resource, subresource, namespace, name) through its request hook.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from typing import Any

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient, RequestLog, RequestRecord
from canarist.kube.errors import KubeError
from canarist.localcluster.crds import provider_crds
from canarist.operator.runtime import LEASE_NAME, Operator
from canarist.routers import registry as routers
from canarist.routers.istio import ISTIO
from tests.deploy.support import load_roles
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    PROMOTION_TIMEOUT_S,
    OperatorProcess,
    apply,
    fast_seed,
    image_of,
    load_example,
    phase_is,
    set_image,
    wait_for,
)
from tests.e2e.test_seams import daemonset_canary, podinfo_daemonset, set_daemonset_image

OPERATOR_NAMESPACE = "canarist-system"  # where deploy/ runs the operator and keeps its Lease
#: what a KEDA autoscalerRef needs, all exercised by test_a_keda_canary_is_blocked_until_keda_then_runs.
KEDA_GRANTS = {("keda.sh", "scaledobjects", verb) for verb in ("list", "watch", "create", "update", "patch")}
#: used by DaemonSet targets only (test_a_daemonset_canary_s_requests_are_granted_and_use_its_grants)
DAEMONSET_GRANTS = {("apps", "daemonsets", verb) for verb in ("list", "watch", "create", "update", "patch")}
#: used by Knative Service targets only (tests/e2e/test_knative.py records a promotion and a rollback)
KNATIVE_GRANTS = {("serving.knative.dev", "services", verb) for verb in ("list", "watch", "update")} | {
    ("serving.knative.dev", "revisions", verb) for verb in ("list", "watch")
}

# Granted but possibly not exercised by this run, and why each is still needed. The test fails on any
# other unexercised grant, so a rule nobody needs cannot linger in rbac.yaml.
JUSTIFIED_UNEXERCISED: dict[tuple[str, str, str], str] = {
    # The Lease is created once per cluster; a later run (or the other replica) only gets and updates it.
    ("coordination.k8s.io", "leases", "create"): "first start in a cluster creates the Lease",
    # Events are patched only when the same event repeats within the aggregation window.
    ("", "events", "patch"): "repeated events are aggregated (count patch)",
    # The primary HPA is replaced only when the target's HPA spec changes during a run.
    ("autoscaling", "horizontalpodautoscalers", "update"): "the target HPA changed: the primary HPA follows",
    # Services are replaced only when their ports/selector/metadata drift from the Canary's service spec.
    ("", "services", "update"): "spec.service changed (ports, metadata): generated services follow",
    # The finalizer is patched only for canaries with spec.revertOnDeletion (tested in test_lifecycle.py).
    ("flagger.app", "canaries", "patch"): "revertOnDeletion adds and removes finalizer.flagger.app",
    # Status is PUT over the cached version; the canary is read again only when that PUT conflicts.
    ("flagger.app", "canaries", "get"): "a status write that conflicts re-reads the canary and retries",
    # A primary Secret copy is replaced only when its Secret's data changes (this run changes a ConfigMap;
    # an unchanged copy is never rewritten).
    ("", "secrets", "update"): "a tracked Secret changed: its -primary copy follows on promotion",
    # DestinationRules are replaced only when spec.service.trafficPolicy changes.
    ("networking.istio.io", "destinationrules", "update"): "spec.service.trafficPolicy changed",
    # A CanaryCommand's status is written once the operator consumed it (tests/e2e/test_control.py).
    ("canarist.dev", "canarycommands/status", "update"): "a person sent canarist pause, abort...",
}


class RecordedOperator(OperatorProcess):
    """`OperatorProcess` with a `RequestLog` on its client from the very first request (the CRD check)."""

    def __init__(self, world: World, requests: RequestLog, **overrides: Any) -> None:
        super().__init__(dataclasses.replace(world.settings, **overrides), world.kubeconfig)
        self.requests = requests

    async def start(self) -> Operator:
        self.client = KubeClient.from_kubeconfig(self.kubeconfig)
        self.client.add_request_hook(self.requests)
        self.operator = Operator(self.settings, self.client, http_host="127.0.0.1")
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.operator.run(self._stop), name="operator")
        await wait_for(self._synced, what="operator caches to sync", timeout_s=30)
        return self.operator

    async def stop(self) -> None:
        """Stop like SIGTERM does, releasing the Lease.

        Operator bug (reported, not fixed here): with leader election on, a graceful stop ends in
        ``SystemExit("leader election lost")`` because the election's on_stopped callback still sees
        ``Operator.leading`` true; asyncio re-raises SystemExit through the event loop, so it cannot be
        caught around the await. Clearing ``leading`` first lets the shutdown (and its Lease release
        requests, which this test records) run to the end.
        """
        if self.operator is not None:
            self.operator.leading = False
        await super().stop()


def tracked_configs() -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "podinfo-config", "namespace": NAMESPACE},
            "data": {"color": "blue"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "podinfo-secret", "namespace": NAMESPACE},
            "type": "Opaque",
            "stringData": {"token": "one"},
        },
    ]


def deployment_with_configs() -> dict[str, Any]:
    deployment = copy.deepcopy(load_example("deployment.yaml"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [
        {"configMapRef": {"name": "podinfo-config"}},
        {"secretRef": {"name": "podinfo-secret"}},
    ]
    return deployment


def denied(records: list[RequestRecord]) -> list[str]:
    roles = load_roles()
    cluster_role = roles["ClusterRole/canarist"]
    lease_role = roles["Role/canarist-leader-election"]
    problems = []
    for r in records:
        resource = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
        if cluster_role.allows(r.group, resource, r.verb, r.namespace, r.name):
            continue
        if lease_role.allows(r.group, resource, r.verb, r.namespace, r.name):
            continue
        problems.append(
            f"{r.verb} {r.group or 'core'}/{resource} ns={r.namespace!r} name={r.name!r} -> {r.code}"
        )
    return sorted(set(problems))


async def test_every_request_of_a_promotion_and_a_rollback_is_granted(world: World) -> None:
    # The operator's namespace exists, as deploy/ creates it; the Lease goes there.
    await apply(
        world.client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}
    )
    requests = RequestLog(keep=1_000_000)
    process = RecordedOperator(
        world, requests, enable_leader_election=True, leader_election_namespace=OPERATOR_NAMESPACE
    )
    await process.start()
    world.operators.append(process)

    await apply(world.client, load_example("namespace.yaml"))
    for config in tracked_configs():
        await apply(world.client, config)
    await apply(world.client, deployment_with_configs())
    await apply(world.client, load_example("hpa.yaml"))
    await apply(world.client, fast_seed(stepWeight=25))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
    assert await world.client.get_or_none(kinds.CONFIG_MAP, "podinfo-config-primary", namespace=NAMESPACE)

    # Promotion: a new image and a changed ConfigMap (the primary copy is updated on promotion).
    changed = tracked_configs()[0]
    changed["data"] = {"color": "green"}
    await apply(world.client, changed)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_for(lambda: phase_is(world, "Progressing"), what="Progressing", timeout_s=30)
    await wait_for(
        lambda: phase_is(world, "Succeeded"), what="Succeeded", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
    )
    primary_config = await world.client.get(kinds.CONFIG_MAP, "podinfo-config-primary", namespace=NAMESPACE)
    assert primary_config["data"] == {"color": "green"}

    # Rollback: errors on the canary.
    world.canary_app.set_knobs(error_rate=0.5)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
    await wait_for(
        lambda: phase_is(world, "Failed"), what="Failed", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
    )

    # Shut down too: releasing the Lease is part of what the operator does.
    await process.stop()
    world.operators.remove(process)

    records = requests.records
    assert records, "the request hook saw nothing"
    assert not denied(records), "requests the ClusterRole/Role would deny:\n" + "\n".join(denied(records))
    assert all(r.code is not None and r.code < 500 for r in records)
    forbidden = [r for r in records if r.code == 403]
    assert not forbidden

    exercised = requests.permissions()
    # Sanity: the run did exercise the interesting paths.
    for needed in [
        ("apiextensions.k8s.io", "customresourcedefinitions", "get"),
        ("flagger.app", "canaries/status", "update"),
        ("apps", "deployments", "create"),
        ("apps", "deployments", "update"),
        ("apps", "deployments", "patch"),
        ("", "configmaps", "create"),
        ("", "configmaps", "update"),
        ("", "secrets", "create"),
        ("", "events", "create"),
        ("networking.istio.io", "virtualservices", "update"),
        ("coordination.k8s.io", "leases", "update"),
    ]:
        assert needed in exercised, needed
    # Leases only in the operator's namespace, only its own (a create names the collection, not the object).
    lease_requests = {(r.namespace, r.name or r.verb) for r in records if r.resource == "leases"}
    assert lease_requests == {(OPERATOR_NAMESPACE, LEASE_NAME), (OPERATOR_NAMESPACE, "create")}

    roles = load_roles()
    granted = roles["ClusterRole/canarist"].grants() | roles["Role/canarist-leader-election"].grants()
    unexercised = granted - exercised
    # This run routes through Istio; every other router's grants are used only by canaries on that provider
    # (each one runs end to end in tests/sandbox/test_provider_*.py). Their kinds are those the routers
    # declare, and nothing more is granted for them.
    other_routers = {
        (kind.group, kind.plural, verb)
        for router in routers.routers()
        if router.name != "istio"
        for kind in router.kinds
        for verb in ("list", "watch", "create", "update")
    } - {(k.group, k.plural, v) for k in ISTIO.kinds for v in ("list", "watch", "create", "update")}
    unjustified = (
        unexercised
        - set(JUSTIFIED_UNEXERCISED)
        - other_routers
        - KEDA_GRANTS
        - DAEMONSET_GRANTS
        - KNATIVE_GRANTS
    )
    assert not unjustified, f"granted but neither used nor justified: {sorted(unjustified)}"
    stale = set(JUSTIFIED_UNEXERCISED) - granted
    assert not stale, f"justifications for grants rbac.yaml no longer has: {sorted(stale)}"
    print("granted, not exercised by this run:", sorted(unexercised))


PAUSED = "autoscaling.keda.sh/paused-replicas"


def podinfo_scaledobject(polling_interval: int = 10) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "podinfo-so", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"name": "podinfo"},
            "pollingInterval": polling_interval,
            "minReplicaCount": 1,
            "maxReplicaCount": 3,
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "requests",
                    "metadata": {
                        "query": 'sum(rate(http_requests_total{app="podinfo"}[1m]))',
                        "threshold": "5",
                    },
                }
            ],
        },
    }


async def _applied(world: World, obj: dict[str, Any]) -> bool:
    """Whether ``obj`` could be applied (False while its CRD is not served yet)."""
    try:
        await apply(world.client, obj)
    except KubeError:
        return False
    return True


async def _paused(world: World, name: str) -> bool:
    so = await world.client.get(kinds.SCALED_OBJECT, name, namespace=NAMESPACE)
    return (so["metadata"].get("annotations") or {}).get(PAUSED) == "0"


async def _blocked(world: World) -> dict[str, Any] | None:
    canary = await world.client.get(kinds.CANARY, "podinfo", namespace=NAMESPACE)
    conditions = (canary.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Blocked"), None)


async def test_a_keda_canary_is_blocked_until_keda_then_runs_with_a_paused_target(world: World) -> None:
    """A ScaledObject autoscalerRef: said on the Canary until KEDA's CRD is served, then a primary ScaledObject
    (updated on promotion when the target's changed), the target's paused while scaled down and resumed for the
    analysis — every request granted, every KEDA grant used."""
    requests = RequestLog(keep=1_000_000)
    process = RecordedOperator(world, requests, control_loop_interval_s=0.3)
    await process.start()
    world.operators.append(process)
    await apply(world.client, load_example("namespace.yaml"))
    await apply(world.client, load_example("deployment.yaml"))
    canary = fast_seed(stepWeight=50)
    canary["spec"]["autoscalerRef"] = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "name": "podinfo-so",
    }
    await apply(world.client, canary)
    await wait_for(lambda: _blocked(world), what="the Blocked condition", timeout_s=60)
    condition = await _blocked(world)
    assert condition is not None
    assert (condition["reason"], condition["message"]) == (
        "AutoscalerNotInstalled",
        "spec.autoscalerRef: the cluster does not serve scaledobjects.keda.sh (keda.sh/v1alpha1); "
        "install KEDA's CRDs",
    )

    for crd in provider_crds(["keda"]):
        await apply(world.client, crd)
    await wait_for(
        lambda: _applied(world, podinfo_scaledobject()), what="the ScaledObject applied", timeout_s=30
    )
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
    assert await _blocked(world) is None
    primary = await world.client.get(kinds.SCALED_OBJECT, "podinfo-so-primary", namespace=NAMESPACE)
    assert primary["spec"]["scaleTargetRef"] == {"name": "podinfo-primary"}
    assert primary["spec"]["triggers"][0]["metadata"]["query"] == (
        'sum(rate(http_requests_total{app="podinfo-primary"}[1m]))'
    )
    assert await _paused(world, "podinfo-so")

    # the target's ScaledObject changes, then a new revision: resumed for the analysis, the primary follows
    await apply(world.client, podinfo_scaledobject(polling_interval=20))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")

    async def resumed() -> bool:
        return not await _paused(world, "podinfo-so")

    await wait_for(resumed, what="the target's ScaledObject resumed for the analysis", timeout_s=60)
    await wait_for(
        lambda: phase_is(world, "Succeeded"), what="Succeeded", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
    )
    assert await _paused(world, "podinfo-so")
    primary = await world.client.get(kinds.SCALED_OBJECT, "podinfo-so-primary", namespace=NAMESPACE)
    assert primary["spec"]["pollingInterval"] == 20
    assert PAUSED not in (primary["metadata"].get("annotations") or {})

    await process.stop()
    world.operators.remove(process)
    records = requests.records
    assert not denied(records), "requests the ClusterRole would deny:\n" + "\n".join(denied(records))
    assert requests.permissions() >= KEDA_GRANTS, sorted(KEDA_GRANTS - requests.permissions())


async def test_a_daemonset_canary_s_requests_are_granted_and_use_its_grants(world: World) -> None:
    """A DaemonSet target: the `-primary` DaemonSet created, the target scaled to zero (node selector),
    promoted (the primary replaced) — every request granted, every DaemonSet grant used."""
    requests = RequestLog(keep=1_000_000)
    process = RecordedOperator(world, requests)
    await process.start()
    world.operators.append(process)
    await apply(world.client, load_example("namespace.yaml"))
    await apply(world.client, podinfo_daemonset())
    await apply(world.client, daemonset_canary(stepWeight=50))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
    await set_daemonset_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_for(
        lambda: phase_is(world, "Succeeded"), what="Succeeded", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
    )
    primary = await world.client.get(kinds.DAEMON_SET, "podinfo-primary", namespace=NAMESPACE)
    assert image_of(primary) == "quay.io/stefanprodan/podinfo:3.1.1"

    await process.stop()
    world.operators.remove(process)
    records = requests.records
    assert not denied(records), "requests the ClusterRole would deny:\n" + "\n".join(denied(records))
    assert requests.permissions() >= DAEMONSET_GRANTS, sorted(DAEMONSET_GRANTS - requests.permissions())
