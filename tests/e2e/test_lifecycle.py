"""The canary lifecycle end to end: every path of issue 4 through the real operator, the local control
plane, a real Prometheus and real traffic."""

from __future__ import annotations

from typing import Any

from canarist.kube import resources as kinds
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    apply,
    canary_status,
    delivered,
    event_messages,
    event_seen,
    fast_seed,
    image_of,
    initialize,
    load_example,
    operator_sees,
    phase_is,
    reaches,
    run_events,
    set_image,
    ticks_pass,
    wait_for,
)


async def primary_image(world: World) -> str:
    primary = await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    return str(primary["spec"]["template"]["spec"]["containers"][0]["image"])


async def test_promotion_emits_flaggers_event_sequence_for_the_seed_spec(world: World) -> None:
    await initialize(world, fast_seed())
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await reaches(world, "Succeeded")
    # Flagger's sequence for interval/threshold/maxWeight 50/stepWeight 5 (inventory §2.2, §2.5, §2.8).
    assert run_events(world) == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        *[f"Advance podinfo.test canary weight {w}" for w in range(5, 55, 5)],
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Routing all traffic to primary",
        "Promotion completed! Scaling down podinfo.test",
    ]


async def test_no_data_is_never_a_pass(world: World) -> None:
    await initialize(world, fast_seed(stepWeight=10, threshold=2))
    await world.traffic.stop()  # nobody calls the app: the canary has no metrics at all
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await reaches(world, "Failed")
    halts = [m for m in run_events(world) if m.startswith("Halt")]
    assert (
        halts
        == [
            "Halt advancement no values found for istio metric request-success-rate probably "
            "podinfo.test is not receiving traffic: running query failed: no values found"
        ]
        * 2
    )
    assert "Rolling back podinfo.test failed checks threshold reached 2" in run_events(world)
    assert (await primary_image(world)).endswith(":3.1.0")


async def test_latency_rolls_back(world: World) -> None:
    await initialize(world, fast_seed(stepWeight=10, threshold=2))
    world.canary_app.set_knobs(latency_ms=700)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await reaches(world, "Failed")
    halts = [m for m in run_events(world) if m.startswith("Halt")]
    assert len(halts) == 2
    for halt in halts:
        assert halt.startswith("Halt podinfo.test advancement request duration ")
        assert halt.endswith(" > 500ms")
    assert run_events(world)[-1] == "Canary failed! Scaling down podinfo.test"


async def test_new_revision_mid_analysis_restarts_the_run(world: World) -> None:
    await initialize(world, fast_seed(stepWeight=10))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await event_seen(world, "Advance podinfo.test canary weight 10")
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
    await event_seen(world, "New revision detected! Restarting analysis for podinfo.test")
    await reaches(world, "Succeeded")
    assert (await primary_image(world)).endswith(":3.1.2")
    messages = await delivered(
        lambda: event_messages(world.events), "Promotion completed! Scaling down podinfo.test"
    )
    restart = messages.index("New revision detected! Restarting analysis for podinfo.test")
    after = messages[restart:]
    # The restarted run starts from zero again.
    assert after.index("Starting canary analysis for podinfo.test") < after.index(
        "Advance podinfo.test canary weight 10"
    )


