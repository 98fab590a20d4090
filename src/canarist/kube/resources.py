"""Descriptors of the resource kinds canarist reads and writes.

A `ResourceKind` is everything needed to build a REST path for a kind: its API group, version, plural (the
URL segment), Kind and whether it lives in a namespace. The module holds a constant for every kind the
operator touches and a registry keyed by ``(apiVersion, kind)`` so that a manifest (a plain dict) can be
mapped to its kind; `register()` declares more (another mesh's CRDs, say).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALERT_PROVIDER",
    "CANARY",
    "CANARY_COMMAND",
    "CONFIG_MAP",
    "CUSTOM_RESOURCE_DEFINITION",
    "DAEMON_SET",
    "DEPLOYMENT",
    "DESTINATION_RULE",
    "EVENT",
    "HORIZONTAL_POD_AUTOSCALER",
    "INGRESS",
    "KNATIVE_REVISION",
    "KNATIVE_SERVICE",
    "LEASE",
    "METRIC_TEMPLATE",
    "NAMESPACE",
    "SCALED_OBJECT",
    "SECRET",
    "SERVICE",
    "VIRTUAL_SERVICE",
    "ResourceKind",
    "UnknownKind",
    "kind_of",
    "lookup",
    "register",
    "registered",
]


class UnknownKind(LookupError):
    """No `ResourceKind` is registered for an (apiVersion, kind) pair."""

    def __init__(self, api_version: str, kind: str) -> None:
        super().__init__(f"no resource kind registered for apiVersion={api_version!r} kind={kind!r}")
        self.api_version = api_version
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """One served (group, version, plural) with its Kind.

    ``group`` is ``""`` for the core API. ``status_subresource`` says whether writes to ``.status`` go
    through ``/status`` (true for every built-in kind with a status and for CRDs that declare it).
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = False

    @property
    def api_version(self) -> str:
        """``group/version``, or just ``version`` for the core group (``v1``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``plural.group`` as RBAC and error messages spell it (``deployments.apps``, ``services``)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The REST path: ``/api/v1/namespaces/<ns>/services/<name>[/<sub>]``.

        A namespaced kind without ``namespace`` gives the all-namespaces collection path. A cluster-scoped
        kind ignores ``namespace``.
        """
        parts = ["/api", self.version] if not self.group else ["/apis", self.group, self.version]
        if self.namespaced and namespace:
            parts += ["namespaces", namespace]
        parts.append(self.plural)
        if name is not None:
            if not name:
                raise ValueError(f"empty name for {self.kind}")
            parts.append(name)
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def __str__(self) -> str:
        return f"{self.kind}.{self.api_version}"


# core/v1
NAMESPACE = ResourceKind("", "v1", "namespaces", "Namespace", namespaced=False, status_subresource=True)
SERVICE = ResourceKind("", "v1", "services", "Service", status_subresource=True)
CONFIG_MAP = ResourceKind("", "v1", "configmaps", "ConfigMap")
SECRET = ResourceKind("", "v1", "secrets", "Secret")
EVENT = ResourceKind("", "v1", "events", "Event")
# apps/v1
DEPLOYMENT = ResourceKind("apps", "v1", "deployments", "Deployment", status_subresource=True)
DAEMON_SET = ResourceKind("apps", "v1", "daemonsets", "DaemonSet", status_subresource=True)
# autoscaling/v2
HORIZONTAL_POD_AUTOSCALER = ResourceKind(
    "autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", status_subresource=True
)
# keda.sh/v1alpha1 (a CRD: watched only once a canary's autoscalerRef names a ScaledObject)
SCALED_OBJECT = ResourceKind("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", status_subresource=True)
# serving.knative.dev/v1 (Knative Serving: a Knative Service target and its Revisions)
KNATIVE_SERVICE = ResourceKind("serving.knative.dev", "v1", "services", "Service", status_subresource=True)
KNATIVE_REVISION = ResourceKind("serving.knative.dev", "v1", "revisions", "Revision", status_subresource=True)
# networking.k8s.io/v1
INGRESS = ResourceKind("networking.k8s.io", "v1", "ingresses", "Ingress", status_subresource=True)
# coordination.k8s.io/v1
LEASE = ResourceKind("coordination.k8s.io", "v1", "leases", "Lease")
# apiextensions.k8s.io/v1
CUSTOM_RESOURCE_DEFINITION = ResourceKind(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    namespaced=False,
    status_subresource=True,
)
# flagger.app/v1beta1
CANARY = ResourceKind("flagger.app", "v1beta1", "canaries", "Canary", status_subresource=True)
METRIC_TEMPLATE = ResourceKind("flagger.app", "v1beta1", "metrictemplates", "MetricTemplate")
ALERT_PROVIDER = ResourceKind("flagger.app", "v1beta1", "alertproviders", "AlertProvider")
#: canarist's runtime commands (docs/control.md)
CANARY_COMMAND = ResourceKind(
    "canarist.dev", "v1alpha1", "canarycommands", "CanaryCommand", status_subresource=True
)
# networking.istio.io/v1beta1
VIRTUAL_SERVICE = ResourceKind("networking.istio.io", "v1beta1", "virtualservices", "VirtualService")
DESTINATION_RULE = ResourceKind("networking.istio.io", "v1beta1", "destinationrules", "DestinationRule")

_REGISTRY: dict[tuple[str, str], ResourceKind] = {}


def register(*kinds: ResourceKind, replace: bool = False) -> None:
    """Declare more kinds. Re-registering the same descriptor is a no-op; a different descriptor for an
    already-known (apiVersion, kind) raises ``ValueError`` unless ``replace`` is true."""
    for kind in kinds:
        key = (kind.api_version, kind.kind)
        existing = _REGISTRY.get(key)
        if existing is not None and existing != kind and not replace:
            raise ValueError(f"{kind} is already registered as {existing!r}")
        _REGISTRY[key] = kind


def lookup(api_version: str, kind: str) -> ResourceKind:
    """The registered `ResourceKind` for ``(apiVersion, kind)``; raises `UnknownKind`."""
    try:
        return _REGISTRY[(api_version, kind)]
    except KeyError:
        raise UnknownKind(api_version, kind) from None


def kind_of(obj: Mapping[str, Any]) -> ResourceKind:
    """The registered `ResourceKind` of a manifest, from its ``apiVersion`` and ``kind``."""
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise UnknownKind(str(api_version), str(kind))
    return lookup(api_version, kind)


def registered() -> Iterator[ResourceKind]:
    """Every registered kind, in registration order."""
    return iter(list(_REGISTRY.values()))


register(
    NAMESPACE,
    SERVICE,
    CONFIG_MAP,
    SECRET,
    EVENT,
    DEPLOYMENT,
    DAEMON_SET,
    HORIZONTAL_POD_AUTOSCALER,
    SCALED_OBJECT,
    KNATIVE_SERVICE,
    KNATIVE_REVISION,
    INGRESS,
    LEASE,
    CUSTOM_RESOURCE_DEFINITION,
    CANARY,
    METRIC_TEMPLATE,
    ALERT_PROVIDER,
    CANARY_COMMAND,
    VIRTUAL_SERVICE,
    DESTINATION_RULE,
)
