"""Workload simulation: Deployment, DaemonSet and HorizontalPodAutoscaler status, like the real controllers.

A rollout (a new pod template, or more replicas) becomes ready `readiness_delay` seconds after the
controller sees it. A pod template never becomes ready when it carries the annotation
``localcluster.canarist.dev/never-ready: "true"`` or when one of its container images has the tag
``never-ready`` (``ghcr.io/x/app:never-ready``); such a Deployment reports ``ProgressDeadlineExceeded``
after ``spec.progressDeadlineSeconds``. ``localcluster.canarist.dev/readiness-delay: "2.5"`` on the
pod template overrides the delay for that template.

With an ``image_check`` (``LocalCluster(image_check=...)``: ``image -> None`` when the image can run,
else a short reason), a template with a container or init container image the check refuses never
becomes ready either, and the workload gets one Warning Event ``ImageNotRunnable`` per template naming
the container, the image and the reason.

With ``pod_readiness`` (``LocalCluster(pod_readiness=True)``) the timer is off and the status follows the
Pod objects that belong to the workload (a controller ownerReference with its uid; a pod without a
controller reference when its labels match the workload's selector in its namespace): a pod counts when it
has no ``deletionTimestamp`` and is not Succeeded/Failed, as updated when its ``pod-template-hash``
(DaemonSet: ``controller-revision-hash``) is :func:`pod_template_hash` of the current template, as ready
when its ``Ready`` condition is True, as available when it has been ready for ``spec.minReadySeconds``.
Pods of a never-ready template or of one with refused images never count as ready. Whoever runs the pods
(the sandbox's PodManager) writes them; every Pod change recomputes its workload's status at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from canarist.localcluster.api import Api, now_iso
from canarist.localcluster.errors import ApiError
from canarist.localcluster.resources import StorageKey
from canarist.localcluster.selectors import LabelSelector
from canarist.localcluster.store import WatchEvent
from canarist.podnames import POD_TEMPLATE_HASH_LABEL, pod_template_hash

Obj = dict[str, Any]

NEVER_READY_ANNOTATION = "localcluster.canarist.dev/never-ready"
READINESS_DELAY_ANNOTATION = "localcluster.canarist.dev/readiness-delay"
NEVER_READY_TAG = "never-ready"
DEPLOYMENTS: StorageKey = ("apps", "deployments")
DAEMONSETS: StorageKey = ("apps", "daemonsets")
HPAS: StorageKey = ("autoscaling", "horizontalpodautoscalers")
PODS: StorageKey = ("", "pods")
#: the label a DaemonSet's pods carry their template's hash in
REVISION_HASH_LABEL = "controller-revision-hash"
Key = tuple[StorageKey, str, str]
ImageCheck = Callable[[str], "str | None"]
IMAGE_NOT_RUNNABLE_REASON = "ImageNotRunnable"
EVENT_SOURCE = "canarist-localcluster"
EVENTS: StorageKey = ("", "events")
TERMINAL_PHASES = ("Succeeded", "Failed")
_WORKLOAD_KINDS: dict[str, StorageKey] = {"Deployment": DEPLOYMENTS, "DaemonSet": DAEMONSETS}
log = logging.getLogger("canarist.localcluster")


def template_hash(template: Any) -> str:
    """The pod template's hash: the one the pods' ``pod-template-hash`` label carries (ReplicaSet names)."""
    return pod_template_hash(template if isinstance(template, dict) else {})


def never_ready(template: Obj) -> bool:
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(NEVER_READY_ANNOTATION, "")).lower() == "true":
        return True
    containers = ((template.get("spec") or {}).get("containers") or []) + (
        (template.get("spec") or {}).get("initContainers") or []
    )
    for container in containers:
        image = str((container or {}).get("image") or "")
        tag = image.rsplit("/", 1)[-1].split("@", 1)[0]
        if ":" in tag and tag.rsplit(":", 1)[1] == NEVER_READY_TAG:
            return True
    return False


def refused_images(template: Obj, check: ImageCheck) -> list[str]:
    """One line per container (init containers first) whose image `check` refuses, naming the reason."""
    spec = template.get("spec") or {}
    refused: list[str] = []
    for field_name, label in (("initContainers", "init container"), ("containers", "container")):
        for container in spec.get(field_name) or []:
            if not isinstance(container, dict):
                continue
            image = str(container.get("image") or "")
            try:
                reason = check(image)
            except Exception as exc:  # the check is the caller's code: its failure refuses, visibly
                log.warning("localcluster: the image check failed for %r: %r", image, exc)
                reason = f"the image check failed: {exc}"
            if reason is not None:
                name = container.get("name") or "?"
                refused.append(f'{label} {name}: the sandbox cannot run image "{image}": {reason}')
    return refused


def _scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        try:
            fraction = float(value[:-1]) / 100 * total
        except ValueError:
            return 0
        return math.ceil(fraction) if round_up else math.floor(fraction)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


def max_unavailable(deployment: Obj, desired: int) -> int:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate" or desired == 0:
        return 0
    rolling = strategy.get("rollingUpdate") or {}
    unavailable = _scaled(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    surge = _scaled(rolling.get("maxSurge", "25%"), desired, round_up=True)
    if unavailable == 0 and surge == 0:
        unavailable = 1
    return min(unavailable, desired)


@dataclass
class PodCounts:
    """A workload's active pods (no deletionTimestamp, not Succeeded/Failed)."""

    total: int = 0
    updated: int = 0  # of the current template
    ready: int = 0
    available: int = 0  # ready for minReadySeconds
    updated_available: int = 0
    next_available: float | None = None  # monotonic: when the next ready pod becomes available


