"""Flagger's webhook payloads (docs/flagger-parity.md#webhooks-and-payloads).

Every webhook receives ``{"name", "namespace", "phase", "checksum", "metadata"?}``; ``metadata`` is the
webhook's own string map and is left out when it is empty. The event webhook adds ``eventMessage``,
``eventType`` and ``timestamp`` (Unix milliseconds, as a string) to the metadata; the webhook's own metadata
cannot override those three keys.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

EVENT_METADATA_KEYS = ("eventMessage", "eventType", "timestamp")
EVENT_TYPES = ("Normal", "Warning")


def build_payload(
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON body Flagger POSTs to every webhook."""
    payload: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "phase": phase,
        "checksum": checksum,
    }
    if metadata:
        payload["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    return payload


def build_event_payload(
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    event_message: str,
    event_type: str,
    metadata: Mapping[str, str] | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """The body of an ``event`` webhook (and of the global ``--event-webhook``).

    ``event_type`` is ``Normal`` or ``Warning``. ``timestamp_ms`` defaults to the current time; pass it to
    get a reproducible payload.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"event type must be one of {', '.join(EVENT_TYPES)}, not {event_type!r}")
    if timestamp_ms is None:
        timestamp_ms = time.time_ns() // 1_000_000
    merged: dict[str, str] = {
        "eventMessage": event_message,
        "eventType": event_type,
        "timestamp": str(timestamp_ms),
    }
    for key, value in (metadata or {}).items():
        if key not in EVENT_METADATA_KEYS:
            merged[str(key)] = str(value)
    return build_payload(name, namespace, phase, checksum, merged)
