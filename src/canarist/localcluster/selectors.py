"""Label and field selectors, parsed the way kube-apiserver parses them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from canarist.localcluster.errors import ApiError

Obj = dict[str, Any]

_KEY_RE = re.compile(
    r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in (">", "<") and has and value is not None:
            try:
                left, right = int(value), int(self.values[0])
            except ValueError:
                return False
            return left > right if self.op == ">" else left < right
        return False


class LabelSelector:
    """A parsed `labelSelector` query parameter (or a metav1.LabelSelector object)."""

    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Obj) -> bool:
        if not self.requirements:
            return True
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in self.requirements)

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        if not text or not text.strip():
            return cls([])
        requirements = []
        for part in _split_top_level(text):
            part = part.strip()
            if not part:
                raise _bad(f"unable to parse requirement: empty requirement in {text!r}")
            requirements.append(_parse_requirement(part))
        return cls(requirements)

    @classmethod
    def from_object(cls, selector: Obj | None) -> LabelSelector:
        """From a metav1.LabelSelector (matchLabels + matchExpressions)."""
        if not selector:
            return cls([])
        reqs = [Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
        for expr in selector.get("matchExpressions") or []:
            op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}.get(
                str(expr.get("operator")), "in"
            )
            reqs.append(
                Requirement(str(expr.get("key")), op, tuple(str(v) for v in expr.get("values") or []))
            )
        return cls(reqs)


def _bad(message: str) -> ApiError:
    return ApiError.bad_request(message)


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")
_CMP_RE = re.compile(r"^([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(.*)$")


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise _bad(f"unable to parse requirement: invalid label key {key!r}")
    return key


def _parse_requirement(part: str) -> Requirement:
    match = _SET_RE.match(part)
    if match:
        values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
        return Requirement(_check_key(match.group(1)), match.group(2), values)
    if part.startswith("!"):
        return Requirement(_check_key(part[1:].strip()), "!exists")
    match = _CMP_RE.match(part)
    if match:
        op = "=" if match.group(2) in ("=", "==") else match.group(2)
        return Requirement(_check_key(match.group(1)), op, (match.group(3).strip(),))
    return Requirement(_check_key(part), "exists")


def field_value(obj: Obj, path: str) -> str:
    """The string value of a dotted field path, "" when absent (as the apiserver's field sets do)."""
    current: Any = obj
    for piece in path.split("."):
        if not isinstance(current, dict):
            return ""
        current = current.get(piece)
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    negate: bool
    value: str


class FieldSelector:
    """A parsed `fieldSelector` (=, ==, != joined by commas)."""

    def __init__(self, requirements: list[FieldRequirement]) -> None:
        self.requirements = requirements

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: Obj) -> bool:
        for req in self.requirements:
            equal = field_value(obj, req.path) == req.value
            if equal == req.negate:
                return False
        return True

    def exact_name(self) -> str | None:
        for req in self.requirements:
            if req.path == "metadata.name" and not req.negate:
                return req.value
        return None

    @classmethod
    def parse(cls, text: str | None, allowed: tuple[str, ...]) -> FieldSelector:
        if not text or not text.strip():
            return cls([])
        reqs = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "!=" in part:
                path, value = part.split("!=", 1)
                negate = True
            elif "==" in part:
                path, value = part.split("==", 1)
                negate = False
            elif "=" in part:
                path, value = part.split("=", 1)
                negate = False
            else:
                raise _bad(f"invalid selector: '{text}'; can't understand '{part}'")
            path = path.strip()
            if path not in allowed:
                raise _bad(f"field label not supported: {path}")
            reqs.append(FieldRequirement(path, negate, value.strip()))
        return cls(reqs)
