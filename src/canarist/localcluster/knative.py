"""A stand-in for Knative Serving's controller: Revisions, their Deployments and Services, and Service status.

No Knative runs in the local control plane. When the Knative CRDs are installed
(``LocalCluster(install_provider_crds=["knative"])``), `KnativeControllers` does what Knative's controller does
with a ``serving.knative.dev/v1`` Service, in the same style as the Deployment simulation
(`localcluster.controllers`):

* a Service whose ``spec.template`` differs from the one its latest Revision was made from gets a new
  Revision ``<service>-0000N`` (N counts up from 1; going back to an older template is a new Revision too,
  as with Knative): owned by the Service (controller reference), labelled ``serving.knative.dev/service``,
  ``/configuration`` and ``/configurationGeneration``, its spec the template's spec;
* each Revision gets, as Knative makes them, a Deployment ``<revision>-deployment`` running its containers
  (the first one named ``user-container`` unless named, ``PORT`` set to its port; replicas from the
  ``autoscaling.knative.dev/min-scale`` annotation, else 1) and a Service ``<revision>`` (port ``http`` 80
  to the container's port), both owned by the Revision and selecting its pods by the
  ``serving.knative.dev/revisionUID`` label. The Deployment is then simulated like any other (readiness
  delay, ``localcluster.canarist.dev/never-ready``, an image tagged ``never-ready``; in the sandbox, real pods);
* a Revision's ``Ready`` condition follows its Deployment: ``Unknown`` (reason ``Deploying``) until every
  replica is available, then ``True``; ``False`` (``ProgressDeadlineExceeded``) when the Deployment's progress
  deadline (the ``serving.knative.dev/progress-deadline`` annotation, default 600s) passes, and ``False``
  (``NotOwned``) when an object of one of those names exists that the Revision does not own;
* the Service's status: ``observedGeneration``, ``latestCreatedRevisionName``, ``latestReadyRevisionName``,
  ``url``, a ``Ready`` condition (True once the latest created Revision is ready), and ``traffic``: the
  ``spec.traffic`` targets resolved as Knative resolves them (``latestRevision: true`` is the latest *ready*
  Revision, whose name the status entry carries; without ``spec.traffic``, 100% to the latest ready
  Revision). A ``revisionName`` that does not exist makes the Service ``Ready: False`` (reason
  ``RevisionMissing``) and leaves ``status.traffic`` as it was, like Knative.

Not simulated: the queue-proxy sidecar and the activator (the ``<revision>`` Service selects the pods
directly), autoscaling and scale to zero, the ``<revision>-private`` Service, the Configuration, Route and
Ingress objects, and the placeholder Service of the cluster-local name. The sandbox's Envoy, standing in for
Kourier, splits a Service's host by ``status.traffic`` (`canarist.sandbox.dataplane.knative`).
"""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any

from canarist.durations import parse_duration
from canarist.localcluster.api import Api, now_iso
from canarist.localcluster.controllers import template_hash
from canarist.localcluster.resources import StorageKey
from canarist.localcluster.store import WatchEvent

Obj = dict[str, Any]

GROUP = "serving.knative.dev"
SERVICES: StorageKey = (GROUP, "services")
REVISIONS: StorageKey = (GROUP, "revisions")
DEPLOYMENTS: StorageKey = ("apps", "deployments")
CORE_SERVICES: StorageKey = ("", "services")
SERVICE_LABEL = f"{GROUP}/service"
CONFIGURATION_LABEL = f"{GROUP}/configuration"
GENERATION_LABEL = f"{GROUP}/configurationGeneration"
REVISION_LABEL = f"{GROUP}/revision"
REVISION_UID_LABEL = f"{GROUP}/revisionUID"
#: the annotation a Revision keeps the hash of the template it was made from in (the stand-in's own).
TEMPLATE_HASH_ANNOTATION = "localcluster.canarist.dev/template-hash"
MIN_SCALE_ANNOTATIONS = ("autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/minScale")
PROGRESS_DEADLINE_ANNOTATION = f"{GROUP}/progress-deadline"
#: Knative's name for a Revision's container when the template names none.
USER_CONTAINER = "user-container"
#: Knative's default container port.
DEFAULT_PORT = 8080
#: the port of a Revision's Service.
REVISION_SERVICE_PORT = 80
DOMAIN = "example.com"
Key = tuple[StorageKey, str, str]


