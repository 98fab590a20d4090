"""The InfluxDB metric provider (InfluxDB 2.x HTTP API, Flux).

Request: ``POST <address>/api/v2/query?org=<org>`` with the Flux program as the body
(``Content-Type: application/vnd.flux``, ``Accept: application/csv``) and
``Authorization: Token <token>``. With a secretRef both Secret keys ``token`` and ``org`` are required;
without one the request is sent unauthenticated and without ``org`` (an open InfluxDB 1.8+ Flux endpoint).
``address`` is required.

Answer: (annotated) CSV, one table after another. The value is the ``_value`` column of the **first**
record. No record, an empty or NaN ``_value`` raise :class:`NoValuesError`; a CSV error table (an ``error``
column), a ``_value`` that is not a number, HTTP >= 400 (InfluxDB answers
``{"code": ..., "message": ...}``), an answer without a ``_value`` column and timeouts raise
:class:`QueryError`.

``is_online``: the Flux program ``buckets() |> limit(n: 1)`` must run (any records, or none).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

import aiohttp

from canarist.metrics.providers._http import (
    BODY_LIMIT,
    HttpClient,
    base_url,
    finite,
    join,
    require,
)
from canarist.metrics.providers.base import NoValuesError, ProviderSpec, QueryError
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS

__all__ = ["InfluxDBProvider", "first_value"]

ONLINE_QUERY = "buckets() |> limit(n: 1)"


class InfluxDBProvider:
    """Runs Flux programs against one InfluxDB 2.x server."""

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        base = base_url("influxdb", spec.address)
        headers = [("Content-Type", "application/vnd.flux"), ("Accept", "application/csv")]
        url = join(base, "/api/v2/query")
        if secret is not None:
            token, org = require("influxdb", secret, "token", "org")
            headers.append(("Authorization", f"Token {token}"))
            url = url.with_query({"org": org})
        self.address = str(base)
        self._url = url
        self._http = HttpClient(spec, headers, timeout=timeout, session=session)

    async def _run(self, flux: str) -> list[dict[str, str]]:
        return _records(await self._http.request("POST", self._url, data=flux.encode()))

    async def query(self, q: str) -> float:
        return first_value(await self._run(q))

    async def is_online(self) -> bool:
        await self._run(ONLINE_QUERY)
        return True


def _records(body: str) -> list[dict[str, str]]:
    """The records of all tables of a (possibly annotated) Flux CSV answer, in order."""
    records: list[dict[str, str]] = []
    header: list[str] | None = None
    error_table = False
    for row in csv.reader(io.StringIO(body)):
        if not row or all(cell == "" for cell in row):
            header = None  # a blank line ends a table; the next one brings its own header
            continue
        if row[0].startswith("#"):
            continue  # #datatype, #group, #default annotations
        if header is None:
            header = row
            error_table = "error" in header and set(header) <= {"", "error", "reference"}
            continue
        if error_table:
            message = row[header.index("error")] if len(row) == len(header) else ",".join(row)
            raise QueryError(f"query failed: {message[:BODY_LIMIT]}")
        if len(row) != len(header):
            raise QueryError(f"malformed CSV answer: {body[:BODY_LIMIT]}")
        records.append(dict(zip(header, row, strict=True)))
    return records


def first_value(records: list[dict[str, str]]) -> float:
    if not records:
        raise NoValuesError("empty")
    first = records[0]
    if "_value" not in first:
        raise QueryError(f"answer has no _value column: {sorted(first)}")
    text = first["_value"]
    if text == "":
        raise NoValuesError("empty")
    return finite(text)
