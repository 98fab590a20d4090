"""The contract every metric backend implements, and its errors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "MetricProvider",
    "MetricsError",
    "NoValuesError",
    "ProviderConfigError",
    "ProviderSpec",
    "QueryError",
    "UnsupportedProviderError",
    "secret_data",
]


class MetricsError(Exception):
    """Base of the errors raised by :mod:`canarist.metrics.providers`."""


class NoValuesError(MetricsError):
    """The query ran but returned no usable value (an empty result or NaN). Never a pass.

    Its text is always Flagger's ``no values found`` (it ends up in event messages); ``reason`` says why
    (``empty`` or ``NaN``) for logs.
    """

    def __init__(self, reason: str = "empty") -> None:
        super().__init__("no values found")
        self.reason = reason


class QueryError(MetricsError):
    """The query could not be run or its answer could not be read (HTTP error, bad JSON, timeout...)."""


class ProviderConfigError(MetricsError):
    """The provider cannot be built from its MetricTemplate spec and Secret (missing address, keys...)."""


class UnsupportedProviderError(ProviderConfigError):
    """A MetricTemplate provider type that canarist does not implement yet."""


@runtime_checkable
class MetricProvider(Protocol):
    """A metrics backend: runs one query and returns one number."""

    async def query(self, q: str) -> float:
        """Run ``q`` and return its single value.

        Raises :class:`NoValuesError` when there is no value and :class:`QueryError` on any other failure.
        """
        ...

    async def is_online(self) -> bool:
        """True when the backend answers a trivial query correctly; raises :class:`QueryError` when it
        cannot be reached."""
        ...


@dataclass(frozen=True)
class ProviderSpec:
    """A MetricTemplate's ``spec.provider``, as plain data (no dependency on the API models)."""

    type: str = "prometheus"
    address: str = ""
    #: header name → values (Flagger's ``http.Header``); a plain string is one value.
    headers: Mapping[str, str | list[str]] = field(default_factory=dict)
    secret_name: str = ""
    region: str = ""
    insecure_skip_verify: bool = False
    #: the metric's ``interval`` (``1m``): the window of the providers that query a time range (Datadog,
    #: New Relic, Dynatrace, Splunk, CloudWatch); empty for their default
    interval: str = ""


def secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """The decoded key/value pairs of a core/v1 Secret object (``data`` is base64, ``stringData`` plain).

    Providers take the result of this function, so a caller holding a Secret as a JSON dict calls it once.
    """
    out: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            out[str(key)] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as err:
            raise ProviderConfigError(f"secret key {key!r} is not valid base64 UTF-8 data: {err}") from err
    for key, value in (secret.get("stringData") or {}).items():
        out[str(key)] = str(value)
    return out
