"""Notifications end to end: the real operator sending Flagger's Slack payloads (inventory §2.12, §5.3) to
local capture servers, through AlertProviders and through the global `--slack-url` notifier.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    canary_status,
    delivered,
    initialize,
    load_example,
    set_image,
    ticks_pass,
)
from tests.e2e.hooks_helpers import (
    alert_provider,
    apply_all,
    golden_canary,
    messages_of,
    posts,
    secret,
    slack_texts,
    wait_phase,
)
from tests.fixtures.capture import CaptureFactory, CaptureServer

INIT = "New Deployment detected, initialization completed."
NEW_REVISION = "New revision detected, progressing canary analysis."
PROMOTED = "Canary analysis completed successfully, promotion finished."
THRESHOLD = "Failed checks threshold reached 2"

RUN_FIELDS = [
    {"title": "Target", "value": "Deployment/podinfo.test", "short": False},
    {"title": "Failed checks threshold", "value": "2", "short": False},
    {"title": "Progress deadline", "value": "60s", "short": False},
    {"title": "Traffic routing", "value": "Weight step: 100 max: 100", "short": False},
]


def evidence_fields(load: CaptureServer) -> list[dict[str, Any]]:
    """The rollback alert's fields after Flagger's: the evidence of the check that failed last."""
    evidence = [
        ("Failed check", "load-test (rollout) HTTP 500: load test failed"),
        ("Step", "weight 100"),
        ("URL", load.url),
        ("HTTP status", "500"),
        ("Response", "load test failed"),
    ]
    return [{"title": title, "value": value, "short": False} for title, value in evidence]


def canary_with_load_hook(load: CaptureServer, **analysis: Any) -> dict[str, Any]:
    """The comparable golden spec with one rollout hook, whose answers decide each run's outcome."""
    return golden_canary([{"name": "load-test", "url": load.url, "timeout": "5s"}], threshold=2, **analysis)


async def promotion_then_rollback(world: World, load: CaptureServer) -> None:
    """A promoted run (3.1.1), then a run that fails its rollout hook twice and is rolled back (3.1.2)."""
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_phase(world, "Progressing", timeout_s=15)
    await wait_phase(world, "Succeeded")
    load.respond_with([500], ["load test failed"])
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
    await wait_phase(world, "Progressing", timeout_s=15)
    await wait_phase(world, "Failed")
    # The phase is written before the closing event is sent; then two more ticks that emit nothing more.
    await delivered(lambda: messages_of(world.events), "Canary failed! Scaling down podinfo.test")
    await ticks_pass(world.operators[-1], 2)
    messages = messages_of(world.events)
    assert "Promotion completed! Scaling down podinfo.test" in messages
    assert "Rolling back podinfo.test failed checks threshold reached 2" in messages
    assert messages[-1] == "Canary failed! Scaling down podinfo.test"


def assert_slack_body(body: dict[str, Any], channel: str, username: str = "flagger") -> dict[str, Any]:
    """Flagger's Slack shape; returns the attachment."""
    assert set(body) == {"channel", "username", "icon_url", "icon_emoji", "attachments"}
    assert (body["channel"], body["username"]) == (channel, username)
    assert (body["icon_url"], body["icon_emoji"]) == ("", ":rocket:")
    assert len(body["attachments"]) == 1
    attachment: dict[str, Any] = body["attachments"][0]
    assert set(attachment) == {"color", "author_name", "text", "mrkdwn_in", "fields"}
    assert attachment["author_name"] == "podinfo.test"
    assert attachment["mrkdwn_in"] == ["text"]
    assert attachment["color"] == ("danger" if attachment["text"] == THRESHOLD else "good")
    return attachment


