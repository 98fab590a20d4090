"""Rocket.Chat incoming webhooks: the Slack-format body with Rocket.Chat's colors."""

from __future__ import annotations

from canarist.notify.slack import SlackNotifier


class RocketNotifier(SlackNotifier):
    service = "Rocket"

    def __init__(self, url: str, username: str, channel: str, proxy: str = "") -> None:
        super().__init__(url, username, channel, token="", proxy=proxy)

    def color(self, severity: str) -> str:
        return "#FF0000" if severity == "error" else "#0076D7"
