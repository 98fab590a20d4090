"""The primary KEDA ScaledObject ``<so>-primary`` (``keda.sh/v1alpha1``) and pausing the target's.

With ``spec.autoscalerRef: {apiVersion: keda.sh/v1alpha1, kind: ScaledObject}`` the target's ScaledObject
scales the target; canarist gives the primary workload its own copy, as Flagger's ScaledObject reconciler
does:

* ``scaleTargetRef`` points at ``<target>-primary`` (kind, apiVersion and ``envSourceContainerName`` kept);
* ``pollingInterval``, ``cooldownPeriod``, ``minReplicaCount``, ``maxReplicaCount``, ``advanced``,
  ``triggers``, ``fallback`` and ``idleReplicaCount`` are copied; ``advanced.horizontalPodAutoscalerConfig.name``
  gets ``-primary`` when it is set (KEDA names the HPA it creates after it, and two ScaledObjects cannot
  share one HPA);
* each trigger's ``metadata.query`` is the ``autoscalerRef.primaryScalerQueries`` entry of the trigger's
  name when that map is given (triggers it does not name keep their query); without the map, every
  ``<target>`` and ``<target>-canary`` in the query becomes ``<target>-primary`` (`primary_query`);
* ``autoscalerRef.primaryScalerReplicas`` overrides the min and max.

While the target is scaled to zero its ScaledObject is paused with the annotation
``autoscaling.keda.sh/paused-replicas: "0"`` (`pause_patch`), which `resume_patch` removes before the
target is scaled up again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from canarist.api import Canary
from canarist.workloads._meta import (
    Obj,
    controller_ref,
    deep,
    filter_metadata,
    get_path,
    managed_annotations,
    set_metadata_map,
)

API_VERSION = "keda.sh/v1alpha1"
PRIMARY_SUFFIX = "-primary"
#: KEDA holds a ScaledObject's target at this many replicas while the annotation is set.
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"
#: spec fields copied from the target's ScaledObject as they are.
COPIED_SPEC_FIELDS = (
    "pollingInterval",
    "cooldownPeriod",
    "minReplicaCount",
    "maxReplicaCount",
    "advanced",
    "triggers",
    "fallback",
    "idleReplicaCount",
)


def primary_query(query: str, target_name: str) -> str:
    """``query`` with every ``<target>-canary`` and ``<target>`` replaced by ``<target>-primary``
    (a best effort, as in Flagger: a query already naming ``<target>-primary`` gets ``-primary-primary``;
    ``primaryScalerQueries`` is the way to say exactly what the primary's query is)."""
    if not target_name:
        return query
    pattern = re.escape(target_name) + "(?:" + re.escape("-canary") + ")?"
    return re.sub(pattern, lambda _: target_name + PRIMARY_SUFFIX, query)


def _triggers(canary: Canary, triggers: Any) -> list[Any]:
    if not isinstance(triggers, list):
        return []
    ref = canary.spec.autoscaler_ref
    queries = ref.primary_scaler_queries if ref is not None else {}
    out: list[Any] = []
    for trigger in triggers:
        trigger = deep(trigger)
        metadata = trigger.get("metadata") if isinstance(trigger, dict) else None
        if isinstance(metadata, dict):
            if queries:
                name = trigger.get("name")
                if isinstance(name, str) and name in queries:
                    metadata["query"] = queries[name]
            elif isinstance(metadata.get("query"), str):
                metadata["query"] = primary_query(metadata["query"], canary.spec.target_ref.name)
        out.append(trigger)
    return out


def primary_so_spec(canary: Canary, so: Mapping[str, Any]) -> Obj:
    """The spec of the primary ScaledObject (see the module docstring)."""
    spec = so.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    target_ref: Obj = {"name": canary.primary_name()}
    for key in ("apiVersion", "kind", "envSourceContainerName"):
        if ref.get(key):
            target_ref[key] = ref[key]
    out: Obj = {"scaleTargetRef": target_ref}
    for key in COPIED_SPEC_FIELDS:
        if spec.get(key) is not None:
            out[key] = deep(spec[key])
    if "triggers" in out:
        out["triggers"] = _triggers(canary, out["triggers"])
    hpa_name = get_path(out, "advanced", "horizontalPodAutoscalerConfig", "name")
    if isinstance(hpa_name, str) and hpa_name:
        out["advanced"]["horizontalPodAutoscalerConfig"]["name"] = hpa_name + PRIMARY_SUFFIX
    autoscaler = canary.spec.autoscaler_ref
    overrides = autoscaler.primary_scaler_replicas if autoscaler is not None else None
    if overrides is not None:
        if overrides.min_replicas is not None:
            out["minReplicaCount"] = overrides.min_replicas
        if overrides.max_replicas is not None:
            out["maxReplicaCount"] = overrides.max_replicas
    return out


def build_primary_so(canary: Canary, so: Mapping[str, Any]) -> Obj:
    """The primary ScaledObject ``<autoscalerRef.name>-primary``: the target ScaledObject's labels and
    annotations without toolkit keys (nor the pause annotation), plus the Flux opt-out annotations, and a
    controller ownerReference to the canary. It is the desired state for updates too (`so_update`)."""
    meta = so.get("metadata") or {}
    name = (canary.spec.autoscaler_ref.name if canary.spec.autoscaler_ref else meta.get("name", "")) or ""
    annotations = managed_annotations(meta.get("annotations"))
    annotations.pop(PAUSED_REPLICAS, None)
    return {
        "apiVersion": API_VERSION,
        "kind": "ScaledObject",
        "metadata": {
            "name": f"{name}{PRIMARY_SUFFIX}",
            "namespace": canary.metadata.namespace or meta.get("namespace", ""),
            "labels": filter_metadata(meta.get("labels")),
            "annotations": annotations,
            "ownerReferences": [controller_ref(canary)],
        },
        "spec": primary_so_spec(canary, so),
    }


def so_update(observed: Mapping[str, Any], desired: Mapping[str, Any]) -> Obj | None:
    """The observed primary ScaledObject with the desired spec, labels and annotations; None when it has
    them already (outside initialization; at initialization an existing primary is left as it is)."""
    out: Obj = deep(dict(observed))
    out["spec"] = deep(dict(desired.get("spec") or {}))
    meta = out.setdefault("metadata", {})
    wanted = desired.get("metadata") or {}
    set_metadata_map(meta, "labels", wanted.get("labels") or {})
    set_metadata_map(meta, "annotations", wanted.get("annotations") or {})
    return None if out == dict(observed) else out


def is_paused(so: Mapping[str, Any]) -> bool:
    return PAUSED_REPLICAS in (get_path(so, "metadata", "annotations") or {})


def pause_patch(so: Mapping[str, Any]) -> Obj | None:
    """The merge patch that pauses the target's ScaledObject at zero replicas; None when it is paused so."""
    if (get_path(so, "metadata", "annotations") or {}).get(PAUSED_REPLICAS) == "0":
        return None
    return {"metadata": {"annotations": {PAUSED_REPLICAS: "0"}}}


def resume_patch(so: Mapping[str, Any]) -> Obj | None:
    """The merge patch that removes the pause annotation; None when there is none."""
    if not is_paused(so):
        return None
    return {"metadata": {"annotations": {PAUSED_REPLICAS: None}}}
