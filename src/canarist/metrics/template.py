"""A small, safe renderer for the Go-template subset used by Flagger metric queries.

Flagger renders builtin queries and MetricTemplate ``spec.query`` with Go's ``text/template``: the model's
fields are exposed as zero-argument functions (``{{ name }}``, ``{{ namespace }}``, ``{{ target }}``,
``{{ service }}``, ``{{ ingress }}``, ``{{ route }}``, ``{{ interval }}``), ``{{ variables.key }}`` reads a
template variable (a missing key is an error), and the Skipper observer declares a variable with
``{{- $route := printf "..." namespace ingress service }}`` and uses it as ``{{ $route }}``.

This module implements exactly that subset, by hand: a tokenizer and an interpreter over a fixed set of
names. Nothing is evaluated as Python, and nothing outside :class:`TemplateModel` can be reached. Anything
else (pipes, ``if``/``range``, ``.field`` on the data, unknown functions) is a :class:`RenderError` with a
message naming the problem. Whitespace-trim markers (``{{-`` and ``-}}``) and ``{{/* comments */}}``
work as in Go.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["RenderError", "TemplateModel", "collapse_whitespace", "render"]


class RenderError(ValueError):
    """The template cannot be rendered with the given model."""


@dataclass(frozen=True)
class TemplateModel:
    """The values a metric query template can see (Flagger's ``MetricTemplateModel``)."""

    name: str = ""
    namespace: str = ""
    target: str = ""
    service: str = ""
    ingress: str = ""
    route: str = ""
    interval: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)

    def function(self, ident: str) -> str | Mapping[str, str] | None:
        """The value of the zero-argument template function ``ident``, or None when it does not exist."""
        if ident in _MODEL_FUNCTIONS:
            value: str | Mapping[str, str] = getattr(self, ident)
            return value
        return None


_MODEL_FUNCTIONS = ("name", "namespace", "target", "service", "ingress", "route", "interval", "variables")

_WS = re.compile(r"\s+")


def collapse_whitespace(query: str) -> str:
    """Replace every run of whitespace with one space, as Flagger does before sending a query.

    Leading and trailing whitespace is collapsed, not stripped, so a query that starts with a newline is
    sent with one leading space (Flagger's unit tests expect exactly that).
    """
    return _WS.sub(" ", query)


# --- tokenizer for the inside of an action -------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<declare>:=)
  | (?P<assign>=)
  | (?P<pipe>\|)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>[+-]?[0-9]+(?:\.[0-9]+)?)
  | (?P<variable>\$[A-Za-z_][A-Za-z0-9_]*|\$)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)

