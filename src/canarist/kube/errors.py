"""The errors the access layer raises. Nothing from httpx2 or lightkube crosses this boundary.

```
KubeError
├── ApiError                 the server answered with a failure Status (``code``, ``reason``, ``message``)
│   ├── NotFound             404
│   ├── AlreadyExists        409, reason AlreadyExists (a create of an existing name)
│   ├── Conflict             409 otherwise (stale resourceVersion on update)
│   ├── Gone                 410 (watch/list from a resourceVersion that is too old)
│   ├── Invalid              422, with the field ``causes``
│   └── Forbidden            403
├── TransportError           no usable answer: connection refused/reset, timeout, undecodable body
├── Fenced                   a write refused locally: this replica no longer holds the leader Lease
├── CrdsMissing              `wait_for_crds`: the server answered 404 for these CRDs
└── ApiUnavailable           `wait_for_crds`: the server stayed unreachable/unavailable past the timeout
```

`is_transient(error)` says whether an error is worth retrying (429, 500, 502, 503, 504, transport
failures); `not_applied(error)` whether it also proves the request had no effect (429, or a connection that
was never made), which is what makes a retry of a create or delete safe.

Messages taken from the server (a Status ``message`` or a non-JSON body) are cut to `MAX_ERROR_BODY`
(1 KiB) so that a proxy's HTML page or a huge admission message cannot flood logs and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_ERROR_BODY",
    "TRANSIENT_CODES",
    "AlreadyExists",
    "ApiError",
    "ApiUnavailable",
    "Cause",
    "Conflict",
    "CrdsMissing",
    "Fenced",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "NotFound",
    "TransportError",
    "bounded",
    "error_from_status",
    "is_transient",
    "not_applied",
]

MAX_ERROR_BODY = 1024
"""At most this many characters of a server message or body go into an exception."""

TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})
"""HTTP codes that a retry may cure."""


def bounded(text: str, limit: int = MAX_ERROR_BODY) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


class KubeError(Exception):
    """Base of every error raised by `canarist.kube`."""


class NotAKubeconfig(KubeError):
    """The kubeconfig file is YAML of another shape (not a mapping of clusters, contexts and users)."""


class TransportError(KubeError):
    """The request did not get a usable answer (network failure, timeout, malformed response).

    ``sent`` is False when the connection was never made (refused, connect timeout, no free connection),
    so the server cannot have acted on the request; True (the default) when it may have."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class Fenced(KubeError):
    """A write was refused before it was sent: the client's write fence (the leader election) said this
    replica no longer holds the Lease, so another replica may already be acting."""


class CrdsMissing(KubeError):
    """The API server answered 404 for these CustomResourceDefinitions: they are not installed."""

    def __init__(self, names: tuple[str, ...] | list[str]) -> None:
        self.names = tuple(names)
        super().__init__(
            f"CRD{'s' if len(self.names) > 1 else ''} not registered: {', '.join(self.names)}; "
            "install them with: canarist crds | kubectl apply -f -"
        )


class ApiUnavailable(KubeError):
    """The API server stayed unreachable or kept answering transient errors for the whole wait; says
    nothing about whether the CRDs are installed."""

    def __init__(self, message: str, last_error: KubeError | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


@dataclass(frozen=True, slots=True)
class Cause:
    """One entry of a Status' ``details.causes``: which field is wrong and why."""

    field: str
    reason: str
    message: str


class ApiError(KubeError):
    """The API server answered with an error Status."""

    def __init__(
        self,
        code: int,
        message: str,
        reason: str = "",
        *,
        details: Mapping[str, Any] | None = None,
        status: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = bounded(message)
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")
        self.code = code
        self.retry_after = retry_after
        """Seconds the server asked us to wait (``Retry-After`` / ``details.retryAfterSeconds``)."""
        self.message = message
        self.reason = reason
        self.details: dict[str, Any] = dict(details or {})
        self.status: dict[str, Any] = dict(status or {})

    @property
    def causes(self) -> list[Cause]:
        """The field causes the server gave (``details.causes``), possibly empty."""
        out: list[Cause] = []
        for raw in self.details.get("causes") or []:
            if isinstance(raw, Mapping):
                out.append(
                    Cause(
                        field=str(raw.get("field", "")),
                        reason=str(raw.get("reason", "")),
                        message=str(raw.get("message", "")),
                    )
                )
        return out


class NotFound(ApiError):
    """404: the object (or its namespace, or the resource type) does not exist."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: a create for a name that is taken."""


class Conflict(ApiError):
    """409 Conflict: the object changed since it was read (stale ``resourceVersion``)."""


class Gone(ApiError):
    """410 Gone / Expired: the requested ``resourceVersion`` is no longer available."""


class Invalid(ApiError):
    """422 Invalid: the object failed validation; see `causes`."""


class Forbidden(ApiError):
    """403 Forbidden."""


def _retry_after(header: str | None, details: Mapping[str, Any]) -> float | None:
    for raw in (header, details.get("retryAfterSeconds")):
        if raw is None or isinstance(raw, bool):
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            continue  # an HTTP-date Retry-After: ignored, the backoff applies
        if value >= 0:
            return value
    return None


def error_from_status(
    code: int,
    status: Mapping[str, Any] | None,
    fallback_message: str = "",
    *,
    retry_after_header: str | None = None,
) -> ApiError:
    """Build the typed error for an HTTP status code and a (possibly missing) Status body.

    Watch streams carry errors as ``{"type": "ERROR", "object": <Status>}`` with the HTTP code inside the
    Status, so ``code`` may come from there too.
    """
    status = status or {}
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or fallback_message or reason or f"HTTP {code}")
    details = status.get("details")
    details_map: Mapping[str, Any] = details if isinstance(details, Mapping) else {}
    cls: type[ApiError]
    if code == 404:
        cls = NotFound
    elif code == 409:
        cls = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif code == 410 or reason in ("Expired", "Gone"):
        cls = Gone
    elif code == 422:
        cls = Invalid
    elif code == 403:
        cls = Forbidden
    else:
        cls = ApiError
    if len(message) > MAX_ERROR_BODY:
        message = bounded(message)
        status = {**status, "message": message}
    return cls(
        code,
        message,
        reason,
        details=details_map,
        status=status,
        retry_after=_retry_after(retry_after_header, details_map),
    )


def is_transient(error: BaseException) -> bool:
    """True for errors a retry may cure: transport failures and 429/500/502/503/504 answers."""
    if isinstance(error, TransportError):
        return True
    return isinstance(error, ApiError) and error.code in TRANSIENT_CODES


def not_applied(error: BaseException) -> bool:
    """True when the error proves the server did not act on the request: a 429 (rejected before any
    processing), or a connection that was never established. A 5xx or a read timeout proves nothing."""
    if isinstance(error, TransportError):
        return not error.sent
    return isinstance(error, ApiError) and error.code == 429
