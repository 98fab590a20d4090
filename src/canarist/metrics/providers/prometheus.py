"""The Prometheus metric provider (``GET <address>/api/v1/query?query=``)."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from canarist.metrics.providers.base import (
    NoValuesError,
    ProviderConfigError,
    ProviderSpec,
    QueryError,
)
from canarist.metrics.template import collapse_whitespace

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "PrometheusProvider"]

DEFAULT_TIMEOUT_SECONDS = 5.0
_BODY_LIMIT = 1024


class PrometheusProvider:
    """Runs PromQL instant queries against one Prometheus server.

    * the query is whitespace-collapsed and sent as ``GET <address>/api/v1/query?query=<q>`` (a path
      prefix in ``address`` is kept);
    * a Secret with ``token`` adds ``Authorization: Bearer <token>``, otherwise ``username`` and
      ``password`` (both required) add Basic auth; ``headers`` are sent as given;
    * a vector answer gives the value of its **last** series, a scalar its value; an empty vector or NaN
      raises :class:`NoValuesError`; a matrix, a string, HTTP ≥ 400, bad JSON, a timeout or a connection
      failure raise :class:`QueryError`.

    Pass ``session`` to reuse an aiohttp session (its owner closes it); otherwise each call opens and closes
    its own.
    """

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if not spec.address:
            raise ProviderConfigError("prometheus address is not set")
        try:
            base = URL(spec.address)
        except ValueError as err:
            raise ProviderConfigError(f"invalid prometheus address {spec.address!r}: {err}") from err
        if base.scheme not in ("http", "https") or not base.host:
            raise ProviderConfigError(
                f"invalid prometheus address {spec.address!r}: want http(s)://host[:port][/path]"
            )
        self.address = spec.address
        self._endpoint = str(base.with_query(None).with_fragment(None)).rstrip("/") + "/api/v1/query"
        self._headers: list[tuple[str, str]] = []
        for name, values in spec.headers.items():
            for value in [values] if isinstance(values, str) else values:
                self._headers.append((name, value))
        if secret is not None:
            token = secret.get("token", "")
            if token:
                self._headers.append(("Authorization", f"Bearer {token}"))
            else:
                username, password = secret.get("username", ""), secret.get("password", "")
                if not username or not password:
                    raise ProviderConfigError(
                        'secret must contain "token", or both "username" and "password" for basic auth'
                    )
                basic = base64.b64encode(f"{username}:{password}".encode()).decode()
                self._headers.append(("Authorization", f"Basic {basic}"))
        self._ssl = not spec.insecure_skip_verify
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session

    def url_for(self, q: str) -> str:
        """The exact URL sent for query ``q``."""
        return f"{self._endpoint}?query={quote(collapse_whitespace(q), safe='')}"

    async def query(self, q: str) -> float:
        url = URL(self.url_for(q), encoded=True)
        try:
            if self._session is not None:
                status, body = await self._get(self._session, url)
            else:
                async with aiohttp.ClientSession() as session:
                    status, body = await self._get(session, url)
        except TimeoutError as err:
            raise QueryError(f"request to {self._endpoint} timed out after {self._timeout.total:g}s") from err
        except aiohttp.ClientError as err:
            raise QueryError(f"request to {self._endpoint} failed: {err}") from err
        if status >= 400:
            raise QueryError(f"error response {status}: {body[:_BODY_LIMIT]}")
        return _value_of(body)

    async def _get(self, session: aiohttp.ClientSession, url: URL) -> tuple[int, str]:
        async with session.get(url, headers=self._headers, ssl=self._ssl, timeout=self._timeout) as response:
            return response.status, await response.text(errors="replace")

    async def is_online(self) -> bool:
        """``vector(1)`` must return 1. Raises :class:`QueryError` / :class:`NoValuesError` on failure."""
        return await self.query("vector(1)") == 1.0


def _sample(pair: Any) -> float:
    if not isinstance(pair, list) or len(pair) != 2:
        raise QueryError(f"unexpected sample {json.dumps(pair)[:_BODY_LIMIT]}")
    try:
        return float(pair[1])
    except (TypeError, ValueError) as err:
        raise QueryError(f"sample value {pair[1]!r} is not a number") from err


def _value_of(body: str) -> float:
    try:
        answer = json.loads(body)
    except json.JSONDecodeError as err:
        raise QueryError(f"unmarshaling result failed: {err}: {body[:_BODY_LIMIT]}") from err
    if not isinstance(answer, dict):
        raise QueryError(f"unexpected answer: {body[:_BODY_LIMIT]}")
    if answer.get("status") != "success":
        raise QueryError(
            f"query failed: {answer.get('errorType', '')}: {answer.get('error', body[:_BODY_LIMIT])}"
        )
    data = answer.get("data")
    if not isinstance(data, dict):
        raise QueryError(f"answer has no data: {body[:_BODY_LIMIT]}")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        value = _sample(result)
    elif result_type == "vector":
        if not isinstance(result, list):
            raise QueryError(f"vector result is not a list: {body[:_BODY_LIMIT]}")
        if not result:
            raise NoValuesError("empty")
        value = math.nan
        for series in result:
            if not isinstance(series, dict):
                raise QueryError(f"unexpected series {json.dumps(series)[:_BODY_LIMIT]}")
            value = _sample(series.get("value"))
    elif result_type == "matrix":
        raise QueryError("query returned multiple values")
    else:
        raise QueryError(f"unsupported result type {result_type!r}")
    if math.isnan(value):
        raise NoValuesError("NaN")
    return value
