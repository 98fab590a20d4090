"""Adding a router is one module and one registry line: a router defined only in the tests
(`tests/e2e/plugin/weightsplit.py`) runs a canary end to end, with its own kind watched by the operator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest

from canarist.kube import resources as kinds
from canarist.routers import registry
from tests.e2e.conftest import World
from tests.e2e.harness import NAMESPACE, fast_seed, phase_is, reaches, run_events, set_image, wait_for
from tests.e2e.plugin.weightsplit import CRD, WEIGHT_SPLIT, WEIGHT_SPLITS


@pytest.fixture
def weightsplit_router() -> Iterator[None]:
    registry.register(WEIGHT_SPLITS)  # the one registry line
    try:
        yield
    finally:
        registry.unregister(WEIGHT_SPLITS.name)


async def test_a_router_defined_in_a_test_runs_a_canary_end_to_end(
    world: World, weightsplit_router: None
) -> None:
    await world.client.create(CRD, kind=kinds.CUSTOM_RESOURCE_DEFINITION)
    # spec.provider is an enum in Flagger's CRD; a router of one's own is picked with -mesh-provider.
    await world.start_operator(mesh_provider="weightsplit")
    canary = fast_seed(stepWeight=25, maxWeight=50, metrics=None)
    canary["spec"]["service"].pop("gateways", None)
    canary["spec"]["service"].pop("hosts", None)
    await world.apply_podinfo(canary)
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
    split = await world.client.get(WEIGHT_SPLIT, "podinfo", namespace=NAMESPACE)
    assert split["spec"]["backends"] == [
        {"service": "podinfo-primary", "weight": 100},
        {"service": "podinfo-canary", "weight": 0},
    ]

    seen: list[int] = []

    async def follow() -> None:
        while True:
            obj = await world.client.get(WEIGHT_SPLIT, "podinfo", namespace=NAMESPACE)
            weight = int(obj["spec"]["backends"][1]["weight"])
            if not seen or seen[-1] != weight:
                seen.append(weight)
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(follow())
    try:
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await reaches(world, "Succeeded")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    # one last reading: the sampler polls every 0.1 s and may be cancelled just before it saw the split the
    # run ended with (traffic is routed back before the phase becomes Succeeded)
    final = int(
        (await world.client.get(WEIGHT_SPLIT, "podinfo", namespace=NAMESPACE))["spec"]["backends"][1][
            "weight"
        ]
    )
    if seen[-1] != final:
        seen.append(final)
    assert seen[0] == 0
    assert [w for w in seen if w] == [25, 50]
    assert seen[-1] == 0
    events = run_events(world)
    assert "Advance podinfo.test canary weight 25" in events
    assert "Advance podinfo.test canary weight 50" in events
    primary = await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    assert (
        primary["spec"]["template"]["spec"]["containers"][0]["image"] == "quay.io/stefanprodan/podinfo:3.1.1"
    )


def test_a_router_declares_its_kinds_to_the_access_layer(weightsplit_router: None) -> None:
    assert kinds.lookup("split.canarist.test/v1", "WeightSplit") is WEIGHT_SPLIT
    assert WEIGHT_SPLIT in registry.all_kinds()
    from canarist.operator.controller import watched_kinds

    assert WEIGHT_SPLIT in watched_kinds("istio")
