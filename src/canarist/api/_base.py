"""Base model and field helper shared by the flagger.app models.

Every model:

* has snake_case attributes with camelCase aliases and accepts both on input;
* keeps unknown fields (``extra="allow"``) so that a read-modify-write does not lose them;
* is lenient: optional fields default to Go's zero values (or ``None`` where Flagger uses a pointer), and
  enum-valued fields are plain ``str``. Reading a slightly-off object therefore works; the schema and
  cross-field rules are checked by :mod:`canarist.api.validation`.

Per-field metadata for the generated CRD (``crd``) and for extra validation (``check``) is attached with
:func:`field`; :mod:`canarist.api.crds` walks it.
"""

from __future__ import annotations

import copy
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

CRD_KEY = "x-canarist-crd"
CHECK_KEY = "x-canarist-check"


def field(
    default: Any = None,
    *,
    alias: str | None = None,
    factory: Any = None,
    crd: dict[str, Any] | None = None,
    check: dict[str, Any] | None = None,
    description: str | None = None,
) -> Any:
    """A pydantic ``Field`` carrying CRD schema metadata (``crd``) and validation hints (``check``).

    ``crd`` keys are emitted into the OpenAPI schema (``type`` overrides the inferred one, ``required: True``
    puts the field into the parent's ``required`` list, anything else is copied). ``check`` keys are used
    only by the validator: ``integer`` (whole number), ``min``/``max`` (bounds), ``duration`` (Go duration).
    """
    extra: dict[str, Any] = {CRD_KEY: dict(crd or {}), CHECK_KEY: dict(check or {})}
    if description:
        extra[CRD_KEY].setdefault("description", description)
    if factory is not None:
        return Field(default_factory=factory, alias=alias, json_schema_extra=extra)
    return Field(default=default, alias=alias, json_schema_extra=extra)


class FlaggerModel(BaseModel):
    """Base of every flagger.app model."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        arbitrary_types_allowed=False,
    )

    #: extra schema for the model's own node (``oneOf``, ``description``...), merged by the CRD generator.
    crd_schema: ClassVar[dict[str, Any]] = {}

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        """Treat an explicit ``null`` of a known field as absent (the API server does the same)."""
        if isinstance(data, dict) and any(v is None for v in data.values()):
            known = _known_keys(cls)
            return {k: v for k, v in data.items() if v is not None or k not in known}
        return data

    def to_dict(self) -> dict[str, Any]:
        """This object as a JSON-compatible dict in camelCase.

        A field appears when it was present in the input or assigned since, or when it differs from its
        default (so nested objects mutated in place are written too). Unknown fields are kept.
        """
        return dump_model(self)


_KNOWN: dict[type[BaseModel], frozenset[str]] = {}


def _known_keys(cls: type[BaseModel]) -> frozenset[str]:
    keys = _KNOWN.get(cls)
    if keys is None:
        keys = frozenset(k for name, info in cls.model_fields.items() for k in (name, info.alias) if k)
        _KNOWN[cls] = keys
    return keys


def _plain(value: Any) -> Any:
    if isinstance(value, FlaggerModel | BaseModel):
        return dump_model(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return copy.deepcopy(value)


def dump_model(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields_set = model.model_fields_set
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        key = info.alias or name
        if name in fields_set:
            out[key] = _plain(value)
            continue
        if isinstance(value, BaseModel):
            dumped = dump_model(value)
            if dumped:
                out[key] = dumped
            continue
        default = info.get_default(call_default_factory=True)
        if value != default:
            out[key] = _plain(value)
    for key, value in (model.model_extra or {}).items():
        out[key] = _plain(value)
    return out
