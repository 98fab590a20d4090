"""Shared pytest configuration.

Fixtures that start real components (the local control plane, Prometheus, demo apps, capture servers)
live in `tests/fixtures/<name>.py`; every module there is loaded as a pytest plugin.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared"

pytest_plugins = sorted(
    f"tests.fixtures.{module.name}"
    for module in pkgutil.iter_modules([str(FIXTURES)])
    if not module.name.startswith("_")
)
