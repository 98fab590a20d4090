"""canarist.hooks: Flagger-compatible webhook payloads and the webhook HTTP client.

The engine decides *when* a webhook runs; this package builds the body and makes the call::

    from canarist.hooks import build_payload, call_webhook

    result = await call_webhook(url, build_payload(name, ns, "Progressing", checksum, metadata),
                                timeout_s=10, retries=0, disable_tls=False)
    if not result.ok:
        print(result.error)        # e.g. "connection refused: http://127.0.0.1:1/"
"""

from canarist.hooks.client import (
    MAX_ERROR_BYTES,
    HookResult,
    call_webhook,
    cut_text,
    describe_client_error,
    is_success,
)
from canarist.hooks.payload import EVENT_METADATA_KEYS, build_event_payload, build_payload

__all__ = [
    "EVENT_METADATA_KEYS",
    "MAX_ERROR_BYTES",
    "HookResult",
    "build_event_payload",
    "build_payload",
    "call_webhook",
    "cut_text",
    "describe_client_error",
    "is_success",
]
