"""Taking over a user's routing object, and giving it back (shared by every router that does it).

A router may find the object it manages already there, written by the user (a VirtualService, an HTTPRoute,
a TrafficSplit, an HTTPProxy). Before its first rewrite, the object's spec is kept in the annotation
``flagger.kubernetes.io/original-configuration`` — unless ``kubectl apply`` already recorded it in its
last-applied annotation, or the object belongs to this canary. With ``revertOnDeletion``, :func:`restore`
writes that recorded spec back and removes what canarist added to the metadata.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from canarist.api import Canary
from canarist.routers.base import Obj, RevertError
from canarist.workloads._meta import (
    KUBECTL_LAST_APPLIED,
    deep,
    is_owned_by,
    last_applied_annotations,
    set_metadata_map,
    without_flux_opt_out,
)

__all__ = ["ORIGINAL_CONFIGURATION", "has_record", "restore", "with_backup"]

#: where Flagger keeps the spec of an object it took over (no kubectl last-applied annotation).
ORIGINAL_CONFIGURATION = "flagger.kubernetes.io/original-configuration"


def has_record(annotations: Mapping[str, str]) -> bool:
    """The object's earlier spec is recorded (by kubectl or by a takeover backup)."""
    return KUBECTL_LAST_APPLIED in annotations or ORIGINAL_CONFIGURATION in annotations


def with_backup(
    annotations: Mapping[str, str], observed_obj: Mapping[str, Any], canary: Canary
) -> dict[str, str]:
    """``annotations`` plus a one-time backup of ``observed_obj``'s spec when it is taken over: not owned by
    ``canary`` and not recorded yet (an existing backup is never overwritten, so a revert restores the
    configuration found at takeover)."""
    out = dict(annotations)
    observed_annotations: Mapping[str, str] = (observed_obj.get("metadata") or {}).get("annotations") or {}
    if not has_record(observed_annotations) and not is_owned_by(observed_obj, canary):
        out[ORIGINAL_CONFIGURATION] = json.dumps(observed_obj.get("spec") or {}, separators=(",", ":"))
    elif ORIGINAL_CONFIGURATION in observed_annotations:
        out[ORIGINAL_CONFIGURATION] = observed_annotations[ORIGINAL_CONFIGURATION]
    return out


def restore(obj: Mapping[str, Any], where: str, *, owner: Canary | None = None) -> list[Obj]:
    """``obj`` with its recorded spec and without the Flux opt-out and backup annotations canarist added.

    ``where`` names the object in errors (``HTTPProxy podinfo.test``). With ``owner``, an object that
    canary owns and that has no record needs nothing (garbage collection removes it): ``[]``. Raises
    :class:`RevertError` when the record is unreadable or missing."""
    annotations: Mapping[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
    if owner is not None and not has_record(annotations) and is_owned_by(obj, owner):
        return []
    spec: Any = None
    try:
        if KUBECTL_LAST_APPLIED in annotations:
            spec = (json.loads(annotations[KUBECTL_LAST_APPLIED]) or {}).get("spec")
        elif ORIGINAL_CONFIGURATION in annotations:
            spec = json.loads(annotations[ORIGINAL_CONFIGURATION])
    except (ValueError, AttributeError) as err:
        raise RevertError(f"{where} original configuration unreadable: {err}") from err
    if not isinstance(spec, dict):
        raise RevertError(f"{where} original configuration not found, unable to revert")
    out: Obj = deep(dict(obj))
    out["spec"] = spec
    meta = out.setdefault("metadata", {})
    restored = without_flux_opt_out(meta.get("annotations"), last_applied_annotations(obj))
    restored.pop(ORIGINAL_CONFIGURATION, None)
    set_metadata_map(meta, "annotations", restored)
    return [out]