async def test_alert_providers_from_secrets_receive_every_alert_by_severity(
    world: World, capture_server: CaptureFactory
) -> None:
    on_call = await capture_server(statuses=[200])
    pager = await capture_server(statuses=[200])
    load = await capture_server(statuses=[202])
    await apply_all(
        world,
        load_example("namespace.yaml"),
        secret("on-call-url", {"address": on_call.url}),
        secret("pager-url", {"address": pager.url, "token": "s3cr3t"}),
        alert_provider("on-call", "on-call-url", channel="on-call"),
        alert_provider("pager", "pager-url", channel="pager"),
    )
    alerts = [
        {"name": "on-call", "severity": "info", "providerRef": {"name": "on-call"}},
        {"name": "pager", "severity": "error", "providerRef": {"name": "pager", "namespace": NAMESPACE}},
    ]
    await initialize(world, canary_with_load_hook(load, alerts=alerts))
    await promotion_then_rollback(world, load)

    # info receives info, warn and error; error receives only error.
    assert slack_texts(on_call) == [INIT, NEW_REVISION, PROMOTED, NEW_REVISION, THRESHOLD]
    assert slack_texts(pager) == [THRESHOLD]
    fields = {}
    for body in posts(on_call):
        fields[assert_slack_body(body, "on-call")["text"]] = assert_slack_body(body, "on-call")["fields"]
    assert fields == {
        INIT: RUN_FIELDS,
        NEW_REVISION: RUN_FIELDS,
        PROMOTED: [],
        THRESHOLD: evidence_fields(load),
    }
    assert assert_slack_body(posts(pager)[0], "pager")["color"] == "danger"
    assert pager.requests[0].headers["authorization"] == "Bearer s3cr3t"
    assert "authorization" not in on_call.requests[0].headers
    assert world.events.requests  # the event webhook still gets the events
    assert (await canary_status(world.client))["phase"] == "Failed"


async def test_the_global_slack_notifier_receives_every_alert(
    world: World, capture_server: CaptureFactory
) -> None:
    slack = await capture_server(statuses=[200])
    load = await capture_server(statuses=[202])
    await initialize(
        world,
        canary_with_load_hook(load),
        slack_url=slack.url,
        slack_channel="general",
        cluster_name="e2e-cluster",
    )
    await promotion_then_rollback(world, load)

    assert slack_texts(slack) == [INIT, NEW_REVISION, PROMOTED, NEW_REVISION, THRESHOLD]
    cluster = {"title": "Cluster", "value": "e2e-cluster", "short": False}
    fields = {}
    for body in posts(slack):
        attachment = assert_slack_body(body, "general")
        fields[attachment["text"]] = attachment["fields"]
    assert fields == {
        INIT: [cluster, *RUN_FIELDS],
        NEW_REVISION: [cluster, *RUN_FIELDS],
        PROMOTED: [cluster],
        THRESHOLD: [cluster, *evidence_fields(load)],
    }
    for request in slack.requests:
        assert request.method == "POST"
        assert request.headers["content-type"].startswith("application/json")
        assert "authorization" not in request.headers


async def test_a_failing_notifier_does_not_stop_the_run(world: World, capture_server: CaptureFactory) -> None:
    slack = await capture_server(statuses=[500], bodies=["slack is down"])
    broken = await capture_server(statuses=[500], bodies=["provider is down"])
    load = await capture_server(statuses=[202])
    await apply_all(
        world,
        load_example("namespace.yaml"),
        secret("broken-url", {"address": broken.url}),
        alert_provider("broken", "broken-url"),
    )
    alerts = [
        {"name": "broken", "severity": "info", "providerRef": {"name": "broken"}},
        {"name": "missing", "severity": "info", "providerRef": {"name": "no-such-provider"}},
    ]
    await initialize(
        world, canary_with_load_hook(load, alerts=alerts), slack_url=slack.url, slack_channel="x"
    )
    await promotion_then_rollback(world, load)

    # Every alert was attempted (and failed); the runs went on; the global notifier is not used when a
    # canary has alerts.
    assert slack_texts(broken) == [INIT, NEW_REVISION, PROMOTED, NEW_REVISION, THRESHOLD]
    assert slack.requests == []
