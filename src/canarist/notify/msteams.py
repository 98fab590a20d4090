"""Microsoft Teams incoming webhooks: a MessageCard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from canarist.notify.base import Field, check_url, post_message


class MSTeamsNotifier:
    def __init__(self, url: str, proxy: str = "") -> None:
        self.url = check_url(url, "MS Teams webhook")
        self.proxy = proxy

    def body(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> dict[str, Any]:
        subject = f"{workload}.{namespace}"
        return {
            "@type": "MessageCard",
            "@context": "http://schema.org/extensions",
            "themeColor": "FF0000" if severity == "error" else "0076D7",
            "summary": subject,
            "sections": [
                {
                    "activityTitle": message,
                    "activitySubtitle": subject,
                    "facts": [{"name": name, "value": value} for name, value in fields],
                }
            ],
        }

    async def post(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> None:
        await post_message(self.url, self.body(workload, namespace, message, fields, severity), self.proxy)
