"""Webhooks end to end: the real operator calling a real loadtester and capture servers (inventory §2.10,
§2.13, §5.4), on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from canarist.cli.main import main
from canarist.kube import resources as kinds
from canarist.workloads.revision import webhook_checksum
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    canary_status,
    delivered,
    event_messages,
    initialize,
    set_image,
    ticks_pass,
    wait_for,
)
from tests.e2e.hooks_helpers import (
    KEY,
    fast_canary,
    golden_canary,
    messages_of,
    post_json,
    posts,
    running_loadtester,
    seed_webhooks_for,
    slack_texts,
    wait_phase,
    wait_until,
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

        await delivered(
            lambda: event_messages(world.events), "Promotion completed! Scaling down podinfo.test"
        )
        messages = [m for m in event_messages(world.events) if " not ready: " not in m]
        run = messages[messages.index("New revision detected! Scaling up podinfo.test") :]
        assert run[:3] == [
            "New revision detected! Scaling up podinfo.test",
            "Starting canary analysis for podinfo.test",
            "Pre-rollout check acceptance-test passed",
        ]
        assert run[-1] == "Promotion completed! Scaling down podinfo.test"
        # No webhook failed. (A metric may halt one interval on a busy machine; that is not this test's subject
        # and the run still succeeds.)
        halts = [m for m in run if m.startswith("Halt")]
        assert not [m for m in halts if "check acceptance-test" in m or "check load-test" in m], halts

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
    await delivered(lambda: messages_of(events), "Promotion completed! Scaling down podinfo.test")

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


async def test_hooks_are_retried_after_a_500(world: World, capture_server: CaptureFactory) -> None:
    pre = await capture_server(statuses=[500, 200], bodies=["try again", ""])
    rollout = await capture_server(statuses=[503, 502, 202], bodies=["busy", "busy", "accepted"])
    webhooks = [
        {"name": "acceptance", "type": "pre-rollout", "url": pre.url, "retries": 1, "timeout": "10s"},
        {"name": "load", "type": "rollout", "url": rollout.url, "retries": 2, "timeout": "15s"},
    ]
    await initialize(world, golden_canary(webhooks, threshold=1))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_phase(world, "Succeeded")

    # One logical call each, answered after the retries: no failed check (threshold 1 would have failed it).
    assert len(pre.requests) == 2
    assert pre.requests[0].body == pre.requests[1].body
    assert len(rollout.requests) >= 3
    assert len({r.body for r in rollout.requests[:3]}) == 1
    messages = messages_of(world.events)
    assert "Pre-rollout check acceptance passed" in messages
    assert not [m for m in messages if m.startswith(("Halt", "Rolling back"))], messages
    assert (await canary_status(world.client))["failedChecks"] == 0


async def test_a_failing_pre_rollout_hook_counts_as_a_failed_check(
    world: World, capture_server: CaptureFactory
) -> None:
    pre = await capture_server(statuses=[500], bodies=["acceptance tests failed"])
    rollout = await capture_server(statuses=[202])
    post = await capture_server(statuses=[200])
    webhooks = [
        {"name": "acceptance-test", "type": "pre-rollout", "url": pre.url, "timeout": "5s"},
        {"name": "load-test", "url": rollout.url, "timeout": "5s"},
        {"name": "notify", "type": "post-rollout", "url": post.url},
    ]
    await initialize(world, golden_canary(webhooks, threshold=2))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")

    async def failed_checks() -> int:
        return int((await canary_status(world.client)).get("failedChecks") or 0)

    await wait_for(lambda: _equals(failed_checks, 1), what="failedChecks 1", timeout_s=30)
    assert (await canary_status(world.client))["phase"] == "Progressing"
    await wait_phase(world, "Failed")

    status = await canary_status(world.client)
    assert (status["failedChecks"], status["canaryWeight"]) == (2, 0)
    assert len(pre.requests) == 2
    assert rollout.requests == []  # no analysis (and no traffic) before the pre-rollout hooks pass
    await post.wait_for(1)
    assert [(b["phase"], b["name"]) for b in posts(post)] == [("Failed", "podinfo")]
    await delivered(lambda: messages_of(world.events), "Post-rollout check notify passed")
    run = without_readiness_waits(messages_of(world.events))
    run = run[run.index("New revision detected! Scaling up podinfo.test") :]
    halt = "Halt podinfo.test advancement pre-rollout check acceptance-test failed acceptance tests failed"
    assert run == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        halt,
        "Starting canary analysis for podinfo.test",
        halt,
        "Rolling back podinfo.test failed checks threshold reached 2",
        "Canary failed! Scaling down podinfo.test",
        "Post-rollout check notify passed",
    ]
    kinds_of = {b["metadata"]["eventMessage"]: b["metadata"]["eventType"] for b in posts(world.events)}
    assert kinds_of[halt] == "Warning"
    assert kinds_of["Canary failed! Scaling down podinfo.test"] == "Warning"


async def test_mute_alert_silences_a_gates_alert_but_not_its_event(
    world: World, capture_server: CaptureFactory
) -> None:
    slack = await capture_server(statuses=[200])
    rollout_gate = await capture_server(statuses=[403], bodies=["closed"])
    promotion_gate = await capture_server(statuses=[403], bodies=["closed"])
    webhooks = [
        {"name": "muted-gate", "type": "confirm-rollout", "url": rollout_gate.url, "muteAlert": True},
        {"name": "loud-gate", "type": "confirm-promotion", "url": promotion_gate.url},
    ]
    await initialize(world, golden_canary(webhooks), slack_url=slack.url, slack_channel="general")
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_phase(world, "Waiting")
    await rollout_gate.wait_for(2, timeout_s=15)  # retried every interval while closed

    rollout_gate.respond_with([200])
    await wait_phase(world, "WaitingPromotion")
    await promotion_gate.wait_for(2, timeout_s=15)
    promotion_gate.respond_with([200])
    await wait_phase(world, "Succeeded")
    await delivered(lambda: slack_texts(slack), "Canary analysis completed successfully, promotion finished.")

    messages = messages_of(world.events)
    assert messages.count("Halt podinfo.test advancement waiting for approval muted-gate") == 1
    assert messages.count("Halt podinfo.test advancement waiting for promotion approval loud-gate") == 1
    assert "Confirm-rollout check muted-gate passed" in messages
    assert "Confirm-promotion check loud-gate passed" in messages
    assert slack_texts(slack) == [
        "New Deployment detected, initialization completed.",
        "New revision detected, progressing canary analysis.",
        "Canary promotion is waiting for approval.",
        "Canary analysis completed successfully, promotion finished.",
    ]


async def _equals(read: Callable[[], Awaitable[int]], value: int) -> bool:
    return await read() == value


# ---------------------------------------------------------------------------------------------- gates


async def test_loadtester_gates_hold_and_release_the_canary(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_loadtester() as tester:
        gate = f"{tester.url}gate/check"
        webhooks = [
            {"name": "approve-rollout", "type": "confirm-rollout", "url": gate},
            {"name": "approve-promotion", "type": "confirm-promotion", "url": gate},
        ]
        operator = await initialize(world, golden_canary(webhooks, stepWeight=50))
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_phase(world, "Waiting")
        # Still held, target not scaled up, over two more gate checks: the gate is asked on paced ticks
        # (once per 3 s interval), and with nothing changing the worker ticks when the next step is due or
        # at the 2 s resync, whichever comes first, so one of any two consecutive ticks is paced. Five
        # ticks: the first may have been in flight at the call, the other four hold two paced ones.
        await ticks_pass(operator, 5)
        assert (await canary_status(world.client))["phase"] == "Waiting"
        assert await cli("gate", "check", KEY, "--url", tester.url) == 1
        assert capsys.readouterr().out == "podinfo.test: closed\n"

        assert await cli("gate", "open", KEY, "--url", tester.url) == 0
        assert capsys.readouterr().out == "gate podinfo.test opened\n"
        await wait_phase(world, "Progressing", timeout_s=15)
        # Close it again before the analysis reaches the promotion gate.
        assert await post_json(f"{tester.url}gate/close", payload()) == (202, "gate podinfo.test closed")
        await wait_phase(world, "WaitingPromotion", timeout_s=30)
        await ticks_pass(operator, 5)  # two more paced ticks, each asking the promotion gate (as above)
        assert (await canary_status(world.client))["phase"] == "WaitingPromotion"
        # The traffic stays on the canary (the status weight is 0 there, as Flagger's setStatusPhase does).
        assert await route_weights(world) == [0, 100]
        primary = await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
        assert primary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":3.1.0")

        assert await post_json(f"{tester.url}gate/open", payload()) == (202, "gate podinfo.test opened")
        await wait_phase(world, "Succeeded", timeout_s=30)

    primary = await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":3.1.1")
    await delivered(lambda: messages_of(world.events), "Promotion completed! Scaling down podinfo.test")
    messages = without_readiness_waits(messages_of(world.events))
    assert messages.count("Halt podinfo.test advancement waiting for approval approve-rollout") == 1
    assert (
        messages.count("Halt podinfo.test advancement waiting for promotion approval approve-promotion") == 1
    )
    run = messages[messages.index("Halt podinfo.test advancement waiting for approval approve-rollout") :]
    assert run == [
        "Halt podinfo.test advancement waiting for approval approve-rollout",
        "Confirm-rollout check approve-rollout passed",
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        "Advance podinfo.test canary weight 50",
        "Advance podinfo.test canary weight 100",
        "Halt podinfo.test advancement waiting for promotion approval approve-promotion",
        "Confirm-promotion check approve-promotion passed",
        "Copying podinfo.test template spec to podinfo-primary.test",
        "Advance podinfo.test primary weight 50",
        "Advance podinfo.test primary weight 100",
        "Promotion completed! Scaling down podinfo.test",
    ]


async def test_a_rollback_hook_rolls_the_canary_back(world: World) -> None:
    async with running_loadtester() as tester:
        webhooks = [
            {"name": "approve-promotion", "type": "confirm-promotion", "url": f"{tester.url}gate/check"},
            {"name": "manual-rollback", "type": "rollback", "url": f"{tester.url}rollback/check"},
        ]
        operator = await initialize(world, golden_canary(webhooks))
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_phase(world, "WaitingPromotion")
        assert await route_weights(world) == [0, 100]

        assert await post_json(f"{tester.url}rollback/open", payload()) == (
            202,
            "rollback podinfo.test opened",
        )
        await wait_phase(world, "Failed", timeout_s=15)

    status = await canary_status(world.client)
    assert status["canaryWeight"] == 0
    assert await route_weights(world) == [100, 0]
    primary = await world.client.get(kinds.DEPLOYMENT, "podinfo-primary", namespace=NAMESPACE)
    assert primary["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":3.1.0")
    target = await world.client.get(kinds.DEPLOYMENT, "podinfo", namespace=NAMESPACE)
    assert target["spec"]["replicas"] == 0

    # The phase is written before the closing event is sent; then two more ticks that emit nothing more.
    await delivered(lambda: messages_of(world.events), "Canary failed! Scaling down podinfo.test")
    await ticks_pass(operator, 2)
    bodies = posts(world.events)
    messages = [b["metadata"]["eventMessage"] for b in bodies]
    assert "Rollback hook manual-rollback not signaling a rollback" in messages
    tail = messages[messages.index("Rollback check manual-rollback passed") :]
    assert tail == [
        "Rollback check manual-rollback passed",
        "Rolling back podinfo.test manual webhook invoked",
        "Canary failed! Scaling down podinfo.test",
    ]
    types = {b["metadata"]["eventMessage"]: b["metadata"]["eventType"] for b in bodies}
    assert types["Rolling back podinfo.test manual webhook invoked"] == "Warning"
    assert types["Rollback hook manual-rollback not signaling a rollback"] == "Normal"


def payload() -> dict[str, Any]:
    """What a webhook (or `canarist gate`) posts for podinfo.test."""
    return {"name": "podinfo", "namespace": NAMESPACE, "phase": "", "checksum": ""}


async def cli(*argv: str) -> int:
    """`canarist ...` in a worker thread (the CLI runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


async def route_weights(world: World) -> list[int]:
    """[primary, canary] weights of the VirtualService the operator wrote."""
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    return [int(d["weight"]) for d in vs["spec"]["http"][0]["route"]]


# ---------------------------------------------------------------------------------------------- more moments


async def test_a_failing_acceptance_test_in_the_loadtester_rolls_the_canary_back(world: World) -> None:
    async with running_loadtester() as tester:
        hooks = seed_webhooks_for(tester.url, world.canary_app.url)
        hooks[0]["metadata"]["cmd"] = hooks[0]["metadata"]["cmd"].replace("grep token", "grep no-such-field")
        operator = await initialize(world, fast_canary(webhooks=hooks, stepWeight=25, threshold=1))
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_phase(world, "Failed")
    # The phase is written before the closing event is sent; then two more ticks that emit nothing more.
    await delivered(lambda: messages_of(world.events), "Canary failed! Scaling down podinfo.test")
    await ticks_pass(operator, 2)
    cmd = f"curl -sd 'test' {world.canary_app.url}/token | grep no-such-field"
    messages = without_readiness_waits(messages_of(world.events))
    run = messages[messages.index("New revision detected! Scaling up podinfo.test") :]
    assert run == [
        "New revision detected! Scaling up podinfo.test",
        "Starting canary analysis for podinfo.test",
        f"Halt podinfo.test advancement pre-rollout check acceptance-test failed command {cmd} failed: "
        "exit status 1",
        "Rolling back podinfo.test failed checks threshold reached 1",
        "Canary failed! Scaling down podinfo.test",
    ]
    assert not [o for o in tester.completed if o.command.startswith("hey ")]  # no load before acceptance


async def test_a_closed_traffic_increase_gate_holds_the_weight_and_alerts_every_interval(
    world: World, capture_server: CaptureFactory
) -> None:
    slack = await capture_server(statuses=[200])
    gate = await capture_server(statuses=[403], bodies=["not yet"])
    webhooks = [{"name": "traffic-gate", "type": "confirm-traffic-increase", "url": gate.url}]
    await initialize(
        world, golden_canary(webhooks, stepWeight=50), slack_url=slack.url, slack_channel="general"
    )
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await gate.wait_for(3, timeout_s=20)
    status = await canary_status(world.client)
    assert (status["phase"], status["canaryWeight"], status["failedChecks"]) == ("Progressing", 0, 0)
    assert await route_weights(world) == [100, 0]
    assert {b["phase"] for b in posts(gate)} == {"Progressing"}

    gate.respond_with([200])
    await wait_phase(world, "Succeeded")
    await delivered(lambda: messages_of(world.events), "Promotion completed! Scaling down podinfo.test")
    halt = "Halt podinfo.test advancement waiting for traffic increase approval traffic-gate"
    halts = messages_of(world.events).count(halt)
    assert halts >= 3  # every interval while closed, as Flagger does
    text = "Canary traffic increase is waiting for approval."
    # Each halt is also a Slack alert, which may still be on its way.
    await wait_until(lambda: slack_texts(slack).count(text) >= halts, f"{halts} Slack alerts {text!r}")
    waiting = slack_texts(slack).count(text)
    assert waiting == halts
    assert "Confirm-traffic-increase check traffic-gate passed" in messages_of(world.events)


async def test_later_runs_report_the_phase_they_start_from_and_post_rollout_failures(
    world: World, capture_server: CaptureFactory
) -> None:
    gate = await capture_server(statuses=[200])
    load = await capture_server(statuses=[202])
    post = await capture_server(statuses=[500], bodies=["post failed"])
    webhooks = [
        {"name": "gate", "type": "confirm-rollout", "url": gate.url},
        {"name": "load-test", "url": load.url},
        {"name": "notify", "type": "post-rollout", "url": post.url},
    ]
    await initialize(world, golden_canary(webhooks, threshold=1))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_phase(world, "Progressing", timeout_s=15)
    await wait_phase(world, "Succeeded")  # a failing post-rollout hook does not change the outcome
    load.respond_with([500], ["load failed"])
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
    await wait_phase(world, "Progressing", timeout_s=15)
    await wait_phase(world, "Failed")
    load.respond_with([202])
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.3")
    await gate.wait_for(3, timeout_s=15)
    await wait_phase(world, "Progressing", timeout_s=15)

    assert [b["phase"] for b in posts(gate)] == ["Initialized", "Succeeded", "Failed"]
    assert [b["phase"] for b in posts(post)] == ["Succeeded", "Failed"]
    bodies = posts(world.events)
    messages = [b["metadata"]["eventMessage"] for b in bodies]
    assert messages.count("Post-rollout hook notify failed post failed") == 2
    assert "Halt podinfo.test advancement external check load-test failed load failed" in messages
    by_message = {b["metadata"]["eventMessage"]: b for b in bodies}
    failed = by_message["Canary failed! Scaling down podinfo.test"]
    assert (failed["phase"], failed["metadata"]["eventType"]) == ("Failed", "Warning")
    post_failed = by_message["Post-rollout hook notify failed post failed"]
    assert post_failed["metadata"]["eventType"] == "Warning"
