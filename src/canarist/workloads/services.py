"""The ClusterIP services ``<apex>``, ``<apex>-primary`` and ``<apex>-canary``.

Flagger's counterpart: ``pkg/router/kubernetes_default.go`` (docs/flagger-parity.md#kubernetes-services).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canarist.api import Canary, CustomMetadata, UnmanagedMetadata
from canarist.workloads._meta import (
    KUBECTL_LAST_APPLIED,
    Obj,
    controller_ref,
    deep,
    filter_metadata,
    get_path,
    has_flux_opt_out,
    is_owned_by,
    last_applied_annotations,
    managed_annotations,
    set_metadata_map,
    with_flux_opt_out,
    without_flux_opt_out,
)


@dataclass(frozen=True)
class ServiceSet:
    """The three generated Services. ``canary`` and ``primary`` are created at initialization, ``apex``
    once the primary is ready (Flagger's kubernetes router Initialize/Reconcile)."""

    canary: Obj
    primary: Obj
    apex: Obj

    def all(self) -> list[Obj]:
        return [self.canary, self.primary, self.apex]


def service_ports(canary: Canary, extra_ports: Mapping[str, int]) -> list[Obj]:
    """Port 0 from ``spec.service`` plus the discovered ports (TCP, targetPort = port), sorted by name."""
    service = canary.spec.service
    main: Obj = {
        "name": service.port_name_or_default(),
        "protocol": "TCP",
        "port": service.port,
        "targetPort": service.target_port_or_default(),
    }
    if service.app_protocol:
        main["appProtocol"] = service.app_protocol
    ports = [main]
    for name in sorted(extra_ports):
        number = extra_ports[name]
        ports.append({"name": name, "protocol": "TCP", "port": number, "targetPort": number})
    return ports


def _build(
    canary: Canary,
    name: str,
    selector_label: str,
    pod_selector: str,
    metadata: CustomMetadata | None,
    ports: list[Obj],
) -> Obj:
    service = canary.spec.service
    labels = dict(metadata.labels) if metadata is not None else {}
    annotations = dict(metadata.annotations) if metadata is not None else {}
    labels[selector_label] = name
    spec: Obj = {
        "type": "ClusterIP",
        "selector": {selector_label: pod_selector},
        "ports": deep(ports),
    }
    if service.headless:
        spec["clusterIP"] = "None"
    if service.traffic_distribution:
        spec["trafficDistribution"] = service.traffic_distribution
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": canary.metadata.namespace,
            "labels": filter_metadata(labels),
            "annotations": managed_annotations(annotations),
            "ownerReferences": [controller_ref(canary)],
        },
        "spec": spec,
    }


def build_services(
    canary: Canary, selector_label: str, selector_value: str, extra_ports: Mapping[str, int] | None = None
) -> ServiceSet:
    """The desired Services: canary → ``{label: value}``, primary and apex → ``{label: value-primary}``."""
    ports = service_ports(canary, extra_ports or {})
    service = canary.spec.service
    primary_selector = f"{selector_value}-primary"
    return ServiceSet(
        canary=_build(
            canary, canary.canary_service_name(), selector_label, selector_value, service.canary, ports
        ),
        primary=_build(
            canary, canary.primary_service_name(), selector_label, primary_selector, service.primary, ports
        ),
        apex=_build(canary, canary.apex_name(), selector_label, primary_selector, service.apex, ports),
    )


def _ports_by_name(ports: list[Obj]) -> list[Obj]:
    return sorted(ports, key=lambda p: str(p.get("name", "")))


def _normalise_port(port: Mapping[str, Any]) -> Obj:
    out = {k: v for k, v in port.items() if v is not None}
    out.setdefault("protocol", "TCP")
    if "targetPort" not in out and "port" in out:
        out["targetPort"] = out["port"]
    return out


def _with_unmanaged(
    desired: Mapping[str, str], observed: Mapping[str, str], keys: list[str]
) -> dict[str, str]:
    out = dict(desired)
    for key in keys:
        if key in observed:
            out[key] = observed[key]
    return out


