"""Kuma: the TrafficRoute ``<apex>`` (``kuma.io/v1alpha1``, cluster-scoped).

Kuma names a Service port of the mesh by its ``kuma.io/service`` tag, ``<service>_<namespace>_svc_<port>``
(:func:`service_tag`). The TrafficRoute built by :meth:`KumaRouter.desired` matches every source
(``kuma.io/service: "*"``) and the apex tag as its destination, and splits that traffic between the primary
and the canary tags (``conf.split``: the primary first, both entries always present, weight 0 included).
``mesh`` (a top-level field of Kuma's resources, not part of ``spec``) is the Canary's ``kuma.io/mesh``
annotation, else ``default``.

TrafficRoutes are cluster-scoped, so the object has no namespace and no owner reference (a namespaced
Canary cannot own it): deleting the Canary leaves it behind, as with Flagger. Its annotations are the
``service.apex`` annotations (filtered, with the Flux opt-out); without any, ``<port>.service.kuma.io:
http`` as Flagger writes it. Kuma routes canaries by weight only here: no A/B header matching, no mirroring,
no session affinity.

Read-back takes the weight of the split entry whose tag names the primary; the canary gets the rest of 100.
A reconcile rewrites the spec when it differs other than in weights (``mesh`` is set at creation only, as
Flagger does); SetRoutes replaces ``spec.conf`` only. With ``revertOnDeletion`` the TrafficRoute is given
back: the spec kubectl last applied when there is one, else a split sending all the apex's traffic to the
apex tag itself (the apex Service, whose selector the operator points back at the target's pods).
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
    refuse_matches,
    spec_or_metadata_differs,
)
from canarist.routers.takeover import has_record, restore
from canarist.workloads._meta import deep, managed_annotations, prune, set_metadata_map

__all__ = [
    "API_VERSION",
    "DEFAULT_MESH",
    "KIND",
    "KUMA",
    "MESH_ANNOTATION",
    "SERVICE_TAG",
    "TRAFFIC_ROUTE",
    "KumaRouter",
    "mesh_of",
    "service_tag",
]

API_VERSION = "kuma.io/v1alpha1"
KIND = "TrafficRoute"
TRAFFIC_ROUTE = ResourceKind("kuma.io", "v1alpha1", "trafficroutes", KIND, namespaced=False)
#: the Canary annotation naming the Kuma mesh of the TrafficRoute.
MESH_ANNOTATION = "kuma.io/mesh"
DEFAULT_MESH = "default"
#: the tag by which Kuma selects a service of the mesh.
SERVICE_TAG = "kuma.io/service"


def service_tag(service: str, namespace: str, port: int) -> str:
    """Kuma's ``kuma.io/service`` tag of a Kubernetes Service port: ``podinfo_test_svc_9898``."""
    return f"{service}_{namespace}_svc_{port}"


def mesh_of(ctx: RouteContext) -> str:
    """The mesh of the canary's TrafficRoute: its ``kuma.io/mesh`` annotation, else ``default``."""
    return ctx.canary.metadata.annotations.get(MESH_ANNOTATION) or DEFAULT_MESH


