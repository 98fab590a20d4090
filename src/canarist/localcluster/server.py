"""The HTTP front end: Kubernetes REST paths, discovery, OpenAPI, Table output, watch streams, faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from canarist.localcluster import table
from canarist.localcluster.audit import MUTATING
from canarist.localcluster.errors import ApiError
from canarist.localcluster.faults import FAULT_STATUS
from canarist.localcluster.podlogs import serve_pod_log
from canarist.localcluster.protobuf import ProtobufError, decode_object
from canarist.localcluster.resources import ResourceType, version_priority
from canarist.localcluster.selectors import FieldSelector, LabelSelector
from canarist.localcluster.store import Watcher, WatchEvent

if TYPE_CHECKING:
    from canarist.localcluster.cluster import LocalCluster

Obj = dict[str, Any]
log = logging.getLogger("canarist.localcluster")

KUBE_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+canarist",
    "gitCommit": "canarist-localcluster",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
EXTENSION_PREFIX = "localcluster.canarist.dev"
SELF_SUBJECT_REVIEW_PATH = ["apis", "authentication.k8s.io", "v1", "selfsubjectreviews"]
#: the token of the kubeconfig the local control plane writes, and the user it stands for
LOCAL_TOKEN = "canarist-localcluster"
LOCAL_USER = "localcluster-admin"
JSON_TYPE = "application/json"
_LIVENESS_TICK = 1.0  # seconds between checks that an idle watch's client is still connected


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    response = web.Response(body=_dumps(obj), status=status, content_type=JSON_TYPE)
    for warning in warnings or []:
        escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
        response.headers.add("Warning", f'299 - "{escaped}"')
    return response


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.status(), error.code)
    for key, value in error.headers.items():
        response.headers[key] = value
    return response


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


def _protobuf_openapi_v2() -> bytes:
    """An openapi_v2.Document protobuf with only swagger and info (no definitions: kubectl skips validation)."""

    def field(number: int, payload: bytes) -> bytes:
        return bytes([(number << 3) | 2, len(payload)]) + payload

    info = field(1, b"Kubernetes") + field(2, KUBE_VERSION["gitVersion"].encode())
    return field(1, b"2.0") + field(2, info)


@dataclass
class ResourceRequest:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class HttpFrontend:
    """aiohttp handlers for one LocalCluster."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.api = cluster.api
        self._openapi_cache: dict[str, tuple[str, Obj]] = {}
        self.api.on_registry_change.append(self._openapi_cache.clear)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # ------------------------------------------------------------------ dispatch

    async def handle(self, request: web.Request) -> web.StreamResponse:
        response = await self._handle(request)
        if request.method in MUTATING and not request.path.startswith(f"/{EXTENSION_PREFIX}/"):
            self.cluster.audit.record(
                request.method, request.path_qs, request.headers.get("User-Agent", ""), response.status
            )
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except ApiError as error:
            return error_response(error)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # an unexpected bug answers 500 with the reason, like the apiserver
            log.exception("localcluster: %s %s failed", request.method, request.path)
            return error_response(ApiError(500, "InternalError", f"Internal error occurred: {exc!r}"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        segments = [s for s in request.path.split("/") if s]
        if not segments:
            return json_response({"paths": sorted(self._root_paths())})
        head = segments[0]
        if head == "version" and len(segments) == 1:
            return json_response(KUBE_VERSION)
        if head in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if head == "openapi":
            return self._openapi(request, segments[1:])
        if head == EXTENSION_PREFIX:
            return await self._extension(request, segments[1:])
        if segments == SELF_SUBJECT_REVIEW_PATH and request.method == "POST":
            return self._self_subject_review(request)
        if head == "api":
            if len(segments) == 1:
                return json_response(self._api_versions(request))
            group, version, rest = "", segments[1], segments[2:]
        elif head == "apis":
            if len(segments) == 1:
                return json_response(self._group_list())
            group = segments[1]
            if len(segments) == 2:
                found = self._group(group)
                if found is None:
                    raise self._unknown_path()
                return json_response(found)
            version, rest = segments[2], segments[3:]
        else:
            raise self._unknown_path()
        if not self.api.registry.resources(group, version):
            raise self._unknown_path()
        if not rest:
            return json_response(self._resource_list(group, version))
        return await self._resource(request, group, version, rest)

    def _self_subject_review(self, request: web.Request) -> web.StreamResponse:
        """``POST /apis/authentication.k8s.io/v1/selfsubjectreviews``: who the caller is. The local control
        plane authorizes everyone; it names the caller of its own kubeconfig's token (and anyone else by
        their bearer token) so that the audit trail of a command says who sent it."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        username = LOCAL_USER if token in ("", LOCAL_TOKEN) else f"token:{token[:8]}"
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "SelfSubjectReview",
            "metadata": {"creationTimestamp": None},
            "status": {
                "userInfo": {"username": username, "groups": ["system:masters", "system:authenticated"]}
            },
        }
        return json_response(review, status=201)

    def _unknown_path(self) -> ApiError:
        return ApiError(404, "NotFound", "the server could not find the requested resource")

    # ------------------------------------------------------------------ discovery

    def _root_paths(self) -> list[str]:
        paths = ["/api", "/api/v1", "/apis", "/version", "/healthz", "/openapi/v2", "/openapi/v3"]
        for group, versions in self.api.registry.groups().items():
            if group:
                paths.append(f"/apis/{group}")
                paths.extend(f"/apis/{group}/{v}" for v in versions)
        return paths

    def _api_versions(self, request: web.Request) -> Obj:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}],
        }

    def _group(self, group: str) -> Obj | None:
        versions = self.api.registry.groups().get(group)
        if not versions or not group:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def _group_list(self) -> Obj:
        groups = [g for g in (self._group(name) for name in self.api.registry.groups()) if g is not None]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, group: str, version: str) -> Obj:
        resources: list[Obj] = []
        for rt in self.api.registry.resources(group, version):
            entry: Obj = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            entry["storageVersionHash"] = base64.b64encode(
                hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()[:8]
            ).decode()
            resources.append(entry)
            if rt.scale is not None:
                resources.append(
                    {
                        "name": f"{rt.plural}/scale",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if rt.is_builtin("Pod"):
                resources.append(
                    {
                        "name": f"{rt.plural}/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": rt.kind,
                        "verbs": ["get"],
                    }
                )
            if rt.status_subresource:
                resources.append(
                    {
                        "name": f"{rt.plural}/status",
                        "singularName": "",
                        "namespaced": rt.namespaced,
                        "kind": rt.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    # ------------------------------------------------------------------ OpenAPI

    def _openapi(self, request: web.Request, rest: list[str]) -> web.Response:
        if rest == ["v2"]:
            if "protobuf" in request.headers.get("Accept", ""):
                return web.Response(
                    body=_protobuf_openapi_v2(),
                    content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                )
            return json_response(self._openapi_v2())
        if rest == ["v3"]:
            paths = {}
            for group, versions in self.api.registry.groups().items():
                for version in versions:
                    key = f"apis/{group}/{version}" if group else f"api/{version}"
                    digest, _ = self._openapi_gv(group, version)
                    paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
            return json_response({"paths": paths})
        if len(rest) >= 3 and rest[0] == "v3":
            if rest[1] == "api" and len(rest) == 3:
                group, version = "", rest[2]
            elif rest[1] == "apis" and len(rest) == 4:
                group, version = rest[2], rest[3]
            else:
                raise self._unknown_path()
            if not self.api.registry.resources(group, version):
                raise self._unknown_path()
            _, doc = self._openapi_gv(group, version)
            return json_response(doc)
        raise self._unknown_path()

    def _openapi_gv(self, group: str, version: str) -> tuple[str, Obj]:
        key = f"{group}/{version}"
        cached = self._openapi_cache.get(key)
        if cached is None:
            doc = _openapi_v3_doc(self.api.registry.resources(group, version))
            digest = hashlib.sha256(_dumps(doc)).hexdigest()[:32].upper()
            cached = (digest, doc)
            self._openapi_cache[key] = cached
        return cached

    def _openapi_v2(self) -> Obj:
        definitions: Obj = {}
        for rt in self.api.registry.all():
            if rt.schema is not None:
                definitions[_schema_name(rt)] = {
                    **rt.schema,
                    "x-kubernetes-group-version-kind": [
                        {"group": rt.group, "version": rt.version, "kind": rt.kind}
                    ],
                }
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
            "paths": {},
            "definitions": definitions,
        }

    # ------------------------------------------------------------------ canarist extension endpoints

    async def _extension(self, request: web.Request, rest: list[str]) -> web.Response:
        faults = self.cluster.faults
        if rest == ["v1", "faults"]:
            if request.method == "GET":
                return json_response(faults.to_dict())
            if request.method in ("PUT", "POST", "PATCH"):
                try:
                    faults.update(await request.json())
                except (ValueError, KeyError, TypeError) as exc:
                    raise ApiError.bad_request(f"invalid fault settings: {exc}") from exc
                return json_response(faults.to_dict())
            if request.method == "DELETE":
                faults.clear()
                return json_response(faults.to_dict())
            raise ApiError.method_not_allowed()
        if rest == ["v1", "audit"]:
            if request.method == "GET":
                try:
                    since = int(request.query.get("since", "0"))
                except ValueError as exc:
                    raise ApiError.bad_request(
                        f"since: not a whole number: {request.query['since']!r}"
                    ) from exc
                return json_response({"items": [e.to_dict() for e in self.cluster.audit.entries(since)]})
            if request.method == "DELETE":
                self.cluster.audit.clear()
                return json_response({"items": []})
            raise ApiError.method_not_allowed()
        if rest == ["v1", "compact"] and request.method == "POST":
            self.api.store.compact()
            return json_response({"compactedResourceVersion": str(self.api.store.compacted_rv)})
        raise self._unknown_path()

    # ------------------------------------------------------------------ resources

    def _parse(self, group: str, version: str, rest: list[str]) -> tuple[ResourceRequest, bool]:
        watch_prefix = rest[0] == "watch"
        if watch_prefix:
            rest = rest[1:]
        if not rest:
            raise self._unknown_path()
        registry = self.api.registry
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = registry.get(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise self._unknown_path()
        rt = self.api.resolve(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and not (
            (sub == "status" and rt.status_subresource)
            or (sub == "scale" and rt.scale)
            or (sub == "log" and rt.is_builtin("Pod") and not watch_prefix)
        ):
            raise self._unknown_path()
        if namespace is not None and not rt.namespaced:
            raise self._unknown_path()
        if rt.namespaced and name is not None and namespace is None:
            raise self._unknown_path()
        return ResourceRequest(rt, namespace, name, sub), watch_prefix

    async def _resource(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        req, watch_prefix = self._parse(group, version, rest)
        query = request.query
        method = request.method
        if req.subresource == "log":  # RBAC resource pods/log, verb get (RBAC is stored, not enforced)
            if method != "GET":
                raise ApiError.method_not_allowed()
            await self._inject("get")
            return await serve_pod_log(
                request, self.api, self.cluster.pod_logs, req.rt, req.namespace or "", str(req.name)
            )
        watching = watch_prefix or _truthy(query.get("watch"))
        if method == "GET":
            verb = "watch" if watching else ("get" if req.name else "list")
        elif method == "POST" and req.name is None:
            verb = "create"
        elif method == "PUT" and req.name is not None:
            verb = "update"
        elif method == "PATCH" and req.name is not None:
            verb = "patch"
        elif method == "DELETE":
            verb = "delete" if req.name else "deletecollection"
        else:
            raise ApiError.method_not_allowed()
        await self._inject(verb)
        rt, ns = req.rt, req.namespace or ""
        dry_run = query.get("dryRun") == "All"
        validation = query.get("fieldValidation") or "Warn"
        if verb == "watch":
            return await self._watch(request, req)
        if req.subresource == "scale":
            if verb == "get":
                return json_response(self.api.get_scale(rt, ns, str(req.name)))
            if verb == "update":
                return json_response(
                    self.api.update_scale(rt, ns, str(req.name), await _read_body(request), dry_run=dry_run)
                )
            if verb == "patch":
                return json_response(
                    self.api.patch_scale(
                        rt,
                        ns,
                        str(req.name),
                        request.headers.get("Content-Type", ""),
                        await request.read(),
                        dry_run=dry_run,
                    )
                )
            raise ApiError.method_not_allowed()
        if verb == "get":
            obj = self.api.get(rt, ns, str(req.name))
            if _wants_table(request):
                return json_response(
                    table.to_table(
                        rt,
                        [obj],
                        obj["metadata"].get("resourceVersion", ""),
                        query.get("includeObject", "PartialObjectMetadata"),
                    )
                )
            return json_response(obj)
        if verb == "list":
            return self._list(request, req)
        if verb == "create":
            body = await _read_body(request)
            obj, warnings = self.api.create(rt, ns, body, dry_run=dry_run, field_validation=validation)
            return json_response(obj, 201, warnings)
        if verb == "update":
            body = await _read_body(request)
            obj, warnings = self.api.update(
                rt,
                ns,
                str(req.name),
                body,
                subresource=req.subresource,
                dry_run=dry_run,
                field_validation=validation,
            )
            return json_response(obj, 200, warnings)
        if verb == "patch":
            raw = await request.read()
            obj, warnings, created = self.api.patch(
                rt,
                ns,
                str(req.name),
                request.headers.get("Content-Type", ""),
                raw,
                subresource=req.subresource,
                dry_run=dry_run,
                field_validation=validation,
            )
            return json_response(obj, 201 if created else 200, warnings)
        options = await _delete_options(request)
        dry_run = dry_run or "All" in (options.get("dryRun") or [])
        if verb == "delete":
            obj, gone = self.api.delete(rt, ns, str(req.name), options, dry_run=dry_run)
            if gone:
                meta = obj.get("metadata") or {}
                details: Obj = {"name": meta.get("name"), "kind": rt.plural, "uid": meta.get("uid")}
                if rt.group:
                    details["group"] = rt.group
                return json_response(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": details,
                    }
                )
            return json_response(obj)
        labels = LabelSelector.parse(query.get("labelSelector"))
        fields = FieldSelector.parse(query.get("fieldSelector"), rt.field_selectors)
        for obj in self.api.list_objects(rt, req.namespace, labels, fields):
            meta = obj["metadata"]
            self.api.delete(rt, str(meta.get("namespace") or ""), str(meta["name"]), options, dry_run=dry_run)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    async def _inject(self, verb: str) -> None:
        faults = self.cluster.faults
        delay = faults.delay_for(verb)
        if delay > 0:
            await asyncio.sleep(delay)
        code = faults.pick_error(verb)
        if code is not None:
            reason, message = FAULT_STATUS[code]
            error = ApiError(code, reason, message)
            if code == 429:
                error.details = {"retryAfterSeconds": 1}
                error.headers = {"Retry-After": "1"}
            raise error

    def _list(self, request: web.Request, req: ResourceRequest) -> web.Response:
        rt, query = req.rt, request.query
        labels = LabelSelector.parse(query.get("labelSelector"))
        fields = FieldSelector.parse(query.get("fieldSelector"), rt.field_selectors)
        items = self.api.list_objects(rt, req.namespace, labels, fields)
        rv = str(self.api.store.rv)
        meta: Obj = {"resourceVersion": rv}
        start = 0
        token = query.get("continue")
        if token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, rv = int(decoded["start"]), str(decoded["rv"])
                meta["resourceVersion"] = rv
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError.bad_request("continue key is not valid") from exc
        limit = int(query.get("limit") or 0)
        if start or limit:
            end = start + limit if limit > 0 else len(items)
            if end < len(items):
                meta["continue"] = base64.urlsafe_b64encode(_dumps({"start": end, "rv": rv})).decode()
                meta["remainingItemCount"] = len(items) - end
            items = items[start:end]
        if _wants_table(request):
            result = table.to_table(rt, items, rv, query.get("includeObject", "PartialObjectMetadata"))
            result["metadata"] = meta
            return json_response(result)
        return json_response(
            {"kind": rt.list_kind, "apiVersion": rt.group_version, "metadata": meta, "items": items}
        )

    # ------------------------------------------------------------------ watch

    async def _watch(self, request: web.Request, req: ResourceRequest) -> web.StreamResponse:
        rt, query, store = req.rt, request.query, self.api.store
        labels = LabelSelector.parse(query.get("labelSelector"))
        fields = FieldSelector.parse(query.get("fieldSelector"), rt.field_selectors)
        if req.name is not None:
            fields = FieldSelector(
                [
                    *fields.requirements,
                    *FieldSelector.parse(f"metadata.name={req.name}", rt.field_selectors).requirements,
                ]
            )
        as_table = _wants_table(request)
        include_object = query.get("includeObject", "PartialObjectMetadata")
        bookmarks = _truthy(query.get("allowWatchBookmarks"))
        timeout = float(query.get("timeoutSeconds") or 0)
        faults = self.cluster.faults
        drop_events = faults.drop_watch_after_events
        drop_seconds = faults.drop_watch_after_seconds
        rv_param = query.get("resourceVersion") or ""
        ns_filter = req.namespace if rt.namespaced else None
        initial: list[tuple[str, Obj]] = []
        replay: list[WatchEvent] = []
        gone_message: str | None = None
        send_initial = _truthy(query.get("sendInitialEvents"))
        if send_initial and not bookmarks:
            raise ApiError.bad_request("sendInitialEvents requires allowWatchBookmarks=true")
        initial_rv = str(store.rv)
        if rv_param in ("", "0") or send_initial:
            initial = [("ADDED", obj) for obj in self.api.list_objects(rt, ns_filter, labels, fields)]
        else:
            try:
                since = int(rv_param)
            except ValueError as exc:
                raise ApiError.bad_request(f"invalid resource version: {rv_param}") from exc
            events = store.events_since(rt.storage_key, since)
            if events is None:
                gone_message = f"too old resource version: {since} ({store.compacted_rv + 1})"
            else:
                replay = events
        watcher = Watcher(rt.storage_key, ns_filter)
        selective = not labels.empty or not fields.empty

        def matches(obj: Obj | None) -> bool:
            return obj is not None and labels.matches(obj) and fields.matches(obj)

        def translate(event: WatchEvent) -> tuple[str, Obj] | None:
            if ns_filter is not None and (event.obj.get("metadata") or {}).get("namespace") != ns_filter:
                return None
            if not selective:
                return event.type, event.obj
            now = matches(event.obj)
            if event.type == "MODIFIED":
                before = matches(event.old)
                if now and before:
                    return "MODIFIED", event.obj
                if now:
                    return "ADDED", event.obj
                if before:
                    return "DELETED", event.obj
                return None
            return (event.type, event.obj) if now else None

        table_columns_sent = False

        def encode(kind: str, obj: Obj, event: WatchEvent | None) -> bytes:
            nonlocal table_columns_sent
            if as_table:
                presented = self.api.present(rt, obj)
                body: Any = table.to_table(
                    rt,
                    [presented],
                    presented["metadata"].get("resourceVersion", ""),
                    include_object,
                    with_columns=not table_columns_sent,
                )
                table_columns_sent = True
                return _dumps({"type": kind, "object": body}) + b"\n"
            if event is not None and kind == event.type:
                cached = event.lines.get(rt.group_version)
                if cached is None:
                    cached = _dumps({"type": kind, "object": self.api.present(rt, obj)}) + b"\n"
                    event.lines[rt.group_version] = cached
                return cached
            return _dumps({"type": kind, "object": self.api.present(rt, obj)}) + b"\n"

        if gone_message is None:
            store.add_watcher(watcher)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": JSON_TYPE, "Cache-Control": "no-cache, private"}
        )
        response.enable_chunked_encoding()
        loop = asyncio.get_running_loop()
        try:
            await response.prepare(request)
            if gone_message is not None:
                status = ApiError.gone(gone_message).status()
                await response.write(_dumps({"type": "ERROR", "object": status}) + b"\n")
                return response
            sent = 0
            chunks = [encode(kind, obj, None) for kind, obj in initial]
            if send_initial:  # the WatchList protocol: a bookmark marks the end of the initial state
                end_marker = {
                    "kind": rt.kind,
                    "apiVersion": rt.group_version,
                    "metadata": {
                        "resourceVersion": initial_rv,
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                chunks.append(_dumps({"type": "BOOKMARK", "object": end_marker}) + b"\n")
            for event in replay:
                translated = translate(event)
                if translated is not None:
                    chunks.append(encode(translated[0], translated[1], event))
            started = loop.time()
            end = started + timeout if timeout > 0 else None
            if drop_seconds is not None:
                end = min(end, started + drop_seconds) if end is not None else started + drop_seconds
            interval = self.cluster.bookmark_interval
            next_bookmark = started + interval if bookmarks else None
            while True:
                if drop_events is not None and sent >= drop_events:
                    break
                if chunks:
                    if drop_events is not None and sent + len(chunks) >= drop_events:
                        chunks = chunks[: max(0, drop_events - sent)]
                        if chunks:
                            await response.write(b"".join(chunks))
                        break
                    await response.write(b"".join(chunks))
                    sent += len(chunks)
                    chunks = []
                now = loop.time()
                deadlines = [d for d in (end, next_bookmark, now + _LIVENESS_TICK) if d is not None]
                wait = max(0.0, min(deadlines) - now)
                try:
                    event_or_none = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    now = loop.time()
                    if end is not None and now >= end:
                        break
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break  # the client went away
                    if next_bookmark is not None and now >= next_bookmark:
                        bookmark = {
                            "kind": rt.kind,
                            "apiVersion": rt.group_version,
                            "metadata": {"resourceVersion": str(store.rv)},
                        }
                        await response.write(_dumps({"type": "BOOKMARK", "object": bookmark}) + b"\n")
                        next_bookmark = now + interval
                    continue
                if event_or_none is None:
                    break
                pending: list[WatchEvent | None] = [event_or_none]
                while not watcher.queue.empty():
                    pending.append(watcher.queue.get_nowait())
                closing = False
                for item in pending:
                    if item is None:
                        closing = True
                        break
                    translated = translate(item)
                    if translated is not None:
                        chunks.append(encode(translated[0], translated[1], item))
                if closing:
                    if chunks:
                        await response.write(b"".join(chunks))
                    break
            return response
        except (ConnectionError, asyncio.CancelledError):
            return response
        finally:
            store.remove_watcher(watcher)


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


async def _read_body(request: web.Request) -> Any:
    raw = await request.read()
    content_type = request.headers.get("Content-Type", "")
    if "protobuf" in content_type:
        try:
            return decode_object(raw)
        except ProtobufError as exc:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - "
                f"accepted media types include: application/json, application/yaml ({exc})",
            ) from exc
    if "cbor" in content_type:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted "
            f"media types include: application/json, application/yaml (got {content_type})",
        )
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw or b"null")
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError.bad_request(f"the body of the request could not be decoded: {exc}") from exc


async def _delete_options(request: web.Request) -> Obj:
    options: Obj = {}
    raw = await request.read()
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise ApiError.bad_request(f"invalid DeleteOptions: {exc}") from exc
        if isinstance(parsed, dict):
            options.update(parsed)
    if request.query.get("propagationPolicy"):
        options["propagationPolicy"] = request.query["propagationPolicy"]
    return options


def _schema_name(rt: ResourceType) -> str:
    reversed_group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _openapi_v3_doc(types: list[ResourceType]) -> Obj:
    """A per-group-version OpenAPI v3 document: enough for kubectl's field-validation probe and explain."""
    paths: Obj = {}
    schemas: Obj = {}
    validation_param = {
        "name": "fieldValidation",
        "in": "query",
        "schema": {"type": "string", "uniqueItems": True},
        "description": "Ignore, Warn or Strict",
    }
    for rt in sorted(types, key=lambda t: (t.plural, version_priority(t.version))):
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        collection = (
            f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
        )
        schema_name = _schema_name(rt)
        ok: Obj = {"200": {"description": "OK"}}
        if rt.schema is not None:
            ok = {
                "200": {
                    "description": "OK",
                    "content": {JSON_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
                }
            }

        def operation(
            action: str, params: list[Obj], gvk: Obj = gvk, ok: Obj = ok, rt: ResourceType = rt
        ) -> Obj:
            return {
                "operationId": f"{action}{rt.kind}",
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": ok,
            }

        paths[collection] = {"get": operation("list", []), "post": operation("post", [validation_param])}
        paths[f"{collection}/{{name}}"] = {
            "get": operation("get", []),
            "put": operation("put", [validation_param]),
            "patch": operation("patch", [validation_param]),
            "delete": operation("delete", []),
        }
        if rt.status_subresource:
            paths[f"{collection}/{{name}}/status"] = {
                "get": operation("get", []),
                "put": operation("put", [validation_param]),
                "patch": operation("patch", [validation_param]),
            }
        if rt.schema is not None:
            schemas[schema_name] = {**rt.schema, "x-kubernetes-group-version-kind": [gvk]}
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }
