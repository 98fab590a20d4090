"""The podinfo example objects (examples/podinfo), loaded once for the workload and router tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from canarist.api import Canary
from tests.fixtures.canaries import canary_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "podinfo"
CANARY_UID = "11111111-2222-3333-4444-555555555555"
OWNER = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": CANARY_UID,
    "controller": True,
    "blockOwnerDeletion": True,
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return data


def canary(**overrides: Any) -> Canary:
    """The walkthrough's Canary with the uid that `OWNER` refers to (keywords of `canary_manifest`)."""
    return canary_model(uid=CANARY_UID, **overrides)


def deployment() -> dict[str, Any]:
    return load("deployment.yaml")


def hpa() -> dict[str, Any]:
    return load("hpa.yaml")
