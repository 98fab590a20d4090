"""Webhooks end to end: the real operator calling a real loadtester and capture servers (inventory §2.10,
§2.13, §5.4), on 127.0.0.1 only.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import World
from tests.e2e.harness import canary_status
from tests.e2e.hooks_helpers import (
    KEY,
    fast_canary,
    initialize,
    running_loadtester,
    seed_webhooks_for,
    set_image,
    wait_phase,
)


async def test_seed_webhooks_run_through_a_real_loadtester(world: World) -> None:
    async with running_loadtester() as tester:
        hooks = seed_webhooks_for(tester.url, world.canary_app.url)
        assert hooks[0]["metadata"]["cmd"] == (f"curl -sd 'test' {world.canary_app.url}/token | grep token")
        assert hooks[1]["metadata"]["cmd"] == f"hey -z 2s -q 10 -c 2 {world.canary_app.url}/"
        await initialize(world, fast_canary(webhooks=hooks, stepWeight=25))

        served_before = world.canary_app.served
        driver_before = world.traffic.sent["canary"]
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_phase(world, "Succeeded", timeout_s=90)
        await tester.wait_idle(timeout_s=10)

        messages = [m for m in _event_messages(world) if " not ready: " not in m]
        run = messages[messages.index("New revision detected! Scaling up podinfo.test") :]
        assert run[:3] == [
            "New revision detected! Scaling up podinfo.test",
            "Starting canary analysis for podinfo.test",
            "Pre-rollout check acceptance-test passed",
        ]
        assert run[-1] == "Promotion completed! Scaling down podinfo.test"
        assert not [m for m in run if m.startswith("Halt")], run

        samples = {
            (s.labels.get("type"), s.labels.get("result")): s.value
            for metric in tester.registry.collect()
            if metric.name == "canarist_loadtester_tasks"
            for s in metric.samples
            if s.name.endswith("_total")
        }
        assert samples.get(("bash", "succeeded")) == 1.0, samples  # the acceptance test, once
        assert samples.get(("cmd", "accepted"), 0) >= 1, samples  # hey, on each analysis tick not skipped
        hey_runs = [o for o in tester.completed if o.command.startswith("hey ")]
        assert hey_runs
        assert all(o.ok for o in hey_runs), [(o.exit_code, o.stderr) for o in hey_runs]
        answered = sum(int(n) for o in hey_runs for n in re.findall(r"\[200\]\s+(\d+) responses", o.stdout))
        assert answered >= 20 * len(hey_runs) // 2, [o.stdout for o in hey_runs]
        # The canary app saw the acceptance test and hey's requests on top of the mesh stand-in's share.
        extra = (world.canary_app.served - served_before) - (world.traffic.sent["canary"] - driver_before)
        assert extra >= answered, (extra, answered)
    assert (await canary_status(world.client))["phase"] == "Succeeded"


def _event_messages(world: World) -> list[str]:
    return [str(r.json["metadata"]["eventMessage"]) for r in world.events.requests if r.method == "POST"]


__all__ = ["KEY"]
