"""AWS App Mesh: VirtualNodes, VirtualRouters and VirtualServices (providers ``appmesh:v1beta2`` and the
legacy ``appmesh``).

Flagger's counterpart: its App Mesh routers (one per controller API version). One class,
:class:`AppMeshRouter`, builds both; the API version decides the object shapes.

``appmesh:v1beta2`` (:data:`APPMESH_V1BETA2`, ``appmesh.k8s.aws/v1beta2``, App Mesh controller >= 1.0):

* VirtualNodes ``<apex>-primary`` and ``<apex>-canary``: one listener (``portMapping`` = the container port,
  i.e. an integer ``targetPort`` else ``port``; protocol ``grpc`` when ``portName`` contains ``grpc``, else
  ``http``; ``timeout.http.perRequest`` from ``service.timeout``), DNS service discovery
  ``<svc>.<ns>.svc.cluster.local.``, ``podSelector`` ``{<label>: <target>-primary}`` /
  ``{<label>: <target>}``, ``backends`` from ``service.backends`` (an ``arn:aws...`` entry by ARN, any other
  by VirtualService name) and a ``/dev/stdout`` access log when the Canary carries the annotation
  ``appmesh.flagger.app/accesslog: enabled``;
* VirtualRouters ``<apex>`` (the weighted one) and ``<apex>-canary`` (canary 100): one listener and the
  route named after the router: ``httpRoute`` {match.prefix = ``service.match[0].uri.prefix`` or ``/``,
  timeout, retryPolicy, action.weightedTargets [canary, primary]}. With ``analysis.match`` the apex router
  carries two routes instead: ``<apex>-a`` (priority 10, prefix + the header matches, weighted) and
  ``<apex>-b`` (priority 20, primary 100);
* VirtualServices ``<apex>`` and ``<apex>-canary``, each provided by its router. With ``service.hosts`` the
  apex one carries the App Mesh gateway annotations ``gateway.appmesh.k8s.aws/expose|domain|timeout|retries``.

``appmesh`` (:data:`APPMESH`, ``appmesh.k8s.aws/v1beta1``, the pre-1.0 controller; needs
``service.meshName``): the v1beta1 API has no VirtualRouter kind: the router and its routes are embedded in
the VirtualService. So the legacy provider writes

* VirtualNodes ``<apex>`` (DNS ``<apex>-primary.<ns>``), ``<apex>-primary`` and ``<apex>-canary``, each with
  ``meshName``, a listener on ``service.port``, ``serviceDiscovery.dns.hostName`` ``<svc>.<ns>``, backends by
  ``virtualServiceName`` (and the access log, see below); no pod selector (the v1beta1 injector assigns pods);
* VirtualServices ``<apex>.<ns>`` and ``<apex>-canary.<ns>`` with ``meshName``, ``virtualRouter`` {name
  ``<apex>`` / ``<apex>-canary``, listeners} and ``routes`` [{name, ``http`` {match, retryPolicy
  (``perRetryTimeoutMillis``), action.weightedTargets [{virtualNodeName, weight}]}, priority}]; no timeouts
  (the v1beta1 route has none).

What was confirmed for v1beta1, and what not: the field names and nesting above (``meshName``,
``hostName``, ``virtualNodeName``, ``http`` instead of ``httpRoute``, ``perRetryTimeoutMillis``, the
embedded ``virtualRouter``, the ``logging.accessLog.file.path`` field, the lack of a VirtualRouter kind and
of any timeout or pod selector) come from the v1beta1 API types Flagger compiles against and from what its
legacy router writes (object names included). The CRD manifests of the pre-1.0
aws-app-mesh-controller themselves (plural names, whether they declare a status subresource) could not be
read; the plurals used here (``virtualnodes``, ``virtualservices``) follow the Kubernetes convention.

Differences from Flagger, on purpose:

* every object is rebuilt on Reconcile, including the VirtualServices (Flagger creates a v1beta2
  VirtualService once and never updates it) and the gateway annotations (only the ``gateway.appmesh.k8s.aws/``
  keys are touched; Flagger replaces all annotations of a legacy VirtualService);
* the legacy VirtualNodes get the access log too when the annotation is set (the v1beta1 type has the
  field; Flagger's legacy router ignores the annotation);
* ``retryOn`` entries are stripped of spaces (``"5xx, gateway-error"`` gives two valid events);
* an ``analysis.match`` entry with anything but ``headers`` (``queryParams``, ``uri``, ``method``...) is
  refused by :meth:`AppMeshRouter.objects` with its path, where Flagger drops it silently. A ``cookie``
  header match (a regex on the ``cookie`` header, as Flagger's App Mesh tutorial shows) is a header match
  and is accepted. Several match entries are ANDed into the one ``<apex>-a`` route, as Flagger does.

The pod selectors use the target's selector label and value (``RouteContext.selector_label`` /
``selector_value``, set by the operator from the target); without them, Flagger's default label ``app``
and the target's name (:func:`pod_selector`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarist.api import Canary, HTTPMatchRequest
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
)
from canarist.workloads._meta import controller_ref, deep, get_path, prune

GROUP = "appmesh.k8s.aws"
V1BETA1 = "v1beta1"
V1BETA2 = "v1beta2"

VIRTUAL_NODE_V1BETA2 = ResourceKind(GROUP, V1BETA2, "virtualnodes", "VirtualNode", status_subresource=True)
VIRTUAL_ROUTER_V1BETA2 = ResourceKind(
    GROUP, V1BETA2, "virtualrouters", "VirtualRouter", status_subresource=True
)
VIRTUAL_SERVICE_V1BETA2 = ResourceKind(
    GROUP, V1BETA2, "virtualservices", "VirtualService", status_subresource=True
)
VIRTUAL_NODE_V1BETA1 = ResourceKind(GROUP, V1BETA1, "virtualnodes", "VirtualNode")
VIRTUAL_SERVICE_V1BETA1 = ResourceKind(GROUP, V1BETA1, "virtualservices", "VirtualService")

#: the Canary annotation that turns on the Envoy access log of the VirtualNodes.
ACCESS_LOG_ANNOTATION = "appmesh.flagger.app/accesslog"
ACCESS_LOG_ENABLED = "enabled"
ACCESS_LOG_PATH = "/dev/stdout"
#: the annotations of the apex VirtualService read by the App Mesh gateway.
GATEWAY_PREFIX = "gateway.appmesh.k8s.aws/"
GATEWAY_EXPOSE = GATEWAY_PREFIX + "expose"
GATEWAY_DOMAIN = GATEWAY_PREFIX + "domain"
GATEWAY_TIMEOUT = GATEWAY_PREFIX + "timeout"
GATEWAY_RETRIES = GATEWAY_PREFIX + "retries"
#: Flagger's ``-selector-labels`` picks the first of its labels present on the target; ``app`` by default.
DEFAULT_SELECTOR_LABEL = "app"
SVC_SUFFIX = "svc.cluster.local."
#: fields the App Mesh controller (or its webhook) fills in; kept from the observed object.
SYSTEM_FIELDS = ("awsName", "meshRef")
#: Flagger's retry defaults: one attempt, 250ms per try, on gateway errors.
DEFAULT_PER_TRY_MS = 250
DEFAULT_RETRY_ON = "gateway-error"
PRIORITY_A = 10
PRIORITY_B = 20
#: ``analysis.match`` fields App Mesh can carry: only the headers (and a match's name).
_ALLOWED_MATCH_FIELDS = frozenset({"headers", "name"})


def protocol(canary: Canary) -> str:
    """``grpc`` when ``service.portName`` contains ``grpc``, else ``http``."""
    return "grpc" if "grpc" in canary.spec.service.port_name else "http"


def container_port(canary: Canary) -> int:
    """An integer ``targetPort`` above 0, else ``port`` (a named or string targetPort is not a number)."""
    service = canary.spec.service
    target = service.target_port
    if isinstance(target, int) and not isinstance(target, bool) and target > 0:
        return target
    return service.port


def _millis(text: str | None) -> int | None:
    """A Go duration in whole milliseconds (truncated), None when empty or unparsable."""
    if not text:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError:
        return None
    nanos = round(seconds * 1e9)
    millis = abs(nanos) // 1_000_000
    return millis if nanos >= 0 else -millis


def route_prefix(canary: Canary) -> str:
    """``service.match[0].uri.prefix``, else ``/`` (App Mesh routes match on a prefix only)."""
    match = canary.spec.service.match
    if match and match[0].uri is not None and match[0].uri.prefix:
        return match[0].uri.prefix
    return "/"


def pod_selector(ctx: RouteContext) -> tuple[str, str, str]:
    """(label, primary value, canary value) of the VirtualNodes' pod selectors.

    The target's selector label and value from the context (``RouteContext.selector_label``), or, when the
    target was not read, Flagger's default: label ``app``, values ``<target>-primary`` and ``<target>``.
    """
    label = ctx.selector_label or DEFAULT_SELECTOR_LABEL
    value = ctx.selector_value or ctx.canary.target_name()
    return label, f"{value}-primary", value


def access_log_enabled(canary: Canary) -> bool:
    return canary.metadata.annotations.get(ACCESS_LOG_ANNOTATION) == ACCESS_LOG_ENABLED


def gateway_annotations(canary: Canary) -> dict[str, str]:
    """The App Mesh gateway annotations of the apex VirtualService; empty without ``service.hosts``.

    ``domain`` lists every host followed by a comma (``a.example.com,b.example.com,``), as Flagger writes it.
    """
    service = canary.spec.service
    if not service.hosts:
        return {}
    out = {GATEWAY_EXPOSE: "true", GATEWAY_DOMAIN: "".join(f"{h}," for h in service.hosts)}
    if service.timeout:
        out[GATEWAY_TIMEOUT] = service.timeout
    if service.retries is not None and (service.retries.attempts or 0) > 0:
        out[GATEWAY_RETRIES] = str(service.retries.attempts)
    return out


def _header_matches(matches: list[HTTPMatchRequest]) -> list[Obj]:
    """Every header of every ``analysis.match`` entry: ``{name, match: {exact|prefix|regex|suffix}}``."""
    headers: list[Obj] = []
    for entry in matches:
        for name, value in entry.headers.items():
            method = prune(
                {"exact": value.exact, "prefix": value.prefix, "regex": value.regex, "suffix": value.suffix}
            )
            header: Obj = {"name": name}
            if method:
                header["match"] = method
            headers.append(header)
    return headers


def match_problems(canary: Canary) -> list[str]:
    """Path-qualified reasons why ``analysis.match`` cannot be routed by App Mesh (headers only)."""
    analysis = canary.analysis()
    if analysis is None:
        return []
    section = "analysis" if canary.spec.analysis is not None else "canaryAnalysis"
    problems: list[str] = []
    for index, entry in enumerate(analysis.match):
        for key in prune(entry.to_dict()):
            if key not in _ALLOWED_MATCH_FIELDS:
                problems.append(
                    f"spec.{section}.match[{index}].{key}: App Mesh routes match on headers only; "
                    f"remove {key} or use a provider that can match it"
                )
    return problems


class AppMeshRouter:
    """App Mesh VirtualNodes, VirtualRouters and VirtualServices of one controller API version."""

    capabilities = RouterCapabilities(weights=True, matches=True, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    def __init__(self, name: str, version: str) -> None:
        if version not in (V1BETA1, V1BETA2):
            raise ValueError(f"unknown App Mesh API version {version!r}")
        self.name = name
        self.version = version
        self.api_version = f"{GROUP}/{version}"
        self.kinds: tuple[ResourceKind, ...] = (
            (VIRTUAL_NODE_V1BETA2, VIRTUAL_ROUTER_V1BETA2, VIRTUAL_SERVICE_V1BETA2)
            if version == V1BETA2
            else (VIRTUAL_NODE_V1BETA1, VIRTUAL_SERVICE_V1BETA1)
        )

    @property
    def legacy(self) -> bool:
        return self.version == V1BETA1

    def __repr__(self) -> str:
        return f"AppMeshRouter({self.name!r}, {self.version!r})"

    # -- names -------------------------------------------------------------------------------------

    def _route_key(self) -> str:
        return "http" if self.legacy else "httpRoute"

    def virtual_service_name(self, ctx: RouteContext, router_name: str) -> str:
        """``<router>.<ns>`` for v1beta1 (Flagger's legacy naming), else the router's name."""
        return f"{router_name}.{ctx.namespace}" if self.legacy else router_name

    def weighted_object(self, ctx: RouteContext) -> tuple[str, str]:
        """(kind, name) of the object whose first route carries the weights."""
        if self.legacy:
            return "VirtualService", self.virtual_service_name(ctx, ctx.apex)
        return "VirtualRouter", ctx.apex

    def _check(self, ctx: RouteContext) -> None:
        problems: list[str] = []
        if self.legacy and not ctx.canary.spec.service.mesh_name:
            problems.append(f"spec.service.meshName: required for provider {self.name}")
        problems += match_problems(ctx.canary)
        if problems:
            raise RouterConfigError("; ".join(problems))

    # -- object identities -------------------------------------------------------------------------

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        self._check(ctx)
        av, ns = self.api_version, ctx.namespace
        if self.legacy:
            return [
                ObjectRef(av, "VirtualNode", ctx.apex, ns),
                ObjectRef(av, "VirtualNode", ctx.primary, ns),
                ObjectRef(av, "VirtualNode", ctx.canary_host, ns),
                ObjectRef(av, "VirtualService", self.virtual_service_name(ctx, ctx.apex), ns),
                ObjectRef(av, "VirtualService", self.virtual_service_name(ctx, ctx.canary_host), ns),
            ]
        return [
            ObjectRef(av, "VirtualNode", ctx.primary, ns),
            ObjectRef(av, "VirtualNode", ctx.canary_host, ns),
            ObjectRef(av, "VirtualRouter", ctx.apex, ns),
            ObjectRef(av, "VirtualRouter", ctx.canary_host, ns),
            ObjectRef(av, "VirtualService", ctx.apex, ns),
            ObjectRef(av, "VirtualService", ctx.canary_host, ns),
        ]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    # -- desired state -----------------------------------------------------------------------------

    def _metadata(self, ctx: RouteContext, name: str, annotations: Mapping[str, str] | None = None) -> Obj:
        metadata: Obj = {"name": name, "namespace": ctx.namespace}
        if annotations:
            metadata["annotations"] = dict(annotations)
        if ctx.set_owner_refs:
            metadata["ownerReferences"] = [controller_ref(ctx.canary)]
        return metadata

    def _object(self, kind: str, metadata: Obj, spec: Obj) -> Obj:
        return {"apiVersion": self.api_version, "kind": kind, "metadata": metadata, "spec": spec}

    def _timeout(self, canary: Canary) -> Obj | None:
        """``{perRequest: {unit: ms, value}}`` from ``service.timeout`` (v1beta2 only)."""
        millis = _millis(canary.spec.service.timeout)
        if millis is None:
            return None
        return {"perRequest": {"unit": "ms", "value": millis}}

    def _backends(self, canary: Canary) -> list[Obj]:
        out: list[Obj] = []
        for backend in canary.spec.service.backends:
            if self.legacy:
                out.append({"virtualService": {"virtualServiceName": backend}})
            elif backend.startswith("arn:aws"):
                out.append({"virtualService": {"virtualServiceARN": backend}})
            else:
                out.append({"virtualService": {"virtualServiceRef": {"name": backend}}})
        return out

    def virtual_node(self, ctx: RouteContext, name: str, host: str, selector: str | None) -> Obj:
        """One VirtualNode; ``host`` is the Service name it discovers, ``selector`` the pod label value."""
        canary = ctx.canary
        spec: Obj = {}
        listener: Obj
        if self.legacy:
            spec["meshName"] = canary.spec.service.mesh_name
            listener = {"portMapping": {"port": canary.spec.service.port, "protocol": protocol(canary)}}
            spec["listeners"] = [listener]
            spec["serviceDiscovery"] = {"dns": {"hostName": f"{host}.{ctx.namespace}"}}
        else:
            label, _, _ = pod_selector(ctx)
            if selector is not None:
                spec["podSelector"] = {"matchLabels": {label: selector}}
            listener = {"portMapping": {"port": container_port(canary), "protocol": protocol(canary)}}
            timeout = self._timeout(canary)
            if timeout is not None:
                listener["timeout"] = {"http": timeout}
            spec["listeners"] = [listener]
            spec["serviceDiscovery"] = {"dns": {"hostname": f"{host}.{ctx.namespace}.{SVC_SUFFIX}"}}
        backends = self._backends(canary)
        if backends:
            spec["backends"] = backends
        if access_log_enabled(canary):
            spec["logging"] = {"accessLog": {"file": {"path": ACCESS_LOG_PATH}}}
        return self._object("VirtualNode", self._metadata(ctx, name), spec)

    def _retry_policy(self, canary: Canary) -> Obj | None:
        retries = canary.spec.service.retries
        if retries is None:
            return None
        per_try = _millis(retries.per_try_timeout)
        if per_try is None:
            per_try = DEFAULT_PER_TRY_MS
        attempts = retries.attempts if retries.attempts and retries.attempts > 0 else 1
        events = [e.strip() for e in (retries.retry_on or DEFAULT_RETRY_ON).split(",") if e.strip()]
        policy: Obj = (
            {"perRetryTimeoutMillis": per_try}
            if self.legacy
            else {"perRetryTimeout": {"unit": "ms", "value": per_try}}
        )
        policy["maxRetries"] = attempts
        policy["httpRetryEvents"] = events or [DEFAULT_RETRY_ON]
        return policy

    def _target(self, node: str, weight: int) -> Obj:
        if self.legacy:
            return {"virtualNodeName": node, "weight": weight}
        return {"virtualNodeRef": {"name": node}, "weight": weight}

    def _action(self, ctx: RouteContext, routes: Routes) -> Obj:
        return {
            "weightedTargets": [
                self._target(ctx.canary_host, routes.canary),
                self._target(ctx.primary, routes.primary),
            ]
        }

    def _route(
        self, ctx: RouteContext, name: str, action: Obj, headers: list[Obj], priority: int | None
    ) -> Obj:
        canary = ctx.canary
        match: Obj = {"prefix": route_prefix(canary)}
        if headers:
            match["headers"] = headers
        http: Obj = {"match": match}
        if not self.legacy:
            timeout = self._timeout(canary)
            if timeout is not None:
                http["timeout"] = timeout
        retry = self._retry_policy(canary)
        if retry is not None:
            http["retryPolicy"] = retry
        http["action"] = action
        route: Obj = {"name": name, self._route_key(): http}
        if priority is not None:
            route["priority"] = priority
        return route

    def router_routes(self, ctx: RouteContext, router_name: str, routes: Routes) -> list[Obj]:
        """The routes of the apex router (``routes``) or of the canary router (canary 100)."""
        if router_name != ctx.apex:
            return [self._route(ctx, router_name, self._action(ctx, Routes(0, 100)), [], None)]
        analysis = ctx.canary.analysis()
        if analysis is not None and analysis.match:
            return [
                self._route(
                    ctx,
                    f"{ctx.apex}-a",
                    self._action(ctx, routes),
                    _header_matches(analysis.match),
                    PRIORITY_A,
                ),
                self._route(
                    ctx,
                    f"{ctx.apex}-b",
                    {"weightedTargets": [self._target(ctx.primary, 100)]},
                    [],
                    PRIORITY_B,
                ),
            ]
        return [self._route(ctx, router_name, self._action(ctx, routes), [], None)]

    def _router_listener(self, canary: Canary) -> Obj:
        port = canary.spec.service.port if self.legacy else container_port(canary)
        return {"portMapping": {"port": port, "protocol": protocol(canary)}}

    def virtual_router(self, ctx: RouteContext, router_name: str, routes: Routes) -> Obj:
        """A v1beta2 VirtualRouter."""
        spec: Obj = {
            "listeners": [self._router_listener(ctx.canary)],
            "routes": self.router_routes(ctx, router_name, routes),
        }
        return self._object("VirtualRouter", self._metadata(ctx, router_name), spec)

    def virtual_service(self, ctx: RouteContext, router_name: str, routes: Routes) -> Obj:
        """The VirtualService provided by ``router_name`` (v1beta1: with the router and routes inside)."""
        annotations = gateway_annotations(ctx.canary) if router_name == ctx.apex else {}
        metadata = self._metadata(ctx, self.virtual_service_name(ctx, router_name), annotations)
        spec: Obj
        if self.legacy:
            spec = {
                "meshName": ctx.canary.spec.service.mesh_name,
                "virtualRouter": {"name": router_name, "listeners": [self._router_listener(ctx.canary)]},
                "routes": self.router_routes(ctx, router_name, routes),
            }
        else:
            spec = {"provider": {"virtualRouter": {"virtualRouterRef": {"name": router_name}}}}
        return self._object("VirtualService", metadata, spec)

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        self._check(ctx)
        primary_sel, canary_sel = pod_selector(ctx)[1:]
        if self.legacy:
            return [
                self.virtual_node(ctx, ctx.apex, ctx.primary, None),
                self.virtual_node(ctx, ctx.primary, ctx.primary, None),
                self.virtual_node(ctx, ctx.canary_host, ctx.canary_host, None),
                self.virtual_service(ctx, ctx.apex, routes),
                self.virtual_service(ctx, ctx.canary_host, routes),
            ]
        return [
            self.virtual_node(ctx, ctx.primary, ctx.primary, primary_sel),
            self.virtual_node(ctx, ctx.canary_host, ctx.canary_host, canary_sel),
            self.virtual_router(ctx, ctx.apex, routes),
            self.virtual_router(ctx, ctx.canary_host, routes),
            self.virtual_service(ctx, ctx.apex, routes),
            self.virtual_service(ctx, ctx.canary_host, routes),
        ]

    # -- read back ---------------------------------------------------------------------------------

    def _target_name(self, target: Mapping[str, Any]) -> Any:
        if self.legacy:
            return target.get("virtualNodeName")
        return get_path(target, "virtualNodeRef", "name")

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        kind, name = self.weighted_object(ctx)
        obj = observed.get(f"{kind}/{name}")
        label = f"{kind} {name}" if self.legacy else f"{kind} {name}.{ctx.namespace}"
        if obj is None:
            raise RoutesError(f"{label} query error: not found")
        found = get_path(obj, "spec", "routes") or []
        targets = get_path(found[0], self._route_key(), "action", "weightedTargets") if found else None
        if not isinstance(targets, list) or len(targets) != 2:
            raise RoutesError(f"{label} routes not found")
        primary = canary = 0
        for target in targets:
            node = self._target_name(target)
            if node == ctx.canary_host:
                canary = int(target.get("weight") or 0)
            elif node == ctx.primary:
                primary = int(target.get("weight") or 0)
        if primary == 0 and canary == 0:
            raise RoutesError(f"{label} does not contain routes for {ctx.apex}-primary and {ctx.apex}-canary")
        return Routes(primary=primary, canary=canary)

    # -- reconcile policy --------------------------------------------------------------------------

    def _comparable(self, spec: Mapping[str, Any]) -> Obj:
        """The spec without the fields the controller fills in and without the weights."""
        out: Obj = prune(deep(dict(spec)))
        for key in SYSTEM_FIELDS:
            out.pop(key, None)
        for route in out.get("routes") or []:
            for target in get_path(route, self._route_key(), "action", "weightedTargets") or []:
                target.pop("weight", None)
        return out

    @staticmethod
    def _gateway(obj: Mapping[str, Any]) -> dict[str, str]:
        annotations = get_path(obj, "metadata", "annotations") or {}
        return {k: v for k, v in annotations.items() if k.startswith(GATEWAY_PREFIX)}

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        if self._gateway(observed_obj) != self._gateway(desired_obj):
            return True
        return self._comparable(observed_obj.get("spec") or {}) != self._comparable(
            desired_obj.get("spec") or {}
        )

    def _kept_actions(self, observed_spec: Mapping[str, Any], desired_spec: Obj) -> None:
        """Put the observed action back on each desired route of the same name that targets the same
        virtual nodes (Reconcile keeps the weights SetRoutes wrote)."""
        key = self._route_key()
        seen = {
            r.get("name"): get_path(r, key, "action")
            for r in observed_spec.get("routes") or []
            if isinstance(r, Mapping)
        }
        for route in desired_spec.get("routes") or []:
            old = seen.get(route.get("name"))
            new = get_path(route, key, "action")
            if not isinstance(old, Mapping) or not isinstance(new, dict):
                continue
            old_nodes = [self._target_name(t) for t in old.get("weightedTargets") or []]
            new_nodes = [self._target_name(t) for t in new.get("weightedTargets") or []]
            if old_nodes == new_nodes:
                route[key]["action"] = deep(dict(old))

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        """Reconcile update (default): the desired spec on the observed object, keeping the fields the
        App Mesh controller fills in (``awsName``, ``meshRef``), the weights of routes that still target
        the same nodes, and every annotation but the ``gateway.appmesh.k8s.aws/`` ones (set from the
        desired object).

        ``set_routes=True`` (SetRoutes): only the ``action`` of each route of the object carrying routes
        (VirtualRouter; v1beta1 VirtualService) changes, by route name; everything else is kept.
        """
        out: Obj = deep(observed_obj)
        desired_spec: Mapping[str, Any] = desired_obj.get("spec") or {}
        key = self._route_key()
        if set_routes:
            actions = {r.get("name"): get_path(r, key, "action") for r in desired_spec.get("routes") or []}
            for route in get_path(out, "spec", "routes") or []:
                action = actions.get(route.get("name"))
                if isinstance(action, Mapping) and isinstance(route.get(key), dict):
                    route[key]["action"] = deep(dict(action))
            return out
        observed_spec: Mapping[str, Any] = observed_obj.get("spec") or {}
        spec: Obj = deep(dict(desired_spec))
        self._kept_actions(observed_spec, spec)
        for field_name in SYSTEM_FIELDS:
            if field_name in observed_spec:
                spec[field_name] = deep(observed_spec[field_name])
        out["spec"] = spec
        meta = out.setdefault("metadata", {})
        annotations = {
            k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(GATEWAY_PREFIX)
        }
        annotations.update(self._gateway(desired_obj))
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        return out

    # -- finalize ----------------------------------------------------------------------------------

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        """Every App Mesh object is generated and owned by the Canary: nothing to restore."""
        return []


APPMESH_V1BETA2 = AppMeshRouter("appmesh:v1beta2", V1BETA2)
APPMESH = AppMeshRouter("appmesh", V1BETA1)
#: both App Mesh routers, for the registry.
ROUTERS: tuple[AppMeshRouter, ...] = (APPMESH_V1BETA2, APPMESH)
