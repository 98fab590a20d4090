"""The operator's AlertSender: alerts are queued in an outbox, so ``await send()`` never waits for HTTP."""

import logging
import socket

import pytest

from canarist.api import Canary
from canarist.notify import NotifyError, Outbox, SlackNotifier, alert_fields, slack_body
from canarist.operator.alerts import AlertSender
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry


def canary(alerts=None):
    analysis = {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}
    if alerts is not None:
        analysis["alerts"] = alerts
    return Canary.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": analysis,
            },
        }
    )


class Objects:
    """The informer-cache read the sender uses, over plain manifests."""

    def __init__(self, *manifests):
        self.objects = {(m["kind"], m["metadata"]["namespace"], m["metadata"]["name"]): m for m in manifests}

    def get(self, kind, namespace, name):
        return self.objects.get((kind.kind, namespace, name))


def provider(name, url, channel="general"):
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": "test"},
        "spec": {"type": "slack", "channel": channel, "address": url},
    }


def counted(telemetry, provider, outcome):
    value = telemetry.registry.get_sample_value(
        "canarist_notifications_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0


async def test_send_returns_while_the_global_slack_hangs_and_posts_todays_payloads(gated_server):
    slack = await gated_server()
    telemetry = Telemetry("istio")
    settings = OperatorSettings(slack_url=slack.url, slack_channel="general", cluster_name="kind")
    sender = AlertSender(None, settings, telemetry)
    c = canary()

    await sender.send(c, "New revision detected, progressing canary analysis.", "info", True)
    await slack.arrived(1)
    await sender.send(c, "Failed checks threshold reached 5", "error", False)  # returns: slack still holds
    assert slack.holding == 1
    assert sender.outbox.pending() == 2
    assert counted(telemetry, "global", "ok") == 0

    slack.release()
    assert await sender.close(timeout_s=10) == 0
    assert slack.bodies == [
        slack_body(
            "general", "flagger", "podinfo", "test", "New revision detected, progressing canary analysis.",
            alert_fields(c, True, "kind"), "good",
        ),
        slack_body(
            "general", "flagger", "podinfo", "test", "Failed checks threshold reached 5",
            [("Cluster", "kind")], "danger",
        ),
    ]  # fmt: skip
    assert counted(telemetry, "global", "ok") == 2


async def test_a_hanging_provider_does_not_hold_back_the_others(gated_server, capture_server, caplog):
    slow = await gated_server()
    fast = await capture_server()
    broken = await capture_server(statuses=[500], bodies=["nope"])
    store = Objects(
        provider("slow", slow.url), provider("fast", fast.url, "fast"), provider("broken", broken.url)
    )
    telemetry = Telemetry("istio")
    sender = AlertSender(store, OperatorSettings(), telemetry)
    c = canary(
        [
            {"name": "s", "severity": "info", "providerRef": {"name": "slow"}},
            {"name": "f", "severity": "info", "providerRef": {"name": "fast"}},
            {"name": "b", "severity": "info", "providerRef": {"name": "broken"}},
            {"name": "m", "severity": "info", "providerRef": {"name": "missing"}},
        ]
    )
    for n in range(3):
        await sender.send(c, f"message {n}", "info", False)
    await fast.wait_for(3)
    await broken.wait_for(3)
    assert slow.holding == 1
    assert [r.json["attachments"][0]["text"] for r in fast.requests] == [
        "message 0",
        "message 1",
        "message 2",
    ]
    assert fast.requests[0].json["channel"] == "fast"
    assert counted(telemetry, "missing.test", "failed") == 3  # no provider: counted at once, as before

    slow.release()
    assert await sender.close(timeout_s=10) == 0
    assert [b["attachments"][0]["text"] for b in slow.bodies] == ["message 0", "message 1", "message 2"]
    assert len(broken.requests) == 3  # an HTTP answer is not retried: one POST per alert, as Flagger
    assert counted(telemetry, "slow.test", "ok") == 3
    assert counted(telemetry, "fast.test", "ok") == 3
    assert counted(telemetry, "broken.test", "failed") == 3
    assert (
        "alert provider broken.test can't be sent (HTTP 500): sending notification bad response 500: nope"
        in (caplog.text)
    )
    assert "alert provider missing.test not found" in caplog.text


async def test_a_full_alert_queue_drops_and_counts(gated_server, caplog):
    slack = await gated_server()
    telemetry = Telemetry("istio")
    drops: list[tuple[str, str]] = []
    outbox = Outbox(queue_size=1, on_drop=lambda kind, dest: drops.append((kind, dest)))
    settings = OperatorSettings(slack_url=slack.url, slack_channel="general")
    sender = AlertSender(None, settings, telemetry, outbox=outbox)
    c = canary()
    await sender.send(c, "one", "info", False)
    await slack.arrived(1)
    await sender.send(c, "two", "info", False)
    with caplog.at_level(logging.WARNING):
        await sender.send(c, "three", "info", False)  # the queue holds one: dropped
    assert drops == [("alert", "alert/global")]
    assert counted(telemetry, "global", "dropped") == 1
    assert "s3cr3t" not in caplog.text

    # At shutdown the hanging Slack is given up on: one in flight, one queued.
    assert await sender.close(timeout_s=0.2) == 2
    assert counted(telemetry, "global", "dropped") == 3
    assert outbox.dropped == {("alert", "alert/global"): 3}


async def test_a_slack_error_body_is_cut_and_its_url_hidden(capture_server):
    srv = await capture_server(statuses=[500], bodies=["e" * (128 * 1024)])
    notifier = SlackNotifier(srv.url + "services/T0/B0/s3cr3t", "flagger", "general")
    with pytest.raises(NotifyError) as caught:
        await notifier.post("podinfo", "test", "m", [], "info")
    assert caught.value.status == 500
    assert not caught.value.transient
    assert (
        str(caught.value) == "sending notification bad response 500: " + "e" * 1024 + "… (130048 bytes cut)"
    )


async def test_a_refused_slack_is_transient_and_named_without_its_path():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notifier = SlackNotifier(f"http://127.0.0.1:{port}/services/T0/B0/s3cr3t", "flagger", "general")
    with pytest.raises(NotifyError) as caught:
        await notifier.post("podinfo", "test", "m", [], "info")
    assert caught.value.transient
    assert str(caught.value) == f"sending notification failed: connection refused: http://127.0.0.1:{port}/…"