class KumaRouter:
    """Kuma TrafficRoute (``kuma.io/v1alpha1``, cluster-scoped)."""

    name = "kuma"
    kinds: tuple[ResourceKind, ...] = (TRAFFIC_ROUTE,)
    capabilities = RouterCapabilities(weights=True, matches=False, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        refuse_matches(ctx, self.name)
        return [ObjectRef(API_VERSION, KIND, ctx.apex, "")]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    def _tag(self, ctx: RouteContext, service: str) -> str:
        return service_tag(service, ctx.namespace, ctx.canary.spec.service.port)

    def _split(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        return [
            {"weight": routes.primary, "destination": {SERVICE_TAG: self._tag(ctx, ctx.primary)}},
            {"weight": routes.canary, "destination": {SERVICE_TAG: self._tag(ctx, ctx.canary_host)}},
        ]

    def _metadata(self, ctx: RouteContext) -> Obj:
        apex = ctx.canary.spec.service.apex
        annotations = dict(apex.annotations) if apex is not None else {}
        if not annotations:
            # what Flagger writes on a TrafficRoute whose apex metadata has no annotations
            annotations = {f"{ctx.canary.spec.service.port}.service.kuma.io": "http"}
        return {"name": ctx.apex, "annotations": managed_annotations(annotations)}

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        return [
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "mesh": mesh_of(ctx),
                "metadata": self._metadata(ctx),
                "spec": {
                    "sources": [{"match": {SERVICE_TAG: "*"}}],
                    "destinations": [{"match": {SERVICE_TAG: self._tag(ctx, ctx.apex)}}],
                    "conf": {"split": self._split(ctx, routes)},
                },
            }
        ]

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        obj = observed.get(f"{KIND}/{ctx.apex}")
        if obj is None:
            raise RoutesError(f"TrafficRoute {ctx.apex} get query error: not found")
        split = ((obj.get("spec") or {}).get("conf") or {}).get("split") or []
        for entry in split:
            if not isinstance(entry, Mapping):
                continue
            tag = str((entry.get("destination") or {}).get(SERVICE_TAG) or "")
            if tag.split("_", 1)[0] != ctx.primary:
                continue
            weight = entry.get("weight") or 0
            if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
                raise RoutesError(f"TrafficRoute {ctx.apex} primary weight {weight!r} is not in 0-100")
            return Routes(primary=weight, canary=100 - weight)
        raise RoutesError(
            f"TrafficRoute {ctx.apex} does not contain routes for {ctx.primary} and {ctx.canary_host}"
        )

    @staticmethod
    def _comparable(spec: Mapping[str, Any]) -> Obj:
        out: Obj = prune(deep(dict(spec)))
        conf = out.get("conf")
        if isinstance(conf, dict) and isinstance(conf.get("split"), list):
            # weights are the analysis' business
            conf["split"] = [
                {k: v for k, v in e.items() if k != "weight"} if isinstance(e, dict) else e
                for e in conf["split"]
            ]
        return out

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        return spec_or_metadata_differs(observed_obj, desired_obj, self._comparable)

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile: the desired spec unless only weights differ, desired annotations added (``mesh``
        kept); ``set_routes=True`` replaces ``spec.conf`` only."""
        out: Obj = deep(observed_obj)
        desired_spec = desired_obj.get("spec") or {}
        if set_routes:
            out.setdefault("spec", {})["conf"] = deep(desired_spec.get("conf") or {})
            return out
        if self._comparable(observed_obj.get("spec") or {}) != self._comparable(desired_spec):
            out["spec"] = deep(desired_spec)
        out.setdefault("mesh", desired_obj.get("mesh"))
        meta = out.setdefault("metadata", {})
        desired_meta = desired_obj.get("metadata") or {}
        set_metadata_map(
            meta,
            "annotations",
            {**(meta.get("annotations") or {}), **(desired_meta.get("annotations") or {})},
        )
        return out

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """The spec kubectl last applied (a TrafficRoute the user had), else all of the apex's traffic to the
        apex tag: the primary and canary Services go away with the Canary, the apex stays."""
        obj = observed.get(f"{KIND}/{ctx.apex}")
        if obj is None:
            return []
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if has_record(annotations):
            return restore(obj, f"TrafficRoute {ctx.apex}")
        apex = self._tag(ctx, ctx.apex)
        out: Obj = deep(obj)
        out["spec"] = {
            "sources": [{"match": {SERVICE_TAG: "*"}}],
            "destinations": [{"match": {SERVICE_TAG: apex}}],
            "conf": {"split": [{"weight": 100, "destination": {SERVICE_TAG: apex}}]},
        }
        return [out]


KUMA = KumaRouter()
