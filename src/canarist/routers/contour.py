"""Contour: the HTTPProxy ``<apex>`` (``projectcontour.io/v1``).

The HTTPProxy has no ``virtualhost``: it is meant to be included by a root HTTPProxy that owns the FQDN
and TLS. Its spec, built by :meth:`ContourRouter.desired`:

* ``ingressClassName`` from the operator's ``-ingress-class`` (when set);
* canary / blue-green: one route ``{conditions: [{prefix}], timeoutPolicy, retryPolicy, services}``,
  with the prefix ``service.match[0].uri.prefix`` or ``/``, ``timeoutPolicy {response: service.timeout,
  idle: 5m}`` when a timeout is set, ``retryPolicy {count, perTryTimeout, retryOn}`` from
  ``service.retries``, and ``services`` = primary then canary, each ``{name, port, weight,
  requestHeadersPolicy: {set: [l5d-dst-override: <svc>.<ns>.svc.cluster.local:<port>]}}``;
* A/B (``analysis.match``): one weighted route per match entry, its conditions the prefix and one header
  condition per header (``exact``; ``contains`` for a prefix or suffix; the ``cookie`` header always by
  ``contains`` on ``Cookie``; ``present`` for an empty match), then a default route with the prefix only,
  primary 100 / canary 0. Contour ANDs the conditions of one route, so separate entries stay alternatives.
  A regex header match cannot be expressed and is refused (:class:`RouterConfigError`).

Read-back takes the primary weight of ``routes[0]``; the canary gets the rest of 100. Reconcile ignores the
weights; a taken-over HTTPProxy (not owned by the canary) keeps its spec in
``flagger.kubernetes.io/original-configuration`` unless kubectl recorded it, and a revert restores it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarist.api import HTTPMatchRequest
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
    apex_metadata,
    spec_or_metadata_differs,
)
from canarist.routers.takeover import restore, with_backup
from canarist.workloads._meta import (
    deep,
    prune,
    set_metadata_map,
)

API_VERSION = "projectcontour.io/v1"
KIND = "HTTPProxy"
HTTP_PROXY = ResourceKind("projectcontour.io", "v1", "httpproxies", KIND, status_subresource=True)
#: where the spec of an HTTPProxy taken over (no kubectl last-applied annotation) is kept for a revert.
#: the header Linkerd (or any mesh in front of the backends) routes on.
DST_OVERRIDE_HEADER = "l5d-dst-override"
IDLE_TIMEOUT = "5m"
COOKIE_HEADER = "Cookie"


def header_condition(name: str, match: Mapping[str, Any], path: str) -> Obj:
    """One Contour header condition for an Istio StringMatch (given as a dict)."""
    exact, prefix, suffix = match.get("exact"), match.get("prefix"), match.get("suffix")
    if match.get("regex") is not None:
        raise RouterConfigError(
            f"{path}: the contour router cannot match a header by regex; use exact, prefix or suffix"
        )
    value = next((v for v in (exact, prefix, suffix) if v is not None), None)
    if name.lower() == "cookie":
        if value is None:
            return {"name": COOKIE_HEADER, "present": True}
        return {"name": COOKIE_HEADER, "contains": value}
    if exact is not None:
        return {"name": name, "exact": exact}
    if value is not None:
        return {"name": name, "contains": value}
    return {"name": name, "present": True}


def ab_header_conditions(matches: list[HTTPMatchRequest]) -> list[list[Obj]]:
    """The header conditions of each ``analysis.match`` entry that has headers (raises
    :class:`RouterConfigError` when none has)."""
    out: list[list[Obj]] = []
    for i, entry in enumerate(matches):
        conditions = [
            {"header": header_condition(name, prune(m.to_dict()), f"spec.analysis.match[{i}].headers.{name}")}
            for name, m in entry.headers.items()
        ]
        if conditions:
            out.append(conditions)
    if not out:
        raise RouterConfigError(
            "spec.analysis.match: the contour router routes A/B tests by headers and cookies; no match has headers"
        )
    return out


class ContourRouter:
    """Contour HTTPProxy (``projectcontour.io/v1``)."""

    name = "contour"
    kinds: tuple[ResourceKind, ...] = (HTTP_PROXY,)
    capabilities = RouterCapabilities(weights=True, matches=True, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset({"ingress_class"})

    # -- object identities -------------------------------------------------------------------------

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        analysis = ctx.canary.analysis()
        if analysis is not None and analysis.match:
            ab_header_conditions(analysis.match)
        return [ObjectRef(API_VERSION, KIND, ctx.apex, ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    # -- desired state -----------------------------------------------------------------------------

    @staticmethod
    def prefix(ctx: RouteContext) -> str:
        match = ctx.canary.spec.service.match
        uri = match[0].uri if match else None
        return (uri.prefix if uri is not None else None) or "/"

    def service(self, ctx: RouteContext, name: str, weight: int) -> Obj:
        port = ctx.canary.spec.service.port
        return {
            "name": name,
            "port": port,
            "weight": weight,
            "requestHeadersPolicy": {
                "set": [
                    {"name": DST_OVERRIDE_HEADER, "value": f"{name}.{ctx.namespace}.svc.cluster.local:{port}"}
                ]
            },
        }

    def route(self, ctx: RouteContext, conditions: list[Obj], routes: Routes) -> Obj:
        service = ctx.canary.spec.service
        out: Obj = {"conditions": conditions}
        if service.timeout:
            out["timeoutPolicy"] = {"response": service.timeout, "idle": IDLE_TIMEOUT}
        if service.retries is not None:
            retry_on = [r.strip() for r in (service.retries.retry_on or "").split(",") if r.strip()]
            policy = prune(
                {
                    "count": service.retries.attempts,
                    "perTryTimeout": service.retries.per_try_timeout,
                    "retryOn": retry_on,
                }
            )
            if policy:
                out["retryPolicy"] = policy
        out["services"] = [
            self.service(ctx, ctx.primary, routes.primary),
            self.service(ctx, ctx.canary_host, routes.canary),
        ]
        return out

    def proxy_spec(self, ctx: RouteContext, routes: Routes) -> Obj:
        prefix = {"prefix": self.prefix(ctx)}
        analysis = ctx.canary.analysis()
        if analysis is not None and analysis.match:
            http = [
                self.route(ctx, [dict(prefix), *headers], routes)
                for headers in ab_header_conditions(analysis.match)
            ]
            http.append(self.route(ctx, [dict(prefix)], Routes(primary=100, canary=0)))
        else:
            http = [self.route(ctx, [prefix], routes)]
        spec: Obj = {}
        if ctx.ingress_class:
            spec["ingressClassName"] = ctx.ingress_class
        spec["routes"] = http
        return spec

    def http_proxy(self, ctx: RouteContext, routes: Routes) -> Obj:
        metadata = apex_metadata(ctx)
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": metadata,
            "spec": self.proxy_spec(ctx, routes),
        }

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        return [self.http_proxy(ctx, routes)]

    # -- read back ---------------------------------------------------------------------------------

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        proxy = observed.get(f"{KIND}/{ctx.apex}")
        if proxy is None:
            raise RoutesError(f"HTTPProxy {ctx.apex}.{ctx.namespace} query error: not found")
        http = (proxy.get("spec") or {}).get("routes") or []
        services = (http[0].get("services") or []) if http else []
        for service in services:
            if service.get("name") == ctx.primary:
                weight = service.get("weight") or 0
                if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
                    raise RoutesError(
                        f"HTTPProxy {ctx.apex}.{ctx.namespace} primary weight {weight!r} is not in 0-100"
                    )
                return Routes(primary=weight, canary=100 - weight)
        raise RoutesError(
            f"HTTPProxy {ctx.apex}.{ctx.namespace} does not contain routes for {ctx.primary} and {ctx.canary_host}"
        )

    # -- reconcile policy --------------------------------------------------------------------------

    @staticmethod
    def _comparable(spec: Mapping[str, Any]) -> Obj:
        out: Obj = prune(deep(dict(spec)))
        for route in out.get("routes") or []:
            for service in route.get("services") or []:
                service.pop("weight", None)
        return out

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        return spec_or_metadata_differs(observed_obj, desired_obj, self._comparable)

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default): the desired spec unless the observed one differs only in weights,
        and the desired labels and annotations (with the Flux opt-out) added to the observed ones, which
        stay. An HTTPProxy not owned by this canary and without kubectl's last-applied record gets a
        one-time backup of its spec in ``flagger.kubernetes.io/original-configuration``; a taken-over one
        keeps its ownerReferences.

        ``set_routes=True`` (SetRoutes): only ``spec.routes`` changes."""
        out: Obj = deep(observed_obj)
        desired_spec = desired_obj.get("spec") or {}
        if set_routes:
            out.setdefault("spec", {})["routes"] = deep(desired_spec.get("routes") or [])
            return out
        observed_spec = observed_obj.get("spec") or {}
        if self._comparable(observed_spec) != self._comparable(desired_spec):
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

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """Nothing for an HTTPProxy that is gone, or that the canary owns and that has no record of an
        earlier configuration (garbage collection removes it); otherwise the recorded spec, without the
        Flux opt-out added at takeover."""
        proxy = observed.get(f"{KIND}/{ctx.apex}")
        if proxy is None:
            return []
        return restore(proxy, f"HTTPProxy {ctx.apex}.{ctx.namespace}", owner=ctx.canary)


CONTOUR = ContourRouter()
