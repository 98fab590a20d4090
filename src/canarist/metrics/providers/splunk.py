"""The Splunk Observability Cloud (SignalFx) metric provider (SignalFlow, REST execute endpoint).

Request: ``POST <stream address>/v2/signalflow/execute?start=<ms>&stop=<ms>&immediate=true`` over the last
ten metric intervals (Unix milliseconds), with the SignalFlow program as a ``text/plain`` body and the
header ``X-SF-Token`` from the Secret key ``sf_token_key`` (required). ``address`` is required; the API
address ``https://api.<realm>.signalfx.com`` is rewritten to the stream address
``https://stream.<realm>.signalfx.com``, any other address is used as given (a path prefix is kept).

Answer: a Server-Sent Events stream (``event: control-message | metadata | data | message | error``, each
JSON payload possibly split over several ``data:`` lines). ``data`` events carry
``{"data": [{"tsId": ..., "value": ...}], "logicalTimestampMs": ...}``. The program must publish exactly one
time series: the value is its **last** non-null value. No value raises :class:`NoValuesError`; values of
more than one time series, an ``error`` event, HTTP >= 400, a malformed stream and timeouts raise
:class:`QueryError`.

``is_online``: the program ``const(1).publish()`` over the same window must run (with or without data).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
from yarl import URL

from canarist.metrics.providers._http import (
    BODY_LIMIT,
    DEFAULT_INTERVAL,
    Clock,
    HttpClient,
    base_url,
    finite,
    join,
    parse_interval,
    require,
)
from canarist.metrics.providers.base import NoValuesError, ProviderSpec, QueryError
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS

__all__ = ["SplunkProvider", "stream_address"]

ONLINE_PROGRAM = "const(1).publish()"


def stream_address(base: URL) -> URL:
    """``https://api.<realm>.signalfx.com`` → ``https://stream.<realm>.signalfx.com``; others unchanged."""
    host = base.host or ""
    if host.startswith("api.") and host.endswith(".signalfx.com"):
        return base.with_host("stream." + host.removeprefix("api."))
    return base


class SplunkProvider:
    """Runs SignalFlow programs over the last ten metric intervals."""

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
        base = base_url("splunk", spec.address)
        (token,) = require("splunk", secret, "sf_token_key")
        self.address = str(base)
        self._url = join(stream_address(base), "/v2/signalflow/execute")
        self._window_ms = int(10 * parse_interval(interval) * 1000)
        self._http = HttpClient(
            spec,
            [("X-SF-Token", token), ("Content-Type", "text/plain"), ("Accept", "text/event-stream")],
            timeout=timeout,
            session=session,
            clock=clock,
        )

    @property
    def url(self) -> URL:
        """The execute endpoint (without the time window)."""
        return self._url

    async def query(self, q: str) -> float:
        now_ms = int(self._http.clock() * 1000)
        url = self._url.with_query(
            {"start": str(now_ms - self._window_ms), "stop": str(now_ms), "immediate": "true"}
        )
        return _last_value(await self._http.request("POST", url, data=q.encode()))

    async def is_online(self) -> bool:
        with contextlib.suppress(NoValuesError):  # the program ran; a window without data is an answer
            await self.query(ONLINE_PROGRAM)
        return True


def _events(body: str) -> Iterator[tuple[str, Any]]:
    """(event type, JSON payload) of each Server-Sent Event."""
    kind, lines = "message", list[str]()
    for line in [*body.splitlines(), ""]:
        if line == "":
            if lines:
                text = "\n".join(lines)
                try:
                    yield kind, json.loads(text)
                except json.JSONDecodeError as err:
                    raise QueryError(f"malformed {kind} event: {err}: {text[:BODY_LIMIT]}") from err
            kind, lines = "message", []
        elif line.startswith(":"):
            continue  # an SSE comment (keep-alive)
        elif line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            lines.append(line.removeprefix("data:"))
        elif not line.startswith(("id:", "retry:")):
            raise QueryError(f"malformed event stream line {line[:BODY_LIMIT]!r}")


def _last_value(body: str) -> float:
    series: set[str] = set()
    value: float | None = None
    nan_seen = False
    for kind, payload in _events(body):
        if kind == "error":
            detail = payload.get("message", payload) if isinstance(payload, dict) else payload
            raise QueryError(f"signalflow error: {json.dumps(detail)[:BODY_LIMIT]}")
        if kind != "data":
            continue
        points = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(points, list):
            raise QueryError(f"unexpected data event: {json.dumps(payload)[:BODY_LIMIT]}")
        for point in points:
            if not isinstance(point, dict) or "tsId" not in point:
                raise QueryError(f"unexpected data point: {json.dumps(point)[:BODY_LIMIT]}")
            series.add(str(point["tsId"]))
            if len(series) > 1:
                raise QueryError(f"query returned more than one time series: {sorted(series)}")
            if point.get("value") is None:
                continue
            try:
                value = finite(point["value"])
            except NoValuesError:
                nan_seen = True
    if value is None:
        raise NoValuesError("NaN" if nan_seen else "empty")
    return value