@dataclass
class Rollout:
    """What the simulated pods of one workload are doing."""

    ready_hash: str | None = None  # the template whose pods are ready
    ready_count: int = 0
    target_hash: str | None = None
    target_count: int = -1
    started: float = 0.0
    ready_at: float | None = None  # monotonic; None: never
    timer: asyncio.TimerHandle | None = None
    uid: str = ""
    refused: list[str] = dataclass_field(default_factory=list)  # the target template's refused images
    announced: str | None = None  # the target template whose refusal has been told in an Event
    reported: set[str] = dataclass_field(default_factory=set)  # templates that have an ImageNotRunnable Event


class WorkloadControllers:
    """Moves Deployment/DaemonSet/HPA status the way kube-controller-manager would."""

    def __init__(
        self,
        api: Api,
        readiness_delay: float = 0.2,
        nodes: int = 1,
        image_check: ImageCheck | None = None,
        pod_readiness: bool = False,
    ) -> None:
        self.api = api
        self.image_check = image_check
        self.readiness_delay = readiness_delay
        self.nodes = nodes
        #: the status follows the workloads' Pod objects instead of the readiness timer
        self.pod_readiness = pod_readiness
        self.rollouts: dict[Key, Rollout] = {}
        self._ready_since: dict[str, float] = {}  # pod uid -> when it was first seen Ready (monotonic)
        self._pending: set[Key] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.api.store.listeners.append(self._on_event)
        for key in (DEPLOYMENTS, DAEMONSETS, HPAS):
            for obj in self.api.store.scan(key):
                meta = obj["metadata"]
                self._schedule((key, str(meta.get("namespace") or ""), str(meta["name"])))

    def stop(self) -> None:
        if self._on_event in self.api.store.listeners:
            self.api.store.listeners.remove(self._on_event)
        for rollout in self.rollouts.values():
            if rollout.timer is not None:
                rollout.timer.cancel()
        self.rollouts.clear()
        self._loop = None

    def _on_event(self, event: WatchEvent) -> None:
        if event.key in (DEPLOYMENTS, DAEMONSETS, HPAS):
            meta = event.obj["metadata"]
            self._schedule((event.key, str(meta.get("namespace") or ""), str(meta["name"])))
        elif event.key == PODS and self.pod_readiness:
            if event.type == "DELETED":
                self._ready_since.pop(str(event.obj["metadata"].get("uid") or ""), None)
            owners = {key for pod in (event.obj, event.old) if pod is not None for key in self._owners(pod)}
            for key in sorted(owners):
                self._schedule(key)

    # ------------------------------------------------------------------ which pods are whose

    def _owners(self, pod: Obj) -> list[Key]:
        """The workloads a Pod counts for: its controller's, else those whose selector matches it."""
        meta = pod.get("metadata") or {}
        ns = str(meta.get("namespace") or "")
        ref = _controller_ref(pod)
        if ref is not None:
            storage = _WORKLOAD_KINDS.get(str(ref.get("kind") or ""))
            return [] if storage is None else [(storage, ns, str(ref.get("name") or ""))]
        return [
            (storage, ns, str(obj["metadata"]["name"]))
            for storage in (DEPLOYMENTS, DAEMONSETS)
            for obj in self.api.store.scan(storage, ns)
            if _selects(obj, pod)
        ]

    def _schedule(self, key: Key) -> None:
        if self._loop is None or key in self._pending:
            return
        self._pending.add(key)
        self._loop.call_soon(self._run, key)

    def _run(self, key: Key) -> None:
        self._pending.discard(key)
        if self._loop is None:
            return
        storage, ns, name = key
        obj = self.api.store.get(storage, ns, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            rollout = self.rollouts.pop(key, None)
            if rollout is not None and rollout.timer is not None:
                rollout.timer.cancel()
            return
        rt = self.api.storage_type(storage)
        if rt is None:
            return
        status = self._hpa_status(obj) if storage == HPAS else self._workload_status(key, obj)
        if status != obj.get("status"):
            self.api.write_status(rt, ns, name, status)

    # ------------------------------------------------------------------ Deployments and DaemonSets

    def _rollout(
        self, key: Key, obj: Obj, template: Obj, digest: str, desired: int, now: float
    ) -> tuple[Rollout, bool]:
        """The workload's Rollout, restarted for a new object under an old name, its target moved (and the
        images of a new template checked) when the template or the replica count changed; and whether it
        moved."""
        rollout = self.rollouts.get(key)
        uid = str(obj["metadata"].get("uid") or "")
        if rollout is None or rollout.uid != uid:  # a new object under an old name starts from scratch
            if rollout is not None and rollout.timer is not None:
                rollout.timer.cancel()
            rollout = self.rollouts[key] = Rollout(uid=uid)
        moved = rollout.target_hash != digest or rollout.target_count != desired
        if moved:
            if rollout.target_hash != digest:  # a new template: its images are checked once
                check = self.image_check
                rollout.refused = refused_images(template, check) if check is not None else []
                rollout.announced = None
            rollout.target_hash, rollout.target_count, rollout.started = digest, desired, now
        return rollout, moved

    def _workload_status(self, key: Key, obj: Obj) -> Obj:
        if self.pod_readiness:
            return self._status_from_pods(key, obj)
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        is_deployment = key[0] == DEPLOYMENTS
        desired = int(spec.get("replicas", 1)) if is_deployment else self.nodes
        digest = template_hash(template)
        now = time.monotonic()
        rollout, moved = self._rollout(key, obj, template, digest, desired, now)
        if moved:
            if desired == 0 or (digest == rollout.ready_hash and desired <= rollout.ready_count):
                rollout.ready_hash, rollout.ready_count, rollout.ready_at = digest, desired, now
            elif never_ready(template) or rollout.refused:
                rollout.ready_at = None
            else:
                rollout.ready_at = now + self._delay(template)
        serving = rollout.ready_hash == digest and rollout.ready_count >= desired
        if rollout.refused and not serving and rollout.announced != digest:
            rollout.announced = digest
            self._announce_refusal(key, obj, rollout, digest)
        if rollout.ready_at is not None and now >= rollout.ready_at:
            rollout.ready_hash, rollout.ready_count = digest, desired
        done = rollout.ready_hash == digest and rollout.ready_count == desired
        deadline = float(spec.get("progressDeadlineSeconds", 600)) if is_deployment else math.inf
        timed_out = not done and now - rollout.started >= deadline
        if rollout.timer is not None:
            rollout.timer.cancel()
            rollout.timer = None
        if not done and self._loop is not None:
            wake = [
                t
                for t in (rollout.ready_at, rollout.started + deadline if not timed_out else None)
                if t is not None and math.isfinite(t)
            ]
            if wake:
                rollout.timer = self._loop.call_later(max(0.0, min(wake) - now) + 0.001, self._schedule, key)
        name = f"{obj['metadata']['name']}-{digest}"
        if is_deployment:
            return self._deployment_status(obj, rollout, desired, done, timed_out, name)
        return self._daemonset_status(obj, rollout, desired, done)

    def _announce_refusal(self, key: Key, obj: Obj, rollout: Rollout, digest: str) -> None:
        """The Warning Event for a template whose images cannot run: created once per (workload,
        template); rolling out the same template again later bumps its count, like event correlation."""
        rt = self.api.storage_type(EVENTS)
        if rt is None:
            return
        meta = obj["metadata"]
        ns, workload, kind = str(meta.get("namespace") or ""), str(meta["name"]), str(obj.get("kind") or "")
        if not kind:
            kind = "Deployment" if key[0] == DEPLOYMENTS else "DaemonSet"
        suffix = hashlib.sha256(f"{kind}/{rollout.uid}/{digest}".encode()).hexdigest()[:16]
        name = f"{workload[:200]}.{suffix}"
        stamp = now_iso()
        with contextlib.suppress(ApiError):  # e.g. the namespace is terminating
            existing = self.api.store.get(EVENTS, ns, name)
            if digest in rollout.reported and existing is not None:
                bumped = {**existing, "count": int(existing.get("count") or 1) + 1, "lastTimestamp": stamp}
                self.api.update(rt, ns, name, bumped)
                return
            rollout.reported.add(digest)
            if existing is not None:  # told before the controllers restarted: this is a resync
                return
            event: Obj = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {
                    "apiVersion": "apps/v1",
                    "kind": kind,
                    "name": workload,
                    "namespace": ns,
                    "uid": rollout.uid,
                    "resourceVersion": str(meta.get("resourceVersion") or ""),
                },
                "reason": IMAGE_NOT_RUNNABLE_REASON,
                "message": "; ".join(rollout.refused),
                "type": "Warning",
                "source": {"component": EVENT_SOURCE},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "reportingComponent": EVENT_SOURCE,
                "reportingInstance": EVENT_SOURCE,
            }
            self.api.create(rt, ns, event)

    def _delay(self, template: Obj) -> float:
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        try:
            return float(annotations[READINESS_DELAY_ANNOTATION])
        except (KeyError, ValueError):
            return self.readiness_delay

    def _deployment_status(
        self, obj: Obj, rollout: Rollout, desired: int, done: bool, timed_out: bool, rs_name: str
    ) -> Obj:
        if done:
            replicas = updated = ready = desired
        elif rollout.ready_hash == rollout.target_hash:
            replicas = updated = desired
            ready = rollout.ready_count
        else:
            ready = rollout.ready_count if rollout.ready_hash is not None else 0
            replicas, updated = ready + desired, desired
        available = ready
        unavailable = max(0, replicas - available) if not done else 0
        counts = (replicas, updated, ready, available, unavailable)
        return _deployment_document(obj, desired, counts, done, timed_out, rs_name)

    # ------------------------------------------------------------------ status from the Pod objects

    def _status_from_pods(self, key: Key, obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        is_deployment = key[0] == DEPLOYMENTS
        desired = _int(spec.get("replicas"), 1) if is_deployment else self.nodes
        digest = template_hash(template)
        now = time.monotonic()
        rollout, _ = self._rollout(key, obj, template, digest, desired, now)
        min_ready = max(0, _int(spec.get("minReadySeconds"), 0))
        counts = self._count_pods(key, obj, digest, not (never_ready(template) or rollout.refused), min_ready)
        # Complete: every pod is of the current template and available; it stays so (a pod failing later
        # makes the workload unavailable, not its rollout overdue) until the template or the count changes.
        if counts.updated == counts.total == desired and counts.updated_available >= desired:
            rollout.ready_hash, rollout.ready_count = digest, desired
        complete = rollout.ready_hash == digest and rollout.ready_count == desired
        if rollout.refused and not complete and rollout.announced != digest:
            rollout.announced = digest
            self._announce_refusal(key, obj, rollout, digest)
        deadline = float(_int(spec.get("progressDeadlineSeconds"), 600)) if is_deployment else math.inf
        timed_out = not complete and now - rollout.started >= deadline
        if rollout.timer is not None:
            rollout.timer.cancel()
            rollout.timer = None
        wake = [t for t in (counts.next_available,) if t is not None]
        if not complete and not timed_out and math.isfinite(deadline):
            wake.append(rollout.started + deadline)
        if wake and self._loop is not None:
            rollout.timer = self._loop.call_later(max(0.0, min(wake) - now) + 0.001, self._schedule, key)
        if not is_deployment:
            return _daemonset_document(obj, desired, counts)
        numbers = (
            counts.total,
            counts.updated,
            counts.ready,
            counts.available,
            max(0, max(desired, counts.total) - counts.available),
        )
        rs_name = f"{obj['metadata']['name']}-{digest}"
        return _deployment_document(obj, desired, numbers, complete, timed_out, rs_name)

    def _count_pods(self, key: Key, obj: Obj, digest: str, can_be_ready: bool, min_ready: int) -> PodCounts:
        """The workload's active pods: how many, of the current template (``digest``), ready, available
        (ready for ``min_ready`` seconds). With ``can_be_ready`` False the current template's pods never
        count as ready."""
        storage, ns, _ = key
        kind = "Deployment" if storage == DEPLOYMENTS else "DaemonSet"
        label = POD_TEMPLATE_HASH_LABEL if storage == DEPLOYMENTS else REVISION_HASH_LABEL
        uid = str(obj["metadata"].get("uid") or "")
        now = time.monotonic()
        counts = PodCounts()
        for pod in self.api.store.scan(PODS, ns):
            if not _belongs(pod, obj, kind, uid):
                continue
            meta = pod["metadata"]
            if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in TERMINAL_PHASES:
                continue
            pod_uid = str(meta.get("uid") or "")
            updated = str((meta.get("labels") or {}).get(label) or "") == digest
            counts.total += 1
            counts.updated += updated
            if not _pod_ready(pod) or (updated and not can_be_ready):
                self._ready_since.pop(pod_uid, None)
                continue
            since = self._ready_since.setdefault(pod_uid, now)
            available = now - since >= min_ready
            if not available:
                later = since + min_ready
                counts.next_available = (
                    later if counts.next_available is None else min(counts.next_available, later)
                )
            counts.ready += 1
            counts.available += available
            counts.updated_available += updated and available
        return counts

    def _daemonset_status(self, obj: Obj, rollout: Rollout, nodes: int, done: bool) -> Obj:
        if done:
            ready = nodes
        else:
            old_ready = rollout.ready_count if rollout.ready_hash is not None else 0
            ready = max(0, old_ready - 1)
        status: Obj = {
            "observedGeneration": obj["metadata"].get("generation", 1),
            "currentNumberScheduled": nodes,
            "desiredNumberScheduled": nodes,
            "numberMisscheduled": 0,
            "numberReady": ready,
        }
        if nodes:
            status["updatedNumberScheduled"] = nodes
        if ready:
            status["numberAvailable"] = ready
        if nodes - ready:
            status["numberUnavailable"] = nodes - ready
        return status

    # ------------------------------------------------------------------ HPA

    def _hpa_status(self, obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        replicas = int(spec.get("minReplicas", 1) or 1)
        status: Obj = dict(obj.get("status") or {})
        status["currentReplicas"] = replicas
        status["desiredReplicas"] = replicas
        status["observedGeneration"] = obj["metadata"].get("generation", 1)
        return status


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _controller_ref(pod: Obj) -> Obj | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def _selects(workload: Obj, pod: Obj) -> bool:
    """The workload's selector matches the pod (an empty or missing selector matches nothing)."""
    selector = (workload.get("spec") or {}).get("selector") or {}
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return False
    return LabelSelector.from_object(selector).matches(pod)


def _belongs(pod: Obj, workload: Obj, kind: str, uid: str) -> bool:
    """The pod's controller is the workload (by uid; by name when the reference has none), or it has no
    controller and the workload's selector matches it."""
    ref = _controller_ref(pod)
    if ref is None:
        return _selects(workload, pod)
    if str(ref.get("kind") or "") != kind:
        return False
    if ref.get("uid"):
        return str(ref["uid"]) == uid
    return str(ref.get("name") or "") == str(workload["metadata"]["name"])


def _pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def _daemonset_document(obj: Obj, nodes: int, counts: PodCounts) -> Obj:
    status: Obj = {
        "observedGeneration": obj["metadata"].get("generation", 1),
        "currentNumberScheduled": counts.total,
        "desiredNumberScheduled": nodes,
        "numberMisscheduled": 0,
        "numberReady": counts.ready,
    }
    if counts.updated:
        status["updatedNumberScheduled"] = counts.updated
    if counts.available:
        status["numberAvailable"] = counts.available
    if nodes - counts.available > 0:
        status["numberUnavailable"] = nodes - counts.available
    return status


def _deployment_document(
    obj: Obj, desired: int, counts: tuple[int, int, int, int, int], done: bool, timed_out: bool, rs_name: str
) -> Obj:
    """A Deployment's status from its counts (replicas, updated, ready, available, unavailable)."""
    replicas, updated, ready, available, unavailable = counts
    old = obj.get("status") or {}
    if done:
        progressing = (
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
        )
    elif timed_out:
        progressing = (
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
        )
    else:
        progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
    minimum = desired - max_unavailable(obj, desired)
    if available >= minimum:
        availability = ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    else:
        availability = (
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    status: Obj = {"observedGeneration": obj["metadata"].get("generation", 1)}
    for field, value in (
        ("replicas", replicas),
        ("updatedReplicas", updated),
        ("readyReplicas", ready),
        ("availableReplicas", available),
        ("unavailableReplicas", unavailable),
    ):
        if value:
            status[field] = value
    status["conditions"] = [
        _condition(old, "Available", *availability),
        _condition(old, "Progressing", *progressing),
    ]
    return status


def _condition(old_status: Obj, kind: str, status: str, reason: str, message: str) -> Obj:
    now = now_iso()
    previous = next((c for c in old_status.get("conditions") or [] if c.get("type") == kind), None)
    if (
        previous is not None
        and previous.get("status") == status
        and previous.get("reason") == reason
        and previous.get("message") == message
    ):
        return dict(previous)
    transition = (
        previous.get("lastTransitionTime", now) if previous and previous.get("status") == status else now
    )
    return {
        "type": kind,
        "status": status,
        "lastUpdateTime": now,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }
