"""The Kubernetes external metrics provider (``external.metrics.k8s.io/v1beta1``, as served by KEDA,
the Datadog cluster agent, prometheus-adapter and other metrics adapters).

Query: ``[<namespace>/]<metricName>[?labelSelector=<url-encoded selector>]`` (namespace default
``default``), whitespace-collapsed. Request:
``GET <api server>/apis/external.metrics.k8s.io/v1beta1/namespaces/<namespace>/<metricName>?labelSelector=...``.

API server: ``address`` when set (``insecureSkipVerify`` applies), otherwise the in-cluster one
(``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``, the service account CA). Auth: the Secret key
``token`` (optional) as ``Authorization: Bearer``; without it, in-cluster, the pod's service account token
(re-read at each request, it rotates).

Answer: an ``ExternalMetricValueList``; the value is the first item's ``value``, a Kubernetes quantity
(``250m``, ``3``, ``2k``, ``1Gi``, ``1e3``). No item raises :class:`NoValuesError`; HTTP >= 400 (a
``Status`` object), a list of another kind, an unparsable quantity, bad JSON and timeouts raise
:class:`QueryError`.

``is_online``: the API group's discovery document (``GET /apis/external.metrics.k8s.io/v1beta1``) must be an
``APIResourceList``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import parse_qsl, quote

import aiohttp
from yarl import URL

from canarist.metrics.providers._http import BODY_LIMIT
from canarist.metrics.providers._kube import SERVICE_ACCOUNT, ApiServer
from canarist.metrics.providers.base import NoValuesError, ProviderSpec, QueryError
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS
from canarist.metrics.template import collapse_whitespace

__all__ = ["ExternalMetricsProvider", "parse_quantity"]

GROUP_PATH = "/apis/external.metrics.k8s.io/v1beta1"

_SUFFIXES = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))((?:[eE][+-]?\d+)|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)")
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._:-]*")


def parse_quantity(text: str) -> float:
    """A Kubernetes resource quantity as a float (``250m`` → 0.25, ``1Ki`` → 1024, ``1e3`` → 1000)."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise QueryError(f"invalid quantity {text!r}")
    number, suffix = match.groups()
    try:
        value = Decimal(number)
        if suffix[:1] in ("e", "E"):
            return float(value * Decimal(10) ** int(suffix[1:]))
        return float(value * _SUFFIXES[suffix])
    except (InvalidOperation, ValueError) as err:
        raise QueryError(f"invalid quantity {text!r}") from err


class ExternalMetricsProvider:
    """Reads one external metric through the Kubernetes API server."""

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
        service_account: Path = SERVICE_ACCOUNT,
    ) -> None:
        self._api = ApiServer(
            "externalmetrics", spec, secret, timeout=timeout, session=session, service_account=service_account
        )
        self.address = str(self._api.base)
        self._base = self._api.url(GROUP_PATH)

    def url_for(self, q: str) -> URL:
        """The URL sent for query ``q``."""
        text = collapse_whitespace(q).strip()
        path, _, query = text.partition("?")
        namespace, _, name = path.rpartition("/")
        namespace = namespace or "default"
        if not _NAME.fullmatch(name) or not _NAME.fullmatch(namespace):
            raise QueryError(
                f"invalid external metric query {q!r}: want [<namespace>/]<metric>[?labelSelector=...]"
            )
        params = parse_qsl(query, keep_blank_values=True)
        unknown = sorted({k for k, _ in params} - {"labelSelector"})
        if unknown:
            raise QueryError(f"invalid external metric query {q!r}: unknown parameters {unknown}")
        url = f"{self._base}/namespaces/{quote(namespace, safe='')}/{quote(name, safe='')}"
        if params:
            url += "?labelSelector=" + quote(params[-1][1], safe="")
        return URL(url, encoded=True)

    async def _get(self, url: URL) -> object:
        return await self._api.request("GET", url)

    async def query(self, q: str) -> float:
        answer = await self._get(self.url_for(q))
        if not isinstance(answer, dict) or answer.get("kind") != "ExternalMetricValueList":
            raise QueryError(f"unexpected answer: {json.dumps(answer)[:BODY_LIMIT]}")
        items = answer.get("items") or []
        if not isinstance(items, list):
            raise QueryError(f"unexpected items: {json.dumps(items)[:BODY_LIMIT]}")
        if not items:
            raise NoValuesError("empty")
        first = items[0]
        value = first.get("value") if isinstance(first, dict) else None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise QueryError(f"unexpected item: {json.dumps(first)[:BODY_LIMIT]}")
        return parse_quantity(str(value))

    async def is_online(self) -> bool:
        answer = await self._get(self._base)
        return isinstance(answer, dict) and answer.get("kind") == "APIResourceList"
