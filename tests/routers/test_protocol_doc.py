"""docs/architecture.md shows the Router Protocol; it must name exactly what `routers/base.py` declares."""

from __future__ import annotations

import re
from pathlib import Path

from canarist.routers.base import Router

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def documented_members() -> set[str]:
    text = DOC.read_text()
    block = text[text.index("class Router(Protocol):") :]
    block = block[: block.index("```")]
    methods = set(re.findall(r"^\s+def (\w+)\(", block, re.MULTILINE))
    attributes = set(re.findall(r"^\s+(\w+): ", block, re.MULTILINE))
    return methods | attributes


def declared_members() -> set[str]:
    methods = {name for name, value in vars(Router).items() if callable(value) and not name.startswith("_")}
    return methods | set(Router.__annotations__)


def test_the_documented_router_protocol_is_the_code() -> None:
    assert documented_members() == declared_members()
