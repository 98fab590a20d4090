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
└── TransportError           no usable answer: connection refused/reset, timeout, undecodable body
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AlreadyExists",
    "ApiError",
    "Cause",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "KubeError",
    "NotFound",
    "TransportError",
    "error_from_status",
]


class KubeError(Exception):
    """Base of every error raised by `canarist.kube`."""


class TransportError(KubeError):
    """The request did not get a usable answer (network failure, timeout, malformed response)."""


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
    ) -> None:
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")
        self.code = code
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


def error_from_status(code: int, status: Mapping[str, Any] | None, fallback_message: str = "") -> ApiError:
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
    return cls(code, message, reason, details=details_map, status=status)
