"""The Datadog metric provider (metrics query API v1, ``GET /api/v1/query``).

Request: ``GET <address>/api/v1/query?from=<now - 10 x interval>&to=<now>&query=<q>`` (Unix seconds) with
the headers ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` taken from the Secret keys ``datadog_api_key`` and
``datadog_application_key`` (both required). ``address`` defaults to ``https://api.datadoghq.com`` (set it
for another Datadog site, e.g. ``https://api.datadoghq.eu``).

Answer: ``{"status": "ok", "series": [{"pointlist": [[<ms>, <value>], ...]}, ...]}``; the value is the
**first** point of the **first** series. No series, an empty point list or a null/NaN value raise
:class:`NoValuesError`; ``status: error``, HTTP >= 400, bad JSON and timeouts raise :class:`QueryError`.

``is_online``: ``GET <address>/api/v1/validate`` must answer ``{"valid": true}``.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from canarist.metrics.providers._http import (
    BODY_LIMIT,
    DEFAULT_INTERVAL,
    Clock,
    HttpClient,
    base_url,
    finite,
    join,
    load_json,
    parse_interval,
    require,
)
from canarist.metrics.providers.base import NoValuesError, ProviderSpec, QueryError
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS
from canarist.metrics.template import collapse_whitespace

__all__ = ["DEFAULT_ADDRESS", "DatadogProvider"]

DEFAULT_ADDRESS = "https://api.datadoghq.com"


class DatadogProvider:
    """Runs Datadog metric queries over the last ten metric intervals."""

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        interval: str | float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
    ) -> None:
        base = base_url("datadog", spec.address, DEFAULT_ADDRESS)
        api_key, app_key = require("datadog", secret, "datadog_api_key", "datadog_application_key")
        self.address = str(base)
        self._query_url = join(base, "/api/v1/query")
        self._validate_url = join(base, "/api/v1/validate")
        self._window = 10 * parse_interval(interval)
        self._http = HttpClient(
            spec,
            [("DD-API-KEY", api_key), ("DD-APPLICATION-KEY", app_key), ("Accept", "application/json")],
            timeout=timeout,
            session=session,
            clock=clock,
        )

    async def query(self, q: str) -> float:
        now = int(self._http.clock())
        url = self._query_url.with_query(
            {"from": str(now - int(self._window)), "to": str(now), "query": collapse_whitespace(q)}
        )
        answer = load_json(await self._http.request("GET", url))
        if not isinstance(answer, dict):
            raise QueryError(f"unexpected answer: {str(answer)[:BODY_LIMIT]}")
        if answer.get("status") == "error" or answer.get("errors"):
            raise QueryError(f"query failed: {answer.get('error') or answer.get('errors')}")
        series = answer.get("series")
        if series is None or series == []:
            raise NoValuesError("empty")
        if not isinstance(series, list) or not isinstance(series[0], dict):
            raise QueryError(f"unexpected series: {str(series)[:BODY_LIMIT]}")
        points = series[0].get("pointlist")
        if points is None or points == []:
            raise NoValuesError("empty")
        if not isinstance(points, list) or not isinstance(points[0], list) or len(points[0]) != 2:
            raise QueryError(f"unexpected point list: {str(points)[:BODY_LIMIT]}")
        return finite(points[0][1])

    async def is_online(self) -> bool:
        answer = load_json(await self._http.request("GET", self._validate_url))
        return isinstance(answer, dict) and answer.get("valid") is True
