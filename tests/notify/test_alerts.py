import base64

import pytest

from canarist.api import AlertProvider, Canary
from canarist.notify import (
    GChatNotifier,
    MSTeamsNotifier,
    NopNotifier,
    NotifyError,
    SlackNotifier,
    alert_fields,
    build_notifier,
    decode_secret_data,
    global_notifier,
    notifier_for_provider,
    send_alert,
    severity_matches,
)
from canarist.notify.factory import NotifierConfig
from canarist.operator.settings import OperatorSettings


def canary(analysis=None, **spec):
    manifest = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "service": {"port": 9898},
            **spec,
        },
    }
    if analysis is not None:
        manifest["spec"]["analysis"] = analysis
    return Canary.model_validate(manifest)


def provider(name="slack", namespace="test", **spec):
    return AlertProvider.model_validate(
        {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "AlertProvider",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


@pytest.mark.parametrize(
    ("alert", "message", "expected"),
    [
        ("info", "info", True),
        ("info", "warn", True),
        ("info", "error", True),
        ("", "info", True),  # empty = info (canarist's decision)
        ("", "error", True),
        ("warn", "info", False),
        ("warn", "warn", True),
        ("warn", "error", True),
        ("error", "info", False),
        ("error", "warn", False),
        ("error", "error", True),
        ("bogus", "error", False),
    ],
)
def test_severity_filter(alert, message, expected):
    assert severity_matches(alert, message) is expected


def test_alert_fields_canary_strategy():
    c = canary(
        {"interval": "1m", "threshold": 5, "maxWeight": 50, "stepWeight": 10}, progressDeadlineSeconds=60
    )
    assert alert_fields(c, True) == [
        ("Target", "Deployment/podinfo.test"),
        ("Failed checks threshold", "5"),
        ("Progress deadline", "60s"),
        ("Traffic routing", "Weight step: 10 max: 50"),
    ]
    assert alert_fields(c, False) == []
    assert alert_fields(c, False, cluster_name="prod-eu") == [("Cluster", "prod-eu")]
    assert alert_fields(c, True, cluster_name="prod-eu")[0] == ("Cluster", "prod-eu")


def test_alert_fields_other_strategies_and_defaults():
    steps = canary({"interval": "1m", "threshold": 2, "stepWeights": [1, 10, 80]})
    assert alert_fields(steps, True)[1:] == [
        ("Failed checks threshold", "2"),
        ("Progress deadline", "600s"),
        ("Traffic routing", "Weight steps: 1,10,80 max: 80"),
    ]
    ab = canary({"interval": "1m", "iterations": 10, "match": [{"headers": {"x": {"exact": "1"}}}]})
    assert alert_fields(ab, True)[-1] == ("Traffic routing", "A/B Testing")
    bg = canary({"interval": "1m", "iterations": 10})
    assert alert_fields(bg, True)[-1] == ("Traffic routing", "Blue/Green")
    assert alert_fields(bg, True)[1] == ("Failed checks threshold", "1")
    skip = canary(None)
    assert [name for name, _ in alert_fields(skip, True)] == [
        "Target",
        "Failed checks threshold",
        "Progress deadline",
    ]


def test_factory_registry_and_nop():
    assert isinstance(build_notifier("slack", NotifierConfig(url="")), NopNotifier)
    assert isinstance(build_notifier("msteams", NotifierConfig(url="http://x/")), MSTeamsNotifier)
    with pytest.raises(NotifyError, match="provider pager not supported"):
        build_notifier("pager", NotifierConfig(url="http://x/"))


def test_provider_with_address_and_defaults():
    notifier = notifier_for_provider(provider(type="slack", address="http://hooks/x"))
    assert isinstance(notifier, SlackNotifier)
    assert (notifier.url, notifier.username, notifier.channel, notifier.token) == (
        "http://hooks/x",
        "flagger",
        "general",
        "",
    )


def test_provider_secret_overrides_address_and_sets_token():
    p = provider(
        type="slack",
        address="http://spec/",
        channel="ops",
        username="bot",
        proxy="http://proxy:3128",
        secretRef={"name": "slack-url"},
    )
    secret = decode_secret_data(
        {"data": {"address": base64.b64encode(b"http://secret/").decode()}, "stringData": {"token": "xoxb"}}
    )
    notifier = notifier_for_provider(p, secret)
    assert isinstance(notifier, SlackNotifier)
    assert (notifier.url, notifier.token, notifier.channel, notifier.username, notifier.proxy) == (
        "http://secret/",
        "xoxb",
        "ops",
        "bot",
        "http://proxy:3128",
    )
    with pytest.raises(NotifyError, match="does not contain an address"):
        notifier_for_provider(p, {"token": "x"})
    with pytest.raises(NotifyError, match="secret slack-url not found"):
        notifier_for_provider(p, None)


def test_global_notifier_from_flags_and_env():
    assert isinstance(global_notifier(environ={}), NopNotifier)
    # Slack needs a channel, else nothing is sent
    assert isinstance(global_notifier(slack_url="http://slack/", environ={}), NopNotifier)
    slack = global_notifier(slack_url="http://slack/", slack_channel="general", slack_token="t", environ={})
    assert isinstance(slack, SlackNotifier)
    assert (slack.url, slack.token, slack.username) == ("http://slack/", "t", "flagger")
    env = {"SLACK_URL": "http://env-slack/", "SLACK_TOKEN": "env-token", "SLACK_PROXY_URL": "http://p/"}
    slack = global_notifier(slack_url="http://flag/", slack_channel="c", environ=env)
    assert isinstance(slack, SlackNotifier)
    assert (slack.url, slack.token, slack.proxy) == ("http://env-slack/", "env-token", "http://p/")
    teams = global_notifier(
        slack_url="http://flag/", slack_channel="c", environ={"MSTEAMS_URL": "http://teams/"}
    )
    assert isinstance(teams, MSTeamsNotifier)
    assert teams.url == "http://teams/"
    # a bad URL is logged and becomes a no-op
    assert isinstance(global_notifier(msteams_url="not a url", environ={}), NopNotifier)


def test_global_notifier_from_operator_settings():
    from canarist.notify import global_notifier_from_settings

    settings = OperatorSettings(msteams_url="http://teams/", msteams_proxy_url="http://proxy/")
    notifier = global_notifier_from_settings(settings, environ={})
    assert isinstance(notifier, MSTeamsNotifier)
    assert notifier.proxy == "http://proxy/"


async def test_send_alert_without_alerts_uses_global_notifier(capture_server):
    srv = await capture_server()
    c = canary({"interval": "1m", "threshold": 5, "stepWeight": 10})
    deliveries = await send_alert(
        c, "Canary promotion is waiting for approval.", True, "warn",
        global_notifier=MSTeamsNotifier(srv.url), providers=lambda ns, n: None, secrets=lambda ns, n: None,
        cluster_name="kind",
    )  # fmt: skip
    assert [d.target for d in deliveries] == ["global"]
    body = srv.requests[0].json
    assert body["sections"][0]["activityTitle"] == "Canary promotion is waiting for approval."
    assert body["sections"][0]["facts"][0] == {"name": "Cluster", "value": "kind"}


async def test_send_alert_routes_by_severity_provider_and_secret(capture_server, caplog):
    info_srv = await capture_server()
    warn_srv = await capture_server()
    error_srv = await capture_server()
    empty_srv = await capture_server()
    failing = await capture_server(statuses=[500], bodies=["nope"])
    providers = {
        ("test", "info"): provider("info", type="slack", address=info_srv.url),
        ("test", "warn"): provider("warn", type="msteams", address=warn_srv.url),
        ("ops", "error"): provider("error", "ops", type="gchat", address=error_srv.url),
        ("test", "empty"): provider("empty", type="rocket", secretRef={"name": "rocket"}),
        ("test", "failing"): provider("failing", type="discord", address=failing.url),
    }
    secrets = {("test", "rocket"): {"address": empty_srv.url}}

    async def find_secret(ns, name):  # async lookups work too
        return secrets.get((ns, name))

    c = canary(
        {
            "interval": "1m",
            "threshold": 5,
            "stepWeight": 10,
            "alerts": [
                {"name": "a", "severity": "info", "providerRef": {"name": "info"}},
                {"name": "b", "severity": "warn", "providerRef": {"name": "warn"}},
                {"name": "c", "severity": "error", "providerRef": {"name": "error", "namespace": "ops"}},
                {"name": "d", "providerRef": {"name": "empty"}},
                {"name": "e", "severity": "info", "providerRef": {"name": "failing"}},
                {"name": "f", "severity": "info", "providerRef": {"name": "missing"}},
            ],
        }
    )
    deliveries = await send_alert(
        c, "Canary promotion is waiting for approval.", False, "warn",
        global_notifier=GChatNotifier("http://127.0.0.1:1/never"),
        providers=lambda ns, n: providers.get((ns, n)), secrets=find_secret,
    )  # fmt: skip
    assert [(d.target, d.ok) for d in deliveries] == [
        ("info.test", True),
        ("warn.test", True),
        ("empty.test", True),
        ("failing.test", False),
        ("missing.test", False),
    ]
    assert len(info_srv.requests) == 1
    assert len(warn_srv.requests) == 1
    assert error_srv.requests == []  # an error-only alert does not get a warning
    assert empty_srv.requests[0].json["attachments"][0]["color"] == "#0076D7"
    assert failing.requests[0].path == "/slack"
    assert "alert provider failing.test can't be sent (HTTP 500)" in caplog.text
    assert "alert provider missing.test not found" in caplog.text
