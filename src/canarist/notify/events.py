"""Event webhooks through an :class:`~canarist.notify.outbox.Outbox`: the executor's ``_post_event`` in one
line, off the control loop.

>>> submit_event(outbox, url, build_event_payload(...), timeout_s=10.0, key="podinfo.test")
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from canarist.hooks.client import call_webhook
from canarist.notify.outbox import Delivery, Outbox, SendResult

log = logging.getLogger("canarist.notify.events")

EVENT_KIND = "event"


def submit_event(
    outbox: Outbox,
    url: str,
    payload: Mapping[str, Any],
    timeout_s: float,
    key: str,
    *,
    disable_tls: bool = False,
) -> bool:
    """Queue one POST of ``payload`` to the event webhook ``url`` and return at once (``False``: dropped).

    One queue per URL, in submission order. ``timeout_s`` bounds each attempt. Only failures that cannot
    have delivered the event (connection refused/unresolvable host, 429, 503) are tried again; a timeout or
    another answer is not (Flagger never retries events). A final failure is logged as before:
    ``error sending event to webhook: <error>`` with ``canary=key``; the error quotes at most 1 KiB of body.
    """
    body = dict(payload)

    async def attempt() -> SendResult:
        result = await call_webhook(url, body, timeout_s=timeout_s, disable_tls=disable_tls)
        return SendResult(result.ok, result.retry_safe, "" if result.ok else str(result))

    def done(delivery: Delivery) -> None:
        if delivery.outcome == "failed":
            log.warning("error sending event to webhook: %s", delivery.error, extra={"canary": key})

    return outbox.submit(url, attempt, kind=EVENT_KIND, on_done=done)
