"""The Amazon CloudWatch metric provider (``GetMetricData``, AWS Query protocol, Signature Version 4).

Query: a JSON array of ``MetricDataQuery`` objects as in the CloudWatch API reference, e.g.
``[{"Id": "e", "Expression": "errors / requests * 100"}, {"Id": "errors", "MetricStat": {...},
"ReturnData": false}, ...]``.

Request: ``POST https://monitoring.<region>.amazonaws.com/`` (``address`` overrides it, e.g. for a VPC
endpoint) with the form body ``Action=GetMetricData&Version=2010-08-01&StartTime=<now - 10 x interval>
&EndTime=<now>&MaxDatapoints=20&MetricDataQueries.member.1.Id=...`` (nested fields flattened the Query
protocol way: ``a.b`` for objects, ``a.member.<n>`` for lists, booleans as ``true``/``false``), signed
with AWS Signature Version 4 (service ``monitoring``). ``region`` is required. Credentials come from the
environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, optional ``AWS_SESSION_TOKEN``) or else the
shared credentials file (``AWS_SHARED_CREDENTIALS_FILE``, default ``~/.aws/credentials``, profile
``AWS_PROFILE`` or ``default``). Web identity (IRSA), container and instance-metadata credentials are not
supported. No Secret is used.

Answer: XML ``GetMetricDataResponse``; the value is the **first** value of the **first** result. No result
or no value raise :class:`NoValuesError`; an ``ErrorResponse`` (HTTP >= 400), a query that is not a JSON
array of objects, malformed XML and timeouts raise :class:`QueryError`.

``is_online``: a ``GetMetricData`` without queries must be refused as invalid (HTTP 400) — that proves the
endpoint is reached and the signature accepted (a bad signature or key is a 403, an error).
"""

from __future__ import annotations

import configparser
import hashlib
import hmac
import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from canarist.metrics.providers._http import (
    BODY_LIMIT,
    DEFAULT_INTERVAL,
    Clock,
    HttpClient,
    base_url,
    parse_interval,
)
from canarist.metrics.providers.base import NoValuesError, ProviderConfigError, ProviderSpec, QueryError
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS

__all__ = ["CloudWatchProvider", "Credentials", "flatten", "load_credentials", "sign_v4"]

SERVICE = "monitoring"
VERSION = "2010-08-01"
FORM = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str = ""


