"""The runtime's seams, end to end: a DaemonSet target gets a DaemonSet primary and runs like a Deployment;
a Service target gets -canary and -primary copies of itself, and a change to its spec is a run that promotes
or rolls back; a dotted Canary name runs; a problem only an edit fixes is reported once (one Warning Event, one status
condition, one log line) and never as a traceback, however often the canary resyncs."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from canarist.kube import resources as kinds
from canarist.kube.errors import NotFound
from canarist.routers import registry as routers
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    apply,
    canary_status,
    event_messages,
    fast_seed,
    load_example,
    phase_is,
    reaches,
    run_events,
    ticks_pass,
    wait_for,
)


def podinfo_daemonset() -> dict[str, Any]:
    """The walkthrough's podinfo Deployment as a DaemonSet (one pod per node, RollingUpdate)."""
    deployment = load_example("deployment.yaml")
    spec = deployment["spec"]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": deployment["metadata"],
        "spec": {
            "minReadySeconds": spec.get("minReadySeconds", 0),
            "revisionHistoryLimit": spec.get("revisionHistoryLimit", 5),
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": spec["selector"],
            "template": spec["template"],
        },
    }


def daemonset_canary(**overrides: Any) -> dict[str, Any]:
    canary = fast_seed(**overrides)
    canary["spec"]["targetRef"] = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "podinfo"}
    canary["spec"].pop("autoscalerRef", None)
    return canary


async def set_daemonset_image(world: World, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": image}]}}}}
    await world.client.patch(kinds.DAEMON_SET, "podinfo", patch, namespace=NAMESPACE, patch_type="strategic")


async def test_a_daemonset_canary_has_a_daemonset_primary_and_promotes_then_rolls_back(world: World) -> None:
    await world.start_operator()
    await apply(world.client, load_example("namespace.yaml"))
    await apply(world.client, podinfo_daemonset())
    await apply(world.client, daemonset_canary(stepWeight=25, threshold=2))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)

    primary = await world.client.get(kinds.DAEMON_SET, "podinfo-primary", namespace=NAMESPACE)
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["spec"]["updateStrategy"]["type"] == "RollingUpdate"
    with pytest.raises(NotFound):
        await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    target = await world.client.get(kinds.DAEMON_SET, "podinfo", namespace=NAMESPACE)
    assert target["spec"]["template"]["spec"]["nodeSelector"] == {"flagger.app/scale-to-zero": "true"}

    await set_daemonset_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await reaches(world, "Succeeded")
    primary = await world.client.get(kinds.DAEMON_SET, "podinfo-primary", namespace=NAMESPACE)
    assert (
        primary["spec"]["template"]["spec"]["containers"][0]["image"] == "quay.io/stefanprodan/podinfo:3.1.1"
    )
    assert "Advance podinfo.test canary weight 25" in run_events(world)

    world.canary_app.set_knobs(error_rate=0.5)
    await set_daemonset_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
    await reaches(world, "Failed")
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [100, 0]
    primary = await world.client.get(kinds.DAEMON_SET, "podinfo-primary", namespace=NAMESPACE)
    assert (
        primary["spec"]["template"]["spec"]["containers"][0]["image"] == "quay.io/stefanprodan/podinfo:3.1.1"
    )
    target = await world.client.get(kinds.DAEMON_SET, "podinfo", namespace=NAMESPACE)
    assert target["spec"]["template"]["spec"]["nodeSelector"] == {"flagger.app/scale-to-zero": "true"}


