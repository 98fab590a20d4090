"""Metadata helpers shared by the workload builders: Flagger's label/annotation filters, the Flux opt-out
annotations and owner references."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from canarist.api import Canary
from canarist.api.defaults import API_VERSION

#: any label or annotation key containing this marker is dropped when Flagger copies metadata.
TOOLKIT_MARKER = "toolkit.fluxcd.io"
#: the annotation kubectl writes on ``kubectl apply``.
KUBECTL_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

#: Flux's kustomize-controller skips an object carrying this annotation set to ``disabled``.
FLUX_RECONCILE_KEY = "kustomize.toolkit.fluxcd.io/reconcile"
#: Flux's helm-controller ignores drift on an object carrying this annotation set to ``disabled``.
FLUX_DRIFT_DETECTION_KEY = "helm.toolkit.fluxcd.io/driftDetection"
FLUX_DISABLED = "disabled"
#: written on every object the operator manages for the user (Services, VirtualService, primary workload
#: and HPA) so that Flux does not revert the operator's changes, as Flagger does.
FLUX_OPT_OUT: Mapping[str, str] = {FLUX_RECONCILE_KEY: FLUX_DISABLED, FLUX_DRIFT_DETECTION_KEY: FLUX_DISABLED}

Obj = dict[str, Any]


def filter_metadata(values: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of ``values`` without the keys containing ``toolkit.fluxcd.io``."""
    return {k: v for k, v in (values or {}).items() if TOOLKIT_MARKER not in k}


def managed_annotations(values: Mapping[str, str] | None) -> dict[str, str]:
    """The annotations of a managed object: ``values`` without the ``toolkit.fluxcd.io`` keys, plus
    :data:`FLUX_OPT_OUT`. Idempotent: applying it to its own result gives the same map."""
    out = filter_metadata(values)
    out.update(FLUX_OPT_OUT)
    return out


def with_flux_opt_out(values: Mapping[str, str] | None) -> dict[str, str]:
    """``values`` with :data:`FLUX_OPT_OUT` set and nothing else touched (an object taken over from the
    user keeps its own annotations)."""
    return {**(values or {}), **FLUX_OPT_OUT}


def has_flux_opt_out(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` carries both Flux opt-out annotations."""
    annotations = get_path(obj, "metadata", "annotations") or {}
    return all(annotations.get(k) == v for k, v in FLUX_OPT_OUT.items())


def without_flux_opt_out(
    values: Mapping[str, str] | None, original: Mapping[str, str] | None
) -> dict[str, str]:
    """``values`` with the Flux opt-out annotations the operator added taken away again (revertOnDeletion).

    ``original`` is the user's own annotations from before the takeover when known (kubectl's last-applied
    configuration): a key the user had gets the user's value back, others are removed. When unknown (None),
    a key is removed if it still holds the value the operator wrote; a value changed since is the user's.
    """
    out = dict(values or {})
    for key, value in FLUX_OPT_OUT.items():
        if original is not None:
            if key in original:
                out[key] = original[key]
            else:
                out.pop(key, None)
        elif out.get(key) == value:
            del out[key]
    return out


def last_applied_annotations(obj: Mapping[str, Any]) -> dict[str, str] | None:
    """``metadata.annotations`` of kubectl's last-applied configuration of ``obj``; None when there is no
    such record (or it is unreadable), ``{}`` when the record has no annotations."""
    text = (get_path(obj, "metadata", "annotations") or {}).get(KUBECTL_LAST_APPLIED)
    if not text:
        return None
    try:
        applied = json.loads(text)
    except ValueError:
        return None
    if not isinstance(applied, Mapping):
        return None
    found = get_path(applied, "metadata", "annotations") or {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, Mapping) else {}


def set_metadata_map(meta: dict[str, Any], key: str, values: Mapping[str, str]) -> None:
    """``meta[key] = values``, or no ``key`` at all when ``values`` is empty (as the API server stores it)."""
    if values:
        meta[key] = dict(values)
    else:
        meta.pop(key, None)


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
