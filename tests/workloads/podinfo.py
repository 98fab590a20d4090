"""The podinfo example objects (examples/podinfo), loaded once for the workload and router tests."""

from __future__ import annotations

import copy
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
#: the annotations that keep Flux's kustomize- and helm-controller off the objects the operator manages.
FLUX = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}


def stored(obj: dict[str, Any], resource_version: str = "7") -> dict[str, Any]:
    """``obj`` as an API server returns it after the write: a resourceVersion and no empty label or
    annotation maps."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        if not meta.get(key):
            meta.pop(key, None)
    meta["resourceVersion"] = resource_version
    return out


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
