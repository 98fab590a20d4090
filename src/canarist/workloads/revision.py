"""Revision hashes: the target's pod template hash (``lastAppliedSpec``) and the webhook ``checksum``.

Flagger hashes a Go ``spew`` deep-print of the pod template with FNV-32a and renders the decimal number with
``rand.SafeEncodeString`` (alphabet ``bcdfghjklmnpqrstvwxz2456789``). The spew rendering depends on Go's
type layout and cannot be reproduced from JSON, so canarist hashes a canonical JSON rendering instead
(sorted keys, compact) with the same FNV-32a and the same alphabet: the result looks like Flagger's but
differs in value. A canary taken over from Flagger therefore sees one "new revision" on migration
(documented in docs/routing.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from canarist.api import Canary
from canarist.workloads._meta import deep, get_path

#: Kubernetes' ``rand.SafeEncodeString`` alphabet (no vowels, no confusable characters).
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
#: node selector Flagger adds to a DaemonSet to "scale it to zero".
SCALE_TO_ZERO_LABEL = "flagger.app/scale-to-zero"

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv32a(data: bytes) -> int:
    """FNV-1a, 32 bit."""
    h = _FNV32_OFFSET
    for byte in data:
        h ^= byte
        h = (h * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Kubernetes' ``rand.SafeEncodeString``: every byte mapped onto :data:`SAFE_ALPHABET`."""
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in text.encode())


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-ASCII kept: a stable rendering of a JSON value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(value: Any) -> str:
    """FNV-32a of the canonical JSON of ``value``, decimal, safe-encoded (shape of Flagger's ComputeHash)."""
    return safe_encode(str(fnv32a(canonical_json(value).encode())))


def hashed_part(target: Mapping[str, Any]) -> Any:
    """What identifies a target revision: the pod template (Deployment/DaemonSet), the spec of a plain
    Service, or ``status.latestCreatedRevisionName`` of a Knative Service."""
    kind = str(target.get("kind", ""))
    if kind == "Service":
        if str(target.get("apiVersion", "")).startswith("serving.knative.dev/"):
            return get_path(target, "status", "latestCreatedRevisionName") or ""
        return deep(target.get("spec") or {})
    template = deep(get_path(target, "spec", "template") or {})
    if kind == "DaemonSet":
        # Scaling a DaemonSet to zero and back is not a new revision. An empty node selector is no node
        # selector (the API server omits empty maps; a merge patch removing the last key may leave one).
        node_selector = get_path(template, "spec", "nodeSelector")
        if isinstance(node_selector, dict):
            node_selector.pop(SCALE_TO_ZERO_LABEL, None)
            if not node_selector:
                del template["spec"]["nodeSelector"]
    return template


def revision_hash(target: Mapping[str, Any]) -> str:
    """The target's revision hash, stored in ``status.lastAppliedSpec`` / ``lastPromotedSpec``."""
    part = hashed_part(target)
    if isinstance(part, str):
        return safe_encode(str(fnv32a(part.encode())))
    return compute_hash(part)


def webhook_checksum(tracked_configs: Mapping[str, str] | None, last_applied_spec: str) -> str:
    """The webhook payload ``checksum``: a hash over (trackedConfigs, lastAppliedSpec)."""
    configs = dict(tracked_configs) if tracked_configs else None
    return compute_hash([configs, last_applied_spec])


def run_checksum(canary: Canary) -> str:
    """The checksum webhook payloads carry for ``canary``'s current run (its status' configs and spec)."""
    status = canary.status
    return webhook_checksum(status.tracked_configs or {}, status.last_applied_spec or "")
