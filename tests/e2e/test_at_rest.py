"""A canary at rest costs (almost) nothing: its resyncs are skipped while nothing it read has changed, and
any change to what it reads — its target, a generated object someone edited — makes the next tick run."""

from __future__ import annotations

import copy

from canarist.kube import resources as kinds
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    event_seen,
    fast_seed,
    initialize,
    set_image,
    ticks_pass,
    wait_for,
)


def _skipped(world: World) -> float:
    operator = world.operators[0].operator
    assert operator is not None
    value: float = operator.telemetry.ticks_skipped._value.get()
    return value


async def test_a_canary_at_rest_skips_its_resyncs_until_something_it_reads_changes(world: World) -> None:
    # Resync every 0.2 s, so many resyncs happen while the canary sits Initialized.
    await initialize(world, fast_seed(), control_loop_interval_s=0.2)
    operator = world.operators[0]
    await ticks_pass(operator, 3)
    before = _skipped(world)
    audit = world.cluster.cluster.audit.entries()
    since = audit[-1].seq if audit else 0
    await ticks_pass(operator, 10)
    assert _skipped(world) >= before + 8  # all but the ticks in flight at either end
    # Skipped ticks made no request that changes anything.
    assert [e.path for e in world.cluster.cluster.audit.entries(since)] == []

    # Someone edits a generated object: the edit changes what the tick reads, so it runs and repairs it.
    service = await world.client.get(kinds.SERVICE, "podinfo", namespace=NAMESPACE)
    assert service["spec"]["selector"] == {"app": "podinfo-primary"}
    edited = copy.deepcopy(service)
    edited["spec"]["selector"] = {"app": "elsewhere"}
    await world.client.replace(edited, kind=kinds.SERVICE, namespace=NAMESPACE)

    async def repaired() -> bool:
        now = await world.client.get(kinds.SERVICE, "podinfo", namespace=NAMESPACE)
        return bool(now["spec"]["selector"] == {"app": "podinfo-primary"})

    await wait_for(repaired, what="the apex Service's selector put back", timeout_s=30)

    # And a new revision of the target is seen as at any other time.
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await event_seen(world, "New revision detected! Scaling up podinfo.test")
