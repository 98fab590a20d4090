"""The Google Cloud Monitoring (Stackdriver) metric provider (MQL through ``timeSeries:query``).

Request: ``POST <address>/v3/projects/<project>/timeSeries:query`` with ``{"query": "<MQL>"}`` and
``Authorization: Bearer <access token>``. ``address`` defaults to ``https://monitoring.googleapis.com``. The
Secret key ``project`` is required (a secretRef is therefore required).

Access token: only Application Default Credentials from the metadata server are supported, i.e. GKE
Workload Identity or a GCE/GKE node service account:
``GET http://<GCE_METADATA_HOST or metadata.google.internal>/computeMetadata/v1/instance/service-accounts/default/token``
with ``Metadata-Flavor: Google``; the token is cached until a minute before it expires. A Secret key
``serviceAccountKey`` (a JSON key, which needs RS256 signing) is refused with a clear configuration error.

Answer: ``{"timeSeriesData": [{"pointData": [{"values": [{"doubleValue": ...} | {"int64Value": "..."}]}]}]}``;
the value is the first value of the first point of the first series. No series, no point or no value
raise :class:`NoValuesError`; HTTP >= 400 (``{"error": {"code", "message"}}``), a value of another type,
bad JSON, a token failure and timeouts raise :class:`QueryError`.

``is_online``: ``GET <address>/v3/projects/<project>/metricDescriptors?pageSize=1`` must answer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from canarist.metrics.providers._http import (
    BODY_LIMIT,
    HttpClient,
    base_url,
    finite,
    join,
    load_json,
    require,
)
from canarist.metrics.providers.base import NoValuesError, ProviderConfigError, ProviderSpec, QueryError
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS

__all__ = ["DEFAULT_ADDRESS", "StackdriverProvider"]

DEFAULT_ADDRESS = "https://monitoring.googleapis.com"
TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


class StackdriverProvider:
    """Runs MQL queries on Google Cloud Monitoring with a metadata-server access token."""

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
        metadata_host: str | None = None,
    ) -> None:
        (project,) = require("stackdriver", secret, "project")
        if secret is not None and secret.get("serviceAccountKey"):
            raise ProviderConfigError(
                "stackdriver serviceAccountKey is not supported yet; use Workload Identity (metadata server "
                "credentials) and leave serviceAccountKey out of the secret"
            )
        base = base_url("stackdriver", spec.address, DEFAULT_ADDRESS)
        self.address = str(base)
        if any(c in project for c in "/?#% "):
            raise ProviderConfigError(f"invalid stackdriver project {project!r}")
        project_path = f"/v3/projects/{project}"
        self._query_url = URL(f"{join(base, project_path)}/timeSeries:query", encoded=False)
        self._online_url = join(base, project_path + "/metricDescriptors").with_query({"pageSize": "1"})
        host = metadata_host or os.environ.get("GCE_METADATA_HOST") or "metadata.google.internal"
        self._token_url = URL(f"http://{host}{TOKEN_PATH}")
        self._http = HttpClient(spec, [("Accept", "application/json")], timeout=timeout, session=session)
        # the metadata server is plain HTTP and local: no extra headers, no TLS settings
        self._metadata = HttpClient(
            ProviderSpec(), [("Metadata-Flavor", "Google")], timeout=timeout, session=session
        )
        self._token = ""
        self._token_expiry = 0.0

    async def _bearer(self) -> list[tuple[str, str]]:
        if not self._token or time.monotonic() >= self._token_expiry:
            answer = load_json(await self._metadata.request("GET", self._token_url))
            token = answer.get("access_token") if isinstance(answer, dict) else None
            expires = answer.get("expires_in", 0) if isinstance(answer, dict) else 0
            if not isinstance(token, str) or not token or not isinstance(expires, int | float):
                raise QueryError(f"metadata server gave no access token: {json.dumps(answer)[:BODY_LIMIT]}")
            self._token = token
            self._token_expiry = time.monotonic() + max(0.0, float(expires) - 60.0)
        return [("Authorization", f"Bearer {self._token}")]

    async def query(self, q: str) -> float:
        body = json.dumps({"query": q}).encode()
        headers = [*await self._bearer(), ("Content-Type", "application/json")]
        answer = load_json(await self._http.request("POST", self._query_url, headers=headers, data=body))
        if not isinstance(answer, dict):
            raise QueryError(f"unexpected answer: {json.dumps(answer)[:BODY_LIMIT]}")
        series = _list(answer.get("timeSeriesData"), "timeSeriesData")
        if not series:
            raise NoValuesError("empty")
        points = _list(_field(series[0], "pointData"), "pointData")
        if not points:
            raise NoValuesError("empty")
        values = _list(_field(points[0], "values"), "values")
        if not values:
            raise NoValuesError("empty")
        value = values[0]
        if not isinstance(value, dict):
            raise QueryError(f"unexpected value: {json.dumps(value)[:BODY_LIMIT]}")
        for key in ("doubleValue", "int64Value"):
            if key in value:
                return finite(value[key])
        raise QueryError(f"value is not a number: {json.dumps(value)[:BODY_LIMIT]}")

    async def is_online(self) -> bool:
        await self._http.request("GET", self._online_url, headers=await self._bearer())
        return True


def _field(obj: Any, key: str) -> Any:
    if not isinstance(obj, dict):
        raise QueryError(f"unexpected {key} holder: {json.dumps(obj)[:BODY_LIMIT]}")
    return obj.get(key)


def _list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise QueryError(f"unexpected {key}: {json.dumps(value)[:BODY_LIMIT]}")
    return value
