"""Webhooks end to end: the real operator calling a real loadtester and capture servers (inventory §2.10,
§2.13, §5.4), on 127.0.0.1 only.
"""

from __future__ import annotations

import re
import time
from typing import Any

from canarist.workloads.revision import webhook_checksum
from tests.e2e.conftest import World
from tests.e2e.harness import canary_status
from tests.e2e.hooks_helpers import (
    fast_canary,
    golden_canary,
    initialize,
    posts,
    running_loadtester,
    seed_webhooks_for,
    set_image,
    settle,
    wait_phase,
    without_readiness_waits,
)
from tests.fixtures.capture import CaptureFactory

HOOK_KINDS = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
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


# ---------------------------------------------------------------------------------------------- moments


async def test_each_webhook_at_its_moment_with_flaggers_payload_and_event_order(
    world: World, capture_server: CaptureFactory
) -> None:
    hooks = await capture_server(statuses=[200])  # one server, one path per hook: arrival order is kept
    events = await capture_server(statuses=[202])
    webhooks: list[dict[str, Any]] = [
        {"name": f"{kind}-webhook", "type": kind, "url": f"{hooks.url}{kind}", "timeout": "5s"}
        for kind in HOOK_KINDS
    ]
    webhooks[1]["metadata"] = {"cmd": "echo pre", "owner": "team-a"}  # pre-rollout carries metadata
    webhooks.append(
        {
            "name": "events",
            "type": "event",
            "url": events.url,
            "metadata": {"team": "payments", "eventType": "not-overridden"},
        }
    )
    await initialize(world, golden_canary(webhooks))
    initialized = await canary_status(world.client)
    assert hooks.requests == []  # no hook but the event hook runs during initialization

    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_phase(world, "Succeeded")
    status = await canary_status(world.client)
    await settle(1.0)

    # Who was called, in which order, with which phase.
    sequence = [(r.path.strip("/"), r.json["phase"]) for r in hooks.requests]
    rollouts = sum(1 for kind, _ in sequence if kind == "rollout")
    assert rollouts >= 1
    assert sequence == [
        ("confirm-rollout", "Initialized"),
        ("pre-rollout", "Progressing"),
        ("confirm-traffic-increase", "Progressing"),
        *[("rollout", "Progressing")] * rollouts,
        ("confirm-traffic-increase", "Progressing"),
        ("confirm-promotion", "Progressing"),
        ("post-rollout", "Succeeded"),
    ]
    # The exact JSON shape: metadata only when the hook has some.
    for request in hooks.requests:
        assert request.method == "POST"
        assert request.headers["content-type"].startswith("application/json")
        body = request.json
        expected_keys = {"name", "namespace", "phase", "checksum"}
        if request.path == "/pre-rollout":
            expected_keys.add("metadata")
            assert body["metadata"] == {"cmd": "echo pre", "owner": "team-a"}
        assert set(body) == expected_keys, body
        assert (body["name"], body["namespace"]) == ("podinfo", "test")
    # The checksum hashes (trackedConfigs, lastAppliedSpec): the gate saw the previous revision's, the run
    # the new one's.
    before = webhook_checksum(initialized.get("trackedConfigs"), initialized["lastAppliedSpec"])
    after = webhook_checksum(status.get("trackedConfigs"), status["lastAppliedSpec"])
    assert before != after
    assert hooks.requests[0].json["checksum"] == before
    assert {r.json["checksum"] for r in hooks.requests[1:]} == {after}

    # The event webhook replaces the global one and gets every event with its metadata.
    assert world.events.requests == []
    bodies = posts(events)
    for body in bodies:
        assert set(body) == {"name", "namespace", "phase", "checksum", "metadata"}
        meta = body["metadata"]
        assert set(meta) == {"eventMessage", "eventType", "timestamp", "team"}
        assert meta["team"] == "payments"
        assert re.fullmatch(r"\d{13}", meta["timestamp"]), meta
        expected_type = "Warning" if " not ready: " in meta["eventMessage"] else "Normal"
        assert meta["eventType"] == expected_type, meta
    stamps = [int(body["metadata"]["timestamp"]) for body in bodies]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] / 1000 - time.time()) < 60
    messages = [body["metadata"]["eventMessage"] for body in bodies]
    # Inventory §2.13, the "canary" case of Flagger's TestWebhooks (readiness retries depend on timing).
    assert messages[0] == "all the metrics providers are available!"
    run = without_readiness_waits(messages[messages.index("Initialization done! podinfo.test") :])
    assert run == [
        "Initialization done! podinfo.test",
        "Confirm-rollout check confirm-rollout-webhook passed",
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Pre-rollout check pre-rollout-webhook passed",
        "Confirm-traffic-increase check confirm-traffic-increase-webhook passed",
        "Advance podinfo.test canary weight 100",
        "Confirm-traffic-increase check confirm-traffic-increase-webhook passed",
        "Confirm-promotion check confirm-promotion-webhook passed",
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Advance podinfo.test primary weight 50",
        "Advance podinfo.test primary weight 100",
        "Post-rollout check post-rollout-webhook passed",
        "Promotion completed! Scaling down podinfo.test",
    ]
    event_phase = {body["metadata"]["eventMessage"]: body["phase"] for body in bodies}
    assert event_phase["Initialization done! podinfo.test"] == "Initialized"
    assert event_phase["New revision detected! Scaling up podinfo.test"] == "Progressing"
    assert event_phase["Advance podinfo.test canary weight 100"] == "Progressing"
    assert event_phase["Promotion completed! Scaling down podinfo.test"] == "Succeeded"
