import socket

import pytest

from canarist.notify import (
    DiscordNotifier,
    GChatNotifier,
    MSTeamsNotifier,
    NopNotifier,
    Notifier,
    NotifyError,
    RocketNotifier,
    SlackNotifier,
    notify_safely,
)

FIELDS = [("Target", "Deployment/podinfo.test"), ("Failed checks threshold", "5")]


def slack_shaped(color: str, fields=FIELDS, channel="general", username="flagger"):
    return {
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": color,
                "author_name": "podinfo.test",
                "text": "New revision detected",
                "mrkdwn_in": ["text"],
                "fields": [{"title": n, "value": v, "short": False} for n, v in fields],
            }
        ],
    }


@pytest.mark.parametrize(("severity", "color"), [("info", "good"), ("warn", "good"), ("error", "danger")])
async def test_slack_body(capture_server, severity, color):
    srv = await capture_server()
    notifier = SlackNotifier(srv.url + "services/T0/B0", "flagger", "general")
    assert isinstance(notifier, Notifier)
    await notifier.post("podinfo", "test", "New revision detected", FIELDS, severity)
    [request] = srv.requests
    assert request.method == "POST"
    assert request.path == "/services/T0/B0"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.json == slack_shaped(color)


async def test_slack_bearer_token_and_empty_fields(capture_server):
    srv = await capture_server()
    notifier = SlackNotifier(srv.url, "bot", "deploys", token="xoxb-123")
    await notifier.post("podinfo", "test", "New revision detected", [], "info")
    [request] = srv.requests
    assert request.headers["authorization"] == "Bearer xoxb-123"
    assert request.json == slack_shaped("good", fields=[], channel="deploys", username="bot")


async def test_slack_through_a_proxy(capture_server):
    proxy = await capture_server()
    notifier = SlackNotifier("http://hooks.slack.invalid/services/X", "flagger", "general", proxy=proxy.url)
    await notifier.post("podinfo", "test", "New revision detected", FIELDS, "info")
    [request] = proxy.requests
    assert request.host == "hooks.slack.invalid"
    assert request.path == "/services/X"
    assert request.json == slack_shaped("good")


@pytest.mark.parametrize(
    ("suffix", "posted"), [("api/webhooks/1/abc", "/api/webhooks/1/abc/slack"), ("x/slack", "/x/slack")]
)
async def test_discord_posts_slack_body_to_slack_endpoint(capture_server, suffix, posted):
    srv = await capture_server()
    notifier = DiscordNotifier(srv.url + suffix, "flagger", "general")
    await notifier.post("podinfo", "test", "New revision detected", FIELDS, "error")
    [request] = srv.requests
    assert request.path == posted
    assert request.json == slack_shaped("danger")


@pytest.mark.parametrize(("severity", "color"), [("info", "#0076D7"), ("error", "#FF0000")])
async def test_rocket_body(capture_server, severity, color):
    srv = await capture_server()
    await RocketNotifier(srv.url, "flagger", "general").post(
        "podinfo", "test", "New revision detected", FIELDS, severity
    )
    assert srv.requests[0].json == slack_shaped(color)


@pytest.mark.parametrize(("severity", "color"), [("warn", "0076D7"), ("error", "FF0000")])
async def test_msteams_message_card(capture_server, severity, color):
    srv = await capture_server()
    await MSTeamsNotifier(srv.url).post("podinfo", "test", "New revision detected", FIELDS, severity)
    assert srv.requests[0].json == {
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": color,
        "summary": "podinfo.test",
        "sections": [
            {
                "activityTitle": "New revision detected",
                "activitySubtitle": "podinfo.test",
                "facts": [
                    {"name": "Target", "value": "Deployment/podinfo.test"},
                    {"name": "Failed checks threshold", "value": "5"},
                ],
            }
        ],
    }


async def test_gchat_card(capture_server):
    srv = await capture_server()
    await GChatNotifier(srv.url).post("podinfo", "test", "New revision detected", FIELDS, "info")
    grey = "<font color=#848484><strong>{}</strong></font>"
    assert srv.requests[0].json == {
        "cards": [
            {
                "header": {
                    "title": "Flagger",
                    "subtitle": "podinfo.test",
                    "imageUrl": "https://flagger.app/favicon.png",
                },
                "sections": [
                    {"widgets": [{"textParagraph": {"text": grey.format("New revision detected")}}]},
                    {
                        "widgets": [
                            {"textParagraph": {"text": "Target<br>" + grey.format("Deployment/podinfo.test")}}
                        ]
                    },
                    {
                        "widgets": [
                            {"textParagraph": {"text": "Failed checks threshold<br>" + grey.format("5")}}
                        ]
                    },
                ],
            }
        ]
    }


def test_constructors_validate_like_flagger():
    with pytest.raises(NotifyError, match="invalid Slack hook URL nope"):
        SlackNotifier("nope", "flagger", "general")
    with pytest.raises(NotifyError, match="empty Slack username"):
        SlackNotifier("http://x/", "", "general")
    with pytest.raises(NotifyError, match="empty Discord channel"):
        DiscordNotifier("http://x/", "flagger", "")
    with pytest.raises(NotifyError, match="invalid MS Teams webhook URL"):
        MSTeamsNotifier("ftp://x/")
    with pytest.raises(NotifyError, match="invalid Google Chat webhook URL"):
        GChatNotifier("")


async def test_bad_response_raises_notify_error_with_status(capture_server):
    srv = await capture_server(statuses=[500], bodies=["boom"])
    with pytest.raises(NotifyError, match=r"^sending notification bad response 500: boom$") as info:
        await SlackNotifier(srv.url, "flagger", "general").post("podinfo", "test", "m", [], "info")
    assert info.value.status == 500


async def test_201_is_accepted(capture_server):
    srv = await capture_server(statuses=[201])
    await MSTeamsNotifier(srv.url).post("podinfo", "test", "m", [], "info")
    assert len(srv.requests) == 1


async def test_notify_safely_logs_a_500_and_does_not_raise(capture_server, caplog):
    srv = await capture_server(statuses=[500], bodies=["boom"])
    notifier = SlackNotifier(srv.url, "flagger", "general")
    assert await notify_safely(notifier, "podinfo", "test", "m", FIELDS, "error") is False
    assert "alert can't be sent (HTTP 500): sending notification bad response 500: boom" in caplog.text


async def test_notify_safely_logs_connection_refused(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notifier = GChatNotifier(f"http://127.0.0.1:{port}/hook/s3cr3t-token")
    assert await notify_safely(notifier, "podinfo", "test", "m", [], "info") is False
    # the webhook URL's path is a secret: only scheme://host:port/… is logged
    assert f"sending notification failed: connection refused: http://127.0.0.1:{port}/…" in caplog.text
    assert "s3cr3t" not in caplog.text


async def test_notify_safely_survives_a_broken_notifier(caplog):
    class Broken:
        async def post(self, workload, namespace, message, fields, severity):
            raise RuntimeError("bug")

    assert await notify_safely(Broken(), "podinfo", "test", "m", [], "info") is False
    assert "bug" in caplog.text


async def test_nop_notifier():
    await NopNotifier().post("a", "b", "c", [], "info")
    assert await notify_safely(NopNotifier(), "a", "b", "c", [], "error") is True
