"""Compact builders for structural openAPIV3Schema trees and CustomResourceDefinition objects.

Every node a builder returns is structural (it has a ``type``, or is int-or-string), so the trees can be
handed to `canarist.localcluster.schema.validate_object` and published in the OpenAPI documents as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Obj = dict[str, Any]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _with(node: Obj, extra: Mapping[str, Any]) -> Obj:
    node.update({k: v for k, v in extra.items() if v is not None})
    return node


def string(*, enum: Sequence[str] | None = None, **extra: Any) -> Obj:
    """A string; `extra` carries pattern, maxLength, minLength, format, default, description."""
    node: Obj = {"type": "string"}
    if enum is not None:
        node["enum"] = list(enum)
    return _with(node, extra)


def integer(
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    enum: Sequence[int] | None = None,
    **extra: Any,
) -> Obj:
    node: Obj = {"type": "integer"}
    if enum is not None:
        node["enum"] = list(enum)
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    return _with(node, extra)


def int32(**extra: Any) -> Obj:
    return integer(format="int32", **extra)


def int64(**extra: Any) -> Obj:
    return integer(format="int64", **extra)


def port(**extra: Any) -> Obj:
    """A TCP/UDP port number (1-65535)."""
    return int32(minimum=1, maximum=65535, **extra)


def boolean(**extra: Any) -> Obj:
    return _with({"type": "boolean"}, extra)


def int_or_string(**extra: Any) -> Obj:
    return _with({"x-kubernetes-int-or-string": True}, extra)


def quantity(**extra: Any) -> Obj:
    """A resource.Quantity as controller-gen renders it: an integer, or a string like `500m`."""
    node: Obj = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY,
        "x-kubernetes-int-or-string": True,
    }
    return _with(node, extra)


def obj(properties: Mapping[str, Obj] | None = None, *, required: Iterable[str] = (), **extra: Any) -> Obj:
    """An object with typed properties (unknown keys are pruned)."""
    node: Obj = {"type": "object", "properties": dict(properties or {})}
    names = list(required)
    if names:
        node["required"] = names
    return _with(node, extra)


def array(items: Obj, **extra: Any) -> Obj:
    """A list; `extra` carries maxItems, minItems, x-kubernetes-list-type ..."""
    return _with({"type": "array", "items": items}, extra)


def strings(**extra: Any) -> Obj:
    return array(string(), **extra)


def string_map(**extra: Any) -> Obj:
    """map[string]string (labels, selectors, options)."""
    return _with({"type": "object", "additionalProperties": {"type": "string"}}, extra)


def free(**extra: Any) -> Obj:
    """A free-form object: kept as sent (x-kubernetes-preserve-unknown-fields)."""
    return _with({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, extra)


def label_selector() -> Obj:
    """metav1.LabelSelector."""
    requirement = obj(
        {"key": string(), "operator": string(), "values": strings()}, required=("key", "operator")
    )
    return obj(
        {"matchLabels": string_map(), "matchExpressions": array(requirement)},
        **{"x-kubernetes-map-type": "atomic"},
    )


def condition() -> Obj:
    """metav1.Condition (the status conditions of the newer APIs)."""
    return obj(
        {
            "type": string(
                maxLength=316,
                pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            ),
            "status": string(enum=("True", "False", "Unknown")),
            "observedGeneration": int64(minimum=0),
            "lastTransitionTime": string(format="date-time"),
            "reason": string(
                minLength=1, maxLength=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
            ),
            "message": string(maxLength=32768),
        },
        required=("lastTransitionTime", "message", "reason", "status", "type"),
    )


def conditions(**extra: Any) -> Obj:
    """A list of metav1.Condition keyed by type."""
    return array(
        condition(),
        **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], **extra},
    )


def root(spec: Obj, status: Obj | None = None, *, required: Iterable[str] = ()) -> Obj:
    """The openAPIV3Schema of a whole object: apiVersion, kind, metadata, spec and status."""
    properties: Obj = {
        "apiVersion": string(),
        "kind": string(),
        "metadata": {"type": "object"},
        "spec": spec,
    }
    if status is not None:
        properties["status"] = status
    return obj(properties, required=required)


def column(
    name: str, json_path: str, kind: str = "string", *, priority: int = 0, description: str = ""
) -> Obj:
    """An additionalPrinterColumns entry."""
    entry: Obj = {"name": name, "type": kind, "jsonPath": json_path}
    if priority:
        entry["priority"] = priority
    if description:
        entry["description"] = description
    return entry


AGE = column("Age", ".metadata.creationTimestamp", "date")


def version(
    name: str,
    schema: Obj,
    *,
    storage: bool = False,
    status: bool = False,
    columns: Sequence[Obj] = (),
    deprecated: bool = False,
) -> Obj:
    """One `spec.versions` entry (served)."""
    entry: Obj = {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": schema}}
    if status:
        entry["subresources"] = {"status": {}}
    if columns:
        entry["additionalPrinterColumns"] = list(columns)
    if deprecated:
        entry["deprecated"] = True
    return entry


def crd(
    group: str,
    kind: str,
    plural: str,
    versions: Sequence[Obj],
    *,
    namespaced: bool = True,
    short_names: Sequence[str] = (),
    categories: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """A CustomResourceDefinition (apiextensions.k8s.io/v1)."""
    names: Obj = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    if short_names:
        names["shortNames"] = list(short_names)
    if categories:
        names["categories"] = list(categories)
    metadata: Obj = {"name": f"{plural}.{group}"}
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": group,
            "names": names,
            "scope": "Namespaced" if namespaced else "Cluster",
            "versions": list(versions),
        },
    }
