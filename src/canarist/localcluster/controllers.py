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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
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
from canarist.localcluster.store import WatchEvent

Obj = dict[str, Any]

NEVER_READY_ANNOTATION = "localcluster.canarist.dev/never-ready"
READINESS_DELAY_ANNOTATION = "localcluster.canarist.dev/readiness-delay"
NEVER_READY_TAG = "never-ready"
DEPLOYMENTS: StorageKey = ("apps", "deployments")
DAEMONSETS: StorageKey = ("apps", "daemonsets")
HPAS: StorageKey = ("autoscaling", "horizontalpodautoscalers")
Key = tuple[StorageKey, str, str]
ImageCheck = Callable[[str], "str | None"]
IMAGE_NOT_RUNNABLE_REASON = "ImageNotRunnable"
EVENT_SOURCE = "canarist-localcluster"
EVENTS: StorageKey = ("", "events")
log = logging.getLogger("canarist.localcluster")


def template_hash(template: Any) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return "".join(c for c in digest if c in "bcdf0123456789")[:10]


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
        self, api: Api, readiness_delay: float = 0.2, nodes: int = 1, image_check: ImageCheck | None = None
    ) -> None:
        self.api = api
        self.image_check = image_check
        self.readiness_delay = readiness_delay
        self.nodes = nodes
        self.rollouts: dict[Key, Rollout] = {}
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

    def _workload_status(self, key: Key, obj: Obj) -> Obj:
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        is_deployment = key[0] == DEPLOYMENTS
        desired = int(spec.get("replicas", 1)) if is_deployment else self.nodes
        digest = template_hash(template)
        rollout = self.rollouts.get(key)
        uid = str(obj["metadata"].get("uid") or "")
        if rollout is None or rollout.uid != uid:  # a new object under an old name starts from scratch
            if rollout is not None and rollout.timer is not None:
                rollout.timer.cancel()
            rollout = self.rollouts[key] = Rollout(uid=uid)
        now = time.monotonic()
        if rollout.target_hash != digest or rollout.target_count != desired:
            if rollout.target_hash != digest:  # a new template: its images are checked once
                check = self.image_check
                rollout.refused = refused_images(template, check) if check is not None else []
                rollout.announced = None
            rollout.target_hash, rollout.target_count, rollout.started = digest, desired, now
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