def load_credentials(environ: Mapping[str, str] | None = None) -> Credentials:
    """Environment variables, else the shared credentials file; ProviderConfigError when neither has any."""
    env = os.environ if environ is None else environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return Credentials(
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN", "")
        )
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    profile = env.get("AWS_PROFILE") or "default"
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as err:
        raise ProviderConfigError(f"cannot read AWS credentials file {path}: {err}") from err
    if parser.has_section(profile):
        section = parser[profile]
        key, secret = section.get("aws_access_key_id", ""), section.get("aws_secret_access_key", "")
        if key and secret:
            return Credentials(key, secret, section.get("aws_session_token", ""))
    raise ProviderConfigError(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a shared credentials file "
        f"({path}, profile {profile})"
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def sign_v4(
    credentials: Credentials,
    *,
    method: str,
    url: URL,
    headers: Mapping[str, str],
    payload: bytes,
    region: str,
    service: str,
    when: datetime,
) -> dict[str, str]:
    """The headers to send: ``headers`` plus ``X-Amz-Date``, the session token if any, and the SigV4
    ``Authorization`` (every given header, ``host`` and ``x-amz-date`` are signed)."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    host = url.host or ""
    if url.explicit_port and url.port is not None:
        host = f"{host}:{url.port}"
    canonical_headers = {"host": host}
    for name, value in out.items():
        canonical_headers[name.lower()] = " ".join(value.split())
    signed = ";".join(sorted(canonical_headers))
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(url.query.items()))
    canonical = "\n".join(
        [
            method,
            quote(url.path or "/", safe="/-_.~"),
            query,
            "".join(f"{k}:{canonical_headers[k]}\n" for k in sorted(canonical_headers)),
            signed,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{credentials.secret_key}".encode(), day), region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    )
    return out


def flatten(value: Any, prefix: str) -> list[tuple[str, str]]:
    """A JSON value as AWS Query protocol parameters (objects ``a.b``, lists ``a.member.<n>`` from 1)."""
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in flatten(item, f"{prefix}.{key}")]
    if isinstance(value, list):
        return [pair for i, item in enumerate(value, 1) for pair in flatten(item, f"{prefix}.member.{i}")]
    if isinstance(value, bool):
        return [(prefix, "true" if value else "false")]
    if value is None:
        return []
    return [(prefix, str(value))]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _members(element: ET.Element | None) -> list[ET.Element]:
    return [] if element is None else [c for c in element if _local(c.tag) == "member"]


def _error(body: str) -> tuple[str, str]:
    """(code, message) of an AWS ``ErrorResponse``; empty strings when the body is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return "", ""
    for element in root.iter():
        if _local(element.tag) == "Error":
            code, message = _child(element, "Code"), _child(element, "Message")
            return (code.text or "") if code is not None else "", (
                message.text or ""
            ) if message is not None else ""
    return "", ""


class CloudWatchProvider:
    """Runs CloudWatch ``GetMetricData`` queries over the last ten metric intervals."""

    def __init__(
        self,
        spec: ProviderSpec,
        secret: Mapping[str, str] | None = None,
        *,
        interval: str | float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        if not spec.region:
            raise ProviderConfigError("cloudwatch region is not set")
        self.region = spec.region
        base = base_url("cloudwatch", spec.address, f"https://monitoring.{spec.region}.amazonaws.com")
        self.address = str(base)
        self._url = base.with_path(base.path or "/")
        self._credentials = credentials or load_credentials()
        self._window = 10 * parse_interval(interval)
        self._http = HttpClient(spec, [], timeout=timeout, session=session, clock=clock)

    async def _call(self, params: list[tuple[str, str]]) -> str:
        form = [("Action", "GetMetricData"), ("Version", VERSION), *params]
        payload = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in form).encode()
        when = datetime.fromtimestamp(self._http.clock(), UTC)
        headers = sign_v4(
            self._credentials,
            method="POST",
            url=self._url,
            headers={"Content-Type": FORM},
            payload=payload,
            region=self.region,
            service=SERVICE,
            when=when,
        )
        return await self._http.request("POST", self._url, headers=list(headers.items()), data=payload)

    def params_for(self, q: str) -> list[tuple[str, str]]:
        """The form parameters (without Action and Version) sent for query ``q``."""
        try:
            queries = json.loads(q)
        except json.JSONDecodeError as err:
            raise QueryError(f"cloudwatch query is not JSON: {err}") from err
        if not isinstance(queries, list) or not queries or not all(isinstance(x, dict) for x in queries):
            raise QueryError("cloudwatch query must be a JSON array of MetricDataQuery objects")
        end = self._http.clock()
        start = end - self._window
        return [
            ("StartTime", _iso(start)),
            ("EndTime", _iso(end)),
            ("MaxDatapoints", "20"),
            *flatten(queries, "MetricDataQueries"),
        ]

    async def query(self, q: str) -> float:
        body = await self._call_with_errors(self.params_for(q))
        try:
            root = ET.fromstring(body)
        except ET.ParseError as err:
            raise QueryError(f"unmarshaling result failed: {err}: {body[:BODY_LIMIT]}") from err
        result = None
        for element in root.iter():
            if _local(element.tag) == "MetricDataResults":
                result = element
                break
        if result is None:
            raise QueryError(f"answer has no MetricDataResults: {body[:BODY_LIMIT]}")
        results = _members(result)
        if not results:
            raise NoValuesError("empty")
        values = _members(_child(results[0], "Values"))
        if not values:
            raise NoValuesError("empty")
        try:
            value = float(values[0].text or "")
        except ValueError as err:
            raise QueryError(f"value {values[0].text!r} is not a number") from err
        if math.isnan(value):
            raise NoValuesError("NaN")
        return value

    async def _call_with_errors(self, params: list[tuple[str, str]]) -> str:
        try:
            return await self._call(params)
        except QueryError as err:
            code, message = _error(str(err).partition(": ")[2])
            if code:
                raise QueryError(f"{str(err).partition(':')[0]}: {code}: {message}") from err
            raise

    async def is_online(self) -> bool:
        """An empty GetMetricData must be refused as invalid (400): the endpoint and credentials work."""
        try:
            await self._call([])
        except QueryError as err:
            if str(err).startswith("error response 400"):
                return True
            raise
        return True


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
