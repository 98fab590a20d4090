"""The notifier contract, shared HTTP POST and severity rules (docs/flagger-parity.md#notifications)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import aiohttp
from yarl import URL

from canarist.hooks.client import (
    RETRY_SAFE_STATUSES,
    cut_text,
    describe_client_error,
    never_connected,
    read_body,
)
from canarist.notify.outbox import destination_label

NOTIFY_TIMEOUT_S = 5.0
SEVERITIES = ("info", "warn", "error")
_SEVERITY_ORDER = {"info": 0, "warn": 1, "error": 2}

Field = tuple[str, str]


class NotifyError(Exception):
    """A notification could not be delivered (bad response, network error) or configured.

    ``transient`` means trying again may help and cannot post twice: the connection could not be made, or
    the service answered 429/503.
    """

    def __init__(self, message: str, status: int | None = None, *, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


@runtime_checkable
class Notifier(Protocol):
    """Posts one message about ``workload.namespace``; raises :class:`NotifyError` on failure."""

    async def post(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> None: ...


class NopNotifier:
    """What runs when no notifier is configured: nothing."""

    async def post(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> None:
        return None


def severity_matches(alert_severity: str, message_severity: str) -> bool:
    """Whether an alert of ``alert_severity`` receives a message of ``message_severity``.

    ``info`` receives everything, ``warn`` receives warn and error, ``error`` only error. An empty alert
    severity means ``info`` (as Flagger's documentation promises; Flagger's code sends it nothing).
    """
    mine = _SEVERITY_ORDER.get(alert_severity or "info")
    theirs = _SEVERITY_ORDER.get(message_severity or "info")
    if mine is None or theirs is None:
        return False
    return theirs >= mine


def check_url(url: str, what: str) -> str:
    """Flagger's url.ParseRequestURI check: an absolute http(s) URL."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise NotifyError(f"invalid {what} URL {url}")
    return url


async def post_message(
    url: str,
    payload: Mapping[str, Any],
    proxy: str = "",
    headers: Mapping[str, str] | None = None,
    timeout_s: float = NOTIFY_TIMEOUT_S,
) -> None:
    """POST ``payload`` as JSON; any non-2xx answer or transport error raises :class:`NotifyError`.

    Error texts name the URL only as ``scheme://host/…`` (webhook URLs carry secrets in their path) and
    quote at most 1 KiB of the answer's body.
    """
    where = destination_label(url)
    request_headers = {"Content-Type": "application/json"}
    if headers:
        request_headers.update(headers)
    body = json.dumps(payload).encode()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.post(url, data=body, headers=request_headers, proxy=proxy or None) as response,
        ):
            text = (await read_body(response)).decode(errors="replace")
            if not 200 <= response.status < 300:
                raise NotifyError(
                    f"sending notification bad response {response.status}: {cut_text(text)}",
                    response.status,
                    transient=response.status in RETRY_SAFE_STATUSES,
                )
    except TimeoutError as err:
        raise NotifyError(f"sending notification failed: timeout after {timeout_s:g}s: {where}") from err
    except (aiohttp.ClientError, OSError) as err:
        raise NotifyError(
            f"sending notification failed: {describe_client_error(where, err)}",
            transient=never_connected(err),
        ) from err
