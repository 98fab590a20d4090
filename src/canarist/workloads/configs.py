"""Config tracking: the ConfigMaps and Secrets a pod template uses, their checksums, and the primary copies.

* :func:`config_refs` finds references in volumes (``configMap``, ``secret``, ``projected`` sources),
  ``env[].valueFrom`` and ``envFrom`` of containers and initContainers.
* :func:`tracked_configs` looks each one up (through the caller's cache) and computes
  ``status.trackedConfigs``: ``{"configmap/<name>"|"secret/<name>": checksum}``.
* :func:`primary_config_copy` builds ``<name>-primary``; :func:`rename_pod_spec_refs` points a pod spec at
  those copies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from canarist.api import Canary
from canarist.workloads._meta import (
    Obj,
    controller_ref,
    deep,
    filter_metadata,
    get_path,
    include_by_prefix,
    set_metadata_map,
)

#: annotation on a ConfigMap/Secret; a value starting with ``disable`` opts it out of tracking.
CONFIG_TRACKING_ANNOTATION = "flagger.app/config-tracking"
#: Secret types that are tracked (others, e.g. service-account tokens, are left alone).
TRACKED_SECRET_TYPES = frozenset(
    {"Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls"}
)
PRIMARY_SUFFIX = "-primary"

ConfigKind = Literal["configmap", "secret"]
Lookup = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class ConfigRef:
    kind: ConfigKind
    name: str
    optional: bool

    @property
    def key(self) -> str:
        """``configmap/<name>`` or ``secret/<name>``, the key used in ``status.trackedConfigs``."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class TrackedConfigs:
    """``checksums``: the tracked configs and their checksums. ``missing``: mandatory refs not found
    (``configmap/<name>``), which Flagger reports as an error. ``objects``: the tracked objects themselves,
    by key, for :func:`primary_config_copy`."""

    checksums: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    objects: dict[str, Obj] = field(default_factory=dict)

    def renamed(self) -> set[str]:
        """The keys whose references the primary pod spec points at ``-primary`` copies."""
        return set(self.checksums)


def go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of maps of strings: sorted keys, compact, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def config_checksum(data: Mapping[str, str] | None) -> str:
    """Hex of the first 8 bytes of SHA-256 over ``json.Marshal(data)`` (``null`` when there is no data).

    For a Secret, ``data`` holds the base64 strings as stored (Go marshals ``[]byte`` as base64).
    """
    payload = go_json(dict(data) if data is not None else None)
    return hashlib.sha256(payload.encode()).digest()[:8].hex()


