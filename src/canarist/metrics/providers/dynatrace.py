"""The Dynatrace metric provider (Metrics API v2, metric selectors).

Request: ``GET <address>/api/v2/metrics/query?metricSelector=<q>&resolution=Inf&from=<ms>&to=<ms>`` over the
last ten metric intervals (Unix milliseconds), with ``Authorization: Api-Token <token>`` from the Secret
key ``dynatrace_token`` (required). ``address`` is the environment URL, e.g.
``https://<environment>.live.dynatrace.com`` (required; a path prefix such as ``/e/<id>`` of a Managed
environment is kept).

Answer: ``{"result": [{"metricId": ..., "data": [{"dimensions": [...], "timestamps": [...],
"values": [...]}]}]}``. With ``resolution=Inf`` each series has one value; the value is the first value of
the first series of the first result. No result, no series, no value or a null/NaN value raise
:class:`NoValuesError`; HTTP >= 400 (Dynatrace answers ``{"error": {"code", "message"}}``), bad JSON and
timeouts raise :class:`QueryError`.

``is_online``: ``GET <address>/api/v2/metrics?pageSize=1`` must answer a ``metrics`` list (it checks the
token's ``metrics.read`` scope too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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

__all__ = ["DynatraceProvider"]


class DynatraceProvider:
    """Runs Dynatrace metric selectors over the last ten metric intervals."""

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
        base = base_url("dynatrace", spec.address)
        (token,) = require("dynatrace", secret, "dynatrace_token")
        self.address = str(base)
        self._query_url = join(base, "/api/v2/metrics/query")
        self._metrics_url = join(base, "/api/v2/metrics").with_query({"pageSize": "1"})
        self._window_ms = int(10 * parse_interval(interval) * 1000)
        self._http = HttpClient(
            spec,
            [("Authorization", f"Api-Token {token}"), ("Accept", "application/json")],
            timeout=timeout,
            session=session,
            clock=clock,
        )

    async def query(self, q: str) -> float:
        now_ms = int(self._http.clock() * 1000)
        url = self._query_url.with_query(
            {
                "metricSelector": collapse_whitespace(q).strip(),
                "resolution": "Inf",
                "from": str(now_ms - self._window_ms),
                "to": str(now_ms),
            }
        )
        answer = load_json(await self._http.request("GET", url))
        results = _list(answer, "result")
        if not results:
            raise NoValuesError("empty")
        series = _list(results[0], "data")
        if not series:
            raise NoValuesError("empty")
        values = _list(series[0], "values")
        if not values:
            raise NoValuesError("empty")
        return finite(values[0])

    async def is_online(self) -> bool:
        answer = load_json(await self._http.request("GET", self._metrics_url))
        return isinstance(answer, dict) and isinstance(answer.get("metrics"), list)


def _list(obj: Any, key: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise QueryError(f"unexpected answer: {json.dumps(obj)[:BODY_LIMIT]}")
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise QueryError(f"unexpected {key}: {json.dumps(value)[:BODY_LIMIT]}")
    return value
