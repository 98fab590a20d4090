"""A plain Kubernetes Service as the target (``spec.targetRef: {apiVersion: v1, kind: Service}``).

The target is not a workload but a Service whose backends something else manages (another controller, an
external endpoint). canarist makes two copies of it and lets the router split traffic between them:

* ``<target>-canary``: a copy of the target, rebuilt from it on every tick (`build_canary`, `refresh`);
* ``<target>-primary``: a copy made once at initialization (`build_primary`); a promotion copies the target's
  spec over it (`promote`).

A copy is the target's spec and metadata, named and owned by the Canary. What the API server allocates
(``clusterIP``/``clusterIPs``, node ports, ``healthCheckNodePort``) is never copied: a new copy gets its own,
an existing one keeps its own (those fields are immutable or must be unique). A headless target
(``clusterIP: None``) gives headless copies. There is nothing to scale and nothing to roll out: a Service
target is always ready, and its revision is its whole ``spec`` (`workloads.revision.hashed_part`).

>>> build_canary(canary, target)["metadata"]["name"]
'podinfo-canary'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canarist.api import Canary
from canarist.engine.model import Readiness
from canarist.workloads._meta import (
    KUBECTL_LAST_APPLIED,
    Obj,
    controller_ref,
    deep,
    filter_metadata,
    include_by_prefix,
    managed_annotations,
    set_metadata_map,
)

CANARY_SUFFIX = "-canary"
PRIMARY_SUFFIX = "-primary"
HEADLESS = "None"
#: spec fields the API server allocates for each Service; a copy never takes them from another Service.
ALLOCATED_FIELDS = ("clusterIP", "clusterIPs", "healthCheckNodePort")


def _port_key(port: Mapping[str, Any]) -> tuple[str, Any, str]:
    return (str(port.get("name") or ""), port.get("port"), str(port.get("protocol") or "TCP"))


def allocated_spec(spec: Mapping[str, Any], keep_from: Mapping[str, Any] | None) -> Obj:
    """``spec`` without what the API server allocated for its Service, with ``keep_from``'s allocations
    instead when given (the Service that is being rewritten keeps its IPs and node ports).

    A headless spec stays headless; an ExternalName spec has no cluster IP."""
    out: Obj = deep(dict(spec))
    headless = out.get("clusterIP") == HEADLESS
    for key in ALLOCATED_FIELDS:
        out.pop(key, None)
    node_ports: dict[tuple[str, Any, str], Any] = {}
    kept = keep_from or {}
    for port in kept.get("ports") or []:
        if isinstance(port, Mapping) and port.get("nodePort"):
            node_ports[_port_key(port)] = port["nodePort"]
    for port in out.get("ports") or []:
        if not isinstance(port, dict):
            continue
        port.pop("nodePort", None)
        if out.get("type") in ("NodePort", "LoadBalancer") and _port_key(port) in node_ports:
            port["nodePort"] = node_ports[_port_key(port)]
    if out.get("type") == "ExternalName":
        return out
    if headless:
        out["clusterIP"] = HEADLESS
    elif kept.get("clusterIP") and kept.get("clusterIP") != HEADLESS and kept.get("type") != "ExternalName":
        out["clusterIP"] = kept["clusterIP"]
        if kept.get("clusterIPs"):
            out["clusterIPs"] = deep(kept["clusterIPs"])
    if out.get("type") == "LoadBalancer" and kept.get("healthCheckNodePort"):
        out["healthCheckNodePort"] = kept["healthCheckNodePort"]
    return out


def _copy(canary: Canary, target: Mapping[str, Any], name: str) -> Obj:
    """A new Service ``name``: the target's spec (without its allocations), its labels and annotations
    (toolkit keys and kubectl's last-applied record dropped, the Flux opt-out added), owned by the canary."""
    meta = target.get("metadata") or {}
    annotations = {
        k: v for k, v in managed_annotations(meta.get("annotations")).items() if k != KUBECTL_LAST_APPLIED
    }
    out_meta: Obj = {
        "name": name,
        "namespace": canary.metadata.namespace or meta.get("namespace", ""),
        "labels": filter_metadata(meta.get("labels")),
        "annotations": annotations,
        "ownerReferences": [controller_ref(canary)],
    }
    set_metadata_map(out_meta, "labels", out_meta["labels"])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": out_meta,
        "spec": allocated_spec(target.get("spec") or {}, None),
    }


def canary_name(canary: Canary) -> str:
    return canary.spec.target_ref.name + CANARY_SUFFIX


def build_canary(canary: Canary, target: Mapping[str, Any]) -> Obj:
    """``<target>-canary``, the copy of the target that the router sends the canary's share to."""
    return _copy(canary, target, canary_name(canary))


def refresh(observed: Obj, desired: Obj) -> Obj | None:
    """The merge of `build_canary` over the existing ``-canary``: the target's spec with the copy's own
    allocations, its labels and annotations, the canary's ownerReference. None when it is that already."""
    out: Obj = deep(observed)
    out["spec"] = allocated_spec(desired.get("spec") or {}, observed.get("spec") or {})
    meta = out.setdefault("metadata", {})
    wanted = desired.get("metadata") or {}
    for key in ("labels", "annotations"):
        set_metadata_map(meta, key, wanted.get(key) or {})
    meta["ownerReferences"] = deep(wanted.get("ownerReferences") or [])
    return None if out == observed else out


def build_primary(canary: Canary, target: Mapping[str, Any], *_selector: str, **_options: Any) -> Obj:
    """``<target>-primary``, created once at initialization (the selector and pod options of the other
    kinds do not apply to a Service)."""
    return _copy(canary, target, canary.primary_name())


def promote(
    canary: Canary,
    target: Mapping[str, Any],
    primary: Mapping[str, Any],
    *_selector: str,
    include_label_prefixes: Sequence[str] = (),
    **_options: Any,
) -> Obj:
    """The primary with the target's spec (keeping the primary's cluster IPs and node ports) and the
    target's labels and annotations filtered by ``-include-label-prefix`` (annotations plus the Flux opt-out).
    The primary keeps its own ownerReferences."""
    out: Obj = deep(dict(primary))
    out["spec"] = allocated_spec(target.get("spec") or {}, primary.get("spec") or {})
    meta = out.setdefault("metadata", {})
    target_meta = target.get("metadata") or {}
    set_metadata_map(meta, "labels", include_by_prefix(target_meta.get("labels"), include_label_prefixes))
    annotations = managed_annotations(
        include_by_prefix(target_meta.get("annotations"), include_label_prefixes)
    )
    set_metadata_map(meta, "annotations", annotations)
    del canary  # the primary's name and owner are already the canary's
    return out


def readiness(workload: Mapping[str, Any] | None, *_inputs: Any) -> Readiness:
    """A Service has no rollout: always ready (as in Flagger), even before the primary copy exists."""
    return Readiness.ok()


def never_scaled_down(target: Mapping[str, Any]) -> bool:
    return False


def no_scale_patch(target: Mapping[str, Any], replicas: int) -> Obj | None:
    """A Service cannot be scaled: there is never anything to patch."""
    return None
