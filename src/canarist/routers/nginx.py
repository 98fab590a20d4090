"""NGINX ingress: a canary Ingress ``<ingressRef.name>-canary`` next to the user's Ingress.

Flagger's counterpart: ``pkg/router/ingress.go``. The user's Ingress (``spec.ingressRef``) is read, never
written. The canary Ingress is a copy of it whose backends named ``<apex>`` point at ``<apex>-canary``;
ingress-nginx's canary annotations (``<prefix>/canary``, ``canary-weight``, ``canary-by-header``,
``canary-by-header-value``, ``canary-by-header-pattern``, ``canary-by-cookie``) carry the routes. The prefix
is the operator's ``-ingress-annotations-prefix`` (default ``nginx.ingress.kubernetes.io``).

Annotations built by :meth:`NginxRouter.desired` for given :class:`Routes`:

* canary weight ``w`` > 0: ``canary: "true"``, ``canary-weight: "<w>"``;
* A/B (``analysis.match``) with weight > 0: ``canary: "true"``, ``canary-weight: "0"`` and, from the
  match headers, ``canary-by-cookie: <name>`` for a ``cookie`` header (its exact value is the cookie name),
  ``canary-by-header: <header>`` plus ``canary-by-header-value`` (exact) or ``canary-by-header-pattern``
  (regex) for any other header;
* weight 0 (both modes): the base annotations ``canary: "true"``, ``canary-weight: "0"``.

Where this differs from Flagger (deliberately):

* only ``networking.k8s.io/v1`` Ingresses are read (the API server converts older versions); a backend in
  the legacy ``serviceName``/``servicePort`` shape is refused with a :class:`RouterConfigError`;
* matches nginx cannot express are refused instead of being half applied: more than one header (or more
  than one cookie) across ``analysis.match``, a header matched by prefix or suffix, a cookie not matched
  by an exact name. Flagger keeps the last header it sees (in Go map order) and drops a prefix/suffix,
  which routes on the header's ``always`` value only. The ``cookie`` header name is matched case-
  insensitively. Non-header match fields (uri, queryParams, ...) are ignored, as in Flagger;
* labels and annotations containing ``toolkit.fluxcd.io`` are not copied to the canary Ingress (Flux's
  ownership labels would make it look like an object of the user's Kustomization);
* a Reconcile also refreshes the canary Ingress's labels and non-canary annotations from the user's
  Ingress (Flagger copies them once, at creation, and afterwards only updates the spec);
* the A/B annotations always come with ``canary-weight: "0"`` (Flagger keeps whatever weight annotation
  was there, which is ``"0"`` in practice), so the result does not depend on the history;
* read-back reports the A/B routing ``(0, 100)`` whenever a ``canary-by-header``/``canary-by-cookie``
  annotation is set (that is what nginx routes), and refuses an Ingress without ``canary: "true"`` or with a
  weight outside 0..100.

Finalize writes nothing: the canary Ingress belongs to the canary (owner reference) and goes with it, and
the user's Ingress was never changed (Flagger's Finalize does nothing either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canarist.api import HTTPMatchRequest
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
DEFAULT_ANNOTATIONS_PREFIX = "nginx.ingress.kubernetes.io"
#: the analysis.match header that selects ``canary-by-cookie`` instead of ``canary-by-header``.
COOKIE_HEADER = "cookie"
INGRESS_REF_PATH = "spec.ingressRef"
MATCH_PATH = "spec.analysis.match"


def annotations_prefix(ctx: RouteContext) -> str:
    """The canary annotations' prefix: ``-ingress-annotations-prefix`` or ``nginx.ingress.kubernetes.io``."""
    return ctx.ingress_annotations_prefix.rstrip("/") or DEFAULT_ANNOTATIONS_PREFIX


def annotation(ctx: RouteContext, suffix: str) -> str:
    """``<prefix>/<suffix>``: ``annotation(ctx, "canary-weight")``."""
    return f"{annotations_prefix(ctx)}/{suffix}"


def is_canary_annotation(ctx: RouteContext, key: str) -> bool:
    """``<prefix>/canary`` and every ``<prefix>/canary-*`` key (what Flagger strips from the copy)."""
    return key.startswith(annotation(ctx, "canary"))


def is_routing_annotation(ctx: RouteContext, key: str) -> bool:
    """The ``<prefix>/canary-*`` keys: the routing state, which only SetRoutes changes."""
    return key.startswith(annotation(ctx, "canary-"))


@dataclass(frozen=True)
class HeaderMatch:
    """What ingress-nginx can route on: one cookie name and one header (with an exact value or a regex)."""

    cookie: str = ""
    header: str = ""
    value: str = ""
    pattern: str = ""

    @property
    def empty(self) -> bool:
        return not (self.cookie or self.header)


