"""Gateway API: one HTTPRoute ``<apex>`` attached to the Gateways of ``spec.service.gatewayRefs``.

Two routers share this module: ``gatewayapi:v1`` (``gateway.networking.k8s.io/v1``) and
``gatewayapi:v1beta1`` (``gateway.networking.k8s.io/v1beta1``). The v1beta1 route carries no rule
``timeouts``, no ``CORS`` filter and no primary session-affinity cookie.

Layouts of ``spec.rules`` built by :meth:`GatewayAPIRouter.desired` for given :class:`Routes`:

* canary (default): one rule ``{matches: service.match (default PathPrefix /), filters, backendRefs:
  [primary w, canary w], timeouts}``, plus a ``RequestMirror`` filter to the canary while mirrored;
* A/B (``analysis.match``): ``[{matches: analysis.match x service.match, backendRefs: primary/canary},
  {matches: service.match, backendRefs: [primary 100]}]``;
* session affinity: ``[sticky-canary, (sticky-primary), weighted]`` while the canary has weight, the
  weighted backends setting the cookies with ``ResponseHeaderModifier`` filters; ``[expire-previous-cookie,
  weighted]`` after.

The filters of a rule come from ``spec.service``: ``headers`` (Request/ResponseHeaderModifier, headers
sorted by name), ``rewrite`` (URLRewrite), ``mirror`` (one RequestMirror each) and ``corsPolicy`` (CORS,
v1 only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canarist.api import Canary, HTTPMatchRequest
from canarist.api.istio import HeaderOperations, StringMatch
from canarist.durations import parse_duration
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
    set_cookie_value,
)
from canarist.routers.takeover import restore, with_backup
from canarist.workloads._meta import (
    deep,
    has_flux_opt_out,
    managed_annotations,
    prune,
    set_metadata_map,
)

GROUP = "gateway.networking.k8s.io"
API_VERSION_V1 = f"{GROUP}/v1"
API_VERSION_V1BETA1 = f"{GROUP}/v1beta1"
HTTP_ROUTE_V1 = ResourceKind(GROUP, "v1", "httproutes", "HTTPRoute", status_subresource=True)
HTTP_ROUTE_V1BETA1 = ResourceKind(GROUP, "v1beta1", "httproutes", "HTTPRoute", status_subresource=True)
KIND = "HTTPRoute"
#: where the spec of an HTTPRoute taken over (no kubectl last-applied annotation) is kept for a revert.
COOKIE_HEADER = "Cookie"
SET_COOKIE_HEADER = "Set-Cookie"
ACCEPTED = "Accepted"
#: the ``matches`` of a rule without ``spec.service.match`` (also the API server's default).
DEFAULT_MATCH: Obj = {"path": {"type": "PathPrefix", "value": "/"}}
REWRITE_TYPES = ("ReplaceFullPath", "ReplacePrefixMatch")


# ---------------------------------------------------------------------------------------------- matches


def _string_match(value: StringMatch | None) -> tuple[str, str] | None:
    """``(kind, value)`` of the first non-empty of regex, exact, prefix, suffix."""
    if value is None:
        return None
    for kind in ("regex", "exact", "prefix", "suffix"):
        text = getattr(value, kind)
        if text:
            return kind, str(text)
    return None


def _named_matches(values: Mapping[str, StringMatch], path: str, what: str) -> list[Obj]:
    out: list[Obj] = []
    for name, value in values.items():
        found = _string_match(value)
        if found is None or found[0] not in ("exact", "regex"):
            raise RouterConfigError(
                f"{path}.{name}: Gateway API doesn't support the specified {what} matching selector "
                "(use exact or regex)"
            )
        kind, text = found
        out.append({"name": name, "type": "Exact" if kind == "exact" else "RegularExpression", "value": text})
    return out


#: HTTPMatchRequest fields that narrow a match and have no HTTPRoute equivalent: refused rather than
#: dropped, since dropping one would send more traffic to the canary than asked for.
_UNSUPPORTED_MATCH_FIELDS = (
    ("scheme", "scheme"),
    ("authority", "authority"),
    ("without_headers", "withoutHeaders"),
    ("port", "port"),
    ("source_labels", "sourceLabels"),
    ("source_namespace", "sourceNamespace"),
    ("gateways", "gateways"),
    ("ignore_uri_case", "ignoreUriCase"),
)


def route_matches(matches: Sequence[HTTPMatchRequest], path: str) -> list[Obj]:
    """``spec.service.match`` / ``spec.analysis.match`` as HTTPRouteMatches (``path`` names the field).

    uri regex/exact/prefix → path RegularExpression/Exact/PathPrefix, method exact, headers and queryParams
    exact/regex. Anything else raises :class:`RouterConfigError` naming the field. A match without any
    condition is dropped.
    """
    out: list[Obj] = []
    for index, request in enumerate(matches):
        where = f"{path}[{index}]"
        for attr, key in _UNSUPPORTED_MATCH_FIELDS:
            if getattr(request, attr):
                raise RouterConfigError(f"{where}.{key}: Gateway API doesn't support this matching selector")
        match: Obj = {}
        if request.uri is not None:
            found = _string_match(request.uri)
            if found is None or found[0] == "suffix":
                raise RouterConfigError(
                    f"{where}.uri: Gateway API doesn't support the specified path matching selector "
                    "(use exact, prefix or regex)"
                )
            kind, text = found
            match["path"] = {
                "type": {"regex": "RegularExpression", "exact": "Exact", "prefix": "PathPrefix"}[kind],
                "value": text,
            }
        if request.method is not None:
            found = _string_match(request.method)
            if found is None or found[0] != "exact":
                raise RouterConfigError(
                    f"{where}.method: Gateway API doesn't support the specified method matching selector "
                    "(use exact)"
                )
            match["method"] = found[1]
        headers = _named_matches(request.headers, f"{where}.headers", "header")
        if headers:
            match["headers"] = headers
        query = _named_matches(request.query_params, f"{where}.queryParams", "query")
        if query:
            match["queryParams"] = query
        if match:
            out.append(match)
    return out


def merge_match_conditions(analysis: list[Obj], service: list[Obj]) -> list[Obj]:
    """A/B matches: every analysis match x every service match (the service match copied, with the
    analysis entry's ``headers`` and ``queryParams`` replacing its own)."""
    if not analysis:
        merged_service: list[Obj] = deep(service)
        return merged_service
    if not service:
        merged_analysis: list[Obj] = deep(analysis)
        return merged_analysis
    merged: list[Obj] = []
    for a in analysis:
        for s in service:
            entry = deep(s)
            for key in ("headers", "queryParams"):
                if a.get(key):
                    entry[key] = deep(a[key])
            merged.append(entry)
    return merged


def _cookie_matches(matches: list[Obj], cookie: str) -> list[Obj]:
    """``matches`` each also requiring the ``Cookie`` header to carry ``cookie`` (``name=value``)."""
    name, _, value = cookie.partition("=")
    header = {"name": COOKIE_HEADER, "type": "RegularExpression", "value": f".*{name}.*{value}.*"}
    out: list[Obj] = []
    for m in matches or [DEFAULT_MATCH]:
        entry = deep(m)
        entry["headers"] = [*entry.get("headers", []), dict(header)]
        out.append(entry)
    return out


# ---------------------------------------------------------------------------------------------- filters


def _header_modifier(ops: HeaderOperations | None) -> Obj:
    if ops is None:
        return {}

    def pairs(values: Mapping[str, str]) -> list[Obj]:
        return [{"name": k, "value": v} for k, v in sorted(values.items(), key=lambda kv: (kv[0], kv[1]))]

    modifier: Obj = {"add": pairs(ops.add), "set": pairs(ops.set), "remove": list(ops.remove)}
    return {k: v for k, v in modifier.items() if v}


def _max_age_seconds(text: str, path: str) -> int:
    try:
        return int(parse_duration(text))
    except ValueError as err:
        raise RouterConfigError(f"{path}: {err}") from err


class GatewayAPIRouter:
    """An HTTPRoute of the Gateway API version ``version`` (``v1`` or ``v1beta1``)."""

    settings: frozenset[str] = frozenset()
    capabilities = RouterCapabilities(weights=True, matches=True, mirroring=True, session_affinity=True)

    def __init__(self, version: str) -> None:
        if version not in ("v1", "v1beta1"):
            raise ValueError(f"unknown Gateway API version {version!r}")
        self.version = version
        self.name = f"gatewayapi:{version}"
        self.api_version = f"{GROUP}/{version}"
        self.kinds: tuple[ResourceKind, ...] = (HTTP_ROUTE_V1 if version == "v1" else HTTP_ROUTE_V1BETA1,)

    @property
    def full(self) -> bool:
        """Whether this version has rule timeouts, the CORS filter and the primary cookie (v1)."""
        return self.version == "v1"

    # -- object identities -------------------------------------------------------------------------

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        self._check(ctx)
        return [ObjectRef(self.api_version, KIND, ctx.apex, ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        # the Gateways are not ours (and may live in other namespaces): their controllers report on the
        # route's status, which routes() reads
        return []

    def _check(self, ctx: RouteContext) -> None:
        """Raise :class:`RouterConfigError` for a canary this router cannot route."""
        if not ctx.canary.spec.service.gateway_refs:
            raise RouterConfigError(
                f"spec.service.gatewayRefs: at least one Gateway is required for provider {self.name}"
            )
        self.rules(ctx, Routes(primary=100, canary=0))

    # -- desired state -----------------------------------------------------------------------------

    def filters(self, canary: Canary) -> list[Obj]:
        """The rule filters from ``spec.service``: headers, rewrite, CORS (v1), mirrors."""
        service = canary.spec.service
        out: list[Obj] = []
        if service.headers is not None:
            request = _header_modifier(service.headers.request)
            if request:
                out.append({"type": "RequestHeaderModifier", "requestHeaderModifier": request})
            response = _header_modifier(service.headers.response)
            if response:
                out.append({"type": "ResponseHeaderModifier", "responseHeaderModifier": response})
        if service.rewrite is not None:
            rewrite: Obj = {}
            if service.rewrite.authority:
                rewrite["hostname"] = service.rewrite.authority
            if service.rewrite.uri:
                kind = service.rewrite.type or "ReplaceFullPath"
                if kind not in REWRITE_TYPES:
                    raise RouterConfigError(
                        f"spec.service.rewrite.type: {kind!r} is not one of {', '.join(REWRITE_TYPES)}"
                    )
                key = "replaceFullPath" if kind == "ReplaceFullPath" else "replacePrefixMatch"
                rewrite["path"] = {"type": kind, key: service.rewrite.uri}
            if rewrite:
                out.append({"type": "URLRewrite", "urlRewrite": rewrite})
        if self.full and service.cors_policy is not None:
            cors = self._cors(canary)
            if cors:
                out.append({"type": "CORS", "cors": cors})
        for mirror in service.mirror:
            out.append(
                {
                    "type": "RequestMirror",
                    "requestMirror": {"backendRef": prune(mirror.backend_ref.to_dict())},
                }
            )
        return out

    def _cors(self, canary: Canary) -> Obj:
        policy = canary.spec.service.cors_policy
        if policy is None:
            return {}
        origins = list(policy.allow_origin)
        for index, origin in enumerate(policy.allow_origins):
            found = _string_match(origin)
            if found is None or found[0] != "exact":
                raise RouterConfigError(
                    f"spec.service.corsPolicy.allowOrigins[{index}]: the Gateway API CORS filter takes exact "
                    "origins only"
                )
            origins.append(found[1])
        cors: Obj = {
            "allowOrigins": origins,
            "allowMethods": list(policy.allow_methods),
            "allowHeaders": list(policy.allow_headers),
            "exposeHeaders": list(policy.expose_headers),
        }
        if policy.max_age:
            cors["maxAge"] = _max_age_seconds(policy.max_age, "spec.service.corsPolicy.maxAge")
        if policy.allow_credentials is not None:
            cors["allowCredentials"] = policy.allow_credentials
        return {k: v for k, v in cors.items() if v not in ([], None)}

    def _timeouts(self, canary: Canary) -> Obj:
        if not self.full:
            return {}
        service = canary.spec.service
        timeouts: Obj = {}
        if service.timeout:
            timeouts["request"] = service.timeout
        if service.backend_timeout:
            timeouts["backendRequest"] = service.backend_timeout
        return timeouts

    def backend(self, canary: Canary, name: str, weight: int) -> Obj:
        return {
            "group": "",
            "kind": "Service",
            "name": name,
            "port": canary.spec.service.port,
            "weight": weight,
        }

    def _rule(self, canary: Canary, matches: list[Obj], filters: list[Obj], backends: list[Obj]) -> Obj:
        rule: Obj = {"matches": deep(matches)}
        if filters:
            rule["filters"] = deep(filters)
        rule["backendRefs"] = backends
        timeouts = self._timeouts(canary)
        if timeouts:
            rule["timeouts"] = timeouts
        return rule

    def rules(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        canary = ctx.canary
        analysis = canary.analysis()
        service_matches = route_matches(canary.spec.service.match, "spec.service.match") or [
            deep(DEFAULT_MATCH)
        ]
        filters = self.filters(canary)
        weighted_filters = deep(filters)
        if routes.mirrored:
            weighted_filters.append(
                {
                    "type": "RequestMirror",
                    "requestMirror": {
                        "backendRef": {
                            "group": "",
                            "kind": "Service",
                            "name": ctx.canary_host,
                            "port": canary.spec.service.port,
                        }
                    },
                }
            )

        def weighted_backends() -> list[Obj]:
            return [
                self.backend(canary, ctx.primary, routes.primary),
                self.backend(canary, ctx.canary_host, routes.canary),
            ]

        if analysis is not None and analysis.match:
            ab = merge_match_conditions(route_matches(analysis.match, "spec.analysis.match"), service_matches)
            return [
                self._rule(canary, ab, weighted_filters, weighted_backends()),
                self._rule(canary, service_matches, filters, [self.backend(canary, ctx.primary, 100)]),
            ]
        weighted = self._rule(canary, service_matches, weighted_filters, weighted_backends())
        affinity = analysis.session_affinity if analysis is not None else None
        if affinity is None:
            return [weighted]
        cookies = ctx.cookies
        if routes.canary != 0 and cookies.canary:
            backends = weighted["backendRefs"]
            backends[1]["filters"] = [
                self._cookie_filter(set_cookie_value(canary, cookies.canary, affinity.max_age_seconds()))
            ]
            rules = [
                self._rule(
                    canary,
                    _cookie_matches(service_matches, cookies.canary),
                    filters,
                    [self.backend(canary, ctx.primary, 0), self.backend(canary, ctx.canary_host, 100)],
                )
            ]
            if self.full and affinity.primary_cookie_name and cookies.primary:
                max_age = int(canary.analysis_interval())
                backends[0]["filters"] = [
                    self._cookie_filter(set_cookie_value(canary, cookies.primary, max_age))
                ]
                rules.append(
                    self._rule(
                        canary,
                        _cookie_matches(service_matches, cookies.primary),
                        filters,
                        [self.backend(canary, ctx.primary, 100), self.backend(canary, ctx.canary_host, 0)],
                    )
                )
            return [*rules, weighted]
        if routes.canary == 0 and cookies.previous:
            expire_filters = self._with_response_header(
                deep(weighted_filters), SET_COOKIE_HEADER, f"{cookies.previous}; Max-Age=-1"
            )
            expire = self._rule(
                canary,
                _cookie_matches(service_matches, cookies.previous),
                expire_filters,
                weighted_backends(),
            )
            return [expire, weighted]
        return [weighted]

    @staticmethod
    def _cookie_filter(value: str) -> Obj:
        return {
            "type": "ResponseHeaderModifier",
            "responseHeaderModifier": {"add": [{"name": SET_COOKIE_HEADER, "value": value}]},
        }

    @staticmethod
    def _with_response_header(filters: list[Obj], name: str, value: str) -> list[Obj]:
        """``filters`` with ``name: value`` added by the rule's ResponseHeaderModifier (a rule may have only
        one filter of that type, so an existing one is extended)."""
        for f in filters:
            if f.get("type") == "ResponseHeaderModifier":
                modifier = f.setdefault("responseHeaderModifier", {})
                modifier["add"] = [*modifier.get("add", []), {"name": name, "value": value}]
                return filters
        return [*filters, GatewayAPIRouter._cookie_filter(value)]

    def spec(self, ctx: RouteContext, routes: Routes) -> Obj:
        service = ctx.canary.spec.service
        spec: Obj = {"parentRefs": [prune(ref.to_dict()) for ref in service.gateway_refs]}
        if service.hosts:
            spec["hostnames"] = list(service.hosts)
        spec["rules"] = self.rules(ctx, routes)
        return spec

    def http_route(self, ctx: RouteContext, routes: Routes) -> Obj:
        metadata = apex_metadata(ctx)
        return {
            "apiVersion": self.api_version,
            "kind": KIND,
            "metadata": metadata,
            "spec": self.spec(ctx, routes),
        }

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        if not ctx.canary.spec.service.gateway_refs:
            self._check(ctx)
        return [self.http_route(ctx, routes)]

    # -- read back ---------------------------------------------------------------------------------

    def _where(self, ctx: RouteContext) -> str:
        return f"HTTPRoute {ctx.apex}.{ctx.namespace}"

    def check_parents(self, ctx: RouteContext, route: Mapping[str, Any]) -> None:
        """Raise :class:`RoutesError` unless every parent accepted the route at its current generation."""
        namespace = (route.get("metadata") or {}).get("namespace") or ctx.namespace
        generation = int((route.get("metadata") or {}).get("generation") or 0)
        statuses = (route.get("status") or {}).get("parents") or []
        for ref in (route.get("spec") or {}).get("parentRefs") or []:
            wanted = _parent_key(ref, namespace)
            entries = [p for p in statuses if _parent_key(p.get("parentRef") or {}, namespace) == wanted]
            if not entries:
                entries = [{}]
            for entry in entries:
                accepted: Mapping[str, Any] = next(
                    (c for c in entry.get("conditions") or [] if c.get("type") == ACCEPTED), {}
                )
                status = str(accepted.get("status") or "Unknown")
                observed = int(accepted.get("observedGeneration") or 0)
                if status != "True" or observed != generation:
                    raise RoutesError(
                        f"{self._where(ctx)} parent {ref.get('name', '')} is not ready (status: {status}, "
                        f"observed generation: {observed}, current generation: {generation})"
                    )

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        route = observed.get(f"{KIND}/{ctx.apex}")
        if route is None:
            raise RoutesError(f"{self._where(ctx)} get error: not found")
        self.check_parents(ctx, route)
        rules = (route.get("spec") or {}).get("rules") or []
        chosen: Mapping[str, Any] | None = None
        for rule in rules:
            names = {b.get("name") for b in rule.get("backendRefs") or []}
            if ctx.primary in names and ctx.canary_host in names:
                chosen = rule
        analysis = ctx.canary.analysis()
        if analysis is not None and analysis.session_affinity is not None:
            # the weighted rule is the one whose backends set the cookies
            for rule in rules:
                if any(b.get("filters") for b in rule.get("backendRefs") or []):
                    chosen = rule
        if chosen is None:
            raise RoutesError(
                f"{self._where(ctx)} does not contain routes for {ctx.primary} and {ctx.canary_host}"
            )
        primary = canary = 0
        for backend in chosen.get("backendRefs") or []:
            weight = backend.get("weight")
            value = 1 if weight is None else int(weight)  # the Gateway API default weight
            if backend.get("name") == ctx.primary:
                primary = value
            elif backend.get("name") == ctx.canary_host:
                canary = value
        mirrored = any(_is_canary_mirror(f, ctx.canary_host) for f in chosen.get("filters") or [])
        return Routes(primary=primary, canary=canary, mirrored=mirrored)

    # -- reconcile policy --------------------------------------------------------------------------

    def _comparable(self, ctx: RouteContext, spec: Mapping[str, Any]) -> Obj:
        """``spec`` with the API server's defaults filled in and without what SetRoutes owns: weights, the
        canary mirror filter and, under session affinity, the cookie rules and backend filters."""
        analysis = ctx.canary.analysis()
        affinity = analysis.session_affinity if analysis is not None else None
        names: list[str] = []
        if affinity is not None:
            names = [affinity.cookie_name]
            if self.full and affinity.primary_cookie_name:
                names.append(affinity.primary_cookie_name)
            names = [n for n in names if n]
        out: Obj = prune(deep(dict(spec)))
        for ref in out.get("parentRefs") or []:
            ref.setdefault("group", GROUP)
            ref.setdefault("kind", "Gateway")

        def is_cookie_rule(rule: Mapping[str, Any]) -> bool:
            for m in rule.get("matches") or []:
                for h in m.get("headers") or []:
                    if (
                        str(h.get("name", "")).lower() == COOKIE_HEADER.lower()
                        and h.get("type") == "RegularExpression"
                        and any(n in str(h.get("value", "")) for n in names)
                    ):
                        return True
            return False

        rules = out.get("rules") or []
        if names:
            rules = [r for r in rules if not is_cookie_rule(r)]
        for rule in rules:
            matches = rule.get("matches") or [deep(DEFAULT_MATCH)]
            for m in matches:
                path = m.setdefault("path", {})
                path.setdefault("type", "PathPrefix")
                path.setdefault("value", "/")
                for key in ("headers", "queryParams"):
                    for h in m.get(key) or []:
                        h.setdefault("type", "Exact")
            rule["matches"] = matches
            filters = [f for f in rule.get("filters") or [] if not _is_canary_mirror(f, ctx.canary_host)]
            if filters:
                rule["filters"] = filters
            else:
                rule.pop("filters", None)
            for backend in rule.get("backendRefs") or []:
                backend.pop("weight", None)
                backend.setdefault("group", "")
                backend.setdefault("kind", "Service")
                if affinity is not None:
                    backend.pop("filters", None)
        if "rules" in out:
            out["rules"] = rules
        return out

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        if not has_flux_opt_out(observed_obj):
            return True
        observed_meta = observed_obj.get("metadata") or {}
        desired_meta = desired_obj.get("metadata") or {}
        if (observed_meta.get("labels") or {}) != (desired_meta.get("labels") or {}):
            return True
        observed_annotations = observed_meta.get("annotations") or {}
        for key, value in (desired_meta.get("annotations") or {}).items():
            if observed_annotations.get(key) != value:
                return True
        return self._comparable(ctx, observed_obj.get("spec") or {}) != self._comparable(
            ctx, desired_obj.get("spec") or {}
        )

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default): the desired spec (unless the observed one differs only in what
        :meth:`needs_update` ignores), the desired labels, and the desired annotations over the observed
        ones (annotations written by other controllers stay), with the Flux opt-out annotations. An
        HTTPRoute taken over (not owned by this canary) without kubectl's last-applied annotation keeps
        its previous spec in ``flagger.kubernetes.io/original-configuration``; an existing backup is never
        overwritten.

        ``set_routes=True`` (SetRoutes): only ``spec.rules`` changes.
        """
        out: Obj = deep(observed_obj)
        desired_spec = desired_obj.get("spec") or {}
        if set_routes:
            out.setdefault("spec", {})["rules"] = deep(desired_spec.get("rules") or [])
            return out
        observed_spec = observed_obj.get("spec") or {}
        if self._comparable(ctx, observed_spec) != self._comparable(ctx, desired_spec):
            out["spec"] = deep(desired_spec)
        meta = out.setdefault("metadata", {})
        observed_annotations: Mapping[str, str] = (observed_obj.get("metadata") or {}).get(
            "annotations"
        ) or {}
        meta["annotations"] = with_backup(
            {
                **observed_annotations,
                **managed_annotations((desired_obj.get("metadata") or {}).get("annotations")),
            },
            observed_obj,
            ctx.canary,
        )
        set_metadata_map(meta, "labels", (desired_obj.get("metadata") or {}).get("labels") or {})
        return out

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """The HTTPRoute with its spec from before the takeover (kubectl's last-applied configuration, else
        the backup annotation) and without the Flux opt-out annotations. A route this canary created and
        never took over has nothing to restore (its owner reference deletes it with the canary)."""
        route = observed.get(f"{KIND}/{ctx.apex}")
        if route is None:
            return []
        return restore(route, self._where(ctx), owner=ctx.canary)


def _parent_key(ref: Mapping[str, Any], namespace: str) -> tuple[Any, ...]:
    """A parentRef with its defaults (group, kind, the route's namespace), for matching status entries."""
    return (
        ref.get("group") or GROUP,
        ref.get("kind") or "Gateway",
        ref.get("namespace") or namespace,
        ref.get("name") or "",
        ref.get("sectionName") or None,
        ref.get("port") or None,
    )


def _is_canary_mirror(f: Mapping[str, Any], canary_host: str) -> bool:
    return (
        f.get("type") == "RequestMirror"
        and ((f.get("requestMirror") or {}).get("backendRef") or {}).get("name") == canary_host
    )


GATEWAYAPI_V1 = GatewayAPIRouter("v1")
GATEWAYAPI_V1BETA1 = GatewayAPIRouter("v1beta1")
