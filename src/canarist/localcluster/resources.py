"""Resource types served by the local control plane: the built-in kinds and the ones CRDs add."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from canarist.localcluster.ingress import ingress_class_schema, ingress_schema

Obj = dict[str, Any]
StorageKey = tuple[str, str]  # (group, plural)

ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True)
class PrinterColumn:
    """One column of the Table output (a CRD's additionalPrinterColumns entry)."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass
class ResourceType:
    """One served (group, version, resource)."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    status_subresource: bool = False
    generation: bool = True
    schema: Obj | None = None
    printer_columns: tuple[PrinterColumn, ...] | None = None
    crd_name: str | None = None
    field_selectors: tuple[str, ...] = ()
    scale: tuple[str, str, str] | None = None  # specReplicasPath, statusReplicasPath, labelSelectorPath
    # A built-in kind's typed shape (validation and pruning at every level; not published in OpenAPI).
    typed_schema: Obj | None = None

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> StorageKey:
        return (self.group, self.plural)

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def is_custom(self) -> bool:
        return self.crd_name is not None

    def is_builtin(self, qualified_kind: str) -> bool:
        """Whether this is the built-in kind `Kind.group` (`Kind` for the core group), never a CRD's
        kind of the same name: nothing is told apart by Kind alone."""
        return not self.is_custom and self.qualified_kind == qualified_kind


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving Kubernetes' version priority (v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > others)."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0, version)
    major = int(match.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[match.group(2)]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, version)


class Registry:
    """The set of served resource types, keyed by (group, version, plural)."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove(self, group: str, version: str, plural: str) -> None:
        self._types.pop((group, version, plural), None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def for_storage(self, key: StorageKey) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.storage_key == key]

    def groups(self) -> dict[str, list[str]]:
        """group -> served versions, highest priority first."""
        result: dict[str, set[str]] = {}
        for group, version, _ in self._types:
            result.setdefault(group, set()).add(version)
        return {g: sorted(v, key=version_priority) for g, v in sorted(result.items())}

    def resources(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (rt for (g, v, _), rt in self._types.items() if g == group and v == version),
            key=lambda rt: rt.plural,
        )


def builtin_types() -> list[ResourceType]:
    """The built-in kinds this server serves."""
    types = [_with_fields(rt, ("metadata.name", "metadata.namespace")) for rt in _builtin_raw()]
    for rt in types:
        if rt.group == "apps" and rt.plural in ("deployments", "replicasets"):
            rt.scale = (".spec.replicas", ".status.replicas", "")
    return types


def _with_fields(rt: ResourceType, common: tuple[str, ...]) -> ResourceType:
    rt.field_selectors = common + rt.field_selectors
    return rt


def _builtin_raw() -> list[ResourceType]:
    ns = ResourceType
    return [
        ns(
            "",
            "v1",
            "namespaces",
            "namespace",
            "Namespace",
            False,
            ("ns",),
            (),
            generation=False,
            status_subresource=True,
            field_selectors=("status.phase",),
        ),
        ns(
            "",
            "v1",
            "services",
            "service",
            "Service",
            True,
            ("svc",),
            ("all",),
            status_subresource=True,
            generation=False,
        ),
        ns("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",), (), generation=False),
        ns(
            "", "v1", "secrets", "secret", "Secret", True, (), (), generation=False, field_selectors=("type",)
        ),
        ns(
            "",
            "v1",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            True,
            ("sa",),
            (),
            generation=False,
        ),
        ns(
            "",
            "v1",
            "events",
            "event",
            "Event",
            True,
            ("ev",),
            (),
            generation=False,
            field_selectors=(
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ),
        ),
        ns(
            "",
            "v1",
            "pods",
            "pod",
            "Pod",
            True,
            ("po",),
            ("all",),
            status_subresource=True,
            generation=False,
            field_selectors=(
                "spec.nodeName",
                "status.phase",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "status.podIP",
            ),
        ),
        ns(
            "events.k8s.io",
            "v1",
            "events",
            "event",
            "Event",
            True,
            ("ev",),
            (),
            generation=False,
            field_selectors=(
                "regarding.kind",
                "regarding.namespace",
                "regarding.name",
                "regarding.uid",
                "reason",
                "type",
                "reportingController",
            ),
        ),
        ns(
            "apps",
            "v1",
            "deployments",
            "deployment",
            "Deployment",
            True,
            ("deploy",),
            ("all",),
            status_subresource=True,
        ),
        ns(
            "apps",
            "v1",
            "daemonsets",
            "daemonset",
            "DaemonSet",
            True,
            ("ds",),
            ("all",),
            status_subresource=True,
        ),
        ns(
            "apps",
            "v1",
            "replicasets",
            "replicaset",
            "ReplicaSet",
            True,
            ("rs",),
            ("all",),
            status_subresource=True,
        ),
        ns(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            True,
            ("hpa",),
            ("all",),
            status_subresource=True,
        ),
        ns(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "ingress",
            "Ingress",
            True,
            ("ing",),
            (),
            status_subresource=True,
            typed_schema=ingress_schema(),
        ),
        ns(
            "networking.k8s.io",
            "v1",
            "ingressclasses",
            "ingressclass",
            "IngressClass",
            False,
            (),
            (),
            typed_schema=ingress_class_schema(),
        ),
        ns("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, (), (), generation=False),
        # RBAC objects are stored (so install manifests apply) but not enforced: the server has no authn.
        ns("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True, (), (), generation=False),
        ns(
            "rbac.authorization.k8s.io",
            "v1",
            "rolebindings",
            "rolebinding",
            "RoleBinding",
            True,
            (),
            (),
            generation=False,
        ),
        ns(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterroles",
            "clusterrole",
            "ClusterRole",
            False,
            (),
            (),
            generation=False,
        ),
        ns(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "clusterrolebinding",
            "ClusterRoleBinding",
            False,
            (),
            (),
            generation=False,
        ),
        ns(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            False,
            ("crd", "crds"),
            ("api-extensions",),
            status_subresource=True,
        ),
    ]
