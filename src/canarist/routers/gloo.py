"""Gloo Edge: Upstreams ``<ns>-<apex>-{primary,canary}upstream-<port>`` and RouteTable ``<apex>``.

The user's Gloo ``VirtualService`` delegates a path to the RouteTable (``delegateAction.ref``); the
RouteTable's routes inherit that path (``inheritablePathMatchers: true``) and split the traffic between two
kube Upstreams, one per generated Service.

* **Upstreams** (``gloo.solo.io/v1``): ``spec.kube {serviceName, serviceNamespace, servicePort}`` for the
  ``<apex>-primary`` / ``<apex>-canary`` Services, plus the connection settings and labels of the Upstream
  named by ``spec.upstreamRef`` (a template the user owns; see :data:`COPIED_UPSTREAM_FIELDS`). An existing
  Upstream keeps what was written to it; a Reconcile only re-syncs the Service fields and, while an
  upstreamRef is set, ``loadBalancerConfig``.
* **RouteTable** (``gateway.solo.io/v1``) ``spec.routes``, built by :meth:`GlooRouter.desired`:

  - canary / blue-green: ``[{inheritablePathMatchers, routeAction.multi: [primary w, canary w]}]``;
  - A/B (``analysis.match``): ``[{matchers, ..., [primary w, canary w]}, {..., [primary 100]}]``: one matcher
    per match entry (entries are alternatives, as in Istio), each with the entry's headers (exact, regex,
    prefix/suffix as anchored regexes, ``withoutHeaders`` as ``invertMatch``) and its exact method; the
    second route keeps the requests that match none on the primary.

What Gloo cannot express from a match entry (query parameters, uri, scheme, authority, port, source
labels/namespace, gateways, a non-exact method) is refused by :meth:`GlooRouter.objects` with the field path.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from canarist.api import HTTPMatchRequest
from canarist.api.istio import StringMatch
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
    metadata_missing,
)
from canarist.workloads._meta import controller_ref, deep, filter_metadata, prune

UPSTREAM = ResourceKind("gloo.solo.io", "v1", "upstreams", "Upstream", status_subresource=True)
ROUTE_TABLE = ResourceKind("gateway.solo.io", "v1", "routetables", "RouteTable", status_subresource=True)

#: the ``spec`` fields of the ``upstreamRef`` Upstream copied into the generated Upstreams.
COPIED_UPSTREAM_FIELDS = (
    "sslConfig",
    "circuitBreakers",
    "connectionConfig",
    "loadBalancerConfig",
    "useHttp2",
    "initialStreamWindowSize",
    "initialConnectionWindowSize",
    "httpProxyHostname",
)
#: the copied field a Reconcile re-syncs on an existing Upstream.
RESYNCED_UPSTREAM_FIELD = "loadBalancerConfig"
#: the ``spec.kube`` fields the router owns on its Upstreams (``selector`` is left to the user).
KUBE_FIELDS = ("serviceName", "serviceNamespace", "servicePort")

#: ``analysis.match[]`` fields a Gloo matcher cannot carry, by their manifest names.
_UNSUPPORTED_MATCH_FIELDS = (
    ("query_params", "queryParams"),
    ("uri", "uri"),
    ("scheme", "scheme"),
    ("authority", "authority"),
    ("port", "port"),
    ("source_labels", "sourceLabels"),
    ("source_namespace", "sourceNamespace"),
    ("gateways", "gateways"),
)


def upstream_names(ctx: RouteContext) -> tuple[str, str]:
    """(primary, canary) Upstream names: ``<ns>-<apex>-primaryupstream-<port>`` and the canary's."""
    port = ctx.canary.spec.service.port
    prefix = f"{ctx.namespace}-{ctx.apex}"
    return f"{prefix}-primaryupstream-{port}", f"{prefix}-canaryupstream-{port}"


