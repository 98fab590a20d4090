"""The notifier contract, the shared HTTP POST, and the severity rules (inventory §2.12, §5.3)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import aiohttp
from yarl import URL

from canarist.hooks.client import describe_client_error

NOTIFY_TIMEOUT_S = 5.0
SEVERITIES = ("info", "warn", "error")
_SEVERITY_ORDER = {"info": 0, "warn": 1, "error": 2}

Field = tuple[str, str]


class NotifyError(Exception):
    """A notification could not be delivered (bad response, network error) or configured."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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
    """POST ``payload`` as JSON; any non-2xx answer or transport error raises :class:`NotifyError`."""
    request_headers = {"Content-Type": "application/json"}
    if headers:
        request_headers.update(headers)
    body = json.dumps(payload).encode()
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.post(url, data=body, headers=request_headers, proxy=proxy or None) as response,
        ):
            text = (await response.content.read(64 * 1024)).decode(errors="replace")
            if not 200 <= response.status < 300:
                raise NotifyError(
                    f"sending notification bad response {response.status}: {text}", response.status
                )
    except TimeoutError as err:
        raise NotifyError(f"sending notification failed: timeout after {timeout_s:g}s: {url}") from err
    except (aiohttp.ClientError, OSError) as err:
        raise NotifyError(f"sending notification failed: {describe_client_error(url, err)}") from err