def header_match(matches: list[HTTPMatchRequest]) -> HeaderMatch:
    """The cookie and header of ``analysis.match``; raises :class:`RouterConfigError` for what nginx cannot
    express (two headers, two cookies, prefix/suffix matches, a cookie without an exact name)."""
    cookies: list[str] = []
    headers: list[tuple[str, str, str]] = []
    for index, entry in enumerate(matches):
        for name, match in entry.headers.items():
            where = f"{MATCH_PATH}[{index}].headers.{name}"
            if match.prefix is not None or match.suffix is not None:
                raise RouterConfigError(f"{where}: nginx matches a header by exact value or regex only")
            if name.lower() == COOKIE_HEADER:
                if not match.exact:
                    raise RouterConfigError(f"{where}: nginx needs the cookie name as an exact match")
                if match.exact not in cookies:
                    cookies.append(match.exact)
                continue
            found = (name, match.exact or "", match.regex or "")
            if found not in headers:
                headers.append(found)
    if len(cookies) > 1:
        raise RouterConfigError(f"{MATCH_PATH}: nginx routes on one cookie, got {', '.join(cookies)}")
    if len(headers) > 1:
        names = ", ".join(h[0] for h in headers)
        raise RouterConfigError(f"{MATCH_PATH}: nginx routes on one header, got {names}")
    header, value, pattern = headers[0] if headers else ("", "", "")
    return HeaderMatch(cookie=cookies[0] if cookies else "", header=header, value=value, pattern=pattern)


