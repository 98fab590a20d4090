"""The Kubernetes API server as the API-server-backed providers (externalmetrics, keptn) reach it.

``address`` when set (``insecureSkipVerify`` applies), otherwise the in-cluster server
(``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``, verified with the service account CA). Auth: the
Secret key ``token`` as ``Authorization: Bearer`` when present; otherwise, in-cluster, the pod's service
account token, re-read at each request (it rotates).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from yarl import URL

from canarist.metrics.providers._http import HttpClient, base_url, join, load_json
from canarist.metrics.providers.base import ProviderConfigError, ProviderSpec, QueryError

__all__ = ["SERVICE_ACCOUNT", "ApiServer"]

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ApiServer:
    """JSON requests to one Kubernetes API server."""

    def __init__(
        self,
        name: str,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None,
        *,
        timeout: float,
        session: aiohttp.ClientSession | None,
        service_account: Path = SERVICE_ACCOUNT,
    ) -> None:
        self._token_file: Path | None = None
        token = (secret or {}).get("token", "")
        if spec.address:
            base = base_url(name, spec.address)
        else:
            host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
            port = os.environ.get("KUBERNETES_SERVICE_PORT") or "443"
            if not host:
                raise ProviderConfigError(
                    f"{name} address is not set and not running in a cluster (KUBERNETES_SERVICE_HOST)"
                )
            host = f"[{host}]" if ":" in host else host
            base = URL(f"https://{host}:{port}")
            if not token:
                self._token_file = service_account / "token"
        self.base = base
        headers = [("Accept", "application/json")]
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        self._http = HttpClient(spec, headers, timeout=timeout, session=session)
        ca = service_account / "ca.crt"
        if not spec.address and not spec.insecure_skip_verify and ca.exists():
            self._http.ssl = ssl.create_default_context(cafile=str(ca))

    def url(self, path: str) -> URL:
        return join(self.base, path)

    def _auth(self) -> list[tuple[str, str]]:
        if self._token_file is None:
            return []
        try:
            return [("Authorization", f"Bearer {self._token_file.read_text().strip()}")]
        except OSError as err:
            raise QueryError(f"cannot read the service account token: {err}") from err

    async def request(self, method: str, url: URL, body: object | None = None) -> object:
        """The decoded JSON answer (QueryError on HTTP >= 400, transport failures and bad JSON)."""
        headers = self._auth()
        data = None
        if body is not None:
            headers.append(("Content-Type", "application/json"))
            data = json.dumps(body).encode()
        return load_json(await self._http.request(method, url, headers=headers, data=data))
