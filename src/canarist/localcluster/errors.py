"""Kubernetes `Status` errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class FieldError:
    """One field problem, formatted like k8s.io/apimachinery's field.Error."""

    field: str
    type: str  # FieldValueRequired, FieldValueInvalid, FieldValueTypeInvalid, FieldValueNotSupported, ...
    detail: str = ""
    value: Any = None
    has_value: bool = True

    def message(self) -> str:
        if self.type == "FieldValueRequired":
            text = "Required value"
            return f"{text}: {self.detail}" if self.detail else text
        if self.type == "FieldValueForbidden":
            return f"Forbidden: {self.detail}" if self.detail else "Forbidden"
        if self.type == "FieldValueNotSupported":
            return f"Unsupported value: {render_value(self.value)}: {self.detail}"
        if self.type == "FieldValueDuplicate":
            return f"Duplicate value: {render_value(self.value)}"
        text = f"Invalid value: {render_value(self.value)}" if self.has_value else "Invalid value"
        return f"{text}: {self.detail}" if self.detail else text

    def full(self) -> str:
        return f"{self.field}: {self.message()}" if self.field else self.message()


def render_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return str(value)


@dataclass
class ApiError(Exception):
    """An error answered as a metav1.Status body."""

    code: int
    reason: str
    message: str
    details: Obj = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code} {self.reason}: {self.message}"

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body

    @classmethod
    def not_found(cls, group_resource: str, name: str, group: str = "", kind: str = "") -> ApiError:
        plural = kind or group_resource.split(".", 1)[0]
        return cls(404, "NotFound", f'{group_resource} "{name}" not found', _details(name, group, plural))

    @classmethod
    def already_exists(cls, group_resource: str, name: str, group: str = "") -> ApiError:
        return cls(
            409,
            "AlreadyExists",
            f'{group_resource} "{name}" already exists',
            _details(name, group, group_resource.split(".", 1)[0]),
        )

    @classmethod
    def conflict(cls, group_resource: str, name: str, why: str, group: str = "") -> ApiError:
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {group_resource} "{name}": {why}',
            _details(name, group, group_resource.split(".", 1)[0]),
        )

    @classmethod
    def stale(cls, group_resource: str, name: str, group: str = "") -> ApiError:
        return cls.conflict(
            group_resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
            group,
        )

    @classmethod
    def invalid(
        cls, qualified_kind: str, name: str, errors: list[FieldError], group: str = "", kind: str = ""
    ) -> ApiError:
        texts = [e.full() for e in errors]
        summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        details = _details(name, group, kind)
        details["causes"] = [{"reason": e.type, "message": e.message(), "field": e.field} for e in errors]
        return cls(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {summary}', details)

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def method_not_allowed(
        cls, message: str = "the server does not allow this method on the requested resource"
    ) -> ApiError:
        return cls(405, "MethodNotAllowed", message)

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)


def _details(name: str, group: str, kind: str) -> Obj:
    details: Obj = {"name": name}
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    return details