class NginxRouter:
    """ingress-nginx canary Ingress (``networking.k8s.io/v1``)."""

    name = "nginx"
    kinds: tuple[ResourceKind, ...] = (resources.INGRESS,)
    capabilities = RouterCapabilities(weights=True, matches=True, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset({"ingress_annotations_prefix"})

    # -- object identities -------------------------------------------------------------------------

    def ingress_name(self, ctx: RouteContext) -> str:
        """The user's Ingress (``spec.ingressRef.name``); raises :class:`RouterConfigError` when unset."""
        ref = ctx.canary.spec.ingress_ref
        if ref is None or not ref.name:
            raise RouterConfigError(f"{INGRESS_REF_PATH}: required for provider nginx")
        return ref.name

    def canary_ingress_name(self, ctx: RouteContext) -> str:
        return f"{self.ingress_name(ctx)}-canary"

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        name = self.canary_ingress_name(ctx)
        self._header_match(ctx)
        return [ObjectRef(API_VERSION, KIND, name, ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return [Reference(API_VERSION, KIND, self.ingress_name(ctx), ctx.namespace, path=INGRESS_REF_PATH)]

    # -- desired state -----------------------------------------------------------------------------

    def _header_match(self, ctx: RouteContext) -> HeaderMatch:
        analysis = ctx.canary.analysis()
        return header_match(analysis.match) if analysis is not None and analysis.match else HeaderMatch()

    def referenced_ingress(self, ctx: RouteContext) -> Obj:
        """The user's Ingress from ``ctx.references``; raises :class:`RouterConfigError` when absent."""
        name = self.ingress_name(ctx)
        found = ctx.references.get(f"{KIND}/{name}")
        if found is None:
            raise RouterConfigError(f"{INGRESS_REF_PATH}: {KIND} {name}.{ctx.namespace} not found")
        return found

    def canary_spec(self, ctx: RouteContext, ingress: Mapping[str, Any]) -> Obj:
        """The user's Ingress spec with the ``<apex>`` backends renamed to ``<apex>-canary``."""
        spec: Obj = deep(dict(ingress.get("spec") or {}))
        name = (ingress.get("metadata") or {}).get("name", "")
        renamed = False
        for rule in spec.get("rules") or []:
            for path in get_path(rule, "http", "paths") or []:
                backend = path.get("backend") or {}
                if "serviceName" in backend:
                    raise RouterConfigError(
                        f"{INGRESS_REF_PATH}: ingress {name} has a backend in the networking.k8s.io/v1beta1 "
                        "shape (serviceName/servicePort); only networking.k8s.io/v1 backends "
                        "(service.name/service.port) are supported"
                    )
                service = backend.get("service")
                if isinstance(service, dict) and service.get("name") == ctx.apex:
                    service["name"] = ctx.canary_host
                    renamed = True
        if not renamed:
            raise RouterConfigError(f"backend {ctx.apex} not found in ingress {name}")
        return spec

    def canary_annotations(self, ctx: RouteContext, routes: Routes) -> dict[str, str]:
        """The ``<prefix>/canary*`` annotations carrying ``routes``."""
        out = {annotation(ctx, "canary"): "true", annotation(ctx, "canary-weight"): "0"}
        if routes.canary <= 0:
            return out
        match = self._header_match(ctx)
        if match.empty:
            out[annotation(ctx, "canary-weight")] = str(min(routes.canary, 100))
            return out
        if match.cookie:
            out[annotation(ctx, "canary-by-cookie")] = match.cookie
        if match.header:
            out[annotation(ctx, "canary-by-header")] = match.header
            if match.value:
                out[annotation(ctx, "canary-by-header-value")] = match.value
            if match.pattern:
                out[annotation(ctx, "canary-by-header-pattern")] = match.pattern
        return out

    def base_annotations(self, ctx: RouteContext, original: Mapping[str, str] | None) -> dict[str, str]:
        """The user's annotations without the canary ones, kubectl's record and the Flux toolkit keys."""
        return {
            k: v
            for k, v in filter_metadata(original).items()
            if k != KUBECTL_LAST_APPLIED and not is_canary_annotation(ctx, k)
        }

    def canary_ingress(self, ctx: RouteContext, routes: Routes) -> Obj:
        ingress = self.referenced_ingress(ctx)
        source_meta = ingress.get("metadata") or {}
        spec = self.canary_spec(ctx, ingress)
        annotations = self.base_annotations(ctx, source_meta.get("annotations"))
        annotations.update(self.canary_annotations(ctx, routes))
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
        ingress = observed.get(f"{KIND}/{name}")
        if ingress is None:
            raise RoutesError(f"{KIND} {name}.{ctx.namespace} query error: not found")
        annotations: Mapping[str, str] = get_path(ingress, "metadata", "annotations") or {}
        if annotations.get(annotation(ctx, "canary")) != "true":
            raise RoutesError(
                f'{KIND} {name}.{ctx.namespace} is not a canary ingress: {annotation(ctx, "canary")} is not "true"'
            )
        if (
            annotation(ctx, "canary-by-header") in annotations
            or annotation(ctx, "canary-by-cookie") in annotations
        ):
            return Routes(primary=0, canary=100)
        key = annotation(ctx, "canary-weight")
        text = annotations.get(key)
        if text is None:
            raise RoutesError(f"{KIND} {name}.{ctx.namespace} has no {key} annotation")
        try:
            weight = int(str(text).strip())
        except ValueError:
            raise RoutesError(
                f"{KIND} {name}.{ctx.namespace} annotation {key}: {text!r} is not a number"
            ) from None
        if not 0 <= weight <= 100:
            raise RoutesError(f"{KIND} {name}.{ctx.namespace} annotation {key}: {weight} is outside 0..100")
        return Routes(primary=100 - weight, canary=weight)

    # -- reconcile policy --------------------------------------------------------------------------

    def _comparable(self, ctx: RouteContext, obj: Mapping[str, Any]) -> Obj:
        meta = obj.get("metadata") or {}
        annotations = {
            k: v for k, v in (meta.get("annotations") or {}).items() if not is_routing_annotation(ctx, k)
        }
        return {"spec": obj.get("spec") or {}, "labels": meta.get("labels") or {}, "annotations": annotations}

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        """The spec, labels or non-routing annotations differ (the ``<prefix>/canary-*`` keys are ignored)."""
        return self._comparable(ctx, observed_obj) != self._comparable(ctx, desired_obj)

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default): the desired spec, labels and annotations on the observed object,
        keeping its routing annotations (``<prefix>/canary-*``) and everything else of its identity.

        ``set_routes=True`` (SetRoutes): only the canary annotations (``<prefix>/canary*``) change, to the
        desired ones; the rest of the observed object is kept as it is."""
        out: Obj = deep(observed_obj)
        meta = out.setdefault("metadata", {})
        observed_annotations: Mapping[str, str] = meta.get("annotations") or {}
        desired_annotations: Mapping[str, str] = get_path(desired_obj, "metadata", "annotations") or {}
        if set_routes:
            annotations = {k: v for k, v in observed_annotations.items() if not is_canary_annotation(ctx, k)}
            annotations.update({k: v for k, v in desired_annotations.items() if is_canary_annotation(ctx, k)})
            set_metadata_map(meta, "annotations", annotations)
            return out
        out["spec"] = deep(desired_obj.get("spec") or {})
        annotations = {k: v for k, v in desired_annotations.items() if not is_routing_annotation(ctx, k)}
        annotations.update({k: v for k, v in observed_annotations.items() if is_routing_annotation(ctx, k)})
        set_metadata_map(meta, "annotations", annotations)
        set_metadata_map(meta, "labels", get_path(desired_obj, "metadata", "labels") or {})
        if ctx.set_owner_refs and not meta.get("ownerReferences"):
            owners = get_path(desired_obj, "metadata", "ownerReferences")
            if owners:
                meta["ownerReferences"] = deep(owners)
        return out

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """Nothing to write: the canary Ingress is the canary's own (garbage-collected with it through its
        owner reference) and the user's Ingress was never changed. Flagger's Finalize does the same."""
        return []


NGINX = NginxRouter()
