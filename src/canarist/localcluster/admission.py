"""Defaulting and validation of the built-in kinds and of CustomResourceDefinitions (pure functions)."""

from __future__ import annotations

import base64
import ipaddress
import re
from typing import Any

from canarist.localcluster.errors import FieldError
from canarist.localcluster.ingress import validate_ingress, validate_ingress_class
from canarist.localcluster.resources import PrinterColumn, ResourceType
from canarist.localcluster.selectors import LabelSelector

Obj = dict[str, Any]

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME_KINDS = frozenset({"Namespace", "Service"})
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def validate_name(kind: str, name: str) -> list[FieldError]:
    """Name rules of a built-in kind given as `Kind.group` (`Kind` for the core group); a custom
    resource's kind (pass "") gets the DNS-subdomain rule."""
    if kind in LABEL_NAME_KINDS:
        if len(name) > 63 or not DNS_LABEL.match(name):
            return [
                FieldError(
                    "metadata.name",
                    "FieldValueInvalid",
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
                    "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
                    "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                    name,
                )
            ]
        return []
    if kind in ("Event", "Event.events.k8s.io"):
        return (
            []
            if name and "/" not in name
            else [FieldError("metadata.name", "FieldValueInvalid", "may not contain '/'", name)]
        )
    if len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        return [
            FieldError(
                "metadata.name",
                "FieldValueInvalid",
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                "regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                name,
            )
        ]
    return []


def _dict(parent: Obj, key: str) -> Obj:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


def admit_builtin(rt: ResourceType, obj: Obj, old: Obj | None, allocate_ip: Any) -> list[FieldError]:
    """Apply the server-side defaults of a built-in kind and return its validation errors."""
    if rt.is_custom:
        return []
    kind = rt.qualified_kind
    if kind in ("Deployment.apps", "DaemonSet.apps", "ReplicaSet.apps"):
        return _admit_workload(rt.kind, obj)
    if kind == "Ingress.networking.k8s.io":
        return (
            validate_ingress(obj)
            if old is None
            else [e for e in validate_ingress(obj) if not e.field.startswith("metadata.annotations")]
        )
    if kind == "IngressClass.networking.k8s.io":
        return validate_ingress_class(obj)
    if kind == "Service":
        return _admit_service(obj, old, allocate_ip)
    if kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = _dict(obj, "data")
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
        return []
    if kind == "Namespace":
        spec = _dict(obj, "spec")
        if old is None:
            spec.setdefault("finalizers", ["kubernetes"])
        status = _dict(obj, "status")
        status.setdefault("phase", "Active")
        labels = _dict(_dict(obj, "metadata"), "labels")
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        return []
    if kind == "HorizontalPodAutoscaler.autoscaling":
        spec = _dict(obj, "spec")
        errors = []
        if "maxReplicas" not in spec:
            errors.append(FieldError("spec.maxReplicas", "FieldValueRequired"))
        if "scaleTargetRef" not in spec:
            errors.append(FieldError("spec.scaleTargetRef", "FieldValueRequired"))
        spec.setdefault("minReplicas", 1)
        return errors
    if kind == "CustomResourceDefinition.apiextensions.k8s.io":
        return admit_crd(obj)
    return []


