"""How cached objects are kept small: `compact` is applied to every object an informer stores.

A cache holds every object of the kinds the operator watches (10 per Canary on Istio), so their size is
most of the operator's memory. Two things make a decoded JSON object larger than it needs to be:

* every decoded document has its own copy of every key (``"metadata"``, ``"name"``, ``"apiVersion"``…) and of
  every short value repeated across objects (``"apps/v1"``, label values, image names): `compact` interns
  them, so all cached objects share one copy — about half the memory of a Deployment;
* ``metadata.managedFields``, the server-side apply bookkeeping a real API server adds to every object
  (often larger than the rest of it), which the operator never reads: it is dropped. Replacing an object
  without the field leaves the server's value unchanged (the API server keeps managedFields it is not sent).

>>> a = compact({"metadata": {"name": "podinfo", "managedFields": [{"manager": "kubectl"}]}})
>>> a
{'metadata': {'name': 'podinfo'}}
>>> b = compact({"metadata": {"name": "".join(["pod", "info"])}})
>>> a["metadata"]["name"] is b["metadata"]["name"]
True
"""

from __future__ import annotations

import sys
from typing import Any

#: longer strings (a last-applied-configuration annotation, a certificate) are rarely shared: kept as they are
INTERN_MAX = 200


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return sys.intern(value) if len(value) <= INTERN_MAX else value
    if isinstance(value, dict):
        return {sys.intern(k) if isinstance(k, str) else k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def compact(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` that shares its keys and short strings with every other cached object, without
    ``metadata.managedFields``."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    result: dict[str, Any] = _value(obj)
    return result


__all__ = ["INTERN_MAX", "compact"]
