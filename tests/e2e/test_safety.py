"""Safety under faults, end to end: a rollback cut by SIGKILL never sends traffic back to the failed
canary; a target deleted mid-run ends the run; a hanging event webhook does not hold the analysis; a
transient API error at start-up is waited out."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from aiohttp import web

from canarist.kube import resources as kinds
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    OperatorProcess,
    canary_status,
    event_messages,
    fast_seed,
    initialize,
    operator_subprocess,
    phase_is,
    reaches,
    run_events,
    set_image,
    ticks_pass,
    wait_for,
)
from tests.fixtures.capture import serve_loopback


def _weights(vs: dict[str, Any]) -> list[int]:
    return [int(d.get("weight") or 0) for d in vs["spec"]["http"][0]["route"]]


async def test_a_rollback_killed_midway_never_sends_traffic_back_to_the_canary(
    world: World, tmp_path: Path
) -> None:
    await world.apply_podinfo(fast_seed(stepWeight=20, threshold=2))
    async with operator_subprocess(world, log=tmp_path / "operator.log") as process:
        await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
        world.canary_app.set_knobs(error_rate=0.6)
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
        await wait_for(lambda: phase_is(world, "Progressing"), what="Progressing", timeout_s=60)
        # Slow every update down so the rollback's writes (status, routes, scale-down, status) take a while,
        # then kill the operator the moment the decision is on record.
        world.cluster.cluster.faults.verb_latency["update"] = 0.4
        world.cluster.cluster.faults.verb_latency["patch"] = 0.4

        async def decided() -> bool:
            return (await canary_status(world.client)).get("phase") == "Failed"

        await wait_for(decided, what="the rollback decision on record", timeout_s=120, poll_s=0.02)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    world.cluster.cluster.faults.verb_latency.clear()
    cut = (await canary_status(world.client)).get("decision") or {}

    # A new operator finishes exactly the decision it finds, and starts nothing new.
    operator = await world.start_operator()

    async def settled() -> bool:
        status = await canary_status(world.client)
        return not (status.get("decision") or {}).get("pending")

    await wait_for(settled, what="the pending rollback to be carried out", timeout_s=60)
    await ticks_pass(operator, 4)
    status = await canary_status(world.client)
    assert status["phase"] == "Failed", status
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert _weights(vs) == [100, 0]
    target = await world.client.get(kinds.DEPLOYMENT, "podinfo", namespace=NAMESPACE)
    assert target["spec"]["replicas"] == 0
    messages = event_messages(world.events)
    after = messages[messages.index(next(m for m in messages if m.startswith("Rolling back"))) :]
    assert not [m for m in after if m.startswith(("Starting canary analysis", "Advance", "New revision"))], (
        after
    )
    # "Canary failed!" was sent before the kill, after the restart, or (inside the documented window
    # between an announcement and the write that records it) both; never more.
    failed = [m for m in messages if m.startswith("Canary failed!")]
    assert 1 <= len(failed) <= (2 if cut.get("pending") else 1), (failed, cut)


async def test_a_target_deleted_mid_run_ends_the_run_with_traffic_on_the_primary(world: World) -> None:
    await initialize(world, fast_seed(stepWeight=10, maxWeight=50))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")

    async def weighted() -> bool:
        vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
        return _weights(vs)[1] > 0

    await wait_for(weighted, what="traffic on the canary", timeout_s=60)
    await world.client.delete(kinds.DEPLOYMENT, "podinfo", namespace=NAMESPACE)
    await reaches(world, "Failed")
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert _weights(vs) == [100, 0]
    events = run_events(world)
    assert "Rolling back podinfo.test target Deployment podinfo.test not found" in events
    assert events[-1].startswith("Canary failed!") or "Canary failed! Scaling down podinfo.test" in events


async def test_a_hanging_event_webhook_does_not_hold_the_analysis(world: World) -> None:
    received = 0
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        nonlocal received
        received += 1
        await release.wait()
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/", hang)
    runner, port = await serve_loopback(app)
    try:
        operator = await world.start_operator(event_webhook=f"http://127.0.0.1:{port}/")
        await world.apply_podinfo(fast_seed(stepWeight=25))
        await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_for(lambda: phase_is(world, "Succeeded"), what="Succeeded", timeout_s=120, poll_s=0.3)
        # The whole run went through while the webhook held each request for its full 10 s timeout: the
        # events wait in their destination's queue, not in the control loop (which would have delivered,
        # or timed out, every one of them before going on).
        assert operator.operator is not None
        waiting = operator.operator.outbox.pending()
        assert waiting >= 3, (received, waiting)
    finally:
        release.set()
        await runner.cleanup()


async def test_transient_api_errors_at_start_up_are_waited_out(world: World) -> None:
    world.cluster.cluster.faults.fail("get", 503, times=4)
    process = OperatorProcess(world.settings, world.kubeconfig)
    await process.start()
    world.operators.append(process)
    assert process.operator is not None
    assert process.operator.leading
    assert world.cluster.cluster.faults.injected >= 4
