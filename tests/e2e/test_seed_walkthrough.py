"""The seed walkthrough, end to end: the real operator, the local control plane, a real Prometheus and
real traffic through demo apps.

Intervals are shortened (the operator's `--min-analysis-interval` lowers Flagger's 10 s floor); everything
else is the walkthrough's Canary.
"""

from __future__ import annotations

from canarist.kube import resources as kinds
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    PROMOTION_TIMEOUT_S,
    canary_status,
    delivered,
    event_messages,
    fast_seed,
    phase_is,
    set_image,
    wait_for,
)


async def test_initialization_generates_flaggers_objects(world: World) -> None:
    await world.start_operator()
    await world.apply_podinfo(fast_seed())
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)

    get = world.client.get
    primary = await get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert "flagger-id" in primary["spec"]["template"]["metadata"]["annotations"]
    owner = primary["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Canary", "podinfo", True)

    target = await get(kinds.DEPLOYMENT, "podinfo", namespace=NAMESPACE)
    assert target["spec"]["replicas"] == 0

    hpa = await get(kinds.HORIZONTAL_POD_AUTOSCALER, "podinfo-primary", namespace=NAMESPACE)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"

    selectors = {
        name: (await get(kinds.SERVICE, name, namespace=NAMESPACE))["spec"]["selector"]
        for name in ("podinfo", "podinfo-primary", "podinfo-canary")
    }
    assert selectors == {
        "podinfo": {"app": "podinfo-primary"},
        "podinfo-primary": {"app": "podinfo-primary"},
        "podinfo-canary": {"app": "podinfo"},
    }
    for name in ("podinfo-primary", "podinfo-canary"):
        rule = await get(kinds.DESTINATION_RULE, name, namespace=NAMESPACE)
        assert rule["spec"] == {"host": name, "trafficPolicy": {"tls": {"mode": "DISABLE"}}}

    vs = await get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert vs["spec"]["hosts"] == ["app.istio.example.com", "podinfo"]
    assert vs["spec"]["gateways"] == ["public-gateway.istio-system.svc.cluster.local"]
    assert vs["spec"]["http"][0]["route"] == [
        {"destination": {"host": "podinfo-primary"}, "weight": 100},
        {"destination": {"host": "podinfo-canary"}, "weight": 0},
    ]

    status = await canary_status(world.client)
    assert status["lastAppliedSpec"] == status["lastPromotedSpec"] != ""
    assert status["conditions"][0]["type"] == "Promoted"
    assert status["conditions"][0]["status"] == "True"
    messages = await delivered(lambda: event_messages(world.events), "Initialization done! podinfo.test")
    assert messages[0] == "all the metrics providers are available!"
    assert messages[-1] == "Initialization done! podinfo.test"


async def test_new_image_is_analysed_and_promoted(world: World) -> None:
    await world.start_operator()
    await world.apply_podinfo(fast_seed(stepWeight=25))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)

    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_for(lambda: phase_is(world, "Progressing"), what="Progressing", timeout_s=30)
    await wait_for(
        lambda: phase_is(world, "Succeeded"), what="Succeeded", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
    )

    primary = await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    image = primary["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "quay.io/stefanprodan/podinfo:3.1.1"
    target = await world.client.get(kinds.DEPLOYMENT, "podinfo", namespace=NAMESPACE)
    assert target["spec"]["replicas"] == 0
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [100, 0]

    messages = await delivered(
        lambda: event_messages(world.events), "Promotion completed! Scaling down podinfo.test"
    )
    run = messages[messages.index("New revision detected! Scaling up podinfo.test") :]
    analysis = [m for m in run if not m.startswith("canary deployment podinfo.test not ready")]
    assert analysis == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary weight 25",
        "Advance podinfo.test canary weight 50",
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Routing all traffic to primary",
        "Promotion completed! Scaling down podinfo.test",
    ]
    assert (await canary_status(world.client))["canaryWeight"] == 0


async def test_errors_on_the_canary_roll_it_back(world: World) -> None:
    await world.start_operator()
    await world.apply_podinfo(fast_seed(stepWeight=10, threshold=2))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)

    world.canary_app.set_knobs(error_rate=0.5)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
    await wait_for(
        lambda: phase_is(world, "Failed"), what="Failed", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
    )

    primary = await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":3.1.0")
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert [d["weight"] for d in vs["spec"]["http"][0]["route"]] == [100, 0]
    messages = event_messages(world.events)
    # Two failed checks reach the threshold; the errors show as a success-rate halt (a first check that
    # races the first scrape may instead report no data, which is a failed check too).
    halts = [m for m in messages if m.startswith("Halt")]
    assert len(halts) == 2, messages
    assert halts[-1].startswith("Halt podinfo.test advancement success rate")
    assert halts[-1].endswith("< 99%")
    assert "Rolling back podinfo.test failed checks threshold reached 2" in messages
    assert messages[-1] == "Canary failed! Scaling down podinfo.test"