async def test_a_configmap_change_starts_a_run_and_reaches_the_primary(world: World) -> None:
    await apply(world.client, load_example("namespace.yaml"))
    await world.client.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "podinfo-config", "namespace": NAMESPACE},
            "data": {"color": "blue"},
        },
        kind=kinds.CONFIG_MAP,
    )
    deployment = load_example("deployment.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": "podinfo-config"}}]
    await apply(world.client, deployment)
    await initialize(world, fast_seed(stepWeight=25))
    copy = await world.client.get(kinds.CONFIG_MAP, "podinfo-config-primary", namespace=NAMESPACE)
    assert copy["data"] == {"color": "blue"}

    await world.client.patch(
        kinds.CONFIG_MAP, "podinfo-config", {"data": {"color": "green"}}, namespace=NAMESPACE
    )
    await event_seen(world, "New revision detected! Scaling up podinfo.test")
    await reaches(world, "Succeeded")

    copy = await world.client.get(kinds.CONFIG_MAP, "podinfo-config-primary", namespace=NAMESPACE)
    assert copy["data"] == {"color": "green"}
    primary = await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    env_from = primary["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert env_from == [{"configMapRef": {"name": "podinfo-config-primary"}}]
    status = await canary_status(world.client)
    assert set(status["trackedConfigs"]) == {"configmap/podinfo-config"}


async def test_skip_analysis_promotes_without_checks(world: World) -> None:
    await initialize(world, fast_seed(spec={"skipAnalysis": True}))
    await world.traffic.stop()  # no metrics at all: an analysis would fail, a skipped one must not care
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await reaches(world, "Succeeded")
    events = run_events(world)
    assert events[-1] == "Promotion completed! Canary analysis was skipped for podinfo.test"
    assert not [m for m in events if m.startswith(("Halt", "Advance", "Starting canary analysis"))]
    assert (await primary_image(world)).endswith(":3.1.1")


async def test_suspend_pauses_and_resume_continues(world: World) -> None:
    operator = await initialize(world, fast_seed(stepWeight=25))
    await world.client.patch(kinds.CANARY, "podinfo", {"spec": {"suspend": True}}, namespace=NAMESPACE)
    await event_seen(world, "skipping canary run as object is suspended")
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await operator_sees(operator, kinds.DEPLOYMENT, "podinfo", lambda d: image_of(d).endswith(":3.1.1"))
    # From here every tick sees the new revision, which a canary that is not suspended acts on at the first
    # tick. Four ticks: the first may have started before the cache had the image, the next may be a wake by
    # the target's status update; the last two are at rest, and at rest a worker ticks when its next step is
    # due or at the 2 s resync, whichever comes first (interval 3 s: paced, +2 s, +3 s paced, ...), so one
    # of any two consecutive ticks is a paced one: a suspended canary gets a paced tick with the new image.
    await ticks_pass(operator, 4)
    assert (await canary_status(world.client))["phase"] == "Initialized"
    assert "New revision detected! Scaling up podinfo.test" not in event_messages(world.events)

    await world.client.patch(kinds.CANARY, "podinfo", {"spec": {"suspend": False}}, namespace=NAMESPACE)
    await reaches(world, "Succeeded")
    assert (await primary_image(world)).endswith(":3.1.1")


async def test_a_canary_that_never_becomes_ready_is_rolled_back_at_the_deadline(world: World) -> None:
    await initialize(world, fast_seed(progress_deadline_s=4))
    patch = {"spec": {"progressDeadlineSeconds": 2}}
    await world.client.patch(kinds.DEPLOYMENT, "podinfo", patch, namespace=NAMESPACE)
    await set_image(world, "quay.io/stefanprodan/podinfo:never-ready")
    await reaches(world, "Failed")
    events = run_events(world)
    deadline = [m for m in events if m.startswith("Rolling back podinfo.test progress deadline exceeded")]
    assert len(deadline) == 1, event_messages(world.events)
    assert events[-1] == "Canary failed! Scaling down podinfo.test"
    assert (await primary_image(world)).endswith(":3.1.0")


async def test_an_operator_restarted_mid_run_finishes_the_run_without_repeating_a_step(world: World) -> None:
    first = await world.start_operator()
    await world.apply_podinfo(fast_seed(stepWeight=10))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await event_seen(world, "Advance podinfo.test canary weight 20")
    await first.stop()
    world.operators.remove(first)
    await world.start_operator()
    await reaches(world, "Succeeded")
    advances = [m for m in run_events(world) if m.startswith("Advance podinfo.test canary weight")]
    assert advances == [f"Advance podinfo.test canary weight {w}" for w in range(10, 60, 10)]
    assert (await primary_image(world)).endswith(":3.1.1")


async def test_a_second_canary_on_the_same_target_is_refused_with_a_warning(world: World) -> None:
    operator = await initialize(world, fast_seed())
    await apply(world.client, fast_seed(name="podinfo-again"))
    expected = (
        "Deployment podinfo.test is already the target of canary podinfo.test; "
        "podinfo-again.test will not run until it targets another workload"
    )
    await event_seen(world, expected)
    # Three more ticks of the second canary (two that started after the warning was out): a warning said
    # on every tick would be there three more times; the duplicate check comes before any paced work, so
    # no interval is involved.
    await ticks_pass(operator, 3, name="podinfo-again")
    assert event_messages(world.events).count(expected) == 1
    again = await world.client.get(kinds.CANARY, "podinfo-again", namespace=NAMESPACE)
    assert (again.get("status") or {}).get("phase") in (None, "")
    assert (await canary_status(world.client))["phase"] == "Initialized"


async def test_revert_on_deletion_gives_the_workload_and_its_service_back(world: World) -> None:
    await apply(world.client, load_example("namespace.yaml"))
    # The user's own Service in front of the app, which canarist takes over as the apex.
    await world.client.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "podinfo", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 9898}]},
        },
        kind=kinds.SERVICE,
    )
    await initialize(world, fast_seed(spec={"revertOnDeletion": True}))
    obj = await world.client.get(kinds.CANARY, "podinfo", namespace=NAMESPACE)
    assert obj["metadata"]["finalizers"] == ["finalizer.flagger.app"]
    apex = await world.client.get(kinds.SERVICE, "podinfo", namespace=NAMESPACE)
    assert apex["spec"]["selector"] == {"app": "podinfo-primary"}

    await world.client.delete(kinds.CANARY, "podinfo", namespace=NAMESPACE)

    async def gone() -> bool:
        return await world.client.get_or_none(kinds.CANARY, "podinfo", namespace=NAMESPACE) is None

    await wait_for(gone, what="the canary to be deleted", timeout_s=60)
    apex = await world.client.get(kinds.SERVICE, "podinfo", namespace=NAMESPACE)
    assert apex["spec"]["selector"] == {"app": "podinfo"}
    target = await world.client.get(kinds.DEPLOYMENT, "podinfo", namespace=NAMESPACE)
    assert target["spec"]["replicas"] >= 1
    # The finalizer is removed before the last event is sent, so that event may still be in flight.
    messages = await delivered(lambda: event_messages(world.events), "Terminated canary podinfo.test")
    assert messages[-2:] == ["Terminating canary podinfo.test", "Terminated canary podinfo.test"]


