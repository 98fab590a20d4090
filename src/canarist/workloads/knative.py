"""A Knative Service as the target (``spec.targetRef: {apiVersion: serving.knative.dev/v1, kind: Service}``).

Knative keeps every version of a Service as a ``Revision`` object (``<service>-00001``, ``-00002``...)
that its controller creates from the Service's template, and routes the Service's traffic between
revisions by the percents of ``spec.traffic``. So there is no ``-primary`` copy and nothing to scale:

* the primary is the revision named by the Service's annotation ``flagger.app/primary-revision``;
* the canary is the Service's latest created revision (``status.latestCreatedRevisionName``), which is also
  what identifies the target's revision (`workloads.revision.hashed_part`);
* initialization (`build_primary`) names the latest created revision as the primary and sends it all the
  traffic: ``spec.traffic = [{latestRevision: true, percent: 0}, {revisionName: <primary>, percent: 100}]``;
* a promotion (`promote`) moves the annotation (and the primary's traffic entry) to the latest created
  revision; the router (`routers.knative`) then sends it all the traffic;
* readiness is the revision's ``Ready`` condition (`readiness`).

>>> primary_revision(build_primary(canary, service))
'podinfo-00001'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canarist.api import Canary
from canarist.engine.model import Readiness
from canarist.kube import resources as kinds
from canarist.workloads._meta import Obj, deep, get_path

GROUP = "serving.knative.dev"
API_VERSION = f"{GROUP}/v1"
SERVICE = kinds.KNATIVE_SERVICE
REVISION = kinds.KNATIVE_REVISION
#: the Knative Service annotation naming its primary revision (Flagger's name).
PRIMARY_REVISION = "flagger.app/primary-revision"
#: the label Knative puts on each Revision: the name of its Service.
SERVICE_LABEL = f"{GROUP}/service"


def is_knative_service(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Service" and str(obj.get("apiVersion") or "").startswith(f"{GROUP}/")


def primary_revision(service: Mapping[str, Any] | None) -> str:
    """The revision the annotation names as the primary; ``""`` before initialization."""
    return str(get_path(service or {}, "metadata", "annotations", PRIMARY_REVISION) or "")


def latest_revision(service: Mapping[str, Any] | None) -> str:
    """The Service's latest created revision (the canary); ``""`` until Knative created one."""
    return str(get_path(service or {}, "status", "latestCreatedRevisionName") or "")


def service_of(revision: Mapping[str, Any]) -> str:
    """The name of the Service a Revision belongs to (its ``serving.knative.dev/service`` label)."""
    return str(get_path(revision, "metadata", "labels", SERVICE_LABEL) or "")


def traffic(primary: str, primary_percent: int, canary_percent: int) -> list[Obj]:
    """``spec.traffic``: the latest revision (the canary) first, then the primary revision by name."""
    return [
        {"latestRevision": True, "percent": canary_percent},
        {"revisionName": primary, "percent": primary_percent},
    ]


def _with_primary(service: Mapping[str, Any], revision: str) -> Obj:
    out: Obj = deep(dict(service))
    meta = out.setdefault("metadata", {})
    annotations = meta.get("annotations")
    meta["annotations"] = {
        **(annotations if isinstance(annotations, Mapping) else {}),
        PRIMARY_REVISION: revision,
    }
    return out


def build_primary(canary: Canary, target: Mapping[str, Any], *_selector: str, **_options: Any) -> Obj:
    """The Service with its latest created revision named the primary and given all the traffic (the
    Service is replaced, not copied: the primary is one of its revisions)."""
    del canary
    revision = latest_revision(target)
    out = _with_primary(target, revision)
    out.setdefault("spec", {})["traffic"] = traffic(revision, 100, 0)
    return out


def promote(
    canary: Canary, target: Mapping[str, Any], primary: Mapping[str, Any], *_selector: str, **_options: Any
) -> Obj:
    """The Service with the annotation moved to its latest created revision, and the traffic entry of the
    old primary renamed to it with its percent kept (``primary`` is the Service itself).

    As when a Deployment's template is copied to its ``-primary``, both shares now reach the new version,
    and the weights read back are the ones the analysis left until the router sends the primary its 100%.
    (Flagger moves only the annotation, so until its next SetRoutes the old revision keeps the primary's
    share and its read-back finds no entry for the new primary.)"""
    del canary, primary
    revision = latest_revision(target)
    out = _with_primary(target, revision)
    entries = get_path(out, "spec", "traffic")
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and not entry.get("latestRevision") and entry.get("revisionName"):
                entry["revisionName"] = revision
    return out


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in get_path(obj, "status", "conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def readiness(revision: Mapping[str, Any] | None, *_inputs: Any) -> Readiness:
    """A revision is ready when its ``Ready`` condition is True (Flagger's ``revision.IsReady()``).

    ``Ready: False`` is Knative's verdict that the revision failed (its pods cannot start, its deadline
    passed): waiting cannot help, so it is not retriable (Flagger keeps waiting). No condition yet, or
    ``Unknown``, is a revision still starting."""
    if revision is None:
        return Readiness(ready=False, message="Knative Revision not found")
    meta = revision.get("metadata") or {}
    name = f"{meta.get('name', '')}.{meta.get('namespace', '')}"
    condition = _condition(revision, "Ready")
    status = str((condition or {}).get("status") or "Unknown")
    if status == "True":
        return Readiness.ok()
    if status == "False":
        reason = str((condition or {}).get("reason") or "")
        detail = str((condition or {}).get("message") or "")
        why = ": ".join(part for part in (reason, detail) if part)
        return Readiness(
            ready=False,
            retriable=False,
            message=f"Knative Revision {name} failed" + (f": {why}" if why else ""),
        )
    return Readiness(ready=False, message=f"Knative Revision {name} is not ready")


def problem(target: Mapping[str, Any]) -> str | None:
    """A Knative Service without a created revision yet has nothing to name the primary."""
    if latest_revision(target):
        return None
    meta = target.get("metadata") or {}
    return (
        f"Knative Service {meta.get('name', '')}.{meta.get('namespace', '')} has no revision yet "
        "(status.latestCreatedRevisionName is empty)"
    )


def never_scaled_down(target: Mapping[str, Any]) -> bool:
    return False


def no_scale_patch(target: Mapping[str, Any], replicas: int) -> Obj | None:
    """Knative scales its revisions itself: there is never anything to patch."""
    return None
