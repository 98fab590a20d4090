"""The Keptn metric provider (Keptn ``metrics.keptn.sh/v1beta1`` resources through the Kubernetes API).

Queries (whitespace-collapsed):

* ``keptnmetric/<namespace>/<name>``: ``GET /apis/metrics.keptn.sh/v1beta1/namespaces/<namespace>/keptnmetrics/<name>``;
  the value is ``status.value`` (a number in a string). No ``status.value`` raises :class:`NoValuesError`.
* ``analysis/<namespace>/<analysisDefinition>/<duration>/<k=v;k2=v2>`` (duration default ``1m``, arguments
  optional): creates an ``Analysis`` (``generateName: canarist-analysis-``) in ``<namespace>`` with
  ``spec.analysisDefinition`` ``{name, namespace}``, ``spec.timeframe.recent: <duration>`` and ``spec.args``,
  reads it every ``poll_interval`` (1 s) until ``status.state`` is ``Completed`` (at most ``analysis_timeout``,
  10 s), and returns 1 when ``status.pass`` is true, 0 otherwise. The Analysis is deleted in every case.
  Not completing in time raises :class:`QueryError`.

The API server is the in-cluster one (``address`` overrides it; a Secret key ``token`` overrides the
service account token). HTTP >= 400, an unknown query form, bad JSON and timeouts raise :class:`QueryError`.
``is_online`` is always true (as in Flagger: there is no cheap probe that proves a KeptnMetric works).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from canarist.metrics.providers._http import BODY_LIMIT, finite
from canarist.metrics.providers._kube import SERVICE_ACCOUNT, ApiServer
from canarist.metrics.providers.base import MetricsError, NoValuesError, ProviderSpec, QueryError
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS
from canarist.metrics.template import collapse_whitespace

__all__ = ["KeptnProvider"]

API = "/apis/metrics.keptn.sh/v1beta1"
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def _name(kind: str, value: str, q: str) -> str:
    if not _NAME.fullmatch(value):
        raise QueryError(f"invalid {kind} {value!r} in keptn query {q!r}")
    return quote(value, safe="")


class KeptnProvider:
    """Reads KeptnMetrics and runs Keptn Analyses."""

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
        service_account: Path = SERVICE_ACCOUNT,
        poll_interval: float = 1.0,
        analysis_timeout: float = 10.0,
    ) -> None:
        self._api = ApiServer(
            "keptn", spec, secret, timeout=timeout, session=session, service_account=service_account
        )
        self.address = str(self._api.base)
        self._poll = poll_interval
        self._analysis_timeout = analysis_timeout

    async def query(self, q: str) -> float:
        text = collapse_whitespace(q).strip()
        kind, _, rest = text.partition("/")
        parts = rest.split("/")
        if kind == "keptnmetric" and len(parts) == 2:
            return await self._metric(q, *parts)
        if kind == "analysis" and 2 <= len(parts) <= 4:
            namespace, definition, duration, args = [*parts, "", ""][:4]
            return await self._analysis(q, namespace, definition, duration or "1m", args)
        raise QueryError(
            f"invalid keptn query {q!r}: want keptnmetric/<namespace>/<name> or "
            "analysis/<namespace>/<definition>[/<duration>[/<k=v;...>]]"
        )

    async def _metric(self, q: str, namespace: str, name: str) -> float:
        url = self._api.url(
            f"{API}/namespaces/{_name('namespace', namespace, q)}/keptnmetrics/{_name('name', name, q)}"
        )
        obj = await self._api.request("GET", url)
        status = obj.get("status") if isinstance(obj, dict) else None
        value = status.get("value") if isinstance(status, dict) else None
        if value in (None, ""):
            raise NoValuesError("empty")
        return finite(value)

    async def _analysis(self, q: str, namespace: str, definition: str, duration: str, args: str) -> float:
        ns = _name("namespace", namespace, q)
        arguments: dict[str, str] = {}
        for pair in filter(None, args.split(";")):
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise QueryError(f"invalid analysis argument {pair!r} in keptn query {q!r}: want k=v")
            arguments[key] = value
        body: dict[str, Any] = {
            "apiVersion": "metrics.keptn.sh/v1beta1",
            "kind": "Analysis",
            "metadata": {"generateName": "canarist-analysis-", "namespace": namespace},
            "spec": {
                "analysisDefinition": {
                    "name": _name("analysis definition", definition, q),
                    "namespace": namespace,
                },
                "timeframe": {"recent": duration},
                "args": arguments,
            },
        }
        created = await self._api.request("POST", self._api.url(f"{API}/namespaces/{ns}/analyses"), body)
        name = created.get("metadata", {}).get("name") if isinstance(created, dict) else None
        if not isinstance(name, str) or not name:
            raise QueryError(f"created analysis has no name: {json.dumps(created)[:BODY_LIMIT]}")
        url = self._api.url(f"{API}/namespaces/{ns}/analyses/{quote(name, safe='')}")
        try:
            deadline = time.monotonic() + self._analysis_timeout
            while True:
                obj = await self._api.request("GET", url)
                status = obj.get("status") if isinstance(obj, dict) else None
                if isinstance(status, dict) and status.get("state") == "Completed":
                    return 1.0 if status.get("pass") is True else 0.0
                if time.monotonic() >= deadline:
                    raise QueryError(
                        f"analysis {namespace}/{name} did not complete within {self._analysis_timeout:g}s"
                    )
                await asyncio.sleep(self._poll)
        finally:
            with contextlib.suppress(MetricsError):
                await self._api.request("DELETE", url)

    async def is_online(self) -> bool:
        return True
