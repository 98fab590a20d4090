"""Pods for the sandbox: one `DemoApp` per ready replica of every Deployment that runs the demo app.

The local control plane simulates Deployment status but runs nothing; `PodManager` watches Deployments and
keeps, for each one whose containers use the podinfo image, ``status.readyReplicas`` demo apps serving with
``destination_workload`` = the Deployment's name and ``destination_version`` = the image tag. A new image
replaces the pods (new ones first, then the old ones are released).

Each pod is named as a ReplicaSet names it, ``<deployment>-<pod-template-hash>-<5 chars>``, and the app
that plays it exports the pod's identity (``kubernetes_namespace``, ``kubernetes_pod_name``, the template's
labels plus ``pod-template-hash``) on its series (`canarist.sandbox.telemetry.PodIdentity`). Taking an app
from the pool and releasing it both call :meth:`DemoApp.assign`, which starts every series afresh, so a
reused app never carries the previous pod's series; what the apps served stays in their ``tally``.

The apps come from a pool started before the story begins, because Prometheus' file-based discovery
forwards new targets only every 5 s: a pod taken from the pool is already being scraped, so the first
analysis of a freshly started canary has data. Knobs (error rate, added latency) are kept per workload, so
pods started later get them too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.informer import Informer
from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.envoy_config import Endpoint
from canarist.sandbox.telemetry import POD_TEMPLATE_HASH_LABEL, PodIdentity, pod_name, pod_template_hash

__all__ = ["DEMO_IMAGE_MARKERS", "Pod", "PodManager", "image_tag", "is_demo_deployment"]

log = logging.getLogger("canarist.sandbox")

DEMO_IMAGE_MARKERS = ("podinfo",)
IDLE = "idle"
Key = tuple[str, str]


def image_tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def _demo_image(deployment: Mapping[str, Any]) -> str:
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in spec.get("containers") or []:
        image = str((container or {}).get("image") or "")
        if any(marker in image for marker in DEMO_IMAGE_MARKERS):
            return image
    return ""


def is_demo_deployment(deployment: Mapping[str, Any]) -> bool:
    return bool(_demo_image(deployment))


def _template_labels(template: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((template.get("metadata") or {}).get("labels") or {}).items()}


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(str(k)) == str(v) for k, v in selector.items())


@dataclass
class Pod:
    app: DemoApp
    namespace: str
    deployment: str
    version: str
    labels: dict[str, str] = field(default_factory=dict)

    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.app.hostname

    def endpoint(self) -> Endpoint:
        host, port = self.app.metrics_target.rsplit(":", 1)
        return Endpoint(host, int(port), self.labels)


class PodManager:
    """Keeps demo-app "pods" in line with the Deployments' ready replicas."""

    def __init__(self, client: KubeClient, pool_size: int = 6) -> None:
        self.client = client
        self.pool_size = pool_size
        self.idle: list[DemoApp] = []
        self.all_apps: list[DemoApp] = []
        self.pods: dict[Key, list[Pod]] = {}
        self.knobs: dict[Key, dict[str, float]] = {}
        self.deployments = Informer(client, kinds.DEPLOYMENT, name="sandbox-deployments")
        self.services = Informer(client, kinds.SERVICE, name="sandbox-services")
        self.listeners: list[Callable[[], None]] = []
        self.on_new_app: Callable[[DemoApp], None] | None = None
        #: endpoints that are no demo-app pod: a sandbox process behind a Service without a selector (the
        #: loadtester behind `flagger-loadtester.test`, Prometheus behind `prometheus.istio-system`).
        self.static_endpoints: dict[Key, list[Endpoint]] = {}
        self._lock = asyncio.Lock()

    # -- pool -------------------------------------------------------------------------------------------

    async def _new_app(self) -> DemoApp:
        app = DemoApp(workload=IDLE, namespace=IDLE, version="0")
        await app.start()
        self.all_apps.append(app)
        if self.on_new_app is not None:
            self.on_new_app(app)
        return app

    async def fill_pool(self) -> None:
        while len(self.idle) < self.pool_size:
            self.idle.append(await self._new_app())

    async def _acquire(
        self, namespace: str, workload: str, version: str, template: Mapping[str, Any] | None = None
    ) -> Pod:
        """An app from the pool (or a new one) as a new pod of ``workload``."""
        app = self.idle.pop(0) if self.idle else await self._new_app()
        template = template or {}
        labels = _template_labels(template)
        template_hash = pod_template_hash(template)
        name = pod_name(workload, template_hash)
        identity = PodIdentity(namespace, name, {**labels, POD_TEMPLATE_HASH_LABEL: template_hash})
        # Export the 200 and 500 series of unlabelled callers at zero at once, so a rate shows up one scrape
        # after the first such answer instead of two.
        app.assign(
            namespace=namespace, workload=workload, version=version, pod=identity, fresh_codes=(200, 500)
        )
        knobs = self.knobs.get((namespace, workload), {})
        app.set_knobs(error_rate=knobs.get("error_rate", 0.0), latency_ms=knobs.get("latency_ms", 0.0))
        return Pod(app, namespace, workload, version, labels, name)

    def _release(self, app: DemoApp) -> None:
        """Back to the pool: the app drops the pod's identity and series (as a deleted pod's disappear)."""
        app.assign(namespace=IDLE, workload=IDLE, version="0")
        app.set_knobs(error_rate=0.0, latency_ms=0.0)
        self.idle.append(app)

    # -- knobs ------------------------------------------------------------------------------------------

    def set_knobs(
        self,
        namespace: str,
        workload: str,
        *,
        error_rate: float | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Error rate / added latency for every pod of ``workload``, now and later."""
        knobs = self.knobs.setdefault((namespace, workload), {})
        if error_rate is not None:
            knobs["error_rate"] = error_rate
        if latency_ms is not None:
            knobs["latency_ms"] = latency_ms
        for pod in self.pods.get((namespace, workload), []):
            pod.app.set_knobs(error_rate=error_rate, latency_ms=latency_ms)

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.fill_pool()
        self.deployments.add_handler(self._on_deployment)
        self.services.add_handler(self._on_service)
        await self.deployments.start()
        await self.services.start()
        async with asyncio.timeout(30):
            await self.deployments.wait_synced()
            await self.services.wait_synced()

    async def stop(self) -> None:
        await self.deployments.stop()
        await self.services.stop()
        for app in self.all_apps:
            with contextlib.suppress(Exception):
                await app.stop()
        self.pods.clear()

    def _notify(self) -> None:
        for listener in self.listeners:
            try:
                listener()
            except Exception:  # a listener must not break the pod manager
                log.exception("pod listener failed")

    async def _on_service(self, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._notify()

    async def _on_deployment(self, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        async with self._lock:
            await self._reconcile(event_type, obj)
        self._notify()

    async def _reconcile(self, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        image = _demo_image(obj)
        desired = 0
        if event_type != "DELETED" and image:
            desired = int((obj.get("status") or {}).get("readyReplicas") or 0)
        version = image_tag(image) if image else ""
        template = (obj.get("spec") or {}).get("template") or {}
        labels = _template_labels(template)
        current = self.pods.get(key, [])
        keep = [p for p in current if p.version == version and p.labels == labels]
        stale = [p for p in current if p not in keep]
        while len(keep) > desired:
            stale.append(keep.pop())
        while len(keep) < desired:
            keep.append(await self._acquire(key[0], key[1], version, template))
        if keep:
            self.pods[key] = keep
        else:
            self.pods.pop(key, None)
        for pod in stale:
            self._release(pod.app)
        if stale or len(keep) != len(current):
            log.info("pods %s/%s: %d ready (version %s)", key[0], key[1], len(keep), version or "-")

    def add_static_endpoint(self, namespace: str, service: str, host: str, port: int) -> None:
        """Serve ``service.namespace`` (also) by ``host:port``, a process of the sandbox."""
        members = self.static_endpoints.setdefault((namespace, service), [])
        if all((e.host, e.port) != (host, port) for e in members):
            members.append(Endpoint(host, port, {}))
        self._notify()

    # -- reads ------------------------------------------------------------------------------------------

    def endpoints(self) -> dict[Key, list[Endpoint]]:
        """``(namespace, service)`` -> the pods whose labels match the Service's selector, and the Service's
        static endpoints (`add_static_endpoint`)."""
        out: dict[Key, list[Endpoint]] = {}
        for service in self.services.list():
            meta = service.get("metadata") or {}
            namespace = str(meta.get("namespace") or "default")
            selector = (service.get("spec") or {}).get("selector") or {}
            members = [
                pod.endpoint()
                for (ns, _), pods in sorted(self.pods.items())
                if ns == namespace
                for pod in pods
                if _selector_matches(selector, pod.labels)
            ]
            key = (namespace, str(meta.get("name") or ""))
            out[key] = members + list(self.static_endpoints.get(key, ()))
        return out

    def served(self, namespace: str, workload: str, source: str | None = None) -> int:
        """Requests counted by the apps of ``workload`` (optionally only from one ``source_workload``),
        including apps that served it before being released."""
        return sum(
            count
            for app in self.all_apps
            for (ns, name, src), count in app.tally.items()
            if ns == namespace and name == workload and (source is None or src == source)
        )
