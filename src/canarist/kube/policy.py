"""The one comparison policy of the access layer: when is a desired object already there, and what to write.

`contains` says whether an observed object already holds everything a desired one says (fields the server
added — defaults, status — are no difference); `differs` applies it to the parts of an object the operator
owns; `overlay` is the default merge of `Writer.converge` and `KubeClient.ensure`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]

__all__ = ["contains", "differs", "overlay"]

_COMPARED_METADATA = ("labels", "annotations", "ownerReferences", "finalizers")
_MERGED_METADATA = ("labels", "annotations")


def contains(actual: Any, desired: Any) -> bool:
    """True when ``desired`` is contained in ``actual``: every key of every desired mapping is present with a
    contained value, lists have the same length and contain element-wise, scalars are equal. A desired
    ``None`` matches a missing key. Fields the server added (defaults, status) do not count as differences."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return False
        for key, value in desired.items():
            if key not in actual:
                if value is None:
                    continue
                return False
            if not contains(actual[key], value):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return False
        return all(contains(a, d) for a, d in zip(actual, desired, strict=True))
    return bool(actual == desired)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping | list) and not value)


def _contained(actual: Any, desired: Any) -> bool:
    return (_empty(actual) and _empty(desired)) or contains(actual, desired)


def differs(observed: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether ``desired`` says something ``observed`` does not (top-level fields other than status, and the
    metadata that the operator owns)."""
    for key, value in desired.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            meta = observed.get("metadata") or {}
            if any(m in value and not _contained(meta.get(m), value[m]) for m in _COMPARED_METADATA):
                return True
            continue
        if not _contained(observed.get(key), value):
            return True
    return False


def overlay(observed: Obj, desired: Obj) -> Obj | None:
    """The default merge: desired top-level fields replace observed ones; labels and annotations are merged
    (desired wins); ownerReferences and finalizers are replaced. None when nothing differs."""
    if not differs(observed, desired):
        return None
    merged = copy.deepcopy(observed)
    for key, value in desired.items():
        if key in ("apiVersion", "kind", "status"):
            continue
        if key == "metadata":
            meta = merged.setdefault("metadata", {})
            for mkey in _MERGED_METADATA:
                if value.get(mkey):
                    meta[mkey] = {**(meta.get(mkey) or {}), **copy.deepcopy(value[mkey])}
            for mkey in ("ownerReferences", "finalizers"):
                if mkey in value:
                    meta[mkey] = copy.deepcopy(value[mkey])
            continue
        merged[key] = copy.deepcopy(value)
    return merged
