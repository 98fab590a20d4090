"""Istio: DestinationRules ``<apex>-primary``/``<apex>-canary`` and VirtualService ``<apex>``.

Flagger's counterpart: ``pkg/router/istio.go`` (docs/flagger-parity.md#istio-router).

Layouts of ``spec.http`` built by :meth:`IstioRouter.desired` for given :class:`Routes`:

* canary (default): one route ``[primary w, canary w]`` with service match/rewrite/timeout/retries/
  corsPolicy/headers, plus ``mirror``/``mirrorPercentage`` on ``http[0]`` while mirrored;
* A/B (``analysis.match``): ``[{match: analysis.match x service.match, route: primary/canary},
  {match: service.match, route: [primary]}]``;
* session affinity: ``[sticky-canary, (sticky-primary), weighted]`` while the canary has weight, or
  ``[expire-previous-cookie, weighted]`` after;
* TCP (``service.appProtocol: tcp``): ``spec.tcp = [{match: [{port}], route: primary/canary}]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarist.api import Canary, HTTPMatchRequest
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
    apex_metadata,
    set_cookie_value,
)
from canarist.routers.takeover import restore, with_backup
from canarist.workloads._meta import (
    KUBECTL_LAST_APPLIED,
    controller_ref,
    deep,
    has_flux_opt_out,
    managed_annotations,
    prune,
    set_metadata_map,
)

API_VERSION = "networking.istio.io/v1beta1"
COOKIE_HEADER = "Cookie"
SET_COOKIE_HEADER = "Set-Cookie"


def is_tcp(canary: Canary) -> bool:
    return canary.spec.service.app_protocol.lower() == "tcp"


def _matches(matches: list[HTTPMatchRequest]) -> list[Obj]:
    out: list[Obj] = [prune(m.to_dict()) for m in matches]
    return out


def merge_match_conditions(analysis: list[Obj], service: list[Obj]) -> list[Obj]:
    """A/B matches: every analysis match x every service match (the service match copied, with the
    analysis entry's ``headers`` and ``sourceLabels`` overriding). Without service matches, the analysis
    matches as they are."""
    merged_plain: list[Obj] = deep(analysis)
    if not service:
        return merged_plain
    merged: list[Obj] = []
    for a in analysis:
        for s in service:
            entry = deep(s)
            if a.get("headers"):
                entry["headers"] = deep(a["headers"])
            if a.get("sourceLabels"):
                entry["sourceLabels"] = deep(a["sourceLabels"])
            merged.append(entry)
    return merged


def _http_features(canary: Canary) -> Obj:
    """rewrite {uri, authority}, timeout, retries, corsPolicy, headers from ``spec.service``."""
    service = canary.spec.service
    out: Obj = {}
    if service.rewrite is not None:
        rewrite = prune({"uri": service.rewrite.uri, "authority": service.rewrite.authority})
        if rewrite:
            out["rewrite"] = rewrite
    if service.timeout:
        out["timeout"] = service.timeout
    if service.retries is not None:
        out["retries"] = prune(service.retries.to_dict())
    if service.cors_policy is not None:
        out["corsPolicy"] = prune(service.cors_policy.to_dict())
    if service.headers is not None:
        out["headers"] = prune(service.headers.to_dict())
    return {k: v for k, v in out.items() if v not in ({}, None)}


def destination(canary: Canary, host: str, weight: int) -> Obj:
    """``{destination: {host[, port]}, weight}``. ``weight`` is always written. The port is set only with
    portDiscovery and either delegation or a first gateway other than ``mesh``."""
    service = canary.spec.service
    dest: Obj = {"host": host}
    if service.port_discovery and (
        (service.gateways and service.gateways[0] != "mesh") or service.delegation
    ):
        dest["port"] = {"number": service.port}
    return {"destination": dest, "weight": weight}


def _route(features: Obj, match: list[Obj], route: list[Obj]) -> Obj:
    out: Obj = {}
    if match:
        out["match"] = deep(match)
    out.update(deep(features))
    out["route"] = route
    return out


def _cookie_match(service_match: list[Obj], cookie: str) -> list[Obj]:
    name, _, value = cookie.partition("=")
    header = {"regex": f".*{name}.*{value}.*"}
    if not service_match:
        return [{"headers": {COOKIE_HEADER: header}}]
    out: list[Obj] = []
    for m in service_match:
        entry = deep(m)
        entry.setdefault("headers", {})[COOKIE_HEADER] = dict(header)
        out.append(entry)
    return out


def _set_cookie(cookie_value: str) -> Obj:
    return {"response": {"add": {SET_COOKIE_HEADER: cookie_value}}}


class IstioRouter:
    """Istio VirtualService + DestinationRules (``networking.istio.io/v1beta1``)."""

    name = "istio"
    kinds: tuple[ResourceKind, ...] = (resources.VIRTUAL_SERVICE, resources.DESTINATION_RULE)
    capabilities = RouterCapabilities()
    settings: frozenset[str] = frozenset()

    # -- object identities -------------------------------------------------------------------------

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        return [
            ObjectRef(API_VERSION, "DestinationRule", ctx.canary_host, ctx.namespace),
            ObjectRef(API_VERSION, "DestinationRule", ctx.primary, ctx.namespace),
            ObjectRef(API_VERSION, "VirtualService", ctx.apex, ctx.namespace),
        ]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    # -- desired state -----------------------------------------------------------------------------

    def destination_rule(self, ctx: RouteContext, host: str) -> Obj:
        spec: Obj = {"host": host}
        policy = ctx.canary.spec.service.traffic_policy
        if policy is not None:
            spec["trafficPolicy"] = prune(policy.to_dict())
        metadata: Obj = {"name": host, "namespace": ctx.namespace}
        if ctx.set_owner_refs:
            metadata["ownerReferences"] = [controller_ref(ctx.canary)]
        return {"apiVersion": API_VERSION, "kind": "DestinationRule", "metadata": metadata, "spec": spec}

    def hosts_and_gateways(self, ctx: RouteContext) -> tuple[list[str], list[str]]:
        service = ctx.canary.spec.service
        if service.delegation:
            if service.hosts or service.gateways:
                raise RouterConfigError(
                    f"VirtualService {ctx.apex}.{ctx.namespace} cannot have hosts and gateways "
                    "when delegation enabled"
                )
            return [], []
        hosts = list(service.hosts)
        if ctx.apex not in hosts and "*" not in hosts:
            hosts.append(ctx.apex)
        gateways = list(service.gateways) or ["mesh"]
        return hosts, gateways

    def http_routes(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        canary = ctx.canary
        analysis = canary.analysis()
        features = _http_features(canary)
        service_match = _matches(canary.spec.service.match)
        weighted = [
            destination(canary, ctx.primary, routes.primary),
            destination(canary, ctx.canary_host, routes.canary),
        ]
        if analysis is not None and analysis.match:
            ab_match = merge_match_conditions(_matches(analysis.match), service_match)
            return [
                _route(features, ab_match, weighted),
                _route(features, service_match, [destination(canary, ctx.primary, routes.primary)]),
            ]
        affinity = analysis.session_affinity if analysis is not None else None
        http: list[Obj]
        if affinity is None:
            http = [_route(features, service_match, weighted)]
        elif routes.canary != 0 and ctx.cookies.canary:
            weighted[1]["headers"] = _set_cookie(
                set_cookie_value(canary, ctx.cookies.canary, affinity.max_age_seconds())
            )
            http = [
                _route(
                    features,
                    _cookie_match(service_match, ctx.cookies.canary),
                    [destination(canary, ctx.primary, 0), destination(canary, ctx.canary_host, 100)],
                )
            ]
            if affinity.primary_cookie_name and ctx.cookies.primary:
                weighted[0]["headers"] = _set_cookie(
                    set_cookie_value(canary, ctx.cookies.primary, int(canary.analysis_interval()))
                )
                http.append(
                    _route(
                        features,
                        _cookie_match(service_match, ctx.cookies.primary),
                        [destination(canary, ctx.primary, 100), destination(canary, ctx.canary_host, 0)],
                    )
                )
            http.append(_route(features, service_match, weighted))
        elif ctx.cookies.previous:
            expire = _route(features, _cookie_match(service_match, ctx.cookies.previous), deep(weighted))
            headers = deep(expire.get("headers") or {})
            headers.setdefault("response", {}).setdefault("add", {})[SET_COOKIE_HEADER] = (
                f"{ctx.cookies.previous}; Max-Age=-1"
            )
            expire["headers"] = headers
            # keep the key order of a plain route: headers before route
            expire["route"] = expire.pop("route")
            http = [expire, _route(features, service_match, weighted)]
        else:
            http = [_route(features, service_match, weighted)]
        if routes.mirrored:
            http[0]["mirror"] = {"host": ctx.canary_host}
            if analysis is not None and analysis.mirror_weight > 0:
                http[0]["mirrorPercentage"] = {"value": float(analysis.mirror_weight)}
        return http

    def virtual_service_spec(self, ctx: RouteContext, routes: Routes) -> Obj:
        hosts, gateways = self.hosts_and_gateways(ctx)
        spec: Obj = {"hosts": hosts, "gateways": gateways}
        canary = ctx.canary
        if is_tcp(canary):
            spec["tcp"] = [
                {
                    "match": [{"port": m.port} if m.port else {} for m in canary.spec.service.match],
                    "route": [
                        destination(canary, ctx.primary, routes.primary),
                        destination(canary, ctx.canary_host, routes.canary),
                    ],
                }
            ]
            if not spec["tcp"][0]["match"]:
                del spec["tcp"][0]["match"]
        else:
            spec["http"] = self.http_routes(ctx, routes)
        return spec

    def virtual_service(self, ctx: RouteContext, routes: Routes) -> Obj:
        metadata = apex_metadata(ctx)
        return {
            "apiVersion": API_VERSION,
            "kind": "VirtualService",
            "metadata": metadata,
            "spec": self.virtual_service_spec(ctx, routes),
        }

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        return [
            self.destination_rule(ctx, ctx.canary_host),
            self.destination_rule(ctx, ctx.primary),
            self.virtual_service(ctx, routes),
        ]

    # -- read back ---------------------------------------------------------------------------------

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        vs = observed.get(f"VirtualService/{ctx.apex}")
        if vs is None:
            raise RoutesError(f"VirtualService {ctx.apex}.{ctx.namespace} query error: not found")
        spec = vs.get("spec") or {}
        key = "tcp" if is_tcp(ctx.canary) else "http"
        chosen: Mapping[str, Any] = {}
        analysis = ctx.canary.analysis()
        affinity = analysis.session_affinity if analysis is not None else None
        for route in spec.get(key) or []:
            for dest in route.get("route") or []:
                if (dest.get("destination") or {}).get("host") == ctx.canary_host:
                    chosen = route
                    break
        if affinity is not None:
            # the weighted rule is the one whose destinations carry the Set-Cookie headers
            for route in spec.get(key) or []:
                if any(d.get("headers") for d in route.get("route") or []):
                    chosen = route
        primary = canary = 0
        for dest in chosen.get("route") or []:
            host = (dest.get("destination") or {}).get("host")
            if host == ctx.primary:
                primary = int(dest.get("weight") or 0)
            elif host == ctx.canary_host:
                canary = int(dest.get("weight") or 0)
        mirrored = bool((chosen.get("mirror") or {}).get("host"))
        if primary == 0 and canary == 0:
            raise RoutesError(
                f"VirtualService {ctx.apex}.{ctx.namespace} does not contain routes for "
                f"{ctx.apex}-primary and {ctx.apex}-canary"
            )
        return Routes(primary=primary, canary=canary, mirrored=mirrored)

    # -- reconcile policy --------------------------------------------------------------------------

    def _comparable(self, ctx: RouteContext, spec: Mapping[str, Any]) -> Obj:
        analysis = ctx.canary.analysis()
        affinity = analysis.session_affinity if analysis is not None else None
        names = [n for n in (affinity.cookie_name, affinity.primary_cookie_name) if n] if affinity else []
        out: Obj = prune(deep(dict(spec)))

        def is_cookie_route(route: Mapping[str, Any]) -> bool:
            for m in route.get("match") or []:
                regex = str(((m.get("headers") or {}).get(COOKIE_HEADER) or {}).get("regex") or "")
                if regex.startswith(".*") and any(n in regex for n in names):
                    return True
            return False

        for key in ("http", "tcp"):
            routes = out.get(key) or []
            if affinity is not None:
                routes = [r for r in routes if not is_cookie_route(r)]
            for route in routes:
                route.pop("mirror", None)
                route.pop("mirrorPercentage", None)
                for dest in route.get("route") or []:
                    dest.pop("weight", None)
                    if affinity is not None:
                        dest.pop("headers", None)
            if key in out:
                out[key] = routes
        return out

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        if observed_obj.get("kind") == "DestinationRule":
            differs: bool = prune(observed_obj.get("spec") or {}) != prune(desired_obj.get("spec") or {})
            return differs
        if not has_flux_opt_out(observed_obj):
            return True
        return self._comparable(ctx, observed_obj.get("spec") or {}) != self._comparable(
            ctx, desired_obj.get("spec") or {}
        )

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default): the desired spec and labels/annotations on the observed object, with
        the Flux opt-out annotations; an observed VirtualService spec that differs only in what
        :meth:`needs_update` ignores (weights, mirror, cookie routes) is kept, so adding the annotations
        changes nothing else. A VirtualService taken over (not owned by this canary) without kubectl's
        last-applied annotation keeps its previous spec in ``flagger.kubernetes.io/original-configuration``.
        An existing backup is never overwritten, so a revert restores the configuration found at takeover; a
        VirtualService the canary created gets no backup (Flagger writes one on every update, which only ever
        holds its own spec).

        ``set_routes=True`` (SetRoutes): only ``spec.http``/``spec.tcp`` of a VirtualService change;
        DestinationRules are returned unchanged.
        """
        out: Obj = deep(observed_obj)
        if set_routes:
            if observed_obj.get("kind") != "VirtualService":
                return out
            spec = out.setdefault("spec", {})
            for key in ("http", "tcp"):
                if key in (desired_obj.get("spec") or {}):
                    spec[key] = deep(desired_obj["spec"][key])
                else:
                    spec.pop(key, None)
            return out
        if observed_obj.get("kind") != "VirtualService":
            out["spec"] = deep(desired_obj.get("spec") or {})
            return out
        observed_spec = observed_obj.get("spec") or {}
        desired_spec = desired_obj.get("spec") or {}
        if self._comparable(ctx, observed_spec) != self._comparable(ctx, desired_spec):
            out["spec"] = deep(desired_spec)
        meta = out.setdefault("metadata", {})
        observed_annotations: Mapping[str, str] = (observed_obj.get("metadata") or {}).get(
            "annotations"
        ) or {}
        annotations = with_backup(
            managed_annotations((desired_obj.get("metadata") or {}).get("annotations")),
            observed_obj,
            ctx.canary,
        )
        if KUBECTL_LAST_APPLIED in observed_annotations:
            annotations[KUBECTL_LAST_APPLIED] = observed_annotations[KUBECTL_LAST_APPLIED]
        meta["annotations"] = annotations
        set_metadata_map(meta, "labels", (desired_obj.get("metadata") or {}).get("labels") or {})
        return out

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        vs = observed.get(f"VirtualService/{ctx.apex}")
        if vs is None:
            return []
        return restore(vs, f"VirtualService {ctx.apex}.{ctx.namespace}")


ISTIO = IstioRouter()
