"""Plumbing shared by the HTTP metric providers: address checks, interval parsing, one request with the
provider's timeout, and the mapping of transport failures to :class:`QueryError`."""

from __future__ import annotations

import json
import math
import re
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from yarl import URL

from canarist.metrics.providers.base import NoValuesError, ProviderConfigError, ProviderSpec, QueryError

__all__ = [
    "BODY_LIMIT",
    "DEFAULT_INTERVAL",
    "Clock",
    "HttpClient",
    "base_url",
    "finite",
    "load_json",
    "parse_interval",
    "require",
]

BODY_LIMIT = 1024
#: the metric interval used when the caller gives none (the default of a canary metric's ``interval``).
DEFAULT_INTERVAL = "1m"

Clock = Callable[[], float]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_interval(interval: str | float) -> float:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) or a number of seconds → seconds (> 0)."""
    if isinstance(interval, int | float):
        seconds = float(interval)
    else:
        text = interval.strip()
        pos, seconds = 0, 0.0
        while pos < len(text):
            match = _PART.match(text, pos)
            if match is None:
                raise ProviderConfigError(f"error parsing metric interval {interval!r}")
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if not text:
            raise ProviderConfigError(f"error parsing metric interval {interval!r}")
    if not seconds > 0 or math.isinf(seconds):
        raise ProviderConfigError(f"error parsing metric interval {interval!r}: must be positive")
    return seconds


def base_url(name: str, address: str, default: str = "") -> URL:
    """The provider's base URL (``address`` or ``default``) without query or fragment."""
    address = address or default
    if not address:
        raise ProviderConfigError(f"{name} address is not set")
    try:
        url = URL(address)
    except ValueError as err:
        raise ProviderConfigError(f"invalid {name} address {address!r}: {err}") from err
    if url.scheme not in ("http", "https") or not url.host:
        raise ProviderConfigError(f"invalid {name} address {address!r}: want http(s)://host[:port][/path]")
    return url.with_query(None).with_fragment(None)


def join(base: URL, path: str) -> URL:
    """``base`` with ``path`` appended to its own path (a path prefix in the address is kept)."""
    return base.with_path(base.path.rstrip("/") + path)


def require(name: str, secret: Mapping[str, str] | None, *keys: str) -> list[str]:
    """The values of ``keys`` in the Secret data; a missing Secret or key is a config error."""
    if secret is None:
        raise ProviderConfigError(f"{name} provider needs a secretRef with {', '.join(keys)}")
    values = []
    for key in keys:
        value = secret.get(key, "")
        if not value:
            raise ProviderConfigError(f"{name} secret does not contain {key}")
        values.append(value)
    return values


def load_json(body: str) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as err:
        raise QueryError(f"unmarshaling result failed: {err}: {body[:BODY_LIMIT]}") from err


def finite(value: Any) -> float:
    """``value`` as a float; None or NaN is no value, anything else that is not a number a QueryError."""
    if value is None:
        raise NoValuesError("empty")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise QueryError(f"value {json.dumps(value)[:BODY_LIMIT]} is not a number")
    try:
        number = float(value)
    except ValueError as err:
        raise QueryError(f"value {value!r} is not a number") from err
    if math.isnan(number):
        raise NoValuesError("NaN")
    return number


class HttpClient:
    """One provider's HTTP settings: extra headers, TLS verification, timeout, optional shared session."""

    def __init__(
        self,
        spec: ProviderSpec,
        headers: list[tuple[str, str]],
        *,
        timeout: float,
        session: aiohttp.ClientSession | None,
        clock: Clock | None = None,
    ) -> None:
        self.headers: list[tuple[str, str]] = []
        for name, values in spec.headers.items():
            for value in [values] if isinstance(values, str) else values:
                self.headers.append((name, value))
        self.headers.extend(headers)
        self.ssl: ssl.SSLContext | bool = not spec.insecure_skip_verify
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.session = session
        self.clock: Clock = clock or time.time

    async def request(
        self,
        method: str,
        url: URL,
        *,
        headers: list[tuple[str, str]] | None = None,
        data: str | bytes | None = None,
    ) -> str:
        """The body of a < 400 answer; QueryError for an error status, a timeout or a transport failure."""
        where = str(url.with_query(None))
        try:
            if self.session is not None:
                status, body = await self._send(self.session, method, url, headers, data)
            else:
                async with aiohttp.ClientSession() as session:
                    status, body = await self._send(session, method, url, headers, data)
        except TimeoutError as err:
            raise QueryError(f"request to {where} timed out after {self.timeout.total:g}s") from err
        except aiohttp.ClientError as err:
            raise QueryError(f"request to {where} failed: {err}") from err
        if status >= 400:
            raise QueryError(f"error response {status}: {body[:BODY_LIMIT]}")
        return body

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: list[tuple[str, str]] | None,
        data: str | bytes | None,
    ) -> tuple[int, str]:
        async with session.request(
            method,
            url,
            headers=self.headers + (headers or []),
            data=data,
            ssl=self.ssl,
            timeout=self.timeout,
        ) as response:
            return response.status, await response.text(errors="replace")
