"""The New Relic metric provider (Insights query API, NRQL).

Request: ``GET <address>/v1/accounts/<account id>/query?nrql=<q> SINCE <interval seconds> seconds ago``
with the header ``X-Query-Key`` (Secret keys ``newrelic_account_id`` and ``newrelic_query_key``, both
required). ``address`` defaults to ``https://insights-api.newrelic.com`` (``https://insights-api.eu.newrelic.com``
for the EU region). The query itself must therefore not carry a ``SINCE`` clause.

Answer: ``{"results": [{"<function>": <number>}], ...}``. Exactly one result is expected and its first
value is returned: no result or a null/NaN value raise :class:`NoValuesError`; several results, a value that
is not a number (for instance a ``percentile`` map), HTTP >= 400, bad JSON and timeouts raise
:class:`QueryError`.

``is_online``: ``SELECT count(*) FROM Metric`` over the last minute must answer with a ``results`` list.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import aiohttp
from yarl import URL

from canarist.metrics.providers._http import (
    BODY_LIMIT,
    DEFAULT_INTERVAL,
    HttpClient,
    base_url,
    finite,
    join,
    load_json,
    parse_interval,
    require,
)
from canarist.metrics.providers.base import NoValuesError, ProviderConfigError, ProviderSpec, QueryError
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS
from canarist.metrics.template import collapse_whitespace

__all__ = ["DEFAULT_ADDRESS", "NewRelicProvider"]

DEFAULT_ADDRESS = "https://insights-api.newrelic.com"


class NewRelicProvider:
    """Runs NRQL queries over the last metric interval."""

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        interval: str | float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        base = base_url("newrelic", spec.address, DEFAULT_ADDRESS)
        account, key = require("newrelic", secret, "newrelic_account_id", "newrelic_query_key")
        if "/" in account:
            raise ProviderConfigError(f"invalid newrelic_account_id {account!r}")
        self.address = str(base)
        self._url = join(base, f"/v1/accounts/{quote(account, safe='')}/query")
        self._since = f" SINCE {int(parse_interval(interval))} seconds ago"
        self._http = HttpClient(
            spec,
            [("X-Query-Key", key), ("Accept", "application/json")],
            timeout=timeout,
            session=session,
        )

    def nrql_for(self, q: str) -> str:
        """The NRQL sent for query ``q``."""
        return collapse_whitespace(q).rstrip() + self._since

    async def _run(self, nrql: str) -> object:
        url = URL(f"{self._url}?nrql={quote(nrql, safe='')}", encoded=True)
        return load_json(await self._http.request("GET", url))

    async def query(self, q: str) -> float:
        answer = await self._run(self.nrql_for(q))
        if not isinstance(answer, dict):
            raise QueryError(f"unexpected answer: {str(answer)[:BODY_LIMIT]}")
        if answer.get("error"):
            raise QueryError(f"query failed: {answer['error']}")
        results = answer.get("results")
        if results is None or results == []:
            raise NoValuesError("empty")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise QueryError(f"unexpected results: {str(results)[:BODY_LIMIT]}")
        if len(results) != 1:
            raise QueryError(f"query returned {len(results)} results, want exactly one")
        (result,) = results
        if not result:
            raise NoValuesError("empty")
        return finite(next(iter(result.values())))

    async def is_online(self) -> bool:
        answer = await self._run("SELECT count(*) FROM Metric SINCE 60 seconds ago")
        return isinstance(answer, dict) and isinstance(answer.get("results"), list)
