"""Slack incoming webhooks (and the Slack-format body shared by Discord and Rocket.Chat)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from canarist.notify.base import Field, NotifyError, check_url, post_message


def slack_body(
    channel: str,
    username: str,
    workload: str,
    namespace: str,
    message: str,
    fields: Sequence[Field],
    color: str,
) -> dict[str, Any]:
    """Flagger's Slack payload: one attachment with the message and the fields."""
    return {
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": ":rocket:",
        "attachments": [
            {
                "color": color,
                "author_name": f"{workload}.{namespace}",
                "text": message,
                "mrkdwn_in": ["text"],
                "fields": [{"title": name, "value": value, "short": False} for name, value in fields],
            }
        ],
    }


class SlackNotifier:
    service = "Slack"

    def __init__(self, url: str, username: str, channel: str, token: str = "", proxy: str = "") -> None:
        self.url = check_url(url, f"{self.service} hook")
        if not username:
            raise NotifyError(f"empty {self.service} username")
        if not channel:
            raise NotifyError(f"empty {self.service} channel")
        self.username = username
        self.channel = channel
        self.token = token
        self.proxy = proxy

    def color(self, severity: str) -> str:
        return "danger" if severity == "error" else "good"

    def body(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> dict[str, Any]:
        return slack_body(
            self.channel, self.username, workload, namespace, message, fields, self.color(severity)
        )

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def post(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> None:
        payload = self.body(workload, namespace, message, fields, severity)
        await post_message(self.url, payload, self.proxy, self.headers())
