"""Skipper: a canary Ingress ``<ingressRef.name>-canary`` next to the user's Ingress.

The user's Ingress (``spec.ingressRef``) is read, never written. The canary Ingress is a copy of it in which
every path whose backend is ``<apex>`` appears twice, once for ``<apex>-primary`` and once for
``<apex>-canary`` (same path, pathType and port); Skipper splits such a path between the services by the
``zalando.org/backend-weights`` annotation. The ``zalando.org/skipper-predicate`` annotation decides whether
the canary Ingress's routes take over from the user's:

* canary weight ``w`` > 0: ``backend-weights`` = ``{"<apex>-primary": 100 - w, "<apex>-canary": w}`` and the
  predicate ``Weight(100)``, which gives these routes priority over the user's routes for the same paths;
* weight 0: the same weights annotation (``0`` for the canary) and the predicate ``False()``, which disables
  every route of the canary Ingress (the user's Ingress serves, through the apex Service);
* the user's own ``zalando.org/skipper-predicate`` (if any) follows, joined with `` && ``.

Weights only: Skipper has no header or cookie routing here (A/B, mirroring and session affinity are refused
by validation).

Where this differs from Flagger (deliberately): only ``networking.k8s.io/v1`` backends are read (the legacy
``serviceName`` shape is refused with a :class:`RouterConfigError`); labels and annotations containing
``toolkit.fluxcd.io`` and kubectl's last-applied record are not copied; a Reconcile refreshes the canary
Ingress's labels, non-routing annotations and spec from the user's Ingress, and keeps its routing
annotations; read-back refuses weights that are missing, not numbers, outside 0..100, or that do not add up
to 100.

Finalize writes nothing: the canary Ingress belongs to the canary (owner reference) and is deleted with it
by garbage collection (Flagger deletes it itself), and the user's Ingress was never changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from canarist.engine.model import RouterCapabilities, Routes
from canarist.kube import resources
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

API_VERSION = f"{resources.INGRESS.group}/{resources.INGRESS.version}"
KIND = resources.INGRESS.kind
BACKEND_WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"
#: the canary Ingress's routes win over the user's for the same path (Skipper adds the weight to the
#: route's priority).
ENABLED = "Weight(100)"
#: the canary Ingress's routes never match.
DISABLED = "False()"
ROUTING_ANNOTATIONS = frozenset({BACKEND_WEIGHTS, PREDICATE})
INGRESS_REF_PATH = "spec.ingressRef"


class SkipperRouter:
    """Skipper canary Ingress (``networking.k8s.io/v1``)."""

    name = "skipper"
    kinds: tuple[ResourceKind, ...] = (resources.INGRESS,)
    capabilities = RouterCapabilities(weights=True, matches=False, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    # -- object identities -------------------------------------------------------------------------

    def ingress_name(self, ctx: RouteContext) -> str:
        """The user's Ingress (``spec.ingressRef.name``); raises :class:`RouterConfigError` when unset."""
        ref = ctx.canary.spec.ingress_ref
        if ref is None or not ref.name:
            raise RouterConfigError(f"{INGRESS_REF_PATH}: required for provider skipper")
        return ref.name

    def canary_ingress_name(self, ctx: RouteContext) -> str:
        return f"{self.ingress_name(ctx)}-canary"

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        return [ObjectRef(API_VERSION, KIND, self.canary_ingress_name(ctx), ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return [Reference(API_VERSION, KIND, self.ingress_name(ctx), ctx.namespace, path=INGRESS_REF_PATH)]

    # -- desired state -----------------------------------------------------------------------------

    def referenced_ingress(self, ctx: RouteContext) -> Obj:
        """The user's Ingress from ``ctx.references``; raises :class:`RouterConfigError` when absent."""
        name = self.ingress_name(ctx)
        found = ctx.references.get(f"{KIND}/{name}")
        if found is None:
            raise RouterConfigError(f"{INGRESS_REF_PATH}: {KIND} {name}.{ctx.namespace} not found")
        return found

    def canary_spec(self, ctx: RouteContext, ingress: Mapping[str, Any]) -> Obj:
        """The user's Ingress spec with every ``<apex>`` path doubled: ``<apex>-primary``, ``<apex>-canary``."""
        spec: Obj = deep(dict(ingress.get("spec") or {}))
        name = (ingress.get("metadata") or {}).get("name", "")
        found = False
        for rule in spec.get("rules") or []:
            http = rule.get("http") if isinstance(rule, dict) else None
            if not isinstance(http, dict):
                continue
            paths: list[Obj] = []
            for path in http.get("paths") or []:
                backend = path.get("backend") or {}
                if "serviceName" in backend:
                    raise RouterConfigError(
                        f"{INGRESS_REF_PATH}: ingress {name} has a backend in the networking.k8s.io/v1beta1 "
                        "shape (serviceName/servicePort); only networking.k8s.io/v1 backends "
                        "(service.name/service.port) are supported"
                    )
                service = backend.get("service")
                if not (isinstance(service, dict) and service.get("name") == ctx.apex):
                    paths.append(path)
                    continue
                found = True
                for target in (ctx.primary, ctx.canary_host):
                    copy: Obj = deep(path)
                    copy["backend"]["service"]["name"] = target
                    paths.append(copy)
            http["paths"] = paths
        if not found:
            raise RouterConfigError(f"backend {ctx.apex} not found in ingress {name}")
        return spec

    def canary_annotations(
        self, ctx: RouteContext, routes: Routes, user_predicate: str = ""
    ) -> dict[str, str]:
        """``backend-weights`` and ``skipper-predicate`` for ``routes`` (``user_predicate`` appended)."""
        canary = min(max(routes.canary, 0), 100)
        weights = {ctx.primary: 100 - canary, ctx.canary_host: canary}
        predicates = [ENABLED if canary > 0 else DISABLED]
        if user_predicate.strip():
            predicates.append(user_predicate.strip())
        return {
            BACKEND_WEIGHTS: json.dumps(weights, separators=(",", ":")),
            PREDICATE: " && ".join(predicates),
        }

    def canary_ingress(self, ctx: RouteContext, routes: Routes) -> Obj:
        ingress = self.referenced_ingress(ctx)
        source_meta = ingress.get("metadata") or {}
        spec = self.canary_spec(ctx, ingress)
        source_annotations = filter_metadata(source_meta.get("annotations"))
        annotations = {
            k: v
            for k, v in source_annotations.items()
            if k != KUBECTL_LAST_APPLIED and k not in ROUTING_ANNOTATIONS
        }
        annotations.update(self.canary_annotations(ctx, routes, str(source_annotations.get(PREDICATE) or "")))
        metadata: Obj = {"name": self.canary_ingress_name(ctx), "namespace": ctx.namespace}
        set_metadata_map(metadata, "labels", filter_metadata(source_meta.get("labels")))
        metadata["annotations"] = annotations
        if ctx.set_owner_refs:
            metadata["ownerReferences"] = [controller_ref(ctx.canary)]
        return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        return [self.canary_ingress(ctx, routes)]

    # -- read back ---------------------------------------------------------------------------------

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        name = self.canary_ingress_name(ctx)
        where = f"{KIND} {name}.{ctx.namespace}"
        ingress = observed.get(f"{KIND}/{name}")
        if ingress is None:
            raise RoutesError(f"{where} query error: not found")
        annotations: Mapping[str, str] = get_path(ingress, "metadata", "annotations") or {}
        text = annotations.get(BACKEND_WEIGHTS)
        if text is None:
            raise RoutesError(f"{where} has no {BACKEND_WEIGHTS} annotation")
        try:
            weights = json.loads(text)
        except ValueError:
            raise RoutesError(f"{where} annotation {BACKEND_WEIGHTS}: {text!r} is not JSON") from None
        if not isinstance(weights, dict):
            raise RoutesError(f"{where} annotation {BACKEND_WEIGHTS}: {text!r} is not an object")
        out: list[int] = []
        for service in (ctx.primary, ctx.canary_host):
            value = weights.get(service)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
                raise RoutesError(
                    f"{where} annotation {BACKEND_WEIGHTS}: no whole-number weight for {service}"
                )
            if not 0 <= value <= 100:
                raise RoutesError(
                    f"{where} annotation {BACKEND_WEIGHTS}: {service} {value} is outside 0..100"
                )
            out.append(int(value))
        if sum(out) != 100:
            raise RoutesError(
                f"{where} annotation {BACKEND_WEIGHTS}: the weights add up to {sum(out)}, not 100"
            )
        return Routes(primary=out[0], canary=out[1])

    # -- reconcile policy --------------------------------------------------------------------------

    def _comparable(self, obj: Mapping[str, Any]) -> Obj:
        meta = obj.get("metadata") or {}
        annotations = {
            k: v for k, v in (meta.get("annotations") or {}).items() if k not in ROUTING_ANNOTATIONS
        }
        return {"spec": obj.get("spec") or {}, "labels": meta.get("labels") or {}, "annotations": annotations}

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        """The spec, labels or non-routing annotations differ (weights and predicate are ignored)."""
        return self._comparable(observed_obj) != self._comparable(desired_obj)

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default): the desired spec, labels and annotations on the observed object,
        keeping its routing annotations (weights, predicate) and everything else of its identity.

        ``set_routes=True`` (SetRoutes): only the routing annotations change, to the desired ones."""
        out: Obj = deep(observed_obj)
        meta = out.setdefault("metadata", {})
        observed_annotations: Mapping[str, str] = meta.get("annotations") or {}
        desired_annotations: Mapping[str, str] = get_path(desired_obj, "metadata", "annotations") or {}
        if set_routes:
            annotations = {k: v for k, v in observed_annotations.items() if k not in ROUTING_ANNOTATIONS}
            annotations.update({k: v for k, v in desired_annotations.items() if k in ROUTING_ANNOTATIONS})
            set_metadata_map(meta, "annotations", annotations)
            return out
        out["spec"] = deep(desired_obj.get("spec") or {})
        annotations = {k: v for k, v in desired_annotations.items() if k not in ROUTING_ANNOTATIONS}
        routing = {k: v for k, v in observed_annotations.items() if k in ROUTING_ANNOTATIONS}
        annotations.update(
            routing or {k: v for k, v in desired_annotations.items() if k in ROUTING_ANNOTATIONS}
        )
        set_metadata_map(meta, "annotations", annotations)
        set_metadata_map(meta, "labels", get_path(desired_obj, "metadata", "labels") or {})
        if ctx.set_owner_refs and not meta.get("ownerReferences"):
            owners = get_path(desired_obj, "metadata", "ownerReferences")
            if owners:
                meta["ownerReferences"] = deep(owners)
        return out

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """Nothing to write: the canary Ingress goes with the canary (owner reference) and the user's
        Ingress was never changed."""
        return []


SKIPPER = SkipperRouter()
