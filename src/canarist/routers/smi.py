"""SMI TrafficSplit (``split.smi-spec.io``): the ``linkerd``, ``smi:<version>`` and ``osm`` providers.

One object, the TrafficSplit ``<apex>``::

    spec:
      service: <service.hosts[0] or apex>
      backends:
        - {service: <apex>-canary,  weight: <canary>}
        - {service: <apex>-primary, weight: <primary>}

The SMI version decides the weight type: ``v1alpha1`` (``linkerd``, ``smi:v1alpha1``) writes Kubernetes
quantities (the strings ``"100"``/``"0"``), ``v1alpha2`` (``smi:v1alpha2``, ``osm``) and ``v1alpha3``
(``smi:v1alpha3``) write integers. Only weights are routed: no A/B matches, mirroring or session affinity.

Read-back accepts either form (``50``, ``"50"``, ``"500m"``, ``"1e2"``, ``"1Ki"``) and, as the meshes do,
treats the two weights as relative shares: a split of ``"900m"``/``"100m"`` reads as 90/10. Weights that
are integers summing to 100 are read as they are.

``smi:<version>:<mesh>`` names a target mesh behind the SMI adapter (:func:`with_mesh` splits it off,
:func:`router_for` builds the router); with the mesh ``istio`` the TrafficSplit carries the annotation
``VirtualService.v1alpha3.networking.istio.io/spec.gateways`` (the JSON list of ``service.gateways``).

A TrafficSplit the canary creates is owned by it (ownerReferences when the mesh shares the cluster) and
left to garbage collection on deletion. One that already existed (not owned) is taken over: it gets the
Flux opt-out annotations and, without kubectl's last-applied record, a backup of its spec in
``flagger.kubernetes.io/original-configuration``, which :meth:`SmiRouter.revert` restores. Foreign labels
and annotations are always kept.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from canarist.engine.model import RouterCapabilities, Routes
from canarist.kube.resources import ResourceKind
from canarist.routers.base import (
    Obj,
    ObjectRef,
    ObservedRoutes,
    Reference,
    RouteContext,
    RoutesError,
)
from canarist.routers.takeover import restore, with_backup
from canarist.workloads._meta import (
    controller_ref,
    deep,
    has_flux_opt_out,
    is_owned_by,
    prune,
    set_metadata_map,
    with_flux_opt_out,
)

GROUP = "split.smi-spec.io"
KIND = "TrafficSplit"
TRAFFIC_SPLIT_V1ALPHA1 = ResourceKind(GROUP, "v1alpha1", "trafficsplits", KIND)
TRAFFIC_SPLIT_V1ALPHA2 = ResourceKind(GROUP, "v1alpha2", "trafficsplits", KIND)
TRAFFIC_SPLIT_V1ALPHA3 = ResourceKind(GROUP, "v1alpha3", "trafficsplits", KIND)
_KINDS = {k.version: k for k in (TRAFFIC_SPLIT_V1ALPHA1, TRAFFIC_SPLIT_V1ALPHA2, TRAFFIC_SPLIT_V1ALPHA3)}

#: where the spec of a TrafficSplit taken over (no kubectl last-applied annotation) is kept for a revert.
#: set with the target mesh ``istio``: the gateways of the VirtualService the SMI adapter generates.
ISTIO_GATEWAYS_ANNOTATION = "VirtualService.v1alpha3.networking.istio.io/spec.gateways"

# -- Kubernetes quantities -------------------------------------------------------------------------------

_DECIMAL_SUFFIXES: Mapping[str, Fraction] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_BINARY_SUFFIXES: Mapping[str, Fraction] = {
    s: Fraction(1024**i) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), start=1)
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


def parse_quantity(value: Any) -> Fraction:
    """The exact value of a Kubernetes quantity: a JSON number or a string such as ``"100"``, ``"500m"``,
    ``"1.5"``, ``"1e2"`` or ``"2Ki"``. Raises ValueError for anything else (booleans included)."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    if not isinstance(value, str):
        raise ValueError(f"not a quantity: {value!r}")
    found = _QUANTITY.match(value.strip())
    if found is None:
        raise ValueError(f"not a quantity: {value!r}")
    number = Fraction(found["number"])
    if found["exp"]:
        return number * Fraction(10) ** int(found["exp"][1:])
    suffix = found["suffix"] or ""
    return number * (_BINARY_SUFFIXES.get(suffix) or _DECIMAL_SUFFIXES[suffix])