def _admit_workload(kind: str, obj: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = _dict(obj, "spec")
    if kind == "Deployment":
        spec.setdefault("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = _dict(spec, "strategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _dict(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
    elif kind == "DaemonSet":
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = _dict(spec, "updateStrategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = _dict(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
    else:
        spec.setdefault("replicas", 1)
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0):
        errors.append(
            FieldError("spec.replicas", "FieldValueInvalid", "must be greater than or equal to 0", replicas)
        )
    selector = spec.get("selector")
    template = _dict(spec, "template")
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        errors.append(FieldError("spec.selector", "FieldValueRequired"))
    elif not LabelSelector.from_object(selector).matches({"metadata": {"labels": labels}}):
        errors.append(
            FieldError(
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                "`selector` does not match template `labels`",
                labels,
            )
        )
    pod_spec = template.get("spec")
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    if not containers:
        errors.append(FieldError("spec.template.spec.containers", "FieldValueRequired"))
    else:
        for n, container in enumerate(containers):
            if not isinstance(container, dict) or not container.get("name"):
                errors.append(FieldError(f"spec.template.spec.containers[{n}].name", "FieldValueRequired"))
            elif not container.get("image"):
                errors.append(FieldError(f"spec.template.spec.containers[{n}].image", "FieldValueRequired"))
    return errors


def _admit_service(obj: Obj, old: Obj | None, allocate_ip: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = _dict(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    old_spec = (old or {}).get("spec") or {}
    if spec["type"] != "ExternalName":
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or allocate_ip()
        elif spec["clusterIP"] != "None":
            try:
                ipaddress.ip_address(spec["clusterIP"])
            except ValueError:
                errors.append(
                    FieldError(
                        "spec.clusterIP", "FieldValueInvalid", "must be a valid IP address", spec["clusterIP"]
                    )
                )
        if old_spec.get("clusterIP") and spec["clusterIP"] != old_spec["clusterIP"]:
            errors.append(
                FieldError("spec.clusterIP", "FieldValueInvalid", "field is immutable", spec["clusterIP"])
            )
        spec["clusterIPs"] = [spec["clusterIP"]]
    for n, port in enumerate(spec.get("ports") or []):
        if not isinstance(port, dict) or "port" not in port:
            errors.append(FieldError(f"spec.ports[{n}].port", "FieldValueRequired"))
            continue
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
    return errors


def admit_crd(obj: Obj) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = _dict(obj, "spec")
    names = _dict(spec, "names")
    group = spec.get("group")
    if not group:
        errors.append(FieldError("spec.group", "FieldValueRequired"))
    for key in ("plural", "kind"):
        if not names.get(key):
            errors.append(FieldError(f"spec.names.{key}", "FieldValueRequired"))
    if names.get("kind"):
        names.setdefault("singular", str(names["kind"]).lower())
        names.setdefault("listKind", f"{names['kind']}List")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(
            FieldError(
                "spec.scope",
                "FieldValueNotSupported",
                'supported values: "Cluster", "Namespaced"',
                spec.get("scope"),
            )
        )
    name = (obj.get("metadata") or {}).get("name")
    if group and names.get("plural") and name != f"{names['plural']}.{group}":
        errors.append(
            FieldError("metadata.name", "FieldValueInvalid", 'must be spec.names.plural+"."+spec.group', name)
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        errors.append(
            FieldError(
                "spec.versions",
                "FieldValueRequired",
                "must have exactly one version marked as storage version",
            )
        )
    else:
        storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
        if len(storage) != 1:
            errors.append(
                FieldError(
                    "spec.versions",
                    "FieldValueInvalid",
                    "must have exactly one version marked as storage version",
                    versions,
                )
            )
        for n, version in enumerate(versions):
            if not isinstance(version, dict) or not version.get("name"):
                errors.append(FieldError(f"spec.versions[{n}].name", "FieldValueRequired"))
                continue
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if not isinstance(schema, dict):
                errors.append(
                    FieldError(
                        f"spec.versions[{n}].schema.openAPIV3Schema",
                        "FieldValueRequired",
                        "schemas are required",
                    )
                )
    return errors


def crd_status(obj: Obj, now: str, old_status: Obj | None) -> Obj:
    spec = obj.get("spec") or {}
    stored = list((old_status or {}).get("storedVersions") or [])
    for version in spec.get("versions") or []:
        if isinstance(version, dict) and version.get("storage") and version.get("name") not in stored:
            stored.append(version["name"])
    old_conditions = {c.get("type"): c for c in (old_status or {}).get("conditions") or []}

    def condition(kind: str, status: str, reason: str, message: str) -> Obj:
        previous = old_conditions.get(kind)
        since = previous.get("lastTransitionTime") if previous and previous.get("status") == status else now
        return {
            "type": kind,
            "status": status,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        }

    conditions = [
        condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
        condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        conditions.append(
            condition(
                "Terminating", "True", "InstanceDeletionInProgress", "CustomResource deletion is in progress"
            )
        )
    return {
        "acceptedNames": dict(spec.get("names") or {}),
        "conditions": conditions,
        "storedVersions": stored,
    }


def crd_types(crd: Obj) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    result = []
    for version in spec.get("versions") or []:
        if not isinstance(version, dict) or not version.get("served", True):
            continue
        columns = tuple(
            PrinterColumn(
                name=str(c.get("name")),
                type=str(c.get("type", "string")),
                json_path=str(c.get("jsonPath", "")),
                description=str(c.get("description", "")),
                priority=int(c.get("priority", 0) or 0),
                format=str(c.get("format", "")),
            )
            for c in version.get("additionalPrinterColumns") or []
            if isinstance(c, dict)
        )
        if not version.get("additionalPrinterColumns"):
            columns = (PrinterColumn("Age", "date", ".metadata.creationTimestamp"),)
        result.append(
            ResourceType(
                group=str(spec.get("group")),
                version=str(version["name"]),
                plural=str(names.get("plural")),
                singular=str(names.get("singular") or str(names.get("kind", "")).lower()),
                kind=str(names.get("kind")),
                namespaced=spec.get("scope") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in (version.get("subresources") or {}),
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                printer_columns=columns,
                crd_name=str((crd.get("metadata") or {}).get("name")),
                scale=_scale_paths((version.get("subresources") or {}).get("scale")),
                field_selectors=("metadata.name", "metadata.namespace"),
            )
        )
    return result


def _scale_paths(scale: Any) -> tuple[str, str, str] | None:
    if not isinstance(scale, dict) or not scale.get("specReplicasPath"):
        return None
    return (
        str(scale["specReplicasPath"]),
        str(scale.get("statusReplicasPath") or ""),
        str(scale.get("labelSelectorPath") or ""),
    )


# Known fields of the typed built-in objects: anything else is dropped (with a warning, or a 400 under
# fieldValidation=Strict), as the real server's typed decoding does. Only the top level, `metadata` and `spec`
# are checked; deeper levels (pod templates, status) are kept as sent.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_COMMON = frozenset({"apiVersion", "kind", "metadata"})
_WITH_SPEC = _COMMON | {"spec", "status"}
KNOWN_FIELDS: dict[str, tuple[frozenset[str], frozenset[str] | None]] = {
    "Deployment.apps": (
        _WITH_SPEC,
        frozenset(
            {
                "replicas",
                "selector",
                "template",
                "strategy",
                "minReadySeconds",
                "revisionHistoryLimit",
                "paused",
                "progressDeadlineSeconds",
            }
        ),
    ),
    "DaemonSet.apps": (
        _WITH_SPEC,
        frozenset({"selector", "template", "updateStrategy", "minReadySeconds", "revisionHistoryLimit"}),
    ),
    "ReplicaSet.apps": (_WITH_SPEC, frozenset({"replicas", "minReadySeconds", "selector", "template"})),
    "Service": (
        _WITH_SPEC,
        frozenset(
            {
                "ports",
                "selector",
                "clusterIP",
                "clusterIPs",
                "type",
                "externalIPs",
                "sessionAffinity",
                "loadBalancerIP",
                "loadBalancerSourceRanges",
                "externalName",
                "externalTrafficPolicy",
                "healthCheckNodePort",
                "publishNotReadyAddresses",
                "sessionAffinityConfig",
                "ipFamilies",
                "ipFamilyPolicy",
                "allocateLoadBalancerNodePorts",
                "loadBalancerClass",
                "internalTrafficPolicy",
                "trafficDistribution",
            }
        ),
    ),
    "ConfigMap": (_COMMON | {"data", "binaryData", "immutable"}, None),
    "Secret": (_COMMON | {"data", "stringData", "type", "immutable"}, None),
    "Namespace": (_WITH_SPEC, frozenset({"finalizers"})),
    "ServiceAccount": (_COMMON | {"secrets", "imagePullSecrets", "automountServiceAccountToken"}, None),
    "HorizontalPodAutoscaler.autoscaling": (
        _WITH_SPEC,
        frozenset({"scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"}),
    ),
    "Lease.coordination.k8s.io": (
        _COMMON | {"spec"},
        frozenset(
            {
                "holderIdentity",
                "leaseDurationSeconds",
                "acquireTime",
                "renewTime",
                "leaseTransitions",
                "strategy",
                "preferredHolder",
            }
        ),
    ),
    "CustomResourceDefinition.apiextensions.k8s.io": (
        _WITH_SPEC,
        frozenset({"group", "names", "scope", "versions", "conversion", "preserveUnknownFields"}),
    ),
}
_EVENT_FIELDS = _COMMON | {
    "involvedObject",
    "reason",
    "message",
    "source",
    "firstTimestamp",
    "lastTimestamp",
    "count",
    "type",
    "eventTime",
    "series",
    "action",
    "related",
    "reportingComponent",
    "reportingInstance",
}


def prune_known_fields(rt: ResourceType, obj: Obj) -> list[str]:
    """Drop the fields a typed object cannot hold; returns their paths."""
    pruned: list[str] = []
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
            pruned.append(f"metadata.{key}")
            del meta[key]
    if rt.is_custom:
        return pruned
    known = KNOWN_FIELDS.get(rt.qualified_kind)
    if rt.is_builtin("Event"):
        known = (_EVENT_FIELDS, None)
    if known is None:
        return pruned
    top, spec_fields = known
    for key in [k for k in obj if k not in top]:
        pruned.append(key)
        del obj[key]
    spec = obj.get("spec")
    if spec_fields is not None and isinstance(spec, dict):
        for key in [k for k in spec if k not in spec_fields]:
            pruned.append(f"spec.{key}")
            del spec[key]
    return pruned
