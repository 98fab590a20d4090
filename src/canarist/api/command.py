"""``canarist.dev/v1alpha1`` CanaryCommand: a person's promote, abort, pause, resume, retry or set-weight.

A command lives outside the Canary, so a GitOps tool that owns the Canary's spec never undoes it, and it has
its own RBAC verb (``create canarycommands``). The operator consumes each command once (its uid goes into
``status.commands`` of the Canary in the same write as its effect) and then writes the command's own status.
docs/control.md has the whole design.

>>> command = CanaryCommand.model_validate(obj)
>>> command.spec.action, command.spec.canary
('abort', 'podinfo')
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from canarist.api._base import FlaggerModel, field
from canarist.api.canary import _DATE_TIME, COMMAND_ACTIONS
from canarist.api.meta import ObjectMeta

GROUP = "canarist.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "CanaryCommand"
PLURAL = "canarycommands"
CRD_NAME = f"{PLURAL}.{GROUP}"
APPLIED = "Applied"
REFUSED = "Refused"


class CanaryCommandSpec(FlaggerModel):
    """What a person asks of a canary's run.

    canary names a Canary in the command's namespace; weight is set-weight's (0-100); force lets promote skip
    the confirm-promotion gates; revision, when set, is the run the command is meant for (the target's
    pod-template hash or one of its images): the command is refused while another run is current;
    requestedBy is the user as the API server saw the client (reported by the client).
    """

    canary: str = field("", crd={"required": True})
    action: str = field("", crd={"required": True, "enum": list(COMMAND_ACTIONS)})
    weight: int | None = field(check={"integer": True, "min": 0, "max": 100})
    force: bool = field(False)
    reason: str = field("")
    revision: str = field("")
    requested_by: str = field("")


class CanaryCommandStatus(FlaggerModel):
    """Written by the operator once it consumed the command: Applied or Refused, and what it did."""

    phase: str = field("", crd={"enum": ["", APPLIED, REFUSED]})
    message: str = field("")
    applied_at: str | None = field(crd=_DATE_TIME)


class CanaryCommand(FlaggerModel):
    """A ``canarist.dev/v1alpha1`` CanaryCommand."""

    KIND: ClassVar[str] = KIND

    api_version: str = field(API_VERSION)
    kind: str = field(KIND)
    metadata: ObjectMeta = field(factory=ObjectMeta)
    spec: CanaryCommandSpec = field(factory=CanaryCommandSpec)
    status: CanaryCommandStatus = field(factory=CanaryCommandStatus)


def _schema() -> dict[str, Any]:
    from canarist.api.crds import model_schema, public

    spec = public(model_schema(CanaryCommandSpec))
    status = public(model_schema(CanaryCommandStatus))
    return {
        "type": "object",
        "description": "CanaryCommand asks canarist to promote, abort, pause, resume, retry or set the weight "
        "of a canary's run, outside the GitOps-owned Canary spec.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition of CanaryCommand."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "canarycommand",
                "shortNames": ["cc"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Canary", "type": "string", "jsonPath": ".spec.canary"},
                        {"name": "Action", "type": "string", "jsonPath": ".spec.action"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Message", "type": "string", "jsonPath": ".status.message", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": copy.deepcopy(_schema())},
                }
            ],
        },
    }
