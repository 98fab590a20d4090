"""A stand-in for Knative Serving's controller: Revisions and Service status, for the parts canarist reads.

No Knative runs in the local control plane. When the Knative CRDs are installed
(``LocalCluster(install_provider_crds=["knative"])``), `KnativeControllers` does what Knative's controller does
with a ``serving.knative.dev/v1`` Service, in the same style as the Deployment simulation
(`localcluster.controllers`):

* a Service whose ``spec.template`` differs from the one its latest Revision was made from gets a new
  Revision ``<service>-0000N`` (N counts up from 1; going back to an older template is a new Revision too,
  as with Knative): owned by the Service (controller reference), labelled ``serving.knative.dev/service``,
  ``/configuration`` and ``/configurationGeneration``, its spec the template's spec;
* a new Revision's ``Ready`` condition is ``Unknown`` (reason ``Deploying``) and becomes ``True``
  ``readiness_delay`` seconds later (the cluster's delay, or the template annotation
  ``localcluster.canarist.dev/readiness-delay``). A never-ready template (annotation
  ``localcluster.canarist.dev/never-ready: "true"`` or an image tagged ``never-ready``) stays ``Unknown``;
* the Service's status: ``observedGeneration``, ``latestCreatedRevisionName``, ``latestReadyRevisionName``,
  ``url``, a ``Ready`` condition (True once the latest created Revision is ready), and ``traffic``: the
  ``spec.traffic`` targets resolved as Knative resolves them (``latestRevision: true`` is the latest *ready*
  Revision, whose name the status entry carries; without ``spec.traffic``, 100% to the latest ready
  Revision). A ``revisionName`` that does not exist makes the Service ``Ready: False`` (reason
  ``RevisionMissing``) and leaves ``status.traffic`` as it was, like Knative.

Not simulated: pods, autoscaling and scale to zero, routes and ingress (the sandbox's Envoy splits requests
by ``status.traffic``), tags' URLs, the Configuration and Route objects.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canarist.localcluster.api import Api, now_iso
from canarist.localcluster.controllers import READINESS_DELAY_ANNOTATION, never_ready, template_hash
from canarist.localcluster.resources import StorageKey
from canarist.localcluster.store import WatchEvent

Obj = dict[str, Any]

GROUP = "serving.knative.dev"
SERVICES: StorageKey = (GROUP, "services")
REVISIONS: StorageKey = (GROUP, "revisions")
SERVICE_LABEL = f"{GROUP}/service"
CONFIGURATION_LABEL = f"{GROUP}/configuration"
GENERATION_LABEL = f"{GROUP}/configurationGeneration"
#: the annotation a Revision keeps the hash of the template it was made from in (the stand-in's own).
TEMPLATE_HASH_ANNOTATION = "localcluster.canarist.dev/template-hash"
DOMAIN = "example.com"
Key = tuple[StorageKey, str, str]


@dataclass
class _Pending:
    ready_at: float | None  # monotonic; None: never
    timer: asyncio.TimerHandle | None = None


def revision_number(name: str, service: str) -> int:
    """N of ``<service>-0000N`` (0 for another name)."""
    suffix = name.removeprefix(f"{service}-")
    return int(suffix) if suffix != name and suffix.isdigit() else 0


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _ready(obj: Obj | None) -> bool:
    for condition in ((obj or {}).get("status") or {}).get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _condition(status: str, reason: str = "", message: str = "") -> Obj:
    condition: Obj = {"type": "Ready", "status": status, "lastTransitionTime": now_iso()}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


class KnativeControllers:
    """Creates Knative Revisions from Services and writes both statuses, the way Knative Serving would."""

    def __init__(self, api: Api, readiness_delay: Callable[[], float]) -> None:
        self.api = api
        self.readiness_delay = readiness_delay
        self._pending_revisions: dict[tuple[str, str, str], _Pending] = {}  # (ns, name, uid)
        self._scheduled: set[Key] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.api.store.listeners.append(self._on_event)
        for key in (REVISIONS, SERVICES):
            for obj in self.api.store.scan(key):
                self._schedule((key, str(_meta(obj).get("namespace") or ""), str(_meta(obj).get("name"))))

    def stop(self) -> None:
        if self._on_event in self.api.store.listeners:
            self.api.store.listeners.remove(self._on_event)
        for pending in self._pending_revisions.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._pending_revisions.clear()
        self._loop = None

    def _on_event(self, event: WatchEvent) -> None:
        if event.key not in (SERVICES, REVISIONS):
            return
        meta = _meta(event.obj)
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        if event.key == SERVICES:
            self._schedule((SERVICES, ns, name))
            return
        service = str((meta.get("labels") or {}).get(SERVICE_LABEL) or "")
        if event.type != "DELETED":
            self._schedule((REVISIONS, ns, name))
        if service:
            self._schedule((SERVICES, ns, service))

    def _schedule(self, key: Key) -> None:
        if self._loop is None or key in self._scheduled:
            return
        self._scheduled.add(key)
        self._loop.call_soon(self._run, key)

    def _run(self, key: Key) -> None:
        self._scheduled.discard(key)
        if self._loop is None or self.api.storage_type(key[0]) is None:
            return  # the Knative CRDs are not installed
        if key[0] == SERVICES:
            self._sync_service(key[1], key[2])
        else:
            self._sync_revision(key[1], key[2])

    # ------------------------------------------------------------------ Revisions

    def _revisions_of(self, ns: str, service: str) -> list[Obj]:
        found = [
            obj
            for obj in self.api.store.scan(REVISIONS, ns)
            if (_meta(obj).get("labels") or {}).get(SERVICE_LABEL) == service
            and not _meta(obj).get("deletionTimestamp")
        ]
        return sorted(found, key=lambda obj: revision_number(str(_meta(obj).get("name")), service))

    def _create_revision(self, service: Obj, template: Obj, digest: str, number: int) -> Obj | None:
        rt = self.api.storage_type(REVISIONS)
        if rt is None:
            return None
        meta = _meta(service)
        name, ns = str(meta["name"]), str(meta.get("namespace") or "")
        template_meta = template.get("metadata") or {}
        labels = {
            **(template_meta.get("labels") or {}),
            SERVICE_LABEL: name,
            CONFIGURATION_LABEL: name,
            GENERATION_LABEL: str(number),
        }
        annotations = {**(template_meta.get("annotations") or {}), TEMPLATE_HASH_ANNOTATION: digest}
        revision: Obj = {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Revision",
            "metadata": {
                "name": f"{name}-{number:05d}",
                "namespace": ns,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/v1",
                        "kind": "Service",
                        "name": name,
                        "uid": meta.get("uid", ""),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        created, _ = self.api.create(rt, ns, revision)
        self.api.write_status(
            rt, ns, str(created["metadata"]["name"]), {"conditions": [_condition("Unknown", "Deploying")]}
        )
        return created

    def _sync_revision(self, ns: str, name: str) -> None:
        obj = self.api.store.get(REVISIONS, ns, name)
        if obj is None:
            return
        uid = str(_meta(obj).get("uid") or "")
        key = (ns, name, uid)
        if _ready(obj):
            self._pending_revisions.pop(key, None)
            return
        pending = self._pending_revisions.get(key)
        now = time.monotonic()
        if pending is None:
            template = {
                "metadata": {"annotations": _meta(obj).get("annotations") or {}},
                "spec": obj.get("spec"),
            }
            ready_at = None if never_ready(template) else now + self._delay(obj)
            pending = self._pending_revisions[key] = _Pending(ready_at)
        if pending.ready_at is None:
            return
        if now < pending.ready_at:
            if pending.timer is None and self._loop is not None:
                pending.timer = self._loop.call_later(
                    pending.ready_at - now + 0.001, self._timer_fired, (REVISIONS, ns, name), key
                )
            return
        del self._pending_revisions[key]
        rt = self.api.storage_type(REVISIONS)
        if rt is not None:
            status = {
                "observedGeneration": _meta(obj).get("generation", 1),
                "conditions": [_condition("True")],
            }
            self.api.write_status(rt, ns, name, status)

    def _timer_fired(self, revision: Key, key: tuple[str, str, str]) -> None:
        pending = self._pending_revisions.get(key)
        if pending is not None:
            pending.timer = None
        self._schedule(revision)

    def _delay(self, revision: Obj) -> float:
        try:
            return float((_meta(revision).get("annotations") or {})[READINESS_DELAY_ANNOTATION])
        except (KeyError, ValueError):
            return self.readiness_delay()

    # ------------------------------------------------------------------ Services

    def _sync_service(self, ns: str, name: str) -> None:
        service = self.api.store.get(SERVICES, ns, name)
        if service is None or _meta(service).get("deletionTimestamp"):
            return
        template = (service.get("spec") or {}).get("template") or {}
        template = template if isinstance(template, dict) else {}
        digest = template_hash(template)
        revisions = self._revisions_of(ns, name)
        latest = revisions[-1] if revisions else None
        if latest is None or (_meta(latest).get("annotations") or {}).get(TEMPLATE_HASH_ANNOTATION) != digest:
            number = revision_number(str(_meta(latest).get("name")), name) + 1 if latest is not None else 1
            created = self._create_revision(service, template, digest, number)
            if created is None:
                return
            revisions.append(created)
            latest = created
        rt = self.api.storage_type(SERVICES)
        if rt is None:
            return
        status = self._service_status(service, revisions, latest)
        if status != self._comparable(service.get("status") or {}, status):
            self.api.write_status(rt, ns, name, status)

    @staticmethod
    def _comparable(old: Obj, new: Obj) -> Obj:
        """The old status with the new one's condition timestamps where nothing else changed (no rewrite
        only to move a timestamp)."""
        out = copy.deepcopy(old)
        old_conditions = out.get("conditions") or []
        new_conditions = new.get("conditions") or []
        if len(old_conditions) == len(new_conditions):
            for mine, theirs in zip(old_conditions, new_conditions, strict=True):
                if isinstance(mine, dict) and {
                    k: v for k, v in mine.items() if k != "lastTransitionTime"
                } == {k: v for k, v in theirs.items() if k != "lastTransitionTime"}:
                    mine["lastTransitionTime"] = theirs.get("lastTransitionTime")
        return out

    def _service_status(self, service: Obj, revisions: list[Obj], latest: Obj) -> Obj:
        meta = _meta(service)
        name, ns = str(meta["name"]), str(meta.get("namespace") or "")
        old: Obj = service.get("status") or {}
        ready = [str(_meta(r)["name"]) for r in revisions if _ready(r)]
        latest_ready = ready[-1] if ready else ""
        latest_name = str(_meta(latest)["name"])
        status: Obj = {
            "observedGeneration": meta.get("generation", 1),
            "latestCreatedRevisionName": latest_name,
            "url": f"http://{name}.{ns}.{DOMAIN}",
        }
        if latest_ready:
            status["latestReadyRevisionName"] = latest_ready
        existing = {str(_meta(r)["name"]) for r in revisions}
        spec_traffic = (service.get("spec") or {}).get("traffic") or [
            {"latestRevision": True, "percent": 100}
        ]
        missing = [
            str(t.get("revisionName"))
            for t in spec_traffic
            if isinstance(t, dict) and not t.get("latestRevision") and t.get("revisionName") not in existing
        ]
        if missing:
            status["traffic"] = copy.deepcopy(old.get("traffic") or [])
            message = f'Revision "{missing[0]}" referenced in traffic not found.'
            status["conditions"] = [_condition("False", "RevisionMissing", message)]
            return status
        if not latest_ready:
            status["traffic"] = copy.deepcopy(old.get("traffic") or [])
            status["conditions"] = [
                _condition(
                    "Unknown", "RevisionMissing", "Configuration is waiting for a Revision to become ready."
                )
            ]
            return status
        traffic: list[Obj] = []
        for target in spec_traffic:
            if not isinstance(target, dict):
                continue
            resolved: Obj = {
                "revisionName": latest_ready if target.get("latestRevision") else target.get("revisionName"),
                "latestRevision": bool(target.get("latestRevision")),
                "percent": target.get("percent", 0),
            }
            if target.get("tag"):
                resolved["tag"] = target["tag"]
            traffic.append(resolved)
        status["traffic"] = traffic
        if latest_name == latest_ready:
            status["conditions"] = [_condition("True")]
        else:
            status["conditions"] = [
                _condition(
                    "Unknown",
                    "RevisionMissing",
                    f'Configuration "{name}" is waiting for a Revision to become ready.',
                )
            ]
        return status