_KEYWORDS = frozenset(
    {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil"}
)

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise RenderError(f"unexpected {source[position]!r} in action {{{{{source}}}}}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group()))
        position = match.end()
    return tokens


def _unquote(token: _Token) -> str:
    body = token.text[1:-1]
    if token.kind == "raw":
        return body
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = body[index + 1]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            index += 2
            continue
        raise RenderError(f"unsupported escape \\{escape} in string {token.text}")
    return "".join(out)


# --- values and printf ---------------------------------------------------------------------------------

_Value = str | int | float | Mapping[str, str]


def _go_format(value: _Value) -> str:
    """Go's ``%v`` of the values this renderer can produce."""
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{key}:{value[key]}" for key in sorted(value)) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _go_type(value: _Value) -> str:
    if isinstance(value, Mapping):
        return "map[string]string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    return "string"


def _go_quote(text: str) -> str:
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


_VERB = re.compile(r"%(.)", re.DOTALL)


def _printf(fmt: str, args: list[_Value]) -> str:
    """Go's ``fmt.Sprintf`` for the verbs ``%s %v %d %q %%``; other verbs are a render error."""
    out: list[str] = []
    used = 0
    position = 0
    for match in _VERB.finditer(fmt):
        out.append(fmt[position : match.start()])
        position = match.end()
        verb = match.group(1)
        if verb == "%":
            out.append("%")
            continue
        if verb not in "svdq":
            raise RenderError(f'printf: unsupported verb "%{verb}" (supported: %s %v %d %q %%)')
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[used]
        used += 1
        if verb in "sv":
            out.append(_go_format(arg))
        elif verb == "d":
            if isinstance(arg, int) and not isinstance(arg, bool):
                out.append(str(arg))
            else:
                out.append(f"%!d({_go_type(arg)}={_go_format(arg)})")
        else:  # q
            if isinstance(arg, str):
                out.append(_go_quote(arg))
            elif isinstance(arg, int):
                out.append("'" + chr(arg) + "'")
            else:
                out.append(f"%!q({_go_type(arg)}={_go_format(arg)})")
    if position < len(fmt) and fmt.endswith("%") and not fmt.endswith("%%"):
        out.append(fmt[position:-1] + "%!(NOVERB)")
    else:
        out.append(fmt[position:])
    if used < len(args):
        extra = ", ".join(f"{_go_type(arg)}={_go_format(arg)}" for arg in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# --- the interpreter -----------------------------------------------------------------------------------


class _Renderer:
    def __init__(self, model: TemplateModel) -> None:
        self.model = model
        self.variables: dict[str, _Value] = {}

    def operand(self, token: _Token) -> _Value:
        if token.kind in ("string", "raw"):
            return _unquote(token)
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "variable":
            if token.text not in self.variables:
                raise RenderError(f'undefined variable "{token.text}"')
            return self.variables[token.text]
        if token.kind == "ident":
            return self.identifier(token.text, [])
        if token.kind == "field":
            raise RenderError(
                f"{token.text}: field access on the data is not supported; "
                "use the functions name, namespace, target, service, ingress, route, interval, variables.<key>"
            )
        raise RenderError(f"unexpected {token.text!r}")

    def identifier(self, ident: str, args: list[_Value]) -> _Value:
        head, _, rest = ident.partition(".")
        if head in _KEYWORDS:
            raise RenderError(f'"{head}" is not supported by canarist\'s template renderer')
        if head == "printf":
            if rest:
                raise RenderError(f"{ident}: printf has no fields")
            if not args:
                raise RenderError("wrong number of args for printf: want at least 1 got 0")
            fmt = args[0]
            if not isinstance(fmt, str):
                raise RenderError(f"printf: the format must be a string, got {_go_type(fmt)}")
            return _printf(fmt, list(args[1:]))
        value = self.model.function(head)
        if value is None:
            raise RenderError(f'function "{head}" not defined')
        if args:
            raise RenderError(f"wrong number of args for {head}: want 0 got {len(args)}")
        if not rest:
            return value
        if not isinstance(value, Mapping):
            raise RenderError(f"{ident}: {head} is a string and has no fields")
        key, _, deeper = rest.partition(".")
        if key not in value:
            raise RenderError(f'variable "{key}" is not defined in templateVariables')
        if deeper:
            raise RenderError(f"{ident}: templateVariables values are strings and have no fields")
        return value[key]

    def command(self, tokens: list[_Token], source: str) -> _Value:
        if not tokens:
            raise RenderError(f"missing value in action {{{{{source}}}}}")
        for token in tokens:
            if token.kind in ("pipe", "lparen", "rparen"):
                raise RenderError(
                    f"{token.text!r} in {{{{{source}}}}} is not supported by canarist's template renderer"
                )
            if token.kind in ("declare", "assign"):
                raise RenderError(f"unexpected {token.text!r} in {{{{{source}}}}}")
        head = tokens[0]
        if head.kind == "ident":
            return self.identifier(head.text, [self.operand(token) for token in tokens[1:]])
        if len(tokens) > 1:
            raise RenderError(f"can't give argument to non-function {head.text} in {{{{{source}}}}}")
        return self.operand(head)

    def action(self, source: str) -> str:
        inner = source.strip()
        if inner.startswith("/*"):
            if not inner.endswith("*/"):
                raise RenderError("unclosed comment")
            return ""
        tokens = _tokenize(inner)
        if len(tokens) >= 2 and tokens[0].kind == "variable" and tokens[1].kind in ("declare", "assign"):
            name = tokens[0].text
            if tokens[1].kind == "assign" and name not in self.variables:
                raise RenderError(f'undefined variable "{name}"')
            self.variables[name] = self.command(tokens[2:], source)
            return ""
        return _go_format(self.command(tokens, source))


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


def render(template: str, model: TemplateModel) -> str:
    """Render ``template`` with ``model``; raises :class:`RenderError` on anything outside the subset."""
    renderer = _Renderer(model)
    out: list[str] = []
    position = 0
    trim_next = False
    for match in _ACTION.finditer(template):
        text = template[position : match.start()]
        if trim_next:
            text = text.lstrip()
        if match.group(1):
            text = text.rstrip()
        out.append(text)
        out.append(renderer.action(match.group(2)))
        trim_next = bool(match.group(3))
        position = match.end()
    tail = template[position:]
    if "{{" in tail:
        raise RenderError("unclosed action: missing }}")
    if trim_next:
        tail = tail.lstrip()
    out.append(tail)
    return "".join(out)