def _re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching itself (RE2 accepts a backslash before any ASCII punctuation)."""
    return "".join(f"\\{c}" if c in string.punctuation else c for c in text)


def _header_matcher(path: str, name: str, match: StringMatch, *, invert: bool) -> Obj:
    """A Gloo HeaderMatcher ``{name, value?, regex?, invertMatch?}`` for one Istio StringMatch; an empty
    StringMatch matches the presence of the header."""
    if not name:
        raise RouterConfigError(f"{path}: an empty header name cannot be matched")
    out: Obj = {"name": name}
    if match.exact is not None:
        out["value"] = match.exact
    elif match.regex is not None:
        out["value"], out["regex"] = match.regex, True
    elif match.prefix is not None:
        out["value"], out["regex"] = f"{_re2_literal(match.prefix)}.*", True
    elif match.suffix is not None:
        out["value"], out["regex"] = f".*{_re2_literal(match.suffix)}", True
    if invert:
        out["invertMatch"] = True
    return out


def _matcher(path: str, entry: HTTPMatchRequest) -> Obj:
    for attribute, field_name in _UNSUPPORTED_MATCH_FIELDS:
        if getattr(entry, attribute):
            raise RouterConfigError(
                f"{path}.{field_name}: the gloo provider routes A/B tests by headers and method only"
            )
    headers = [
        _header_matcher(f"{path}.headers.{name}", name, match, invert=False)
        for name, match in entry.headers.items()
    ]
    headers += [
        _header_matcher(f"{path}.withoutHeaders.{name}", name, match, invert=True)
        for name, match in entry.without_headers.items()
    ]
    out: Obj = {}
    if headers:
        out["headers"] = headers
    method = entry.method
    if method is not None:
        if method.exact is None or method.prefix or method.suffix or method.regex:
            raise RouterConfigError(f"{path}.method: the gloo provider matches an exact method only")
        out["methods"] = [method.exact]
    return out


def matchers(ctx: RouteContext) -> list[Obj]:
    """The Gloo matchers of ``analysis.match`` (one per entry); raises :class:`RouterConfigError`."""
    analysis = ctx.canary.analysis()
    if analysis is None:
        return []
    section = "spec.analysis" if ctx.canary.spec.analysis is not None else "spec.canaryAnalysis"
    return [_matcher(f"{section}.match[{i}]", entry) for i, entry in enumerate(analysis.match)]


def _destination(name: str, namespace: str, weight: int) -> Obj:
    return {"destination": {"upstream": {"name": name, "namespace": namespace}}, "weight": weight}


def _weight(value: Any) -> int | None:
    """A destination weight (absent or null: 0); None when it is not a non-negative integer."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


