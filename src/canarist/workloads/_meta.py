"""Metadata helpers shared by the workload builders: Flagger's label/annotation filters and owner references."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from canarist.api import Canary
from canarist.api.defaults import API_VERSION

#: any label or annotation key containing this marker is dropped when Flagger copies metadata.
TOOLKIT_MARKER = "toolkit.fluxcd.io"
#: the annotation kubectl writes on ``kubectl apply``.
KUBECTL_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

Obj = dict[str, Any]


def filter_metadata(values: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of ``values`` without the keys containing ``toolkit.fluxcd.io``."""
    return {k: v for k, v in (values or {}).items() if TOOLKIT_MARKER not in k}


def include_by_prefix(values: Mapping[str, str] | None, prefixes: Sequence[str]) -> dict[str, str]:
    """Keys of ``values`` starting with one of ``prefixes`` (``*`` = all), toolkit keys dropped.

    Empty prefixes are ignored, so no prefixes means nothing is copied (Flagger >= 1.30 behaviour, where
    an unset ``-include-label-prefix`` no longer copies every label).
    """
    wanted = [p for p in prefixes if p]
    out: dict[str, str] = {}
    for key, value in (values or {}).items():
        if TOOLKIT_MARKER in key:
            continue
        if any(p == "*" or key.startswith(p) for p in wanted):
            out[key] = value
    return out


def controller_ref(canary: Canary) -> Obj:
    """The controller ownerReference pointing at the Canary (``metav1.NewControllerRef``)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "name": canary.metadata.name,
        "uid": canary.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def is_owned_by(obj: Mapping[str, Any], canary: Canary) -> bool:
    """Whether ``obj`` has a controller ownerReference to this Canary (matched by kind and name, and uid if known)."""
    for ref in get_path(obj, "metadata", "ownerReferences") or []:
        if ref.get("kind") != "Canary" or ref.get("name") != canary.metadata.name:
            continue
        if not ref.get("controller"):
            continue
        if canary.metadata.uid and ref.get("uid") and ref.get("uid") != canary.metadata.uid:
            continue
        return True
    return False


def get_path(obj: Mapping[str, Any] | None, *keys: str) -> Any:
    """``obj[k1][k2]...`` or None when any step is missing or not a mapping."""
    current: Any = obj
    for key in keys:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def deep(value: Any) -> Any:
    return copy.deepcopy(value)


def go_list(values: Iterable[str]) -> str:
    """Format a list of strings like Go's ``%v``: ``[a b c]``."""
    return "[" + " ".join(values) + "]"


def prune(value: Any) -> Any:
    """Drop None values and empty maps/lists recursively (Go's ``omitempty`` on optional fields)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            pv = prune(v)
            if pv is None or (isinstance(pv, dict | list) and not pv):
                continue
            out[k] = pv
        return out
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value
