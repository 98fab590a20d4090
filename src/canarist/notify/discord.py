"""Discord, through its Slack-compatible endpoint (``<webhook URL>/slack``)."""

from __future__ import annotations

from canarist.notify.slack import SlackNotifier


class DiscordNotifier(SlackNotifier):
    service = "Discord"

    def __init__(self, url: str, username: str, channel: str, proxy: str = "") -> None:
        super().__init__(url, username, channel, token="", proxy=proxy)
        if not self.url.rstrip("/").endswith("/slack"):
            self.url = self.url.rstrip("/") + "/slack"