class GlooRouter:
    """Gloo Edge Upstreams + RouteTable."""

    name = "gloo"
    kinds: tuple[ResourceKind, ...] = (UPSTREAM, ROUTE_TABLE)
    capabilities = RouterCapabilities(weights=True, matches=True, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    # -- object identities -------------------------------------------------------------------------

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        matchers(ctx)  # refuse what a RouteTable cannot route before anything is written
        primary, canary = upstream_names(ctx)
        return [
            ObjectRef(UPSTREAM.api_version, UPSTREAM.kind, primary, ctx.namespace),
            ObjectRef(UPSTREAM.api_version, UPSTREAM.kind, canary, ctx.namespace),
            ObjectRef(ROUTE_TABLE.api_version, ROUTE_TABLE.kind, ctx.apex, ctx.namespace),
        ]

    def references(self, ctx: RouteContext) -> list[Reference]:
        ref = ctx.canary.spec.upstream_ref
        if ref is None:
            return []
        return [
            Reference(
                UPSTREAM.api_version,
                UPSTREAM.kind,
                ref.name,
                ref.namespace or ctx.namespace,
                path="spec.upstreamRef",
            )
        ]

    # -- desired state -----------------------------------------------------------------------------

    def template(self, ctx: RouteContext) -> Obj | None:
        """The ``upstreamRef`` Upstream, or None without one; raises when it was not found."""
        refs = self.references(ctx)
        if not refs:
            return None
        found = ctx.references.get(refs[0].key)
        if found is None:
            raise RouterConfigError(
                f"spec.upstreamRef: Upstream {refs[0].name}.{refs[0].namespace} not found"
            )
        return found

    def upstream(self, ctx: RouteContext, name: str, service: str) -> Obj:
        template = self.template(ctx)
        spec: Obj = {}
        labels: dict[str, str] = {}
        if template is not None:
            source = template.get("spec") or {}
            for key in COPIED_UPSTREAM_FIELDS:
                if source.get(key) is not None:
                    spec[key] = deep(source[key])
            labels = filter_metadata((template.get("metadata") or {}).get("labels"))
        spec["kube"] = {
            "serviceName": service,
            "serviceNamespace": ctx.namespace,
            "servicePort": ctx.canary.spec.service.port,
        }
        metadata: Obj = {"name": name, "namespace": ctx.namespace}
        if labels:
            metadata["labels"] = labels
        if ctx.set_owner_refs:
            metadata["ownerReferences"] = [controller_ref(ctx.canary)]
        return {"apiVersion": UPSTREAM.api_version, "kind": UPSTREAM.kind, "metadata": metadata, "spec": spec}

    def route_table_routes(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        primary, canary = upstream_names(ctx)
        split = [
            _destination(primary, ctx.namespace, routes.primary),
            _destination(canary, ctx.namespace, routes.canary),
        ]
        found = matchers(ctx)
        if not found:
            return [{"inheritablePathMatchers": True, "routeAction": {"multi": {"destinations": split}}}]
        return [
            {
                "matchers": found,
                "inheritablePathMatchers": True,
                "routeAction": {"multi": {"destinations": split}},
            },
            {
                "inheritablePathMatchers": True,
                "routeAction": {"multi": {"destinations": [_destination(primary, ctx.namespace, 100)]}},
            },
        ]

    def route_table(self, ctx: RouteContext, routes: Routes) -> Obj:
        apex = ctx.canary.spec.service.apex
        metadata: Obj = {"name": ctx.apex, "namespace": ctx.namespace}
        labels = filter_metadata(apex.labels if apex is not None else {})
        annotations = filter_metadata(apex.annotations if apex is not None else {})
        if labels:
            metadata["labels"] = labels
        if annotations:
            metadata["annotations"] = annotations
        if ctx.set_owner_refs:
            metadata["ownerReferences"] = [controller_ref(ctx.canary)]
        return {
            "apiVersion": ROUTE_TABLE.api_version,
            "kind": ROUTE_TABLE.kind,
            "metadata": metadata,
            "spec": {"routes": self.route_table_routes(ctx, routes)},
        }

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        primary, canary = upstream_names(ctx)
        return [
            self.upstream(ctx, primary, ctx.primary),
            self.upstream(ctx, canary, ctx.canary_host),
            self.route_table(ctx, routes),
        ]

    # -- read back ---------------------------------------------------------------------------------

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        table = observed.get(f"{ROUTE_TABLE.kind}/{ctx.apex}")
        where = f"RouteTable {ctx.apex}.{ctx.namespace}"
        if table is None:
            raise RoutesError(f"{where} query error: not found")
        found = (table.get("spec") or {}).get("routes")
        if not isinstance(found, list) or not found or not isinstance(found[0], Mapping):
            raise RoutesError(f"{where} routes not found")
        multi = (found[0].get("routeAction") or {}).get("multi") or {}
        destinations = multi.get("destinations") if isinstance(multi, Mapping) else None
        if not isinstance(destinations, list) or len(destinations) < 2:
            raise RoutesError(f"{where} destinations not found")
        primary_name, canary_name = upstream_names(ctx)
        weights: dict[str, int] = {}
        for entry in destinations:
            if not isinstance(entry, Mapping):
                continue
            upstream = (entry.get("destination") or {}).get("upstream") or {}
            name = upstream.get("name") if isinstance(upstream, Mapping) else None
            if name not in (primary_name, canary_name):
                continue
            weight = _weight(entry.get("weight"))
            if weight is None:
                raise RoutesError(f"{where} destination {name} has an invalid weight {entry.get('weight')!r}")
            weights[str(name)] = weight
        if primary_name not in weights or canary_name not in weights:
            raise RoutesError(f"{where} does not contain destinations for {primary_name} and {canary_name}")
        primary, canary = weights[primary_name], weights[canary_name]
        if primary == 0 and canary == 0:
            raise RoutesError(f"{where} has no valid weights")
        return Routes(primary=primary, canary=canary)

    # -- reconcile policy --------------------------------------------------------------------------

    @staticmethod
    def _without_weights(spec: Mapping[str, Any]) -> Obj:
        out: Obj = prune(deep(dict(spec)))
        for route in out.get("routes") or []:
            for entry in ((route.get("routeAction") or {}).get("multi") or {}).get("destinations") or []:
                entry.pop("weight", None)
        return out

    @staticmethod
    def _upstream_owned(ctx: RouteContext, spec: Mapping[str, Any]) -> Obj:
        """The parts of an Upstream spec a Reconcile keeps in sync: the kube Service fields, and the
        load-balancer configuration while an upstreamRef is set."""
        kube = spec.get("kube") or {}
        out: Obj = {"kube": {key: kube.get(key) for key in KUBE_FIELDS}}
        if ctx.canary.spec.upstream_ref is not None:
            out[RESYNCED_UPSTREAM_FIELD] = prune(deep(spec.get(RESYNCED_UPSTREAM_FIELD)))
        return out

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        observed_spec = observed_obj.get("spec") or {}
        desired_spec = desired_obj.get("spec") or {}
        if observed_obj.get("kind") == UPSTREAM.kind:
            differs: bool = self._upstream_owned(ctx, observed_spec) != self._upstream_owned(
                ctx, desired_spec
            )
            return differs
        if metadata_missing(observed_obj, desired_obj):
            return True
        return self._without_weights(observed_spec) != self._without_weights(desired_spec)

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default):

        * Upstream: the observed object with the kube Service fields of the desired one and, while an
          upstreamRef is set, its ``loadBalancerConfig`` (removed when the template has none); everything
          else (the other copied settings, a selector, foreign metadata) is kept.
        * RouteTable: the desired spec (weights included: the caller builds it from the current routes),
          and the desired labels/annotations laid over the observed ones.

        ``set_routes=True`` (SetRoutes): only the ``routeAction`` of the RouteTable routes changes (the
        whole route list when the observed one has another shape); Upstreams are returned unchanged.
        """
        out: Obj = deep(observed_obj)
        desired_spec = desired_obj.get("spec") or {}
        if observed_obj.get("kind") == UPSTREAM.kind:
            if set_routes:
                return out
            spec = out.setdefault("spec", {})
            kube = spec.setdefault("kube", {})
            for key in KUBE_FIELDS:
                kube[key] = deep((desired_spec.get("kube") or {}).get(key))
            if ctx.canary.spec.upstream_ref is not None:
                if desired_spec.get(RESYNCED_UPSTREAM_FIELD) is not None:
                    spec[RESYNCED_UPSTREAM_FIELD] = deep(desired_spec[RESYNCED_UPSTREAM_FIELD])
                else:
                    spec.pop(RESYNCED_UPSTREAM_FIELD, None)
            return out
        spec = out.setdefault("spec", {})
        desired_routes: list[Obj] = deep(desired_spec.get("routes") or [])
        if set_routes:
            observed_routes = spec.get("routes")
            if isinstance(observed_routes, list) and len(observed_routes) == len(desired_routes):
                for have, want in zip(observed_routes, desired_routes, strict=True):
                    if not isinstance(have, dict):
                        spec["routes"] = desired_routes
                        break
                    have["routeAction"] = want["routeAction"]
            else:
                spec["routes"] = desired_routes
            return out
        out["spec"] = deep(desired_spec)
        meta = out.setdefault("metadata", {})
        desired_meta = desired_obj.get("metadata") or {}
        for key in ("labels", "annotations"):
            values = {**(meta.get(key) or {}), **(desired_meta.get(key) or {})}
            if values:
                meta[key] = values
        return out

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """Nothing to restore: every object is the router's own (the user's VirtualService and the
        upstreamRef template are never written)."""
        return []


GLOO = GlooRouter()