async def test_an_invalid_edit_is_reported_with_its_path_and_a_fix_resumes_the_canary(world: World) -> None:
    operator = await initialize(world, fast_seed())
    range_path = "/spec/analysis/metrics/0/thresholdRange"
    broken = [{"op": "add", "path": range_path, "value": {"min": 99, "max": 1}}]
    await world.client.patch(kinds.CANARY, "podinfo", broken, namespace=NAMESPACE, patch_type="json")
    expected = (
        "invalid canary podinfo.test: spec.analysis.metrics[0].thresholdRange: min (99) must be <= max (1)"
    )

    async def warnings() -> list[dict[str, Any]]:
        events = (await world.client.list(kinds.EVENT, namespace=NAMESPACE)).items
        return [e for e in events if e.get("message") == expected]

    [warning] = await wait_for(warnings, what=f"a Kubernetes Event {expected!r}", timeout_s=30)
    assert (warning["type"], warning["involvedObject"]["kind"]) == ("Warning", "Canary")
    await event_seen(world, expected)  # and the event webhook
    [posted] = [r.json for r in world.events.requests if r.json["metadata"]["eventMessage"] == expected]
    assert (posted["name"], posted["phase"], posted["metadata"]["eventType"]) == (
        "podinfo",
        "Initialized",
        "Warning",
    )
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await operator_sees(operator, kinds.DEPLOYMENT, "podinfo", lambda d: image_of(d).endswith(":3.1.1"))
    # An invalid canary stops every tick before the engine (no interval involved), and a valid one would
    # start its run on the first tick that sees the new image. Three ticks: the first may have started
    # before the cache had the image, the other two saw it, and each would repeat a warning said per tick.
    await ticks_pass(operator, 3)
    assert (await canary_status(world.client))["phase"] == "Initialized"
    [warning] = await warnings()
    assert warning.get("count", 1) == 1  # said once, not every tick
    assert event_messages(world.events).count(expected) == 1

    fixed = [{"op": "remove", "path": range_path}]
    await world.client.patch(kinds.CANARY, "podinfo", fixed, namespace=NAMESPACE, patch_type="json")
    await reaches(world, "Succeeded")
    assert (await primary_image(world)).endswith(":3.1.1")


async def test_without_revert_on_deletion_no_finalizer_is_added(world: World) -> None:
    await initialize(world, fast_seed())
    obj = await world.client.get(kinds.CANARY, "podinfo", namespace=NAMESPACE)
    assert not obj["metadata"].get("finalizers")


async def test_session_affinity_pins_users_to_the_canary_and_expires_the_cookie_after(world: World) -> None:
    affinity = {"cookieName": "flagger-cookie", "maxAge": 21600}
    await initialize(world, fast_seed(stepWeight=25, sessionAffinity=affinity))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await event_seen(world, "Advance podinfo.test canary weight 25")

    async def cookie() -> str:
        return str((await canary_status(world.client)).get("sessionAffinityCookie") or "")

    value = await wait_for(cookie, what="a session-affinity cookie in the status")
    name, _, token = value.partition("=")
    assert name == "flagger-cookie"
    assert len(token) == 10
    assert token.isalpha()
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    sticky = vs["spec"]["http"][0]
    assert sticky["match"][0]["headers"]["Cookie"]["regex"] == f".*{name}.*{token}.*"
    assert [d["weight"] for d in sticky["route"]] == [0, 100]
    weighted = vs["spec"]["http"][-1]
    set_cookie = weighted["route"][1]["headers"]["response"]["add"]["Set-Cookie"]
    assert set_cookie == f"{value}; Max-Age=21600"

    await reaches(world, "Succeeded")
    status = await canary_status(world.client)
    assert status.get("sessionAffinityCookie", "") == ""
    assert status["previousSessionAffinityCookie"] == value
