"""The three flagger.app CustomResourceDefinitions, generated from the models.

The OpenAPI v3 schema of every kind is derived by walking the pydantic fields (their annotations give the
shape, the ``crd`` metadata of :func:`canarist.api._base.field` gives enums, patterns, required lists and
type overrides, a model's ``crd_schema`` gives ``oneOf`` constraints). The same walk, with the ``check``
metadata kept, is the schema :mod:`canarist.api.validation` validates against, so the CRD and the
validator cannot drift apart.
"""

from __future__ import annotations

import copy
import types
import typing
from functools import cache
from typing import Any, Union

from pydantic import BaseModel

from canarist.api import defaults
from canarist.api._base import CHECK_KEY, CRD_KEY, FlaggerModel
from canarist.api.alert_provider import AlertProvider
from canarist.api.canary import Canary
from canarist.api.crd_descriptions import apply_descriptions
from canarist.api.meta import ObjectMeta
from canarist.api.metric_template import MetricTemplate

Schema = dict[str, Any]

#: keys only the validator reads; removed from the emitted CRDs.
PRIVATE_PREFIX = "x-canarist-"

_PRIMITIVES: dict[Any, str] = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _strip_none(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        return Union[tuple(args)]  # noqa: UP007 - rebuilding a runtime union
    return annotation


def _type_schema(annotation: Any, check: dict[str, Any]) -> Schema:
    annotation = _strip_none(annotation)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = set(typing.get_args(annotation))
        if args == {int, str}:
            return {"x-kubernetes-int-or-string": True}
        raise TypeError(f"unsupported union in a flagger.app model: {annotation!r}")
    if origin is list:
        (item,) = typing.get_args(annotation)
        return {"type": "array", "items": _type_schema(item, check if _is_primitive(item) else {})}
    if origin is dict:
        _, value = typing.get_args(annotation)
        return {"type": "object", "additionalProperties": _type_schema(value, {})}
    if isinstance(annotation, type) and issubclass(annotation, ObjectMeta):
        return {"type": "object"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_schema(annotation)
    if annotation in _PRIMITIVES:
        schema: Schema = {"type": _PRIMITIVES[annotation]}
        if check:
            schema[CHECK_KEY] = dict(check)
        return schema
    if annotation is Any:
        return {"x-kubernetes-preserve-unknown-fields": True}
    raise TypeError(f"unsupported type in a flagger.app model: {annotation!r}")


def _is_primitive(annotation: Any) -> bool:
    return _strip_none(annotation) in _PRIMITIVES


def model_schema(cls: type[BaseModel]) -> Schema:
    """The internal schema of one model (validator hints included)."""
    return copy.deepcopy(_model_schema(cls))


@cache
def _model_schema(cls: type[BaseModel]) -> Schema:
    properties: dict[str, Schema] = {}
    required: list[str] = []
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        crd = dict(typing.cast(dict[str, Any], extra.get(CRD_KEY, {})))
        check = dict(typing.cast(dict[str, Any], extra.get(CHECK_KEY, {})))
        key = info.alias or name
        is_list = typing.get_origin(_strip_none(info.annotation)) is list
        schema = _type_schema(info.annotation, check)
        if check and not is_list and "type" not in schema:
            schema[CHECK_KEY] = check
        if crd.pop("required", False):
            required.append(key)
        description = crd.pop("description", None)
        override_type = crd.pop("type", None)
        if override_type is not None:
            schema["type"] = override_type
        item_type = crd.pop("itemType", None)
        if is_list and item_type is not None:
            schema["items"]["type"] = item_type
        node: Schema = {}
        if description:
            node["description"] = description
        node.update(schema)
        node.update(crd)
        properties[key] = node
    out: Schema = {"type": "object"}
    if cls.__doc__ and issubclass(cls, FlaggerModel) and cls.__doc__.strip():
        out["description"] = cls.__doc__.strip().splitlines()[0]
    if required:
        out["required"] = required
    out.update(copy.deepcopy(getattr(cls, "crd_schema", {})))
    out["properties"] = properties
    return out


def _root_schema(cls: type[FlaggerModel], description: str) -> Schema:
    schema = model_schema(cls)
    props = schema["properties"]
    props["apiVersion"] = {
        "description": "APIVersion defines the versioned schema of this object.",
        "type": "string",
    }
    props["kind"] = {
        "description": "Kind is a string value representing the REST resource.",
        "type": "string",
    }
    schema["description"] = description
    return schema


def validation_schema(kind: str) -> Schema:
    """The internal schema (with validator hints) of a flagger.app kind: a copy the caller may change."""
    return copy.deepcopy(shared_validation_schema(kind))


def shared_validation_schema(kind: str) -> Schema:
    """The same schema, shared and not copied: for readers only (the validator walks it on every tick,
    where copying it was most of the cost)."""
    return _validation_schemas()[kind]


@cache
def _validation_schemas() -> dict[str, Schema]:
    return {
        "Canary": _root_schema(Canary, "Canary is the Schema for the Canary API."),
        "MetricTemplate": _root_schema(
            MetricTemplate, "MetricTemplate is the Schema for the MetricTemplates API."
        ),
        "AlertProvider": _root_schema(
            AlertProvider, "AlertProvider is the Schema for the AlertProvider API."
        ),
    }


def public(schema: Any) -> Any:
    """A copy of ``schema`` without canarist's private validator keys."""
    if isinstance(schema, dict):
        return {k: public(v) for k, v in schema.items() if not str(k).startswith(PRIVATE_PREFIX)}
    if isinstance(schema, list):
        return [public(v) for v in schema]
    return schema


def _column(name: str, type_: str, path: str, priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        column["priority"] = priority
    return column


_NAMES: dict[str, tuple[str, str, list[str]]] = {
    "Canary": ("canaries", "canary", []),
    "MetricTemplate": ("metrictemplates", "metrictemplate", []),
    "AlertProvider": ("alertproviders", "alertprovider", []),
}

_COLUMNS: dict[str, list[dict[str, Any]]] = {
    "Canary": [
        _column("Status", "string", ".status.phase"),
        _column("Weight", "string", ".status.canaryWeight"),
        _column("Suspended", "boolean", ".spec.suspend", 1),
        _column("FailedChecks", "string", ".status.failedChecks", 1),
        _column("Interval", "string", ".spec.analysis.interval", 1),
        _column("Mirror", "boolean", ".spec.analysis.mirror", 1),
        _column("StepWeight", "string", ".spec.analysis.stepWeight", 1),
        _column("StepWeights", "string", ".spec.analysis.stepWeights", 1),
        _column("MaxWeight", "string", ".spec.analysis.maxWeight", 1),
        _column("LastTransitionTime", "string", ".status.lastTransitionTime"),
    ],
    "MetricTemplate": [_column("Provider", "string", ".spec.provider.type")],
    "AlertProvider": [_column("Type", "string", ".spec.type")],
}

KINDS = ("Canary", "MetricTemplate", "AlertProvider")


def crd(kind: str) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind (``Canary``, ``MetricTemplate`` or ``AlertProvider``)."""
    plural, singular, short_names = _NAMES[kind]
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": singular,
        "categories": ["all"],
    }
    if short_names:
        names["shortNames"] = short_names
    schema = public(validation_schema(kind))
    apply_descriptions(kind, schema)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{defaults.API_GROUP}"},
        "spec": {
            "group": defaults.API_GROUP,
            "names": names,
            "scope": "Namespaced",
            "versions": [
                {
                    "name": defaults.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": copy.deepcopy(_COLUMNS[kind]),
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def crds() -> list[dict[str, Any]]:
    """The CRDs canarist needs: the three flagger.app kinds, Canary first, then canarist.dev's
    CanaryCommand (the runtime commands, docs/control.md)."""
    from canarist.api import command

    return [*(crd(kind) for kind in KINDS), command.crd()]


def crds_yaml() -> str:
    """The CRDs as a multi-document YAML stream."""
    import yaml

    return yaml.safe_dump_all(crds(), sort_keys=False, width=1000, explicit_start=True)