def _pod_specs(target: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = get_path(target, "spec", "template", "spec")
    return spec if isinstance(spec, Mapping) else {}


def _containers(pod_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("containers", "initContainers"):
        yield from pod_spec.get(key) or []


def _raw_refs(pod_spec: Mapping[str, Any]) -> Iterator[ConfigRef]:
    for volume in pod_spec.get("volumes") or []:
        if cm := volume.get("configMap"):
            yield ConfigRef("configmap", str(cm.get("name", "")), bool(cm.get("optional")))
        if secret := volume.get("secret"):
            yield ConfigRef("secret", str(secret.get("secretName", "")), bool(secret.get("optional")))
        for source in get_path(volume, "projected", "sources") or []:
            if cm := source.get("configMap"):
                yield ConfigRef("configmap", str(cm.get("name", "")), bool(cm.get("optional")))
            if secret := source.get("secret"):
                yield ConfigRef("secret", str(secret.get("name", "")), bool(secret.get("optional")))
    for container in _containers(pod_spec):
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            if ref := value_from.get("configMapKeyRef"):
                yield ConfigRef("configmap", str(ref.get("name", "")), bool(ref.get("optional")))
            if ref := value_from.get("secretKeyRef"):
                yield ConfigRef("secret", str(ref.get("name", "")), bool(ref.get("optional")))
        for env_from in container.get("envFrom") or []:
            if ref := env_from.get("configMapRef"):
                yield ConfigRef("configmap", str(ref.get("name", "")), bool(ref.get("optional")))
            if ref := env_from.get("secretRef"):
                yield ConfigRef("secret", str(ref.get("name", "")), bool(ref.get("optional")))


def config_refs(target: Mapping[str, Any]) -> list[ConfigRef]:
    """The ConfigMaps/Secrets the target's pod template references, in order of first use.

    A config referenced several times is optional only if every reference is optional.
    """
    found: dict[str, ConfigRef] = {}
    for ref in _raw_refs(_pod_specs(target)):
        if not ref.name:
            continue
        seen = found.get(ref.key)
        if seen is None or (seen.optional and not ref.optional):
            found[ref.key] = ref
    return list(found.values())


def is_tracking_disabled(obj: Mapping[str, Any]) -> bool:
    value = (get_path(obj, "metadata", "annotations") or {}).get(CONFIG_TRACKING_ANNOTATION, "")
    return str(value).startswith("disable")


def is_trackable(kind: ConfigKind, obj: Mapping[str, Any]) -> bool:
    """Not opted out by annotation; for a Secret, one of the tracked types (a missing type is Opaque)."""
    if is_tracking_disabled(obj):
        return False
    if kind == "secret":
        return str(obj.get("type") or "Opaque") in TRACKED_SECRET_TYPES
    return True


def tracked_configs(
    target: Mapping[str, Any], lookup_configmap: Lookup, lookup_secret: Lookup
) -> TrackedConfigs:
    """``status.trackedConfigs`` for the target, looking configs up by name in its namespace.

    Opted-out configs and untracked Secret types are skipped. A missing optional ref is skipped; a missing
    mandatory one is listed in ``missing`` (the caller reports it, as Flagger fails the tick).
    """
    result = TrackedConfigs()
    for ref in config_refs(target):
        obj = lookup_configmap(ref.name) if ref.kind == "configmap" else lookup_secret(ref.name)
        if obj is None:
            if not ref.optional:
                result.missing.append(ref.key)
            continue
        if not is_trackable(ref.kind, obj):
            continue
        result.checksums[ref.key] = config_checksum(obj.get("data"))
        result.objects[ref.key] = dict(obj)
    return result


def configs_changed(current: Mapping[str, str] | None, recorded: Mapping[str, str] | None) -> bool:
    """Flagger's rule: changed when the counts differ or any checksum differs."""
    current = current or {}
    recorded = recorded or {}
    if len(current) != len(recorded):
        return True
    return any(recorded.get(key) != value for key, value in current.items())


def primary_config_copy(
    canary: Canary, config: Mapping[str, Any], *, include_label_prefixes: Sequence[str] = ()
) -> Obj:
    """``<name>-primary``: a copy of a ConfigMap or Secret owned by the canary.

    Labels are filtered by ``-include-label-prefix``, annotations lose the ``toolkit.fluxcd.io`` keys; an
    empty result is left out (the API server stores no empty map, so an unchanged copy compares equal). The
    Canary is the controller owner; the original's owners are kept as non-controller references.
    """
    meta = config.get("metadata") or {}
    owners: list[Obj] = [controller_ref(canary)]
    for ref in meta.get("ownerReferences") or []:
        foreign = deep(ref)
        foreign["controller"] = False
        owners.append(foreign)
    out_meta: Obj = {
        "name": f"{meta.get('name', '')}{PRIMARY_SUFFIX}",
        "namespace": canary.metadata.namespace or meta.get("namespace", ""),
    }
    set_metadata_map(out_meta, "labels", include_by_prefix(meta.get("labels"), include_label_prefixes))
    set_metadata_map(out_meta, "annotations", filter_metadata(meta.get("annotations")))
    out_meta["ownerReferences"] = owners
    out: Obj = {"apiVersion": "v1", "kind": config.get("kind", "ConfigMap"), "metadata": out_meta}
    if out["kind"] == "Secret":
        out["type"] = config.get("type") or "Opaque"
    for key in ("data", "binaryData") if out["kind"] == "ConfigMap" else ("data",):
        if key in config and config[key] is not None:
            out[key] = deep(config[key])
    if "immutable" in config:
        out["immutable"] = config["immutable"]
    return out


def _rename(ref: dict[str, Any], key: str, kind: ConfigKind, renamed: Collection[str]) -> None:
    name = ref.get(key)
    if name and f"{kind}/{name}" in renamed:
        ref[key] = f"{name}{PRIMARY_SUFFIX}"


def rename_pod_spec_refs(pod_spec: Mapping[str, Any], renamed: Collection[str]) -> Obj:
    """A copy of ``pod_spec`` whose references to the configs in ``renamed`` (``configmap/<name>`` keys)
    point at the ``-primary`` copies. References to other configs are left alone."""
    spec: Obj = deep(dict(pod_spec))
    for volume in spec.get("volumes") or []:
        if cm := volume.get("configMap"):
            _rename(cm, "name", "configmap", renamed)
        if secret := volume.get("secret"):
            _rename(secret, "secretName", "secret", renamed)
        for source in get_path(volume, "projected", "sources") or []:
            if cm := source.get("configMap"):
                _rename(cm, "name", "configmap", renamed)
            if secret := source.get("secret"):
                _rename(secret, "name", "secret", renamed)
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            for env in container.get("env") or []:
                value_from = env.get("valueFrom") or {}
                if ref := value_from.get("configMapKeyRef"):
                    _rename(ref, "name", "configmap", renamed)
                if ref := value_from.get("secretKeyRef"):
                    _rename(ref, "name", "secret", renamed)
            for env_from in container.get("envFrom") or []:
                if ref := env_from.get("configMapRef"):
                    _rename(ref, "name", "configmap", renamed)
                if ref := env_from.get("secretRef"):
                    _rename(ref, "name", "secret", renamed)
    return spec