def merge_service(
    observed: Mapping[str, Any],
    desired: Mapping[str, Any],
    owned_by_canary: bool,
    unmanaged: UnmanagedMetadata | None = None,
) -> Obj:
    """The Service to write over ``observed`` (equal to ``observed`` when nothing needs to change).

    Ports and selector are always reconciled (existing nodePorts kept, ports compared by name, so order
    does not matter); clusterIP and everything else of the observed spec are kept. Labels and annotations
    are reconciled only when the Service is owned by the canary, keeping the values of the
    ``unmanagedMetadata`` keys. The kubectl last-applied annotation is never copied from the desired side.
    A Service taken over (not owned) keeps its labels and annotations and gets the Flux opt-out annotations.
    """
    out: Obj = deep(dict(observed))
    spec = out.setdefault("spec", {})
    observed_ports = spec.get("ports") or []
    node_ports = {p.get("name"): p.get("nodePort") for p in observed_ports if p.get("nodePort")}
    ports = [deep(p) for p in get_path(desired, "spec", "ports") or []]
    for port in ports:
        if port.get("name") in node_ports:
            port["nodePort"] = node_ports[port.get("name")]
    desired_selector = dict(get_path(desired, "spec", "selector") or {})
    ports_differ = _ports_by_name([_normalise_port(p) for p in ports]) != _ports_by_name(
        [_normalise_port(p) for p in observed_ports]
    )
    if ports_differ or desired_selector != (spec.get("selector") or {}):
        spec["ports"] = ports
        spec["selector"] = desired_selector
    if owned_by_canary:
        meta = out.setdefault("metadata", {})
        keep_labels = list(unmanaged.labels) if unmanaged is not None else []
        keep_annotations = list(unmanaged.annotations) if unmanaged is not None else []
        d_meta = desired.get("metadata") or {}
        labels = _with_unmanaged(filter_metadata(d_meta.get("labels")), meta.get("labels") or {}, keep_labels)
        annotations = _with_unmanaged(
            {
                k: v
                for k, v in managed_annotations(d_meta.get("annotations")).items()
                if k != KUBECTL_LAST_APPLIED
            },
            meta.get("annotations") or {},
            keep_annotations,
        )
        if labels != (meta.get("labels") or {}):
            meta["labels"] = labels
        if annotations != (meta.get("annotations") or {}):
            meta["annotations"] = annotations
    elif not has_flux_opt_out(out):
        meta = out.setdefault("metadata", {})
        meta["annotations"] = with_flux_opt_out(meta.get("annotations"))
    return out


def service_needs_update(observed: Mapping[str, Any], merged: Mapping[str, Any]) -> bool:
    """Whether :func:`merge_service` changed anything."""
    return dict(observed) != dict(merged)


def owned(service: Mapping[str, Any], canary: Canary) -> bool:
    """Whether the Service has a controller ownerReference to this canary."""
    return is_owned_by(service, canary)


def revert_apex_service(
    observed: Mapping[str, Any], canary: Canary, selector_label: str, selector_value: str
) -> Obj | None:
    """On finalization: an apex Service *not* owned by the canary gets its selector back, from the kubectl
    last-applied annotation when present, else pointed at the target pods, and loses the Flux opt-out
    annotations the canary added (kept when the user's own, per the last-applied annotation). None when
    nothing to do."""
    if is_owned_by(observed, canary):
        return None
    out: Obj = deep(dict(observed))
    spec = out.setdefault("spec", {})
    last_applied = (get_path(observed, "metadata", "annotations") or {}).get(KUBECTL_LAST_APPLIED)
    selector: dict[str, str] | None = None
    if last_applied:
        try:
            original = json.loads(last_applied)
        except ValueError:
            original = None
        found = get_path(original, "spec", "selector") if isinstance(original, dict) else None
        if isinstance(found, dict):
            selector = {str(k): str(v) for k, v in found.items()}
    if selector is None:
        selector = dict(spec.get("selector") or {})
        selector[selector_label] = selector_value
    spec["selector"] = selector
    meta = out.setdefault("metadata", {})
    restored = without_flux_opt_out(meta.get("annotations"), last_applied_annotations(observed))
    set_metadata_map(meta, "annotations", restored)
    return out