def revision_number(name: str, service: str) -> int:
    """N of ``<service>-0000N`` (0 for another name)."""
    suffix = name.removeprefix(f"{service}-")
    return int(suffix) if suffix != name and suffix.isdigit() else 0


def deployment_name(revision: str) -> str:
    """The name of a Revision's Deployment: ``podinfo-00002-deployment``."""
    return f"{revision}-deployment"


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


def _owner(revision: Obj) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Revision",
        "name": _meta(revision)["name"],
        "uid": _meta(revision).get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _pod_labels(revision: Obj) -> dict[str, str]:
    """The labels of a Revision's pods (and of its Deployment and Service): the Revision's, its name and uid,
    and ``app: <revision>`` unless the template sets ``app``."""
    meta = _meta(revision)
    name = str(meta["name"])
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    labels.setdefault("app", name)
    labels[REVISION_LABEL] = name
    labels[REVISION_UID_LABEL] = str(meta.get("uid") or "")
    return labels


def container_port(revision: Obj) -> int:
    """The port of the Revision's serving container (its first declared ``containerPort``), 8080 without."""
    for container in (revision.get("spec") or {}).get("containers") or []:
        for port in (container or {}).get("ports") or [] if isinstance(container, dict) else []:
            value = port.get("containerPort") if isinstance(port, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return DEFAULT_PORT


def _min_scale(annotations: Obj) -> int:
    for key in MIN_SCALE_ANNOTATIONS:
        try:
            return max(1, int(str(annotations[key])))
        except (KeyError, ValueError):
            continue
    return 1


def _progress_deadline(annotations: Obj) -> int:
    """``serving.knative.dev/progress-deadline`` (a Go duration) in whole seconds; Knative's 600 without."""
    try:
        seconds = parse_duration(str(annotations[PROGRESS_DEADLINE_ANNOTATION]))
    except (KeyError, ValueError):
        return 600
    return max(1, math.ceil(seconds))


def revision_deployment(revision: Obj) -> Obj:
    """The Deployment ``<revision>-deployment`` Knative runs a Revision's containers in."""
    meta = _meta(revision)
    name, ns = str(meta["name"]), str(meta.get("namespace") or "")
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    labels = _pod_labels(revision)
    spec = copy.deepcopy(revision.get("spec") or {})
    port = container_port(revision)
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    for index, container in enumerate(containers):
        container.setdefault("name", USER_CONTAINER if index == 0 else f"{USER_CONTAINER}-{index}")
    if containers:
        env = [e for e in containers[0].get("env") or [] if isinstance(e, dict) and e.get("name") != "PORT"]
        containers[0]["env"] = [*env, {"name": "PORT", "value": str(port)}]
    spec["containers"] = containers
    for knative_only in ("containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds"):
        spec.pop(knative_only, None)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(name),
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [_owner(revision)],
        },
        "spec": {
            "replicas": _min_scale(annotations),
            "progressDeadlineSeconds": _progress_deadline(annotations),
            "selector": {"matchLabels": {REVISION_UID_LABEL: labels[REVISION_UID_LABEL]}},
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": spec},
        },
    }


def revision_service(revision: Obj) -> Obj:
    """The Service ``<revision>`` in front of the Revision's pods (port ``http`` 80 to the container's)."""
    meta = _meta(revision)
    labels = _pod_labels(revision)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": str(meta["name"]),
            "namespace": str(meta.get("namespace") or ""),
            "labels": labels,
            "ownerReferences": [_owner(revision)],
        },
        "spec": {
            "selector": {REVISION_UID_LABEL: labels[REVISION_UID_LABEL]},
            "ports": [
                {
                    "name": "http",
                    "protocol": "TCP",
                    "port": REVISION_SERVICE_PORT,
                    "targetPort": container_port(revision),
                }
            ],
        },
    }


