"""Validation, defaulting and pruning of custom resources against a CRD's openAPIV3Schema."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from canarist.localcluster.errors import FieldError

Obj = dict[str, Any]

_ROOT_KEEP = ("apiVersion", "kind", "metadata")
_FORMATS: dict[str, re.Pattern[str]] = {
    "date-time": re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"),
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
}


@dataclass
class SchemaResult:
    errors: list[FieldError] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_type(value: Any, expected: str) -> bool:
    actual = _type_name(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == expected


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate_object(obj: Obj, schema: Obj) -> SchemaResult:
    """Default, prune (in place) and validate a whole custom resource object."""
    result = SchemaResult()
    props = schema.get("properties") or {}
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    for key in list(obj):
        if key in _ROOT_KEEP:
            continue
        if key not in props and not preserve:
            result.pruned.append(key)
            del obj[key]
    _apply_defaults(obj, props)
    for key, sub in props.items():
        if key in _ROOT_KEEP or key not in obj:
            continue
        obj[key] = _walk(obj[key], sub, key, result, mutate=True)
        if obj[key] is _DROP:
            del obj[key]
    for key in schema.get("required") or []:
        if key not in obj:
            result.errors.append(FieldError(key, "FieldValueRequired"))
    _value_checks(obj, schema, "", result, skip_type=True)
    return result


class _Drop:
    pass


_DROP: Any = _Drop()


def _apply_defaults(value: Obj, props: Obj) -> None:
    for key, sub in props.items():
        if key not in value and isinstance(sub, dict) and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])


def _walk(value: Any, schema: Obj, path: str, result: SchemaResult, mutate: bool) -> Any:
    """Validate value against schema; when mutate, prune unknown fields and apply defaults. Returns the value."""
    if value is None:
        if schema.get("nullable"):
            return None
        if mutate:
            return _DROP
        result.errors.append(
            FieldError(
                path,
                "FieldValueTypeInvalid",
                f'{path} in body must be of type {schema.get("type", "object")}: "null"',
                None,
            )
        )
        return value
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if not (isinstance(value, str) or _is_type(value, "integer")):
            result.errors.append(
                FieldError(
                    path,
                    "FieldValueTypeInvalid",
                    f'{path} in body must be of type integer,string: "{_type_name(value)}"',
                    value,
                )
            )
            return value
    elif isinstance(expected, str) and expected and not _is_type(value, expected):
        result.errors.append(
            FieldError(
                path,
                "FieldValueTypeInvalid",
                f'{path} in body must be of type {expected}: "{_type_name(value)}"',
                value,
            )
        )
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        if mutate and isinstance(props, dict):
            _apply_defaults(value, props)
        for key in list(value):
            child_path = _join(path, key)
            if isinstance(props, dict) and key in props:
                new = _walk(value[key], props[key], child_path, result, mutate)
            elif isinstance(additional, dict):
                new = _walk(value[key], additional, child_path, result, mutate)
            elif (
                additional is True
                or preserve
                or (embedded and key in _ROOT_KEEP)
                or (props is None and additional is None and not expected)
            ):
                continue
            else:
                if mutate:
                    result.pruned.append(child_path)
                    del value[key]
                continue
            if new is _DROP:
                del value[key]
            elif mutate:
                value[key] = new
        for key in schema.get("required") or []:
            if key not in value:
                result.errors.append(FieldError(_join(path, key), "FieldValueRequired"))
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for n, item in enumerate(value):
                new = _walk(item, items, f"{path}[{n}]", result, mutate)
                if mutate and new is not _DROP:
                    value[n] = new
    _value_checks(value, schema, path, result)
    return value


def _value_checks(value: Any, schema: Obj, path: str, result: SchemaResult, skip_type: bool = False) -> None:
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        supported = ", ".join(_quote(v) for v in enum)
        result.errors.append(
            FieldError(path, "FieldValueNotSupported", f"supported values: {supported}", value)
        )
    if isinstance(value, str):
        fmt = schema.get("format")
        if fmt in _FORMATS and value and not _FORMATS[fmt].match(value):
            result.errors.append(
                FieldError(
                    path, "FieldValueInvalid", f'{path} in body must be of type {fmt}: "{value}"', value
                )
            )
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _regex(pattern).search(value):
            result.errors.append(
                FieldError(path, "FieldValueInvalid", f"{path} in body should match '{pattern}'", value)
            )
        if "maxLength" in schema and len(value) > int(schema["maxLength"]):
            result.errors.append(
                FieldError(
                    path, "FieldValueTooLong", f"may not be more than {schema['maxLength']} bytes", value
                )
            )
        if "minLength" in schema and len(value) < int(schema["minLength"]):
            result.errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"{path} in body should be at least {schema['minLength']} chars long",
                    value,
                )
            )
    if isinstance(value, int | float) and not isinstance(value, bool):
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        if minimum is not None:
            if schema.get("exclusiveMinimum") and value <= minimum:
                result.errors.append(
                    FieldError(
                        path, "FieldValueInvalid", f"{path} in body should be greater than {minimum}", value
                    )
                )
            elif value < minimum:
                result.errors.append(
                    FieldError(
                        path,
                        "FieldValueInvalid",
                        f"{path} in body should be greater than or equal to {minimum}",
                        value,
                    )
                )
        if maximum is not None:
            if schema.get("exclusiveMaximum") and value >= maximum:
                result.errors.append(
                    FieldError(
                        path, "FieldValueInvalid", f"{path} in body should be less than {maximum}", value
                    )
                )
            elif value > maximum:
                result.errors.append(
                    FieldError(
                        path,
                        "FieldValueInvalid",
                        f"{path} in body should be less than or equal to {maximum}",
                        value,
                    )
                )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > int(schema["maxItems"]):
            result.errors.append(
                FieldError(path, "FieldValueTooMany", f"must have at most {schema['maxItems']} items", value)
            )
        if "minItems" in schema and len(value) < int(schema["minItems"]):
            result.errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"{path} in body should have at least {schema['minItems']} items",
                    value,
                )
            )
    if isinstance(value, dict):
        if "maxProperties" in schema and len(value) > int(schema["maxProperties"]):
            result.errors.append(
                FieldError(
                    path, "FieldValueTooMany", f"must have at most {schema['maxProperties']} items", value
                )
            )
        if "minProperties" in schema and len(value) < int(schema["minProperties"]):
            result.errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"{path} in body should have at least {schema['minProperties']} properties",
                    value,
                )
            )
    for combinator in ("oneOf", "anyOf", "allOf", "not"):
        branches = schema.get(combinator)
        if branches is None:
            continue
        if combinator == "not":
            if not _passes(value, branches, path):
                continue
            result.errors.append(
                FieldError(
                    path, "FieldValueInvalid", f"{path} in body must not validate the schema (not)", value
                )
            )
            continue
        passing = sum(1 for b in branches if isinstance(b, dict) and _passes(value, b, path))
        if combinator == "oneOf" and passing != 1:
            result.errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"{path or 'body'} must validate one and only one schema (oneOf)",
                    value,
                )
            )
        elif combinator == "anyOf" and passing == 0:
            result.errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"{path or 'body'} must validate at least one schema (anyOf)",
                    value,
                )
            )
        elif combinator == "allOf" and passing != len(branches):
            result.errors.append(
                FieldError(
                    path,
                    "FieldValueInvalid",
                    f"{path or 'body'} must validate all the schemas (allOf)",
                    value,
                )
            )


def _passes(value: Any, schema: Obj, path: str) -> bool:
    probe = SchemaResult()
    _walk(copy.deepcopy(value), schema, path, probe, mutate=False)
    return not probe.errors


def _quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)