def percentages(primary: Fraction, canary: Fraction) -> tuple[int, int]:
    """Two weights as percent of their sum (the meshes weigh backends relative to each other), the primary
    rounded half up and the canary the rest. Integers summing to 100 come back as they are."""
    total = primary + canary
    if total <= 0 or primary < 0 or canary < 0:
        raise ValueError("weights must be non-negative with a positive sum")
    rounded = int(primary * 100 / total + Fraction(1, 2))
    return rounded, 100 - rounded


# -- provider names --------------------------------------------------------------------------------------


def with_mesh(name: str) -> tuple[str, str]:
    """Split the target mesh off an SMI provider name: ``"smi:v1alpha1:istio"`` → ``("smi:v1alpha1",
    "istio")``. Names without a mesh come back with ``""`` (``"linkerd"`` → ``("linkerd", "")``)."""
    parts = name.split(":")
    if len(parts) == 3 and parts[0] == "smi" and parts[1] and parts[2]:
        return f"{parts[0]}:{parts[1]}", parts[2]
    return name, ""


# -- the router ------------------------------------------------------------------------------------------


class SmiRouter:
    """A TrafficSplit router for one SMI version (``v1alpha1``, ``v1alpha2`` or ``v1alpha3``)."""

    capabilities = RouterCapabilities(weights=True, matches=False, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    def __init__(self, name: str, version: str, *, target_mesh: str = "") -> None:
        if version not in _KINDS:
            raise ValueError(f"unknown SMI version {version!r} (known: {', '.join(_KINDS)})")
        self.name = name
        self.version = version
        self.target_mesh = target_mesh
        self.kind = _KINDS[version]
        self.kinds: tuple[ResourceKind, ...] = (self.kind,)

    def __repr__(self) -> str:
        mesh = f", target_mesh={self.target_mesh!r}" if self.target_mesh else ""
        return f"SmiRouter({self.name!r}, {self.version!r}{mesh})"

    @property
    def api_version(self) -> str:
        return self.kind.api_version

    @property
    def quantity_weights(self) -> bool:
        """Whether weights are written as quantity strings (v1alpha1) rather than integers."""
        return self.version == "v1alpha1"

    def for_mesh(self, target_mesh: str) -> SmiRouter:
        """This router for a target mesh, named ``<name>:<mesh>``."""
        return SmiRouter(f"{self.name}:{target_mesh}", self.version, target_mesh=target_mesh)

    # -- object identities -------------------------------------------------------------------------

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        return [ObjectRef(self.api_version, KIND, ctx.apex, ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    # -- desired state -----------------------------------------------------------------------------

    def weight(self, value: int) -> int | str:
        return str(value) if self.quantity_weights else value

    def managed_annotations(self, ctx: RouteContext) -> dict[str, str]:
        if self.target_mesh != "istio":
            return {}
        gateways = list(ctx.canary.spec.service.gateways)
        return {ISTIO_GATEWAYS_ANNOTATION: json.dumps(gateways, separators=(",", ":"))}

    def traffic_split(self, ctx: RouteContext, routes: Routes) -> Obj:
        hosts = ctx.canary.spec.service.hosts
        metadata: Obj = {"name": ctx.apex, "namespace": ctx.namespace}
        annotations = self.managed_annotations(ctx)
        if annotations:
            metadata["annotations"] = annotations
        if ctx.set_owner_refs:
            metadata["ownerReferences"] = [controller_ref(ctx.canary)]
        return {
            "apiVersion": self.api_version,
            "kind": KIND,
            "metadata": metadata,
            "spec": {
                "service": hosts[0] if hosts else ctx.apex,
                "backends": [
                    {"service": ctx.canary_host, "weight": self.weight(routes.canary)},
                    {"service": ctx.primary, "weight": self.weight(routes.primary)},
                ],
            },
        }

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        return [self.traffic_split(ctx, routes)]

    # -- read back ---------------------------------------------------------------------------------

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        ts = observed.get(f"{KIND}/{ctx.apex}")
        if ts is None:
            raise RoutesError(f"TrafficSplit {ctx.apex}.{ctx.namespace} query error: not found")
        weights: dict[str, Fraction] = {}
        for backend in (ts.get("spec") or {}).get("backends") or []:
            service = backend.get("service")
            if service not in (ctx.primary, ctx.canary_host):
                continue
            weight = backend.get("weight")
            try:
                weights[service] = parse_quantity(0 if weight is None else weight)
            except ValueError as err:
                raise RoutesError(
                    f"TrafficSplit {ctx.apex}.{ctx.namespace} backend {service} weight: {err}"
                ) from err
        primary, canary = weights.get(ctx.primary, Fraction(0)), weights.get(ctx.canary_host, Fraction(0))
        try:
            p, c = percentages(primary, canary)
        except ValueError as err:
            raise RoutesError(
                f"TrafficSplit {ctx.apex}.{ctx.namespace} does not contain routes for "
                f"{ctx.primary} and {ctx.canary_host}"
            ) from err
        return Routes(primary=p, canary=c)

    # -- reconcile policy --------------------------------------------------------------------------

    @staticmethod
    def _comparable(spec: Mapping[str, Any]) -> Obj:
        out: Obj = prune(deep(dict(spec)))
        for backend in out.get("backends") or []:
            backend.pop("weight", None)
        return out

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        if not is_owned_by(observed_obj, ctx.canary) and not has_flux_opt_out(observed_obj):
            return True
        observed_annotations = (observed_obj.get("metadata") or {}).get("annotations") or {}
        wanted = (desired_obj.get("metadata") or {}).get("annotations") or {}
        if any(observed_annotations.get(k) != v for k, v in wanted.items()):
            return True
        return self._comparable(observed_obj.get("spec") or {}) != self._comparable(
            desired_obj.get("spec") or {}
        )

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default): the desired spec unless the observed one differs only in weights,
        and the managed annotations added to the observed ones (labels and foreign annotations stay). A
        TrafficSplit not owned by this canary also gets the Flux opt-out and, without kubectl's
        last-applied record, a one-time backup of its spec.

        ``set_routes=True`` (SetRoutes): only ``spec.backends`` changes."""
        out: Obj = deep(observed_obj)
        desired_spec = desired_obj.get("spec") or {}
        if set_routes:
            out.setdefault("spec", {})["backends"] = deep(desired_spec.get("backends") or [])
            return out
        observed_spec = observed_obj.get("spec") or {}
        if self._comparable(observed_spec) != self._comparable(desired_spec):
            out["spec"] = deep(desired_spec)
        meta = out.setdefault("metadata", {})
        annotations: dict[str, str] = dict(meta.get("annotations") or {})
        annotations.update((desired_obj.get("metadata") or {}).get("annotations") or {})
        if not is_owned_by(observed_obj, ctx.canary):
            annotations = with_backup(with_flux_opt_out(annotations), observed_obj, ctx.canary)
        set_metadata_map(meta, "annotations", annotations)
        return out

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """Nothing for a TrafficSplit the canary owns (garbage collection removes it) or one that is gone;
        a taken-over one gets its recorded spec back, without the Flux opt-out added at takeover."""
        ts = observed.get(f"{KIND}/{ctx.apex}")
        if ts is None or is_owned_by(ts, ctx.canary):
            return []
        return restore(ts, f"TrafficSplit {ctx.apex}.{ctx.namespace}")


LINKERD = SmiRouter("linkerd", "v1alpha1")
SMI_V1ALPHA1 = SmiRouter("smi:v1alpha1", "v1alpha1")
SMI_V1ALPHA2 = SmiRouter("smi:v1alpha2", "v1alpha2")
OSM = SmiRouter("osm", "v1alpha2")
SMI_V1ALPHA3 = SmiRouter("smi:v1alpha3", "v1alpha3")

#: every SMI router by its provider name.
ROUTERS: tuple[SmiRouter, ...] = (LINKERD, SMI_V1ALPHA1, SMI_V1ALPHA2, OSM, SMI_V1ALPHA3)
_BY_NAME: Mapping[str, SmiRouter] = {r.name: r for r in ROUTERS}


@functools.cache
def router_for(provider: str) -> SmiRouter | None:
    """The SMI router for a provider name, with its target mesh when the name has one
    (``smi:v1alpha1:istio``); None when the name is not an SMI provider."""
    base, mesh = with_mesh(provider)
    router = _BY_NAME.get(base)
    if router is None:
        return None
    return router.for_mesh(mesh) if mesh else router
