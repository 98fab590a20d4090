"""Object semantics on top of the store: create/get/list/update/patch/delete, as kube-apiserver does them.

Everything that writes (HTTP handlers, the workload controllers, garbage collection, namespace and CRD
cleanup) goes through this class, so every change bumps the one resourceVersion counter and reaches watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import yaml

from canarist.localcluster import admission
from canarist.localcluster.errors import ApiError, FieldError
from canarist.localcluster.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from canarist.localcluster.resources import Registry, ResourceType, StorageKey, builtin_types
from canarist.localcluster.schema import validate_object
from canarist.localcluster.selectors import FieldSelector, LabelSelector
from canarist.localcluster.store import Store

Obj = dict[str, Any]

CRD_KIND = "CustomResourceDefinition.apiextensions.k8s.io"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE, JSON_PATCH, STRATEGIC, APPLY)
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
# Where Service ClusterIPs come from unless LocalCluster(service_cidr=...) says otherwise (kubeadm's default).
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
# The first addresses of the range are left to the well-known Services (kubernetes at .1, the DNS at .10, as
# kubeadm places them); allocation starts after them, as it always did here (10.96.0.11 first).
_RESERVED_LOW = 10
_META_IMMUTABLE = (
    "uid",
    "creationTimestamp",
    "namespace",
    "name",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
        obj["metadata"] = meta
    return meta


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Api:
    """The semantic layer: one instance per local cluster."""

    def __init__(self, history_size: int = 10_000, service_cidr: str = DEFAULT_SERVICE_CIDR) -> None:
        self.store = Store(history_size)
        self.registry = Registry()
        for rt in builtin_types():
            self.registry.add(rt)
        self._crd_types: dict[str, list[tuple[str, str, str]]] = {}
        self.service_cidr = ipaddress.ip_network(service_cidr)
        if self.service_cidr.num_addresses < _RESERVED_LOW + 3:
            raise ValueError(f"service CIDR {service_cidr} is too small for ClusterIPs")
        self._next_ip = int(self.service_cidr.network_address) + _RESERVED_LOW
        self.on_registry_change: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ helpers

    def resolve(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise ApiError(
                404,
                "NotFound",
                "the server could not find the requested resource",
                {"group": group, "kind": plural} if group else {"kind": plural},
            )
        return rt

    def present(self, rt: ResourceType, obj: Obj) -> Obj:
        if obj.get("apiVersion") == rt.group_version and obj.get("kind") == rt.kind:
            return obj
        out = dict(obj)
        out["apiVersion"] = rt.group_version
        out["kind"] = rt.kind
        return out

    def storage_type(self, key: StorageKey) -> ResourceType | None:
        types = self.registry.for_storage(key)
        return types[0] if types else None

    def _defer(self, fn: Callable[[], None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            fn()
            return
        loop.call_soon(fn)

    def _live_cluster_ips(self) -> set[str]:
        ips: set[str] = set()
        for svc in self.store.scan(("", "services")):
            spec = svc.get("spec") or {}
            for ip in [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])]:
                if isinstance(ip, str) and ip and ip != "None":
                    ips.add(ip)
        return ips

    def _allocate_ip(self) -> str:
        """The next free address of the service CIDR, as the API server's allocator hands them out.

        Next-fit from the last one given, wrapping around, skipping every address a live Service holds (an
        address is free again once its Service is gone); the network, broadcast and low reserved addresses
        are never handed out. A full range is the API server's "range is full" error.
        """
        net = self.service_cidr
        first = int(net.network_address) + _RESERVED_LOW + 1
        last = int(net.broadcast_address) - 1
        live = self._live_cluster_ips()
        candidate = self._next_ip
        for _ in range(last - first + 1):
            candidate = candidate + 1 if first <= candidate < last else first
            ip = str(ipaddress.ip_address(candidate))
            if ip not in live:
                self._next_ip = candidate
                return ip
        raise ApiError(
            500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full"
        )

    def _check_requested_ip(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        """A ClusterIP set by the user on create: inside the service CIDR and not held by another Service."""
        spec = obj.get("spec")
        if old is not None or not isinstance(spec, dict) or spec.get("type") == "ExternalName":
            return []
        requested = spec.get("clusterIP")
        if not isinstance(requested, str) or requested in ("", "None"):
            return []
        try:
            ip = ipaddress.ip_address(requested)
        except ValueError:
            return []  # the Service admission reports it
        if ip not in self.service_cidr:
            return [
                FieldError(
                    "spec.clusterIP",
                    "FieldValueInvalid",
                    f"failed to allocate IP {requested}: provided IP is not in the valid range. "
                    f"The range of valid IPs is {self.service_cidr}",
                    requested,
                )
            ]
        if requested in self._live_cluster_ips():
            return [
                FieldError(
                    "spec.clusterIP",
                    "FieldValueInvalid",
                    f"failed to allocate IP {requested}: provided IP is already allocated",
                    requested,
                )
            ]
        return []

    def _not_found(self, rt: ResourceType, name: str) -> ApiError:
        return ApiError.not_found(rt.group_resource, name, rt.group, rt.plural)

    def _current(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self.store.get(rt.storage_key, ns if rt.namespaced else "", name)
        if obj is None:
            raise self._not_found(rt, name)
        return obj

    def _require_namespace(self, rt: ResourceType, ns: str, creating: bool, name: str = "") -> None:
        if not rt.namespaced:
            return
        namespace = self.store.get(("", "namespaces"), "", ns)
        if namespace is None:
            raise ApiError.not_found("namespaces", ns, "", "namespaces")
        if creating and (namespace.get("metadata") or {}).get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{rt.group_resource} "{name}" is forbidden: unable to create new '
                f"content in namespace {ns} because it is being terminated",
                {"kind": rt.plural, "group": rt.group} if rt.group else {"kind": rt.plural},
            )

    # ------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, ns: str, name: str) -> Obj:
        return self.present(rt, self._current(rt, ns, name))

    def list_objects(
        self, rt: ResourceType, ns: str | None, labels: LabelSelector, fields: FieldSelector
    ) -> list[Obj]:
        name = fields.exact_name()
        if name is not None and ns is not None:
            found = self.store.get(rt.storage_key, ns if rt.namespaced else "", name)
            candidates = [found] if found is not None else []
        else:
            candidates = self.store.scan(rt.storage_key, ns if rt.namespaced else None)
        return [self.present(rt, o) for o in candidates if labels.matches(o) and fields.matches(o)]

    # ------------------------------------------------------------------ admission

    def _admit(self, rt: ResourceType, obj: Obj, old: Obj | None, field_validation: str) -> list[str]:
        """Default and validate `obj` in place; returns warnings; raises 422/400."""
        meta = _meta(obj)
        for key in ("labels", "annotations", "finalizers", "ownerReferences"):
            if key in meta and not meta[key]:
                del meta[key]  # ObjectMeta's omitempty fields
        name = str(meta.get("name") or "")
        errors: list[FieldError] = []
        warnings: list[str] = []
        if old is None:
            errors.extend(admission.validate_name("" if rt.is_custom else rt.qualified_kind, name))
        pruned = admission.prune_known_fields(rt, obj)
        schema = rt.schema if rt.is_custom else rt.typed_schema
        if schema is not None:
            result = validate_object(obj, schema)
            errors.extend(result.errors)
            pruned.extend(result.pruned)
        if pruned:
            if field_validation == "Strict":
                fields = ", ".join(f'unknown field "{p}"' for p in pruned)
                raise ApiError.bad_request(f"strict decoding error: {fields}")
            if field_validation != "Ignore":
                warnings.extend(f'unknown field "{p}"' for p in pruned)
        if rt.is_builtin("Service"):
            errors.extend(self._check_requested_ip(obj, old))
        if not rt.is_custom:
            errors.extend(admission.admit_builtin(rt, obj, old, self._allocate_ip))
        if errors:
            raise ApiError.invalid(rt.qualified_kind, name, errors, rt.group, rt.plural)
        return warnings

    # ------------------------------------------------------------------ writes

    def create(
        self, rt: ResourceType, ns: str, body: Any, *, dry_run: bool = False, field_validation: str = "Warn"
    ) -> tuple[Obj, list[str]]:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(body)
        self._check_kind(rt, obj)
        meta = _meta(obj)
        if rt.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != ns:
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        self._require_namespace(
            rt, ns, creating=True, name=str(meta.get("name") or meta.get("generateName") or "")
        )
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise ApiError.invalid(
                    rt.qualified_kind,
                    "",
                    [FieldError("metadata.name", "FieldValueRequired", "name or generateName is required")],
                    rt.group,
                    rt.plural,
                )
            for _ in range(20):
                candidate = str(prefix) + "".join(random.choice(_NAME_CHARS) for _ in range(5))
                if self.store.get(rt.storage_key, meta.get("namespace", ""), candidate) is None:
                    break
            meta["name"] = candidate
        name = str(meta["name"])
        if self.store.get(rt.storage_key, ns if rt.namespaced else "", name) is not None:
            raise ApiError.already_exists(rt.group_resource, name, rt.group)
        for key in (
            "uid",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
        ):
            meta.pop(key, None)
        if rt.status_subresource and not rt.is_builtin("Namespace"):
            obj.pop("status", None)
        warnings = self._admit(rt, obj, None, field_validation)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        if rt.generation:
            meta["generation"] = 1
        if rt.is_builtin(CRD_KIND):
            finalizers = meta.setdefault("finalizers", [])
            if admission.CRD_FINALIZER not in finalizers:
                finalizers.append(admission.CRD_FINALIZER)
            obj["status"] = admission.crd_status(obj, meta["creationTimestamp"], None)
        if dry_run:
            meta["resourceVersion"] = str(self.store.rv)
            return self.present(rt, obj), warnings
        self._commit(rt, obj)
        return self.present(rt, obj), warnings

    def _check_kind(self, rt: ResourceType, obj: Obj) -> None:
        kind = obj.get("kind")
        if kind and kind != rt.kind:
            raise ApiError.bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                f"expected API version ({rt.group_version})"
                if obj.get("apiVersion") != rt.group_version
                else f"kind {kind} does not match the expected kind {rt.kind}"
            )
        api_version = obj.get("apiVersion")
        if api_version and api_version != rt.group_version:
            raise ApiError.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.group_version})"
            )
        obj["apiVersion"] = rt.group_version
        obj["kind"] = rt.kind

    def update(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> tuple[Obj, list[str]]:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the body of the request must be a JSON object")
        old = self._current(rt, ns, name)
        body_meta = body.get("metadata") or {}
        if body_meta.get("name") and body_meta["name"] != name:
            raise ApiError.bad_request(
                f"the name of the object ({body_meta['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and body_meta.get("namespace") and body_meta["namespace"] != ns:
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        expected = body_meta.get("resourceVersion")
        if expected and str(expected) != str(old["metadata"]["resourceVersion"]):
            raise ApiError.stale(rt.group_resource, name, rt.group)
        return self._update(rt, old, copy.deepcopy(body), subresource, dry_run, field_validation)

    def _update(
        self,
        rt: ResourceType,
        old: Obj,
        new: Obj,
        subresource: str | None,
        dry_run: bool,
        field_validation: str,
    ) -> tuple[Obj, list[str]]:
        self._check_kind(rt, new)
        old_meta = old["metadata"]
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy({k: v for k, v in old.items() if k != "status"})
            if status is not None:
                new["status"] = status
            self._check_kind(rt, new)
        else:
            meta = _meta(new)
            for key in _META_IMMUTABLE:
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            meta.pop("managedFields", None)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise ApiError.invalid(
                        rt.qualified_kind,
                        old_meta["name"],
                        [
                            FieldError(
                                "metadata.finalizers",
                                "FieldValueForbidden",
                                "no new finalizers can be added if the object is being deleted",
                            )
                        ],
                        rt.group,
                        rt.plural,
                    )
            if rt.status_subresource:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
        warnings = self._admit(rt, new, old, field_validation)
        meta = new["metadata"]
        if rt.is_builtin(CRD_KIND):
            new["status"] = admission.crd_status(new, now_iso(), old.get("status"))
        if rt.generation and subresource != "status" and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old_meta.get("generation") or 1) + 1
        if dry_run:
            return self.present(rt, new), warnings
        if _strip_rv(new) == _strip_rv(old):
            return self.present(rt, old), warnings  # no-op writes keep the resourceVersion, like etcd3 store
        self._commit(rt, new)
        return self.present(rt, new), warnings

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        content_type: str,
        raw: bytes,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: str = "Warn",
    ) -> tuple[Obj, list[str], bool]:
        """Apply a patch; returns (object, warnings, created)."""
        patch_type = content_type.split(";", 1)[0].strip().lower()
        if patch_type not in PATCH_TYPES or (patch_type == STRATEGIC and rt.is_custom):
            accepted = [JSON_PATCH, MERGE, APPLY] + ([] if rt.is_custom else [STRATEGIC])
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - "
                f"accepted media types include: {', '.join(accepted)}",
            )
        try:
            document = yaml.safe_load(raw) if patch_type == APPLY else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError.bad_request(f"error decoding patch: {exc}") from exc
        key_ns = ns if rt.namespaced else ""
        old = self.store.get(rt.storage_key, key_ns, name)
        if old is None:
            if patch_type == APPLY and subresource is None:
                if not isinstance(document, dict):
                    raise ApiError.bad_request("an apply patch must be an object")
                _meta(document).setdefault("name", name)
                obj, warnings = self.create(
                    rt, ns, document, dry_run=dry_run, field_validation=field_validation
                )
                return obj, warnings, True
            raise self._not_found(rt, name)
        current = copy.deepcopy(self.present(rt, old))
        try:
            if patch_type in (MERGE, APPLY):
                if not isinstance(document, dict):
                    raise PatchError("a merge patch must be a JSON object")
                patched = merge_patch(current, document)
            elif patch_type == JSON_PATCH:
                patched = json_patch(current, document)
            else:
                patched = strategic_merge_patch(current, document)
        except PatchError as exc:
            if patch_type == JSON_PATCH:
                raise ApiError(
                    422, "Invalid", f"the server rejected our request due to an error in our request: {exc}"
                ) from exc
            raise ApiError.bad_request(str(exc)) from exc
        if not isinstance(patched, dict):
            raise ApiError.bad_request("the patched object is not a JSON object")
        expected = (patched.get("metadata") or {}).get("resourceVersion")
        if expected and str(expected) != str(old["metadata"]["resourceVersion"]):
            raise ApiError.stale(rt.group_resource, name, rt.group)
        obj, warnings = self._update(rt, old, patched, subresource, dry_run, field_validation)
        return obj, warnings, False

    # ------------------------------------------------------------------ the scale subresource

    def get_scale(self, rt: ResourceType, ns: str, name: str) -> Obj:
        return self._scale_of(rt, self._current(rt, ns, name))

    def _scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        spec_path, status_path, selector_path = rt.scale or (".spec.replicas", ".status.replicas", "")
        meta = obj["metadata"]
        status: Obj = {"replicas": int(_path_get(obj, status_path) or 0)}
        if selector_path:
            selector = _path_get(obj, selector_path)
            if selector:
                status["selector"] = str(selector)
        else:
            text = selector_string((obj.get("spec") or {}).get("selector"))
            if text:
                status["selector"] = text
        scale_meta = {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        }
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": int(_path_get(obj, spec_path) or 0)},
            "status": status,
        }

    def update_scale(self, rt: ResourceType, ns: str, name: str, body: Any, *, dry_run: bool = False) -> Obj:
        old = self._current(rt, ns, name)
        if not isinstance(body, dict):
            raise ApiError.bad_request("the body of the request must be a Scale object")
        expected = (body.get("metadata") or {}).get("resourceVersion")
        if expected and str(expected) != str(old["metadata"]["resourceVersion"]):
            raise ApiError.stale(rt.group_resource, name, rt.group)
        replicas = (body.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise ApiError.invalid(
                "Scale.autoscaling",
                name,
                [
                    FieldError(
                        "spec.replicas", "FieldValueInvalid", "must be greater than or equal to 0", replicas
                    )
                ],
                "autoscaling",
                "scale",
            )
        new = copy.deepcopy(old)
        spec_path = (rt.scale or (".spec.replicas", "", ""))[0]
        _path_set(new, spec_path, replicas)
        obj, _ = self._update(rt, old, new, None, dry_run, "Ignore")
        return self._scale_of(rt, obj)

    def patch_scale(
        self, rt: ResourceType, ns: str, name: str, content_type: str, raw: bytes, *, dry_run: bool = False
    ) -> Obj:
        current = self.get_scale(rt, ns, name)
        patch_type = content_type.split(";", 1)[0].strip().lower()
        try:
            document = yaml.safe_load(raw) if patch_type == APPLY else json.loads(raw or b"null")
            if patch_type == JSON_PATCH:
                patched = json_patch(current, document)
            elif patch_type in PATCH_TYPES:
                patched = merge_patch(current, document)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {patch_type}")
        except (ValueError, yaml.YAMLError, PatchError) as exc:
            raise ApiError.bad_request(f"error applying patch to Scale: {exc}") from exc
        return self.update_scale(rt, ns, name, patched, dry_run=dry_run)

    def write_status(self, rt: ResourceType, ns: str, name: str, status: Obj) -> Obj | None:
        """The controllers' status write (the same path as PUT .../status)."""
        old = self.store.get(rt.storage_key, ns if rt.namespaced else "", name)
        if old is None:
            return None
        obj, _ = self._update(rt, old, {**old, "status": status}, "status", False, "Ignore")
        return obj

    def delete(
        self, rt: ResourceType, ns: str, name: str, options: Obj | None = None, *, dry_run: bool = False
    ) -> tuple[Obj, bool]:
        """Delete; returns (object, gone). An object with finalizers only gets a deletionTimestamp."""
        options = options or {}
        old = self._current(rt, ns, name)
        meta = old["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise ApiError.conflict(
                rt.group_resource,
                name,
                f"Precondition failed: UID in precondition: "
                f"{pre['uid']}, UID in object meta: {meta.get('uid')}",
                rt.group,
            )
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != str(meta.get("resourceVersion")):
            raise ApiError.conflict(
                rt.group_resource,
                name,
                f"Precondition failed: ResourceVersion in "
                f"precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion')}",
                rt.group,
            )
        if dry_run:
            return self.present(rt, old), not self._pending(old)
        policy = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else None)
        if policy == "Orphan":
            self._orphan(str(meta.get("uid")))
        if self._pending(old):
            if meta.get("deletionTimestamp"):
                return self.present(rt, old), False
            new = dict(old)
            new["metadata"] = {**meta, "deletionTimestamp": now_iso(), "deletionGracePeriodSeconds": 0}
            if rt.is_builtin("Namespace"):
                new["status"] = {**(old.get("status") or {}), "phase": "Terminating"}
                self._defer(lambda: self._cleanup_namespace(name))
            if rt.is_builtin(CRD_KIND):
                new["status"] = admission.crd_status(new, now_iso(), old.get("status"))
                self._defer(lambda: self._cleanup_crd(name))
            self._commit(rt, new)
            return self.present(rt, new), False
        gone = dict(old)
        gone["metadata"] = dict(meta)
        self._commit(rt, gone, remove=True)
        return self.present(rt, gone), True

    def _pending(self, obj: Obj) -> bool:
        if (obj.get("metadata") or {}).get("finalizers"):
            return True
        if obj.get("kind") != "Namespace" or obj.get("apiVersion") != "v1":
            return False
        return bool((obj.get("spec") or {}).get("finalizers"))

    def _commit(self, rt: ResourceType, obj: Obj, remove: bool = False) -> None:
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.store.next_rv())
        if not remove and meta.get("deletionTimestamp") and not self._pending(obj):
            remove = True
        if remove:
            self.store.remove(rt.storage_key, obj)
            self._after_delete(rt, obj)
        else:
            self.store.put(rt.storage_key, obj)
            if rt.is_builtin(CRD_KIND):
                self._register_crd(obj)

    # ------------------------------------------------------------------ background work after a deletion

    def _after_delete(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        uid = str(meta.get("uid") or "")
        if uid:
            self._defer(lambda: self._collect_garbage(uid))
        if rt.is_builtin(CRD_KIND):
            self._unregister_crd(str(meta["name"]))
        if rt.namespaced and meta.get("namespace"):
            namespace = str(meta["namespace"])
            parent = self.store.get(("", "namespaces"), "", namespace)
            if parent is not None and parent["metadata"].get("deletionTimestamp"):
                self._defer(lambda: self._cleanup_namespace(namespace))
        if rt.crd_name:
            crd_name = rt.crd_name
            self._defer(lambda: self._cleanup_crd(crd_name))

    def _delete_quietly(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return
        with contextlib.suppress(ApiError):
            self.delete(rt, str(meta.get("namespace") or ""), str(meta["name"]))

    def _stored_objects(self) -> Iterator[tuple[ResourceType, Obj]]:
        """Every stored object with its storage type, a storage key at a time (each key's objects are
        listed when the walk reaches it, so changes made meanwhile are seen)."""
        for key in list(self.store.objects):
            rt = self.storage_type(key)
            if rt is None:
                continue
            for obj in list(self.store.objects.get(key, {}).values()):
                yield rt, obj

    def _collect_garbage(self, owner_uid: str) -> None:
        """Background cascading deletion: dependents whose owners are all gone are deleted."""
        for rt, obj in self._stored_objects():
            refs = obj["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == owner_uid for r in refs):
                continue
            if all(self.store.by_uid(str(r.get("uid"))) is None for r in refs):
                self._delete_quietly(rt, obj)

    def _orphan(self, owner_uid: str) -> None:
        for rt, obj in self._stored_objects():
            refs = obj["metadata"].get("ownerReferences") or []
            kept = [r for r in refs if r.get("uid") != owner_uid]
            if len(kept) != len(refs):
                new = dict(obj)
                new["metadata"] = dict(obj["metadata"])
                if kept:
                    new["metadata"]["ownerReferences"] = kept
                else:
                    new["metadata"].pop("ownerReferences", None)
                self._commit(rt, new)

    def _cleanup_namespace(self, name: str) -> None:
        namespace = self.store.get(("", "namespaces"), "", name)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        namespaced = [
            k for k in list(self.store.objects) if (t := self.storage_type(k)) is not None and t.namespaced
        ]
        for key in namespaced:
            rt = self.storage_type(key)
            for obj in self.store.scan(key, name):
                if rt is not None:
                    self._delete_quietly(rt, obj)
        if any(self.store.scan(key, name) for key in namespaced):
            return
        current = self.store.get(("", "namespaces"), "", name)
        if current is not None and (current.get("spec") or {}).get("finalizers"):
            new = dict(current)
            new["spec"] = {**current["spec"], "finalizers": []}
            self._commit(self.resolve("", "v1", "namespaces"), new)

    def _cleanup_crd(self, name: str) -> None:
        crd = self.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), "", name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        spec = crd.get("spec") or {}
        key = (str(spec.get("group")), str((spec.get("names") or {}).get("plural")))
        rt = self.storage_type(key)
        if rt is not None:
            for obj in self.store.scan(key):
                self._delete_quietly(rt, obj)
        if not self.store.scan(key):
            finalizers = [f for f in crd["metadata"].get("finalizers") or [] if f != admission.CRD_FINALIZER]
            new = dict(crd)
            new["metadata"] = {**crd["metadata"], "finalizers": finalizers}
            self._commit(self.resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions"), new)

    # ------------------------------------------------------------------ CRDs

    def _register_crd(self, crd: Obj) -> None:
        name = str(crd["metadata"]["name"])
        previous = self._crd_types.get(name, [])
        types = admission.crd_types(crd)
        for g, v, p in previous:
            self.registry.remove(g, v, p)
        for rt in types:
            self.registry.add(rt)
        self._crd_types[name] = [(rt.group, rt.version, rt.plural) for rt in types]
        for callback in self.on_registry_change:
            callback()

    def _unregister_crd(self, name: str) -> None:
        for g, v, p in self._crd_types.pop(name, []):
            self.registry.remove(g, v, p)
            self.store.objects.pop((g, p), None)
            for watcher in self.store.watchers.pop((g, p), set()):
                watcher.close()
        for callback in self.on_registry_change:
            callback()

    # ------------------------------------------------------------------ setup

    def ensure_namespace(self, name: str) -> None:
        if self.store.get(("", "namespaces"), "", name) is None:
            self.create(self.resolve("", "v1", "namespaces"), "", {"metadata": {"name": name}})


def _strip_rv(obj: Obj) -> Obj:
    out = dict(obj)
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    out["metadata"] = meta
    return out


def _path_get(obj: Any, path: str) -> Any:
    for piece in [p for p in path.split(".") if p]:
        obj = obj.get(piece) if isinstance(obj, dict) else None
    return obj


def _path_set(obj: Obj, path: str, value: Any) -> None:
    pieces = [p for p in path.split(".") if p]
    for piece in pieces[:-1]:
        child = obj.get(piece)
        if not isinstance(child, dict):
            child = {}
            obj[piece] = child
        obj = child
    obj[pieces[-1]] = value


def selector_string(selector: Any) -> str:
    """A metav1.LabelSelector as the query-string form (`a=b,c in (d,e)`)."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
