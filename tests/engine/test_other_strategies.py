"""A/B testing, blue/green (with mirroring) and the kubernetes provider, through decide()."""

from __future__ import annotations

from canarist.engine.model import EngineSettings, Routes, SetRoutes
from canarist.engine.simulate import World
from tests.engine.conftest import Script, canary, fail, hook, initialized

AB_MATCH = [{"headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}}]


def routes_set(world: World) -> list[Routes]:
    return [a.routes for t in world.history for a in t.decision.actions if isinstance(a, SetRoutes)]


def test_ab_testing_counts_iterations_then_promotes() -> None:
    world = initialized(canary(iterations=3, match=AB_MATCH, stepWeight=None, maxWeight=None))
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    assert world.messages() == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary iteration 1/3",
        "Advance podinfo.test canary iteration 2/3",
        "Advance podinfo.test canary iteration 3/3",
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Routing all traffic to primary",
        "Promotion completed! Scaling down podinfo.test",
    ]
    assert routes_set(world) == [Routes(0, 100)] * 3 + [Routes(100, 0)]
    assert [s["iterations"] for s in world.status_history if s["phase"] == "Progressing"] == [0, 1, 2, 3]


def test_ab_testing_waits_for_promotion_with_iterations_held_back() -> None:
    gate = hook("promotion-gate", "confirm-promotion")
    script = Script({"promotion-gate": [fail(), fail(), fail(), fail()]})
    world = initialized(
        canary(iterations=2, match=AB_MATCH, stepWeight=None, maxWeight=None, webhooks=[gate]), answer=script
    )
    world.change_target("rev-2")
    world.run(30 * 8)
    assert world.phase == "WaitingPromotion"
    iteration_events = [m for m in world.messages() if "iteration" in m]
    # WaitingPromotion holds iterations at 1, so the last iteration repeats between closed gate checks
    assert iteration_events[:2] == [
        "Advance podinfo.test canary iteration 1/2",
        "Advance podinfo.test canary iteration 2/2",
    ]
    assert iteration_events[2:] == ["Advance podinfo.test canary iteration 2/2"] * (len(iteration_events) - 2)
    assert (
        world.messages().count("Halt podinfo.test advancement waiting for promotion approval promotion-gate")
        == 1
    )


def test_blue_green_with_mirroring() -> None:
    world = initialized(canary(iterations=3, mirror=True, stepWeight=None, maxWeight=None))
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    assert world.messages() == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary iteration 1/3",
        "Advance podinfo.test canary iteration 2/3",
        "Advance podinfo.test canary iteration 3/3",
        "Stop traffic mirroring and route all traffic to canary",
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Routing all traffic to primary",
        "Promotion completed! Scaling down podinfo.test",
    ]
    assert routes_set(world) == [Routes(100, 0, mirrored=True), Routes(0, 100), Routes(100, 0)]


def test_blue_green_without_mirroring_routes_all_traffic_to_the_canary_before_promotion() -> None:
    world = initialized(canary(iterations=2, stepWeight=None, maxWeight=None))
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    assert "Routing all traffic to canary" in world.messages()
    assert routes_set(world) == [Routes(0, 100), Routes(100, 0)]


def test_kubernetes_provider_is_blue_green_without_routing() -> None:
    manifest = canary()  # stepWeight: the kubernetes provider cannot shift weights
    manifest["spec"]["provider"] = "kubernetes"
    world = initialized(manifest, settings=EngineSettings())
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    warnings = [
        "Progressive traffic is not supported when using the kubernetes provider",
        "Setting canaryAnalysis.iterations: 10",
    ]
    messages = world.messages()
    assert messages[:5] == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        *warnings,
        "Advance podinfo.test canary iteration 1/10",
    ]
    assert messages.count("Advance podinfo.test canary iteration 10/10") == 1
    assert "Routing all traffic to canary" not in messages
    assert "Routing all traffic to primary" not in messages
    assert messages[-2:] == [
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Promotion completed! Scaling down podinfo.test",
    ]
    assert routes_set(world) == []