def podinfo_service(selector: dict[str, str]) -> dict[str, Any]:
    """A Service target: its backends are someone else's business, its spec is the revision."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": NAMESPACE, "labels": {"app": "podinfo"}},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 9898, "targetPort": 9898}]},
    }


async def set_service_selector(world: World, selector: dict[str, str]) -> None:
    service = await world.client.get(kinds.SERVICE, "podinfo", namespace=NAMESPACE)
    service["spec"]["selector"] = selector
    await world.client.replace(service, kind=kinds.SERVICE)


async def test_a_service_target_gets_service_copies_and_promotes_then_rolls_back(world: World) -> None:
    await world.start_operator()
    await apply(world.client, load_example("namespace.yaml"))
    await apply(world.client, podinfo_service({"app": "podinfo", "version": "v1"}))
    canary = fast_seed(stepWeight=25, threshold=2, autoscaler=None)
    canary["spec"]["targetRef"] = {"apiVersion": "v1", "kind": "Service", "name": "podinfo"}
    await apply(world.client, canary)
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)

    primary = await world.client.get(kinds.SERVICE, "podinfo-primary", namespace=NAMESPACE)
    primary_ip = primary["spec"]["clusterIP"]
    assert primary["spec"]["selector"] == {"app": "podinfo", "version": "v1"}
    copy_ = await world.client.get(kinds.SERVICE, "podinfo-canary", namespace=NAMESPACE)
    assert copy_["spec"]["selector"] == {"app": "podinfo", "version": "v1"}
    with pytest.raises(NotFound):  # nothing built from a pod selector
        await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    target = await world.client.get(kinds.SERVICE, "podinfo", namespace=NAMESPACE)
    assert "ownerReferences" not in target["metadata"]
    assert target["spec"]["selector"] == {"app": "podinfo", "version": "v1"}

    await set_service_selector(world, {"app": "podinfo", "version": "v2"})
    await reaches(world, "Succeeded")
    assert "Advance podinfo.test canary weight 25" in run_events(world)
    primary = await world.client.get(kinds.SERVICE, "podinfo-primary", namespace=NAMESPACE)
    assert primary["spec"]["selector"] == {"app": "podinfo", "version": "v2"}
    assert primary["spec"]["clusterIP"] == primary_ip

    world.canary_app.set_knobs(error_rate=0.5)
    await set_service_selector(world, {"app": "podinfo", "version": "v3"})
    await reaches(world, "Failed")
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [100, 0]
    primary = await world.client.get(kinds.SERVICE, "podinfo-primary", namespace=NAMESPACE)
    assert primary["spec"]["selector"] == {"app": "podinfo", "version": "v2"}
    copy_ = await world.client.get(kinds.SERVICE, "podinfo-canary", namespace=NAMESPACE)
    assert copy_["spec"]["selector"] == {"app": "podinfo", "version": "v3"}


def _deployment(name: str) -> dict[str, Any]:
    deployment = copy.deepcopy(load_example("deployment.yaml"))
    deployment["metadata"] = {"name": name, "namespace": NAMESPACE, "labels": {"app": name}}
    deployment["spec"]["selector"] = {"matchLabels": {"app": name}}
    deployment["spec"]["template"]["metadata"]["labels"] = {"app": name}
    return deployment


def _canary(name: str, target: str, **spec: Any) -> dict[str, Any]:
    canary = fast_seed()
    canary["metadata"]["name"] = name
    canary["spec"]["targetRef"]["name"] = target
    canary["spec"].pop("autoscalerRef", None)
    canary["spec"]["service"].pop("hosts", None)
    canary["spec"]["service"].pop("gateways", None)
    canary["spec"].update(spec)
    return canary


async def _warnings_about(world: World, name: str) -> list[dict[str, Any]]:
    events = (await world.client.list(kinds.EVENT, namespace=NAMESPACE)).items
    return [
        e
        for e in events
        if e.get("type") == "Warning" and (e.get("involvedObject") or {}).get("name") == name
    ]


async def test_a_dotted_name_runs_and_an_unsupported_provider_is_said_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # The Canary CRD admits only Flagger's providers, and canarist routes all of them: the unknown provider
    # comes from -mesh-provider, for the canary without one.
    operator = await world.start_operator(control_loop_interval_s=0.3, mesh_provider="envoy")
    await apply(world.client, load_example("namespace.yaml"))
    for name in ("web", "mesh"):
        await apply(world.client, _deployment(name))
    await apply(world.client, _canary("web.v2", "web", provider="istio"))
    await apply(world.client, _canary("mesh", "mesh"))

    await wait_for(lambda: canary_status(world.client, "web.v2"), what="a status on web.v2", timeout_s=60)
    await wait_for(lambda: _phase(world, "web.v2", "Initialized"), what="web.v2 Initialized", timeout_s=60)
    await wait_for(lambda: _blocked(world, "mesh"), what="the Blocked condition on mesh", timeout_s=30)
    await ticks_pass(operator, 10, name="mesh")  # ten resyncs of the unsupported canary

    expected = f"spec.provider: unknown provider 'envoy' (supported: {', '.join(routers.supported())})"
    condition = await _blocked(world, "mesh")
    assert condition is not None
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "True",
        "UnsupportedProvider",
        expected,
    )
    warnings = await _warnings_about(world, "mesh")
    assert [(w["message"], w.get("count", 1)) for w in warnings] == [(expected, 1)]
    assert [m for m in event_messages(world.events) if m == expected] == [expected]
    assert [r.getMessage() for r in caplog.records if r.getMessage() == expected] == [expected]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert (await canary_status(world.client, "mesh")).get("phase") is None
    with pytest.raises(NotFound):
        await world.client.get(kinds.DEPLOYMENT, "mesh-primary", namespace=NAMESPACE)

    # Fixing the spec clears the condition and the canary runs.
    await world.client.patch(kinds.CANARY, "mesh", {"spec": {"provider": "istio"}}, namespace=NAMESPACE)
    await wait_for(lambda: _phase(world, "mesh", "Initialized"), what="mesh Initialized", timeout_s=60)
    assert await _blocked(world, "mesh") is None


async def test_a_canary_cannot_target_another_canarys_primary(world: World) -> None:
    operator = await world.start_operator()
    await apply(world.client, load_example("namespace.yaml"))
    await apply(world.client, _deployment("web"))
    await apply(world.client, _canary("web", "web"))
    await wait_for(lambda: _phase(world, "web", "Initialized"), what="web Initialized", timeout_s=60)
    before = await world.client.get(kinds.DEPLOYMENT, "web-primary", namespace=NAMESPACE)

    await apply(world.client, _canary("hijack", "web-primary"))
    await wait_for(lambda: _blocked(world, "hijack"), what="the Blocked condition on hijack", timeout_s=30)
    await ticks_pass(operator, 3, name="hijack")
    condition = await _blocked(world, "hijack")
    assert condition is not None
    assert condition["reason"] == "TargetOwnedByCanary"
    assert "generated by canary web.test" in condition["message"]
    after = await world.client.get(kinds.DEPLOYMENT, "web-primary", namespace=NAMESPACE)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    with pytest.raises(NotFound):
        await world.client.get(kinds.DEPLOYMENT, "web-primary-primary", namespace=NAMESPACE)


async def _phase(world: World, name: str, phase: str) -> bool:
    try:
        return (await canary_status(world.client, name)).get("phase") == phase
    except NotFound:
        return False


async def _blocked(world: World, name: str) -> dict[str, Any] | None:
    status = await canary_status(world.client, name)
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Blocked"), None)
