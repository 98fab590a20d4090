"""A Knative Service target end to end, on the local control plane's Knative stand-in: the canary initializes
(the latest revision named primary, all traffic to it, nothing generated), a template change is a new revision
whose weights move through the Service's own traffic and which is promoted (the annotation moved, 100% to it),
and a failing one is rolled back (the traffic back to the primary revision). The operator's every request is
recorded: each one is granted by the ClusterRole, and every Knative grant is used."""

from __future__ import annotations

from typing import Any

from canarist.kube import resources as kinds
from canarist.kube.client import RequestLog
from canarist.localcluster.crds import provider_crds
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    apply,
    canary_status,
    fast_seed,
    load_example,
    phase_is,
    reaches,
    run_events,
    wait_for,
)
from tests.e2e.test_rbac import KNATIVE_GRANTS, RecordedOperator, denied

PRIMARY = "flagger.app/primary-revision"


def knative_service(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NAMESPACE},
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/minScale": "1"}},
                "spec": {"containers": [{"image": image, "ports": [{"containerPort": 9898}]}]},
            }
        },
    }


def knative_canary(hook_url: str) -> dict[str, Any]:
    canary = fast_seed(
        stepWeight=25,
        maxWeight=50,
        threshold=2,
        autoscaler=None,
        provider="knative",
        metrics=[],
        webhooks=[{"name": "smoke", "type": "rollout", "url": hook_url}],
        service={"port": 9898},
    )
    canary["spec"]["targetRef"] = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "name": "podinfo",
    }
    return canary


async def ksvc(world: World) -> dict[str, Any]:
    found: dict[str, Any] = await world.client.get(kinds.KNATIVE_SERVICE, "podinfo", namespace=NAMESPACE)
    return found


async def set_image(world: World, image: str) -> None:
    service = await ksvc(world)
    service["spec"]["template"]["spec"]["containers"][0]["image"] = image
    await world.client.replace(service, kind=kinds.KNATIVE_SERVICE)


def named_traffic(service: dict[str, Any], field: str) -> list[tuple[str, int]]:
    """``(latest | revision name, percent)`` of ``spec.traffic`` or ``status.traffic``."""
    entries = (service.get(field) or {}).get("traffic") or []
    return [("latest" if e.get("latestRevision") else e["revisionName"], e["percent"]) for e in entries]


async def test_a_knative_canary_promotes_a_new_revision_then_rolls_back_a_failing_one(
    world: World, capture_server: Any
) -> None:
    requests = RequestLog(keep=1_000_000)
    process = RecordedOperator(world, requests)
    await process.start()
    world.operators.append(process)
    hook = await capture_server(statuses=[200])
    for crd in provider_crds("knative"):
        await apply(world.client, crd)
    await apply(world.client, load_example("namespace.yaml"))
    await apply(world.client, knative_service("ghcr.io/stefanprodan/podinfo:6.0.0"))
    await apply(world.client, knative_canary(hook.url))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)

    service = await ksvc(world)
    assert service["metadata"]["annotations"][PRIMARY] == "podinfo-00001"
    assert named_traffic(service, "spec") == [("latest", 0), ("podinfo-00001", 100)]
    # nothing generated: no -primary or -canary objects of any kind, only what Knative makes per Revision
    services = (await world.client.list(kinds.SERVICE, namespace=NAMESPACE)).items
    deployments = (await world.client.list(kinds.DEPLOYMENT, namespace=NAMESPACE)).items
    assert [s["metadata"]["name"] for s in services] == ["podinfo-00001"]
    assert [d["metadata"]["name"] for d in deployments] == ["podinfo-00001-deployment"]
    for obj in (*services, *deployments):
        assert [o["kind"] for o in obj["metadata"]["ownerReferences"]] == ["Revision"]
    assert [r["metadata"]["name"] for r in (await world.client.list(kinds.KNATIVE_REVISION)).items] == [
        "podinfo-00001"
    ]

    # a new template: Knative makes podinfo-00002, which is analysed and promoted
    await set_image(world, "ghcr.io/stefanprodan/podinfo:6.0.1")
    await reaches(world, "Succeeded")
    events = run_events(world)
    assert "Advance podinfo.test canary weight 25" in events
    assert "Advance podinfo.test canary weight 50" in events
    assert "Copying podinfo.test template spec to podinfo-primary.test" in events
    service = await ksvc(world)
    assert service["metadata"]["annotations"][PRIMARY] == "podinfo-00002"
    assert named_traffic(service, "spec") == [("latest", 0), ("podinfo-00002", 100)]

    async def applied() -> list[tuple[str, int]] | None:
        """What Knative routes: both entries resolved to podinfo-00002, all of it through the named one."""
        entries = (await ksvc(world)).get("status", {}).get("traffic") or []
        routed = [(e["revisionName"], e["percent"]) for e in entries]
        return routed if routed == [("podinfo-00002", 0), ("podinfo-00002", 100)] else None

    await wait_for(applied, what="Knative routing 100% to podinfo-00002")
    assert (await canary_status(world.client))["lastAppliedSpec"]

    # a failing revision: the rollout hook answers 500 until the canary is rolled back
    hook.respond_with([500])
    await set_image(world, "ghcr.io/stefanprodan/podinfo:6.0.2")
    await reaches(world, "Failed")
    service = await ksvc(world)
    assert service["status"]["latestCreatedRevisionName"] == "podinfo-00003"
    assert service["metadata"]["annotations"][PRIMARY] == "podinfo-00002"
    assert named_traffic(service, "spec") == [("latest", 0), ("podinfo-00002", 100)]
    assert any(m.startswith("Rolling back podinfo.test") for m in run_events(world))

    async def rolled_back() -> list[tuple[str, int]] | None:
        entries = (await ksvc(world)).get("status", {}).get("traffic") or []
        routed = [(e["revisionName"], e["percent"]) for e in entries]
        return routed if routed == [("podinfo-00003", 0), ("podinfo-00002", 100)] else None

    await wait_for(rolled_back, what="Knative routing 100% back to podinfo-00002")

    await process.stop()
    world.operators.remove(process)
    assert not denied(requests.records), "requests the ClusterRole would deny:\n" + "\n".join(
        denied(requests.records)
    )
    assert requests.permissions() >= KNATIVE_GRANTS, sorted(KNATIVE_GRANTS - requests.permissions())
