"""The built-in `networking.k8s.io/v1` Ingress and IngressClass: typed schemas and validation.

The schemas mirror k8s.io/api/networking/v1: they drop unknown fields at every level (as the typed decoder
does: a `Warning`, or 400 under `fieldValidation=Strict`) and reject wrongly typed values with a
path-qualified 422. `validate_ingress` adds the apiserver's semantic checks that a schema cannot express.
"""

from __future__ import annotations

from typing import Any

from canarist.localcluster.crds._schema import (
    Obj,
    array,
    int32,
    obj,
    port,
    root,
    string,
    strings,
)
from canarist.localcluster.errors import FieldError

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"


def _typed_ref() -> Obj:
    return obj({"apiGroup": string(), "kind": string(), "name": string()}, required=("kind", "name"))


def _backend() -> Obj:
    return obj(
        {
            "service": obj(
                {"name": string(), "port": obj({"name": string(), "number": port()})},
                required=("name",),
            ),
            "resource": _typed_ref(),
        }
    )


def ingress_schema() -> Obj:
    path = obj(
        {"path": string(), "pathType": string(enum=PATH_TYPES), "backend": _backend()},
        required=("backend",),
    )
    rule = obj({"host": string(), "http": obj({"paths": array(path)}, required=("paths",))})
    spec = obj(
        {
            "ingressClassName": string(),
            "defaultBackend": _backend(),
            "tls": array(obj({"hosts": strings(), "secretName": string()})),
            "rules": array(rule),
        }
    )
    port_status = obj(
        {"port": int32(), "protocol": string(), "error": string()}, required=("port", "protocol")
    )
    status = obj(
        {
            "loadBalancer": obj(
                {"ingress": array(obj({"ip": string(), "hostname": string(), "ports": array(port_status)}))}
            )
        }
    )
    return root(spec, status)


def ingress_class_schema() -> Obj:
    parameters = obj(
        {
            "apiGroup": string(),
            "kind": string(),
            "name": string(),
            "namespace": string(),
            "scope": string(enum=("Cluster", "Namespace")),
        },
        required=("kind", "name"),
    )
    return root(obj({"controller": string(maxLength=250), "parameters": parameters}))


def _get(value: Any, *path: str) -> Any:
    for piece in path:
        value = value.get(piece) if isinstance(value, dict) else None
    return value


def _validate_backend(backend: Any, where: str) -> list[FieldError]:
    if not isinstance(backend, dict):
        return []
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [FieldError(where, "FieldValueInvalid", "cannot set both service and resource backends", "")]
    if service is None and resource is None:
        return [FieldError(where, "FieldValueInvalid", "resource or service backend is required", "")]
    if isinstance(service, dict):
        port_ref = service.get("port")
        if not isinstance(port_ref, dict) or ("name" in port_ref) == ("number" in port_ref):
            detail = (
                "cannot set both port name & port number"
                if isinstance(port_ref, dict) and port_ref
                else "port name or number is required"
            )
            return [FieldError(f"{where}.service.port", "FieldValueInvalid", detail, "")]
    return []


def validate_ingress(ingress: Obj) -> list[FieldError]:
    """The semantic checks of the apiserver's Ingress validation (after the schema)."""
    spec = ingress.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    errors: list[FieldError] = []
    rules = spec.get("rules") or []
    if not rules and not spec.get("defaultBackend"):
        errors.append(
            FieldError(
                "spec", "FieldValueInvalid", "either `defaultBackend` or `rules` must be specified", ""
            )
        )
    if "defaultBackend" in spec:
        errors.extend(_validate_backend(spec["defaultBackend"], "spec.defaultBackend"))
    for r, rule in enumerate(rules):
        paths = _get(rule, "http", "paths")
        if isinstance(_get(rule, "http"), dict) and not paths:
            errors.append(FieldError(f"spec.rules[{r}].http.paths", "FieldValueRequired"))
        for p, entry in enumerate(paths or []):
            if not isinstance(entry, dict):
                continue
            where = f"spec.rules[{r}].http.paths[{p}]"
            path_type = entry.get("pathType")
            if not path_type:
                errors.append(
                    FieldError(f"{where}.pathType", "FieldValueRequired", "pathType must be specified")
                )
            elif path_type in ("Exact", "Prefix") and not str(entry.get("path") or "").startswith("/"):
                errors.append(
                    FieldError(
                        f"{where}.path",
                        "FieldValueInvalid",
                        "must be an absolute path",
                        entry.get("path", ""),
                    )
                )
            errors.extend(_validate_backend(entry.get("backend"), f"{where}.backend"))
    annotations = _get(ingress, "metadata", "annotations") or {}
    if spec.get("ingressClassName") and CLASS_ANNOTATION in annotations:
        errors.append(
            FieldError(
                f"metadata.annotations[{CLASS_ANNOTATION}]",
                "FieldValueInvalid",
                "can not be set when the class field is also set",
                annotations[CLASS_ANNOTATION],
            )
        )
    return errors


def validate_ingress_class(ingress_class: Obj) -> list[FieldError]:
    parameters = _get(ingress_class, "spec", "parameters")
    if not isinstance(parameters, dict):
        return []
    scope, namespace = parameters.get("scope"), parameters.get("namespace")
    if scope == "Namespace" and not namespace:
        return [
            FieldError(
                "spec.parameters.namespace", "FieldValueRequired", "`parameters.scope` is set to 'Namespace'"
            )
        ]
    if scope != "Namespace" and namespace:
        return [
            FieldError(
                "spec.parameters.namespace",
                "FieldValueForbidden",
                "`parameters.scope` must be set to 'Namespace' when `namespace` is set",
            )
        ]
    return []
