"""What a data-plane translator is given and what it gives back.

A translator turns one provider's objects (Istio VirtualServices, Gateway API HTTPRoutes, SMI
TrafficSplits...) into a `Program`: Envoy routes for Service listeners and for the ingress-gateway listener,
extra clusters, and the statuses that provider's controller would write. The renderer
(:func:`canarist.sandbox.envoy_config.envoy_config`) runs every translator against one `World` view each and
merges the programs into one Envoy configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from canarist.kube.resources import ResourceKind

__all__ = [
    "DOMAIN",
    "ClusterDecl",
    "Endpoint",
    "Obj",
    "PortKey",
    "Program",
    "ServiceKey",
    "StatusWrite",
    "Translator",
    "World",
    "condition",
    "meta",
    "name_of",
    "namespace_of",
    "service_cluster_name",
    "service_domains",
    "sort_key",
    "spec_of",
]

Obj = dict[str, Any]
ServiceKey = tuple[str, str]  # (namespace, service)
PortKey = tuple[str, str, int]  # (namespace, service, port)

DOMAIN = "svc.cluster.local"


@dataclass(frozen=True)
class Endpoint:
    """One pod behind a Service: where it listens and the labels of its pod template."""

    host: str
    port: int
    labels: Mapping[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ objects


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``metadata`` of an object (``{}`` when missing)."""
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "default")


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def spec_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec`` of an object (``{}`` when missing)."""
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def sort_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)``: the order translators go through objects in, so output is deterministic."""
    return (namespace_of(obj), name_of(obj))


def service_domains(namespace: str, name: str) -> list[str]:
    """The in-cluster DNS names of a Service: ``name``, ``name.ns``, ``name.ns.svc``, ``name.ns.svc.cluster.local``."""
    return [name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.{DOMAIN}"]


def service_cluster_name(namespace: str, service: str, port: int, subset: str = "") -> str:
    """Istio's outbound cluster name: ``outbound|9898|<subset>|podinfo.test.svc.cluster.local``."""
    return f"outbound|{port}|{subset}|{service}.{namespace}.{DOMAIN}"


def condition(
    type_: str,
    status: bool | str,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    previous: Iterable[Mapping[str, Any]] = (),
    now: str | None = None,
) -> Obj:
    """A Kubernetes-style condition. ``lastTransitionTime`` is taken from the condition of the same type in
    ``previous`` (the object's current conditions) when its status is unchanged, else ``now`` (default: the
    current UTC time), so an unchanged status renders identically and the watcher does not rewrite it on
    every rebuild."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    if now is None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    transition = now
    for old in previous:
        if isinstance(old, Mapping) and old.get("type") == type_ and old.get("status") == value:
            transition = str(old.get("lastTransitionTime") or now)
            break
    out: Obj = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


# ------------------------------------------------------------------------------------------------ program


@dataclass(frozen=True)
class ClusterDecl:
    """An extra Envoy cluster over a Service port's endpoints (optionally those whose pod labels match
    ``labels``), with Envoy ``Cluster`` fields in ``options`` (``lb_policy``, ``outlier_detection``...)."""

    name: str
    namespace: str
    service: str
    port: int
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusWrite:
    """The ``status`` a provider's controller would write on one object (the whole ``status``)."""

    kind: ResourceKind
    namespace: str
    name: str
    status: Mapping[str, Any]


@dataclass
class Program:
    """What one translator produces.

    * ``service_routes``: Envoy routes placed on that Service port's listener before its default route (what
      a sidecar does for traffic to that Service), after those of earlier translators; the gateway's host for
      the Service uses them too.
    * ``service_tcp``: an Envoy network filter (a ``tcp_proxy``) replacing that Service port's HTTP listener
      (the first translator's wins).
    * ``gateway_hosts``: Envoy virtual hosts for the ingress-gateway listener; a domain belongs to the first
      host claiming it (translators in registry order, hosts in list order).
    * ``clusters``: the clusters declared through the `World` (filled by the renderer; a translator may add
      more directly).
    * ``statuses``: statuses to write to the objects' ``/status`` (the watcher writes one only when it
      differs from the object's; the kind must say ``status_subresource=True`` if its CRD has one).
    """

    service_routes: dict[PortKey, list[Obj]] = field(default_factory=dict)
    service_tcp: dict[PortKey, Obj] = field(default_factory=dict)
    gateway_hosts: list[Obj] = field(default_factory=list)
    clusters: list[ClusterDecl] = field(default_factory=list)
    statuses: list[StatusWrite] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ world


