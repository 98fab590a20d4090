"""The webhook client: one POST with Flagger's HTTP contract (docs/flagger-parity.md#webhooks-and-payloads).

* ``POST`` with ``Content-Type: application/json``;
* a status above 202 is a failure and the response body is the error text;
* ``retries`` extra attempts with exponential backoff after connection errors and 5xx/429 answers;
* one timeout for the whole call, retries included (as Flagger's request context);
* ``disable_tls`` turns certificate verification off;
* the error text taken from a failure's body is cut to :data:`MAX_ERROR_BYTES` (see :func:`cut_text`).

:func:`call_webhook` never raises for HTTP or network problems: it returns a failed :class:`HookResult`
whose ``error`` says what went wrong in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # responses are read up to 1 MiB
MAX_ERROR_BYTES = 1024  # a failure's body is cut to 1 KiB before it becomes an error text
DEFAULT_TIMEOUT_S = 10.0
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 30.0


@dataclass(frozen=True)
class HookResult:
    """The outcome of one webhook call (all attempts)."""

    ok: bool
    status: int | None
    body: str
    elapsed_s: float
    error: str | None = None
    attempts: int = 1
    timed_out: bool = False  # the timeout ended the call (no answer in time)
    retry_safe: bool = False  # failed so a new attempt cannot duplicate it: never_connected, or 429/503

    def __str__(self) -> str:
        if self.ok:
            return f"status {self.status}"
        return self.error or f"status {self.status}"


def cut_text(text: str, limit: int = MAX_ERROR_BYTES) -> str:
    """``text`` if its UTF-8 form fits in ``limit`` bytes; otherwise its first ``limit`` bytes (never half a
    character) followed by ``… (N bytes cut)``. Error bodies go through this before they reach events,
    logs and results."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= limit:
        return text
    kept = raw[:limit].decode("utf-8", errors="ignore")
    cut = len(raw) - len(kept.encode("utf-8"))
    return f"{kept}… ({cut} bytes cut)"


async def read_body(response: aiohttp.ClientResponse, limit: int = MAX_BODY_BYTES) -> bytes:
    """The response body up to ``limit`` bytes (``StreamReader.read(n)`` alone stops at the first chunk)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def is_success(status: int) -> bool:
    """Flagger's rule: any status above 202 is a failure."""
    return status <= 202


def _retryable_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def _backoff(attempt: int, base_s: float, max_s: float, retry_after: str | None) -> float:
    """Exponential backoff (base * 2**attempt, capped); a numeric Retry-After wins when it is shorter."""
    wait = min(max_s, base_s * (2.0**attempt))
    if retry_after is not None:
        with contextlib.suppress(ValueError):
            wait = min(max_s, max(0.0, float(retry_after)))
    return wait


def describe_client_error(url: str, err: BaseException) -> str:
    """A one-line, human-readable description of a transport error."""
    if isinstance(err, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate verification failed: {url}: {err.certificate_error}"
    if isinstance(err, aiohttp.ClientSSLError):
        return f"TLS error: {url}: {err}"
    dns_error = getattr(aiohttp, "ClientConnectorDNSError", None)
    if dns_error is not None and isinstance(err, dns_error):
        return f"cannot resolve host: {url}"
    if isinstance(err, aiohttp.ClientConnectorError):
        if isinstance(err.os_error, ConnectionRefusedError):
            return f"connection refused: {url}"
        return f"cannot connect: {url}: {err.os_error.strerror or err.os_error}"
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return f"server disconnected: {url}"
    if isinstance(err, aiohttp.InvalidURL):
        return f"invalid URL: {url}"
    if isinstance(err, ConnectionRefusedError):
        return f"connection refused: {url}"
    text = str(err) or type(err).__name__
    return f"request failed: {url}: {text}"


RETRY_SAFE_STATUSES = (429, 503)


def never_connected(err: BaseException) -> bool:
    """Whether the request surely never reached the server: the connection was refused, the host did not
    resolve, or the TCP connection failed (TLS failures excluded: they are configuration, not luck)."""
    if isinstance(err, aiohttp.ClientSSLError):
        return False
    return isinstance(err, aiohttp.ClientConnectorError | ConnectionRefusedError)


def _ssl_setting(disable_tls: bool) -> ssl.SSLContext | bool:
    """``True`` verifies certificates with the default trust store; ``False`` skips verification."""
    return not disable_tls


async def call_webhook(
    url: str,
    payload: Mapping[str, Any],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = 0,
    disable_tls: bool = False,
    *,
    headers: Mapping[str, str] | None = None,
    backoff_s: float = BACKOFF_MIN_S,
    backoff_max_s: float = BACKOFF_MAX_S,
    session: aiohttp.ClientSession | None = None,
) -> HookResult:
    """POST ``payload`` as JSON to ``url``; see the module docstring for the contract.

    ``backoff_s``/``backoff_max_s`` bound the wait between attempts (defaults 1 s and 30 s, as
    go-retryablehttp). ``session`` lets a caller reuse a connection pool; otherwise one is made per call.
    """
    started = time.monotonic()
    retries = max(0, int(retries))
    body_bytes = json.dumps(payload, separators=(",", ":")).encode()
    request_headers = {"Content-Type": "application/json"}
    if headers:
        request_headers.update(headers)

    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        return HookResult(False, None, "", time.monotonic() - started, f"invalid webhook URL {url!r}", 0)

    attempts = 0
    status: int | None = None
    text = ""
    error: str | None = None
    retry_safe = False

    async def attempt_loop(client: aiohttp.ClientSession) -> None:
        nonlocal attempts, status, text, error, retry_safe
        for attempt in range(retries + 1):
            attempts = attempt + 1
            retry_after: str | None = None
            try:
                async with client.post(
                    parsed,
                    data=body_bytes,
                    headers=request_headers,
                    ssl=_ssl_setting(disable_tls),
                    allow_redirects=True,
                ) as response:
                    status = response.status
                    raw = await read_body(response)
                    text = raw.decode(response.charset or "utf-8", errors="replace")
                    retry_after = response.headers.get("Retry-After")
                if is_success(status):
                    error = None
                    return
                text = cut_text(text)
                error = text if text.strip() else f"webhook returned status {status}"
                retry_safe = status in RETRY_SAFE_STATUSES
                if not _retryable_status(status):
                    return
            except (aiohttp.ClientError, OSError) as err:
                status = None
                text = ""
                error = describe_client_error(url, err)
                retry_safe = never_connected(err)
            if attempt < retries:
                wait = _backoff(attempt, backoff_s, backoff_max_s, retry_after)
                log.debug("webhook %s attempt %d failed (%s), retrying in %.2fs", url, attempts, error, wait)
                await asyncio.sleep(wait)
        if retries and status is None and error is not None:
            error = f"{error} (giving up after {attempts} attempts)"

    try:
        async with asyncio.timeout(timeout_s):
            if session is not None:
                await attempt_loop(session)
            else:
                async with aiohttp.ClientSession() as own:
                    await attempt_loop(own)
    except TimeoutError:
        return HookResult(
            False,
            None,
            "",
            time.monotonic() - started,
            f"timeout after {timeout_s:g}s: {url}",
            attempts,
            timed_out=True,
        )
    elapsed = time.monotonic() - started
    ok = status is not None and is_success(status) and error is None
    return HookResult(
        ok, status, text, elapsed, None if ok else error, attempts, retry_safe=not ok and retry_safe
    )
