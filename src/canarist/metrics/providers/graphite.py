"""The Graphite metric provider (graphite-web render API, JSON format).

Request: the query is the query string of a render call, e.g. ``target=sumSeries(app.*.errors)&from=-5min``
(whitespace-collapsed, a leading ``?`` or ``&`` is dropped); ``format`` is always replaced by ``json`` and
``GET <address>/render?<query>&format=json`` is sent. A secretRef must contain both ``username`` and
``password`` (HTTP Basic). ``address`` is required (a path prefix is kept).

Answer: ``[{"target": ..., "datapoints": [[<value or null>, <timestamp>], ...]}, ...]``. The value is the
**last non-null** datapoint of the first series. No series, no datapoint or only null/NaN datapoints raise
:class:`NoValuesError`; more than one series (the query must aggregate), a query without ``target``, HTTP
>= 400, bad JSON and timeouts raise :class:`QueryError`.

``is_online``: ``target=constantLine(1)&from=-1min`` must return 1.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import aiohttp
from yarl import URL

from canarist.metrics.providers._http import (
    BODY_LIMIT,
    HttpClient,
    base_url,
    finite,
    join,
    load_json,
)
from canarist.metrics.providers.base import (
    NoValuesError,
    ProviderConfigError,
    ProviderSpec,
    QueryError,
)
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS
from canarist.metrics.template import collapse_whitespace

__all__ = ["GraphiteProvider"]

ONLINE_QUERY = "target=constantLine(1)&from=-1min"


class GraphiteProvider:
    """Runs render API queries against one graphite-web (or Graphite-compatible) server."""

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        base = base_url("graphite", spec.address)
        headers: list[tuple[str, str]] = []
        if secret is not None:
            username, password = secret.get("username", ""), secret.get("password", "")
            if not username or not password:
                raise ProviderConfigError('graphite secret must contain both "username" and "password"')
            basic = base64.b64encode(f"{username}:{password}".encode()).decode()
            headers.append(("Authorization", f"Basic {basic}"))
        self.address = str(base)
        self._url = join(base, "/render")
        self._http = HttpClient(spec, headers, timeout=timeout, session=session)

    def url_for(self, q: str) -> str:
        """The exact URL sent for query ``q``."""
        text = collapse_whitespace(q).strip().lstrip("?&")
        params = [(k, v) for k, v in parse_qsl(text, keep_blank_values=True) if k != "format"]
        if not any(k == "target" for k, _ in params):
            raise QueryError(f"graphite query {q!r} has no target")
        params.append(("format", "json"))
        return f"{self._url}?{urlencode(params)}"

    async def query(self, q: str) -> float:
        answer = load_json(await self._http.request("GET", URL(self.url_for(q), encoded=True)))
        if not isinstance(answer, list):
            raise QueryError(f"unexpected answer: {json.dumps(answer)[:BODY_LIMIT]}")
        if not answer:
            raise NoValuesError("empty")
        if len(answer) > 1:
            raise QueryError(f"query returned {len(answer)} series, want one (aggregate the targets)")
        series = answer[0]
        points = series.get("datapoints") if isinstance(series, dict) else None
        if not isinstance(points, list):
            raise QueryError(f"unexpected series: {json.dumps(series)[:BODY_LIMIT]}")
        nan_seen = False
        for point in reversed(points):
            if not isinstance(point, list) or len(point) != 2:
                raise QueryError(f"unexpected datapoint: {json.dumps(point)[:BODY_LIMIT]}")
            if point[0] is None:
                continue
            try:
                return finite(point[0])
            except NoValuesError:
                nan_seen = True  # a NaN datapoint counts as null
        raise NoValuesError("NaN" if nan_seen else "empty")

    async def is_online(self) -> bool:
        return await self.query(ONLINE_QUERY) == 1.0
