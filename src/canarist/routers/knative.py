"""Knative: the traffic of the target Knative Service itself (``serving.knative.dev/v1`` Service).

Knative routes a Service's traffic between its revisions by ``spec.traffic``, so the router builds no object
of its own: it rewrites the target's ``spec.traffic`` (Flagger's Knative router)::

    traffic:
      - latestRevision: true     # the canary: the latest created revision
        percent: <canary weight>
      - revisionName: <primary>  # the annotation flagger.app/primary-revision (workloads.knative)
        percent: <primary weight>

Nothing else of the Service changes. Read-back is ``status.traffic``, the split Knative actually applies,
once Knative has observed the Service's generation (until then, a `RoutesError` says so): the primary's
percent is the entry naming the primary revision (not the latest-revision entry, which also carries the
latest revision's name in the status), the canary's the latest-revision entry.

Knative splits by percent only here: no header matching (A/B), no mirroring, no session affinity.
With ``revertOnDeletion``, the annotation is removed and the traffic given back to Knative's default, all of
it to the latest revision (as a Deployment target's revert sends the apex's traffic to the target's pods).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarist.engine.model import RouterCapabilities, Routes
from canarist.kube.resources import ResourceKind
from canarist.routers.base import Obj, ObjectRef, ObservedRoutes, Reference, RouteContext, RoutesError
from canarist.workloads import knative
from canarist.workloads._meta import deep, get_path

__all__ = ["KNATIVE", "KnativeRouter"]


def _percent(entry: Mapping[str, Any]) -> int:
    value = entry.get("percent") or 0
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _split(traffic: Any, *, named: bool = True) -> tuple[int, int] | None:
    """(primary, canary) percents of a ``traffic`` list of this router's shape; None for another shape.
    ``named=False`` accepts a primary entry without a revision name (built before the primary was named)."""
    if not isinstance(traffic, list) or len(traffic) != 2:
        return None
    latest, second = traffic
    if not isinstance(latest, Mapping) or not isinstance(second, Mapping):
        return None
    if latest.get("latestRevision") is not True or second.get("latestRevision"):
        return None
    if named and not second.get("revisionName"):
        return None
    return _percent(second), _percent(latest)


class KnativeRouter:
    """Knative Service ``spec.traffic`` (the target itself)."""

    name = "knative"
    #: none of its own: the object it writes is the target, whose kind (and its Revisions) the target kind's
    #: record declares (watched from the first Knative canary, granted as a target).
    kinds: tuple[ResourceKind, ...] = ()
    capabilities = RouterCapabilities(weights=True, matches=False, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    def _key(self, ctx: RouteContext) -> str:
        return f"Service/{ctx.canary.spec.target_ref.name}"

    def _label(self, ctx: RouteContext) -> str:
        return f"Knative Service {ctx.canary.spec.target_ref.name}.{ctx.namespace}"

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        return [ObjectRef(knative.API_VERSION, "Service", ctx.canary.spec.target_ref.name, ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        """The target with ``routes`` in its traffic; nothing while the target is missing (the router never
        creates a Knative Service)."""
        if ctx.target is None:
            return []
        out: Obj = deep(dict(ctx.target))
        out.setdefault("spec", {})["traffic"] = knative.traffic(
            knative.primary_revision(ctx.target), routes.primary, routes.canary
        )
        return [out]

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        obj = observed.get(self._key(ctx))
        if obj is None:
            raise RoutesError(f"{self._label(ctx)} get query error: not found")
        primary = knative.primary_revision(obj)
        if not primary:
            raise RoutesError(f"{self._label(ctx)} primary revision annotation not found")
        generation = get_path(obj, "metadata", "generation") or 0
        observed_generation = get_path(obj, "status", "observedGeneration") or 0
        if observed_generation < generation:
            raise RoutesError(
                f"{self._label(ctx)} traffic is not applied yet "
                f"(observed generation: {observed_generation}, current generation: {generation})"
            )
        canary_pct: int | None = None
        primary_pct: int | None = None
        for entry in get_path(obj, "status", "traffic") or []:
            if not isinstance(entry, Mapping):
                continue
            if entry.get("latestRevision") is True:
                canary_pct = _percent(entry) if canary_pct is None else canary_pct
            elif entry.get("revisionName") == primary:
                primary_pct = _percent(entry) if primary_pct is None else primary_pct
        if canary_pct is None or primary_pct is None:
            raise RoutesError(
                f"{self._label(ctx)} status.traffic has no routes for the latest revision and the primary "
                f"revision {primary}"
            )
        for pct in (primary_pct, canary_pct):
            if not 0 <= pct <= 100:
                raise RoutesError(f"{self._label(ctx)} traffic percent {pct!r} is not in 0-100")
        return Routes(primary=primary_pct, canary=canary_pct)

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        """Only a traffic list that is not the router's two entries (latest, primary by name) is rewritten
        by a reconcile; the percents are SetRoutes' business."""
        traffic = get_path(observed_obj, "spec", "traffic")
        split = _split(traffic)
        if split is None:
            return True
        return bool(traffic[1].get("revisionName") != knative.primary_revision(observed_obj))

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """The observed Service with the desired percents, the primary named by the *observed* annotation
        (the freshest: an initialization may have just set it). A Service without the annotation is left
        as it is (`routes` reports it)."""
        out: Obj = deep(observed_obj)
        primary = knative.primary_revision(observed_obj)
        split = _split(get_path(desired_obj, "spec", "traffic"), named=False)
        if not primary or split is None:
            return out
        if not set_routes:
            kept = _split(get_path(observed_obj, "spec", "traffic"))
            split = kept if kept is not None and min(kept) >= 0 else split
        out.setdefault("spec", {})["traffic"] = knative.traffic(primary, split[0], split[1])
        return out

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """The annotation removed and all the traffic to the latest revision (Knative's default)."""
        obj = observed.get(self._key(ctx))
        if obj is None:
            return []
        out: Obj = deep(obj)
        annotations = (out.get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(knative.PRIMARY_REVISION, None)
        out.setdefault("spec", {})["traffic"] = [{"latestRevision": True, "percent": 100}]
        return [out]


KNATIVE = KnativeRouter()
