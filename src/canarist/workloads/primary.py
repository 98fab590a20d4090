"""The primary workload (``<target>-primary``), built and promoted the same way for every workload kind.

What differs between a Deployment and a DaemonSet is data (`PrimaryKind`): which spec fields are copied,
whether replicas are, and which node-selector key must never reach the primary.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canarist.api import Canary
from canarist.workloads._meta import (
    Obj,
    controller_ref,
    deep,
    get_path,
    include_by_prefix,
    managed_annotations,
)
from canarist.workloads.configs import rename_pod_spec_refs
from canarist.workloads.selector import DEFAULT_SELECTOR_LABELS

#: pod-template annotation set to a fresh id on every create/promote, forcing a rollout of the primary.
FLAGGER_ID = "flagger-id"
PRIMARY_SUFFIX = "-primary"


@dataclass(frozen=True)
class PrimaryKind:
    kind: str
    #: spec fields copied from the target on create and promote.
    copied_spec_fields: tuple[str, ...]
    #: Deployments carry replicas (the target's, or 1); DaemonSets have none.
    has_replicas: bool
    #: a node-selector key of the target that the primary must not inherit (DaemonSet "scale to zero").
    dropped_node_selector: str = ""


def primary_labels(labels: Mapping[str, str] | None, label: str, value: str) -> dict[str, str]:
    """``labels`` with the selector label set to ``value`` (Flagger's makePrimaryLabels)."""
    out = {k: v for k, v in (labels or {}).items() if k != label}
    out[label] = value
    return out


def template_annotations(annotations: Mapping[str, str] | None, flagger_id: str) -> dict[str, str]:
    out = {k: v for k, v in (annotations or {}).items() if k != FLAGGER_ID}
    out[FLAGGER_ID] = flagger_id
    return out


def _suffix_selector(
    selector: dict[str, Any] | None, target_name: str, selector_labels: Collection[str]
) -> None:
    """Rename ``<selector label>: <target name>`` to ``<target name>-primary`` in a label selector."""
    if not isinstance(selector, dict):
        return
    for expression in selector.get("matchExpressions") or []:
        if expression.get("key") in selector_labels:
            values = expression.get("values") or []
            for i, value in enumerate(values):
                if value == target_name:
                    values[i] = target_name + PRIMARY_SUFFIX
                    break
    match_labels = selector.get("matchLabels") or {}
    for key, value in list(match_labels.items()):
        if key in selector_labels and value == target_name:
            match_labels[key] = target_name + PRIMARY_SUFFIX


def primary_pod_spec(
    target: Mapping[str, Any], configs_renamed: Collection[str], selector_labels: Collection[str]
) -> Obj:
    """The target's pod spec with config refs pointing at ``-primary`` copies, and topology spread /
    pod anti-affinity selectors that reference the target name renamed to ``<target>-primary``."""
    pod_spec = get_path(target, "spec", "template", "spec") or {}
    spec = rename_pod_spec_refs(pod_spec, configs_renamed)
    name = str(get_path(target, "metadata", "name") or "")
    for constraint in spec.get("topologySpreadConstraints") or []:
        _suffix_selector(constraint.get("labelSelector"), name, selector_labels)
    anti = get_path(spec, "affinity", "podAntiAffinity") or {}
    for term in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        _suffix_selector(get_path(term, "podAffinityTerm", "labelSelector"), name, selector_labels)
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        _suffix_selector(term.get("labelSelector"), name, selector_labels)
    return spec


@dataclass(frozen=True)
class PrimaryInputs:
    """Everything about the target that shapes its primary, besides the objects themselves."""

    selector_label: str
    selector_value: str
    flagger_id: str
    include_label_prefixes: Sequence[str] = ()
    configs_renamed: Collection[str] = frozenset()
    selector_labels: Collection[str] = DEFAULT_SELECTOR_LABELS

    @property
    def primary_value(self) -> str:
        return f"{self.selector_value}{PRIMARY_SUFFIX}"


def _template(shape: PrimaryKind, target: Mapping[str, Any], inputs: PrimaryInputs) -> Obj:
    meta = get_path(target, "spec", "template", "metadata") or {}
    spec = primary_pod_spec(target, inputs.configs_renamed, inputs.selector_labels)
    node_selector = spec.get("nodeSelector")
    if shape.dropped_node_selector and isinstance(node_selector, dict):
        node_selector.pop(shape.dropped_node_selector, None)
        if not node_selector:
            del spec["nodeSelector"]
    return {
        "metadata": {
            "labels": primary_labels(meta.get("labels"), inputs.selector_label, inputs.primary_value),
            "annotations": template_annotations(meta.get("annotations"), inputs.flagger_id),
        },
        "spec": spec,
    }


def _object_labels(target: Mapping[str, Any], inputs: PrimaryInputs) -> dict[str, str]:
    labels = include_by_prefix((target.get("metadata") or {}).get("labels"), inputs.include_label_prefixes)
    return primary_labels(labels, inputs.selector_label, inputs.primary_value)


def build(
    shape: PrimaryKind,
    canary: Canary,
    target: Mapping[str, Any],
    selector_label: str,
    selector_value: str,
    *,
    flagger_id: str,
    include_label_prefixes: Sequence[str] = (),
    configs_renamed: Collection[str] = frozenset(),
    selector_labels: Collection[str] = DEFAULT_SELECTOR_LABELS,
) -> Obj:
    """The primary created at initialization: target labels filtered by the include prefixes, all target
    annotations (toolkit ones dropped) plus the Flux opt-out annotations, a controller ownerRef to the
    canary, selector ``<value>-primary``.

    ``flagger_id`` is the fresh id for the ``flagger-id`` pod annotation (the caller generates it);
    ``configs_renamed`` holds the ``configmap/<name>``/``secret/<name>`` keys whose ``-primary`` copies exist.
    """
    inputs = PrimaryInputs(
        selector_label, selector_value, flagger_id, include_label_prefixes, configs_renamed, selector_labels
    )
    meta = target.get("metadata") or {}
    spec = target.get("spec") or {}
    out_spec: Obj = {k: deep(spec[k]) for k in shape.copied_spec_fields if spec.get(k) is not None}
    if shape.has_replicas:
        replicas = spec.get("replicas")
        out_spec["replicas"] = replicas if isinstance(replicas, int) and replicas > 0 else 1
    out_spec["selector"] = {"matchLabels": {inputs.selector_label: inputs.primary_value}}
    out_spec["template"] = _template(shape, target, inputs)
    return {
        "apiVersion": "apps/v1",
        "kind": shape.kind,
        "metadata": {
            "name": canary.primary_name(),
            "namespace": canary.metadata.namespace or meta.get("namespace", ""),
            "labels": _object_labels(target, inputs),
            "annotations": managed_annotations(meta.get("annotations")),
            "ownerReferences": [controller_ref(canary)],
        },
        "spec": out_spec,
    }


def promote(
    shape: PrimaryKind,
    canary: Canary,
    target: Mapping[str, Any],
    primary: Mapping[str, Any],
    selector_label: str,
    selector_value: str,
    *,
    flagger_id: str,
    include_label_prefixes: Sequence[str] = (),
    configs_renamed: Collection[str] = frozenset(),
    selector_labels: Collection[str] = DEFAULT_SELECTOR_LABELS,
) -> Obj:
    """The observed primary with the target's template and spec fields copied over (Flagger's Promote).

    Replicas are copied only when the canary has no autoscalerRef. Object labels and annotations come from
    the target, filtered by ``-include-label-prefix`` (annotations plus the Flux opt-out ones); the selector
    (immutable) is never changed.
    """
    inputs = PrimaryInputs(
        selector_label, selector_value, flagger_id, include_label_prefixes, configs_renamed, selector_labels
    )
    out: Obj = deep(dict(primary))
    spec = target.get("spec") or {}
    out_spec = out.setdefault("spec", {})
    for key in shape.copied_spec_fields:
        if spec.get(key) is not None:
            out_spec[key] = deep(spec[key])
        else:
            out_spec.pop(key, None)
    if shape.has_replicas and canary.spec.autoscaler_ref is None and spec.get("replicas") is not None:
        out_spec["replicas"] = spec["replicas"]
    out_spec["template"] = _template(shape, target, inputs)
    out_meta = out.setdefault("metadata", {})
    out_meta["annotations"] = managed_annotations(
        include_by_prefix((target.get("metadata") or {}).get("annotations"), inputs.include_label_prefixes)
    )
    out_meta["labels"] = _object_labels(target, inputs)
    return out
