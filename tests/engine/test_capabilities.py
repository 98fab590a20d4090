"""The engine asks the router's capabilities, never the provider's name."""

from __future__ import annotations

from canarist.engine.model import RouterCapabilities, SetRoutes
from canarist.engine.simulate import SERVICE_ONLY, World
from tests.engine.conftest import canary, initialized

NO_PROGRESSIVE = "Progressive traffic is not supported when using the kubernetes provider"


def _routes(world: World) -> list[int]:
    return [a.routes.canary for t in world.history for a in t.decision.actions if isinstance(a, SetRoutes)]


def test_a_router_without_weights_runs_blue_green_whatever_the_provider_is_called() -> None:
    world = initialized(canary(), router=SERVICE_ONLY)  # provider istio, but a router without weights
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    messages = world.messages()
    assert messages[2:4] == [NO_PROGRESSIVE, "Setting canaryAnalysis.iterations: 10"]
    assert messages.count("Advance podinfo.test canary iteration 10/10") == 1
    assert "Routing all traffic to primary" not in messages
    assert _routes(world) == []


def test_the_kubernetes_provider_with_a_weighted_router_is_progressive() -> None:
    manifest = canary(stepWeight=25)
    manifest["spec"]["provider"] = "kubernetes"
    world = initialized(manifest, router=RouterCapabilities())
    world.change_target("rev-2")
    world.events.clear()
    world.run_until(lambda w: w.phase == "Succeeded")
    assert NO_PROGRESSIVE not in world.messages()
    assert _routes(world) == [25, 50, 0]
