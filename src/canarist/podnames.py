"""Generated names of pods as Kubernetes makes them, shared by the local control plane (ReplicaSet names,
the workloads' readiness from their pods) and the sandbox (the pods it runs).

A neutral module with no dependencies: the sandbox's pod processes import it at start, and the local control
plane must not depend on the sandbox.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["POD_TEMPLATE_HASH_LABEL", "SAFE_ALPHABET", "pod_name", "pod_template_hash", "random_suffix"]

POD_TEMPLATE_HASH_LABEL: Final = "pod-template-hash"
#: Kubernetes' "safe" alphabet for generated names (k8s.io/apimachinery/pkg/util/rand): no vowels, no 0/1/3.
SAFE_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def pod_template_hash(template: Mapping[str, Any]) -> str:
    """A Deployment's ``pod-template-hash`` as Kubernetes spells it: the safe encoding of the decimal FNV-32a
    hash of the pod template (here: of its JSON), so a new template gets a new hash and the same one keeps
    it."""
    digest = _fnv32a(json.dumps(template, sort_keys=True, separators=(",", ":")).encode())
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in str(digest))


def random_suffix(length: int = 5) -> str:
    """``length`` random characters of the safe alphabet (a generated name's suffix)."""
    return "".join(secrets.choice(SAFE_ALPHABET) for _ in range(length))


def pod_name(deployment: str, template_hash: str) -> str:
    """``<deployment>-<pod-template-hash>-<5 random safe characters>``, as a ReplicaSet names its pods."""
    return f"{deployment}-{template_hash}-{random_suffix()}"
