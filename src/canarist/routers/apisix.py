"""APISIX: a canary ApisixRoute ``<routeRef.name>-<apex>-canary`` (``apisix.apache.org/v2``).

The user's ApisixRoute (``spec.routeRef``) is read, never written. The canary route is a copy of the HTTP
rules of that route whose backend is the apex Service, each with:

* ``priority: 10000``, so that the APISIX ingress controller's route for it wins over the user's rule with
  the same match;
* ``backends`` = ``<apex>-primary`` and ``<apex>-canary``, both with the ``servicePort``,
  ``resolveGranularity`` and ``subset`` of the user's backend, weighted by the canary routes (primary 100 and
  canary 0 at first).

A rule routing to the apex must have exactly that one backend (a :class:`RouterConfigError` otherwise),
and the route must have at least one such rule. Weights only: no header matching, mirroring or session
affinity (validation refuses them).

Where this differs from Flagger (deliberately): every rule whose backend is the apex is copied (Flagger
keeps one); ``spec.ingressClassName`` is copied, so the controller of the user's class serves the canary
route; the user's labels and annotations are copied (minus kubectl's last-applied record); a Reconcile
refreshes the canary route from the user's one and keeps its weights; read-back refuses weights that are
missing, not whole numbers, outside 0..100, or that do not add up to 100.

Finalize writes nothing: the canary route belongs to the canary (owner reference) and goes with it, and
the user's route was never changed.
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
    RouterConfigError,
    RoutesError,
)
from canarist.workloads._meta import (
    KUBECTL_LAST_APPLIED,
    controller_ref,
    deep,
    filter_metadata,
    get_path,
    set_metadata_map,
)

GROUP = "apisix.apache.org"
VERSION = "v2"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ApisixRoute"
APISIX_ROUTE = ResourceKind(GROUP, VERSION, "apisixroutes", KIND)
ROUTE_REF_PATH = "spec.routeRef"
#: the priority of the canary route's rules (above any the user is likely to set).
CANARY_PRIORITY = 10000
#: the backend fields copied from the user's backend to both weighted backends.
_BACKEND_FIELDS = ("servicePort", "resolveGranularity", "subset")


class ApisixRouter:
    """APISIX canary ApisixRoute (``apisix.apache.org/v2``)."""

    name = "apisix"
    kinds: tuple[ResourceKind, ...] = (APISIX_ROUTE,)
    capabilities = RouterCapabilities(weights=True, matches=False, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    # -- object identities -------------------------------------------------------------------------

    def route_name(self, ctx: RouteContext) -> str:
        """The user's ApisixRoute (``spec.routeRef.name``); raises :class:`RouterConfigError` when unset."""
        ref = ctx.canary.spec.route_ref
        if ref is None or not ref.name:
            raise RouterConfigError(f"{ROUTE_REF_PATH}: required for provider apisix")
        return ref.name

    def canary_route_name(self, ctx: RouteContext) -> str:
        return f"{self.route_name(ctx)}-{ctx.apex}-canary"

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        return [ObjectRef(API_VERSION, KIND, self.canary_route_name(ctx), ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return [Reference(API_VERSION, KIND, self.route_name(ctx), ctx.namespace, path=ROUTE_REF_PATH)]

    # -- desired state -----------------------------------------------------------------------------

    def referenced_route(self, ctx: RouteContext) -> Obj:
        """The user's ApisixRoute from ``ctx.references``; raises :class:`RouterConfigError` when absent."""
        name = self.route_name(ctx)
        found = ctx.references.get(f"{KIND}/{name}")
        if found is None:
            raise RouterConfigError(f"{ROUTE_REF_PATH}: {KIND} {name}.{ctx.namespace} not found")
        return found

    def backends(self, ctx: RouteContext, user_backend: Mapping[str, Any], routes: Routes) -> list[Obj]:
        """The primary and canary backends (the user's port, granularity and subset), weighted."""
        out: list[Obj] = []
        for service, weight in ((ctx.primary, routes.primary), (ctx.canary_host, routes.canary)):
            backend: Obj = {"serviceName": service}
            for key in _BACKEND_FIELDS:
                if user_backend.get(key) not in (None, ""):
                    backend[key] = deep(user_backend[key])
            backend["weight"] = min(max(int(weight), 0), 100)
            out.append(backend)
        return out

    def canary_spec(self, ctx: RouteContext, route: Mapping[str, Any], routes: Routes) -> Obj:
        """The rules of ``route`` whose backend is the apex, with the weighted backends and priority."""
        name = (route.get("metadata") or {}).get("name", "")
        spec = route.get("spec") or {}
        rules: list[Obj] = []
        for index, rule in enumerate(spec.get("http") or []):
            if not isinstance(rule, Mapping):
                continue
            backends = [b for b in rule.get("backends") or [] if isinstance(b, Mapping)]
            if not any(b.get("serviceName") == ctx.apex for b in backends):
                continue
            if len(backends) != 1:
                label = rule.get("name") or f"#{index}"
                raise RouterConfigError(
                    f"{ROUTE_REF_PATH}: ApisixRoute {name} rule {label} routes to {ctx.apex} and "
                    f"{len(backends) - 1} other backend(s); a rule routing to {ctx.apex} must have it "
                    "as its only backend"
                )
            copy: Obj = deep(dict(rule))
            copy["priority"] = CANARY_PRIORITY
            copy["backends"] = self.backends(ctx, backends[0], routes)
            rules.append(copy)
        if not rules:
            raise RouterConfigError(
                f"{ROUTE_REF_PATH}: backend {ctx.apex} not found in the http rules of ApisixRoute {name}"
            )
        out: Obj = {"http": rules}
        if spec.get("ingressClassName"):
            out["ingressClassName"] = spec["ingressClassName"]
        return out

    def canary_route(self, ctx: RouteContext, routes: Routes) -> Obj:
        route = self.referenced_route(ctx)
        source_meta = route.get("metadata") or {}
        metadata: Obj = {"name": self.canary_route_name(ctx), "namespace": ctx.namespace}
        set_metadata_map(metadata, "labels", filter_metadata(source_meta.get("labels")))
        annotations = {
            k: v
            for k, v in filter_metadata(source_meta.get("annotations")).items()
            if k != KUBECTL_LAST_APPLIED
        }
        set_metadata_map(metadata, "annotations", annotations)
        if ctx.set_owner_refs:
            metadata["ownerReferences"] = [controller_ref(ctx.canary)]
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": self.canary_spec(ctx, route, routes),
        }

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        return [self.canary_route(ctx, routes)]

    # -- read back ---------------------------------------------------------------------------------

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        name = self.canary_route_name(ctx)
        where = f"{KIND} {name}.{ctx.namespace}"
        route = observed.get(f"{KIND}/{name}")
        if route is None:
            raise RoutesError(f"{where} query error: not found")
        rules = [r for r in get_path(route, "spec", "http") or [] if isinstance(r, Mapping)]
        if not rules:
            raise RoutesError(f"{where} has no http rules")
        weights: dict[str, int] = {}
        for service in (ctx.primary, ctx.canary_host):
            for backend in rules[0].get("backends") or []:
                if isinstance(backend, Mapping) and backend.get("serviceName") == service:
                    value = backend.get("weight")
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise RoutesError(f"{where}: no whole-number weight for backend {service}")
                    if not 0 <= value <= 100:
                        raise RoutesError(f"{where}: backend {service} weight {value} is outside 0..100")
                    weights[service] = value
                    break
            else:
                raise RoutesError(f"{where} has no backend {service}")
        primary, canary = weights[ctx.primary], weights[ctx.canary_host]
        if primary + canary != 100:
            raise RoutesError(f"{where}: the backend weights add up to {primary + canary}, not 100")
        return Routes(primary=primary, canary=canary)

    # -- reconcile policy --------------------------------------------------------------------------

    @staticmethod
    def _without_weights(spec: Mapping[str, Any]) -> Obj:
        out: Obj = deep(dict(spec))
        for rule in out.get("http") or []:
            for backend in (rule.get("backends") or []) if isinstance(rule, dict) else []:
                if isinstance(backend, dict):
                    backend.pop("weight", None)
        return out

    def _comparable(self, obj: Mapping[str, Any]) -> Obj:
        meta = obj.get("metadata") or {}
        return {
            "spec": self._without_weights(obj.get("spec") or {}),
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {},
        }

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        """The spec (weights aside), labels or annotations differ."""
        return self._comparable(observed_obj) != self._comparable(desired_obj)

    @staticmethod
    def _observed_weights(obj: Mapping[str, Any]) -> dict[str, int]:
        rules = get_path(obj, "spec", "http") or []
        first = rules[0] if rules and isinstance(rules[0], Mapping) else {}
        return {
            str(b.get("serviceName")): b["weight"]
            for b in first.get("backends") or []
            if isinstance(b, Mapping) and isinstance(b.get("weight"), int)
        }

    @staticmethod
    def _with_weights(spec: Obj, weights: Mapping[str, int]) -> Obj:
        for rule in spec.get("http") or []:
            for backend in (rule.get("backends") or []) if isinstance(rule, dict) else []:
                if isinstance(backend, dict) and backend.get("serviceName") in weights:
                    backend["weight"] = weights[backend["serviceName"]]
        return spec

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default): the desired spec, labels and annotations, keeping the observed
        route's weights. ``set_routes=True`` (SetRoutes): only the backend weights change, to the desired
        ones."""
        out: Obj = deep(observed_obj)
        if set_routes:
            out["spec"] = self._with_weights(out.setdefault("spec", {}), self._observed_weights(desired_obj))
            return out
        weights = self._observed_weights(observed_obj)
        out["spec"] = self._with_weights(deep(desired_obj.get("spec") or {}), weights)
        meta = out.setdefault("metadata", {})
        set_metadata_map(meta, "labels", get_path(desired_obj, "metadata", "labels") or {})
        set_metadata_map(meta, "annotations", get_path(desired_obj, "metadata", "annotations") or {})
        if ctx.set_owner_refs and not meta.get("ownerReferences"):
            owners = get_path(desired_obj, "metadata", "ownerReferences")
            if owners:
                meta["ownerReferences"] = deep(owners)
        return out

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """Nothing to write: the canary route goes with the canary (owner reference) and the user's
        route was never changed."""
        return []


APISIX = ApisixRouter()