def revision_status(revision: Obj, deployment: Obj | None, problem: str = "") -> Obj:
    """A Revision's status from its Deployment's: Ready once every replica is available."""
    status: Obj = {"observedGeneration": _meta(revision).get("generation", 1)}
    if problem:
        status["conditions"] = [_condition("False", "NotOwned", problem)]
        return status
    deployment_status = (deployment or {}).get("status") or {}
    desired = int(((deployment or {}).get("spec") or {}).get("replicas") or 0)
    available = int(deployment_status.get("availableReplicas") or 0)
    status["actualReplicas"] = int(deployment_status.get("readyReplicas") or 0)
    progressing = next(
        (
            c
            for c in deployment_status.get("conditions") or []
            if isinstance(c, dict) and c.get("type") == "Progressing"
        ),
        {},
    )
    current = deployment is not None and int(deployment_status.get("observedGeneration") or 0) >= int(
        _meta(deployment).get("generation") or 1
    )
    if current and progressing.get("reason") == "ProgressDeadlineExceeded":
        status["conditions"] = [
            _condition("False", "ProgressDeadlineExceeded", "Initial scale was never achieved")
        ]
    elif (
        current
        and desired > 0
        and available >= desired
        and progressing.get("reason") == "NewReplicaSetAvailable"
    ):
        status["conditions"] = [_condition("True")]
    else:
        status["conditions"] = [_condition("Unknown", "Deploying")]
    return status


class KnativeControllers:
    """Creates Knative Revisions from Services and writes both statuses, the way Knative Serving would."""

    def __init__(self, api: Api) -> None:
        self.api = api
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
        self._loop = None

    def _on_event(self, event: WatchEvent) -> None:
        if event.key not in (SERVICES, REVISIONS, DEPLOYMENTS, CORE_SERVICES):
            return
        meta = _meta(event.obj)
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        labels = meta.get("labels") or {}
        if event.key == SERVICES:
            self._schedule((SERVICES, ns, name))
            return
        if event.key in (DEPLOYMENTS, CORE_SERVICES):
            # a Revision's Deployment or Service (its status, or it was deleted): the Revision follows
            revision = str(labels.get(REVISION_LABEL) or "")
            if revision:
                self._schedule((REVISIONS, ns, revision))
            return
        service = str(labels.get(SERVICE_LABEL) or "")
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
        """The Revision's Deployment and Service (created once, as Knative does: a Revision is immutable),
        and its ``Ready`` condition from that Deployment."""
        obj = self.api.store.get(REVISIONS, ns, name)
        if obj is None or _meta(obj).get("deletionTimestamp"):
            return
        problem = self._ensure_child(obj, DEPLOYMENTS, revision_deployment(obj)) or self._ensure_child(
            obj, CORE_SERVICES, revision_service(obj)
        )
        deployment = self.api.store.get(DEPLOYMENTS, ns, deployment_name(name))
        status = revision_status(obj, deployment, problem)
        rt = self.api.storage_type(REVISIONS)
        if rt is not None and status != self._comparable(obj.get("status") or {}, status):
            self.api.write_status(rt, ns, name, status)

    def _ensure_child(self, revision: Obj, key: StorageKey, child: Obj) -> str:
        """Create ``child`` unless it exists; ``""``, or why the Revision cannot use the one that exists
        (another owner's: Knative's ``NotOwned``)."""
        rt = self.api.storage_type(key)
        if rt is None:
            return ""
        ns, name = str(_meta(child).get("namespace") or ""), str(_meta(child)["name"])
        existing = self.api.store.get(key, ns, name)
        if existing is None:
            self.api.create(rt, ns, child)
            return ""
        uid = _meta(revision).get("uid")
        if any(ref.get("uid") == uid for ref in _meta(existing).get("ownerReferences") or []):
            return ""
        return f"There is an existing {child['kind']} {ns}/{name} that we do not own."

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