class World:
    """The cluster as a translator sees it: Services, their ports and endpoints, and cluster declarations.

    ``services`` are Service objects; ``endpoints`` maps ``(namespace, service)`` to the pods behind it;
    ``weight_header`` is the header to put in ``weighted_clusters.header_name`` (``""``: none).
    """

    def __init__(
        self,
        services: Iterable[Mapping[str, Any]],
        endpoints: Mapping[ServiceKey, Sequence[Endpoint]],
        *,
        weight_header: str = "",
    ) -> None:
        self.services: dict[ServiceKey, Mapping[str, Any]] = {
            (namespace_of(s), name_of(s)): s for s in services
        }
        self._endpoints = endpoints
        self.weight_header = weight_header
        self.declared: dict[str, ClusterDecl] = {}

    # -- Services

    def resolve(self, host: str, namespace: str) -> ServiceKey | None:
        """The Service a host names, seen from ``namespace``: ``name`` (in ``namespace``), ``name.ns``,
        ``name.ns.svc``, ``name.ns.svc.cluster.local``; ``None`` if it names no known Service."""
        host = host.strip().lower()
        if host.endswith("." + DOMAIN):
            host = host[: -len(DOMAIN) - 1]
        if host.endswith(".svc"):
            host = host[:-4]
        parts = host.split(".")
        if len(parts) == 1:
            key = (namespace, parts[0])
        elif len(parts) == 2:
            key = (parts[1], parts[0])
        else:
            return None
        return key if key in self.services else None

    def service(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.services.get((namespace, name))

    def port_specs(self, namespace: str, name: str) -> list[Mapping[str, Any]]:
        """The Service's ``spec.ports`` entries that have a port number."""
        service = self.services.get((namespace, name))
        if service is None:
            return []
        return [p for p in spec_of(service).get("ports") or [] if isinstance(p, Mapping) and p.get("port")]

    def ports(self, namespace: str, name: str) -> list[int]:
        return [int(p["port"]) for p in self.port_specs(namespace, name)]

    def port(self, namespace: str, name: str, port: int | str | None = None) -> int | None:
        """A Service port by number or by name; without one, the first port. ``None`` when the Service does
        not exist or has no such port. A number the Service does not declare is returned as is (a route to
        it reaches a cluster that does not exist, as in a mesh)."""
        specs = self.port_specs(namespace, name)
        if (namespace, name) not in self.services:
            return None
        if port is None or port == "" or port == 0:
            return int(specs[0]["port"]) if specs else None
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for spec in specs:
            if str(spec.get("name") or "") == port:
                return int(spec["port"])
        return None

    def endpoints(self, namespace: str, name: str, labels: Mapping[str, str] | None = None) -> list[Endpoint]:
        """The pods behind a Service (those whose labels include ``labels``)."""
        wanted = labels or {}
        return [
            e
            for e in self._endpoints.get((namespace, name), ())
            if all(e.labels.get(k) == v for k, v in wanted.items())
        ]

    def domains(self, namespace: str, name: str) -> list[str]:
        return service_domains(namespace, name)

    # -- clusters

    def service_cluster(self, namespace: str, service: str, port: int, subset: str = "") -> str:
        """The name of the Service port's cluster (Istio's ``outbound|port|subset|fqdn``). The cluster without
        a subset always exists for every Service port; one with a subset only once declared with
        `alias_cluster`."""
        return service_cluster_name(namespace, service, port, subset)

    def alias_cluster(
        self,
        name: str,
        namespace: str,
        service: str,
        port: int,
        labels: Mapping[str, str] | None = None,
        *,
        options: Mapping[str, Any] | None = None,
    ) -> str:
        """Declare a cluster called ``name`` over the Service port's endpoints (those whose pod labels include
        ``labels``) and return ``name``. Envoy's stats (``envoy_cluster_upstream_rq*{envoy_cluster_name=…}``)
        then carry the name the provider's controller would give it. ``options`` are Envoy ``Cluster`` fields
        (``lb_policy``, ``outlier_detection``...). Declaring a Service's default cluster name sets its
        options. The first declaration of a name wins."""
        if name not in self.declared:
            self.declared[name] = ClusterDecl(
                name, namespace, service, int(port), dict(labels or {}), dict(options or {})
            )
        return name


class Translator(Protocol):
    """One provider's objects to a `Program`. ``kinds`` are the kinds the watcher caches for it; ``program``
    gets every watched kind's objects (absent kinds: missing or empty) and must be a pure function of them
    and the `World`."""

    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> tuple[ResourceKind, ...]: ...

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program: ...
