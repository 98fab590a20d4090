"""Traefik: the TraefikService ``<apex>`` (``traefik.io/v1alpha1``).

The spec built by :meth:`TraefikRouter.desired` is ``{weighted: {services: [...]}}``: the primary
``{name, namespace, port, weight}`` and, only while the canary weight is above 0, the canary entry of the
same shape. The user's IngressRoute targets this TraefikService (``kind: TraefikService``). Traefik
routes canaries by weight only here: no A/B header matching, no mirroring, no session affinity.

Read-back takes the primary's weight; the canary gets the rest of 100. A reconcile rewrites the spec when
it differs other than in weights; SetRoutes replaces ``spec.weighted`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    apex_metadata,
    refuse_matches,
    spec_or_metadata_differs,
)
from canarist.routers.takeover import restore, with_backup
from canarist.workloads._meta import deep, prune, set_metadata_map

API_VERSION = "traefik.io/v1alpha1"
KIND = "TraefikService"
TRAEFIK_SERVICE = ResourceKind("traefik.io", "v1alpha1", "traefikservices", KIND)


class TraefikRouter:
    """Traefik TraefikService (``traefik.io/v1alpha1``)."""

    name = "traefik"
    kinds: tuple[ResourceKind, ...] = (TRAEFIK_SERVICE,)
    capabilities = RouterCapabilities(weights=True, matches=False, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        refuse_matches(ctx, self.name)
        return [ObjectRef(API_VERSION, KIND, ctx.apex, ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    def service(self, ctx: RouteContext, name: str, weight: int) -> Obj:
        return {
            "name": name,
            "namespace": ctx.namespace,
            "port": ctx.canary.spec.service.port,
            "weight": weight,
        }

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        services = [self.service(ctx, ctx.primary, routes.primary)]
        if routes.canary > 0:
            services.append(self.service(ctx, ctx.canary_host, routes.canary))
        return [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": apex_metadata(ctx),
                "spec": {"weighted": {"services": services}},
            }
        ]

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        obj = observed.get(f"{KIND}/{ctx.apex}")
        if obj is None:
            raise RoutesError(f"TraefikService {ctx.apex}.{ctx.namespace} query error: not found")
        services = ((obj.get("spec") or {}).get("weighted") or {}).get("services") or []
        for service in services:
            if service.get("name") == ctx.primary:
                weight = service.get("weight") or 0
                if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
                    raise RoutesError(
                        f"TraefikService {ctx.apex}.{ctx.namespace} primary weight {weight!r} is not in 0-100"
                    )
                return Routes(primary=weight, canary=100 - weight)
        raise RoutesError(
            f"TraefikService {ctx.apex}.{ctx.namespace} does not contain a service {ctx.primary}"
        )

    @staticmethod
    def _comparable(spec: Mapping[str, Any]) -> Obj:
        out: Obj = prune(deep(dict(spec)))
        services = (out.get("weighted") or {}).get("services") or []
        # weights are the analysis' business, and the canary entry comes and goes with its weight
        out.setdefault("weighted", {})["services"] = [
            {k: v for k, v in s.items() if k != "weight"} for s in services[:1]
        ]
        return out

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        return spec_or_metadata_differs(observed_obj, desired_obj, self._comparable)

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile: the desired spec unless only weights differ, desired labels/annotations added;
        ``set_routes=True`` replaces ``spec.weighted`` only."""
        out: Obj = deep(observed_obj)
        desired_spec = desired_obj.get("spec") or {}
        if set_routes:
            out.setdefault("spec", {})["weighted"] = deep(desired_spec.get("weighted") or {})
            return out
        if self._comparable(observed_obj.get("spec") or {}) != self._comparable(desired_spec):
            out["spec"] = deep(desired_spec)
        meta = out.setdefault("metadata", {})
        desired_meta = desired_obj.get("metadata") or {}
        annotations: dict[str, str] = {
            **(meta.get("annotations") or {}),
            **(desired_meta.get("annotations") or {}),
        }
        set_metadata_map(meta, "annotations", with_backup(annotations, observed_obj, ctx.canary))
        set_metadata_map(meta, "labels", {**(meta.get("labels") or {}), **(desired_meta.get("labels") or {})})
        return out

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        obj = observed.get(f"{KIND}/{ctx.apex}")
        if obj is None:
            return []
        return restore(obj, f"TraefikService {ctx.apex}.{ctx.namespace}", owner=ctx.canary)


TRAEFIK = TraefikRouter()
