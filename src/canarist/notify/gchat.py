"""Google Chat incoming webhooks: one card, the message first, then one section per field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from canarist.notify.base import Field, check_url, post_message

_GREY = "<font color=#848484><strong>{}</strong></font>"


def _paragraph(text: str) -> dict[str, Any]:
    return {"widgets": [{"textParagraph": {"text": text}}]}


class GChatNotifier:
    def __init__(self, url: str, proxy: str = "") -> None:
        self.url = check_url(url, "Google Chat webhook")
        self.proxy = proxy

    def body(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> dict[str, Any]:
        sections = [_paragraph(_GREY.format(message))]
        sections += [_paragraph(name + "<br>" + _GREY.format(value)) for name, value in fields]
        return {
            "cards": [
                {
                    "header": {
                        "title": "Flagger",
                        "subtitle": f"{workload}.{namespace}",
                        "imageUrl": "https://flagger.app/favicon.png",
                    },
                    "sections": sections,
                }
            ]
        }

    async def post(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> None:
        await post_message(self.url, self.body(workload, namespace, message, fields, severity), self.proxy)
