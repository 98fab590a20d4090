"""`LocalCluster` (runs on the caller's event loop) and `LocalClusterThread` (runs on its own thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import yaml
from aiohttp import web

from canarist.localcluster.api import DEFAULT_SERVICE_CIDR, Api
from canarist.localcluster.audit import AuditLog
from canarist.localcluster.controllers import ImageCheck, WorkloadControllers
from canarist.localcluster.crds import provider_crds, provider_names
from canarist.localcluster.faults import Faults
from canarist.localcluster.istio import istio_crds
from canarist.localcluster.knative import KnativeControllers
from canarist.localcluster.podlogs import PODS, PodLogs
from canarist.localcluster.server import LOCAL_TOKEN, HttpFrontend
from canarist.localcluster.store import WatchEvent

T = TypeVar("T")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CONTEXT_NAME = "canarist-local"


class LocalCluster:
    """A Kubernetes-API-compatible server on plain HTTP, in memory.

    >>> cluster = LocalCluster(readiness_delay=0.1, install_istio_crds=True)
    >>> cluster = LocalCluster(install_provider_crds=["gatewayapi", "smi"])   # or True: every provider
    >>> cluster = LocalCluster(service_cidr="127.96.0.0/16")   # ClusterIPs on loopback addresses
    >>> cluster = LocalCluster(image_check=lambda image: None if runnable(image) else "no runner for it")
    >>> cluster = LocalCluster(pod_readiness=True)   # workload status from the Pod objects, not a timer
    >>> cluster.pod_logs.register("default", "web-0", "app", Path("web-0.log"))   # from any thread
    >>> await cluster.start()            # port 0: a free port
    >>> cluster.write_kubeconfig("kubeconfig")
    >>> await cluster.stop()
    """

    def __init__(
        self,
        *,
        readiness_delay: float = 0.2,
        install_istio_crds: bool = False,
        install_provider_crds: bool | Iterable[str] = False,
        history_size: int = 10_000,
        bookmark_interval: float = 5.0,
        nodes: int = 1,
        faults: Faults | None = None,
        namespaces: tuple[str, ...] = DEFAULT_NAMESPACES,
        service_cidr: str = DEFAULT_SERVICE_CIDR,
        image_check: ImageCheck | None = None,
        pod_readiness: bool = False,
    ) -> None:
        # service_cidr: where Services' ClusterIPs are allocated (the API server's --service-cluster-ip-range);
        # the sandbox uses a loopback range such as 127.96.0.0/16 so that those addresses can be listened on.
        self.api = Api(history_size, service_cidr)
        self.faults = faults if faults is not None else Faults()
        self.bookmark_interval = bookmark_interval
        # image_check(image) -> None when the image can run, else why not: a workload whose pod template
        # has an image it refuses never becomes ready (one Warning event ImageNotRunnable per template).
        # pod_readiness: Deployment/DaemonSet status follows their Pod objects (Ready conditions written by
        # whoever runs the pods, the sandbox's PodManager) instead of the readiness_delay timer.
        self.controllers = WorkloadControllers(self.api, readiness_delay, nodes, image_check, pod_readiness)
        # Knative Serving's part (Revisions from Service templates, their readiness after the same delay, the
        # Service status); idle unless the knative CRDs are installed.
        self.knative = KnativeControllers(self.api)
        # The log files of pods' containers (GET .../pods/{name}/log); registered in process, thread-safe.
        self.pod_logs = PodLogs()
        self.api.store.listeners.append(self._forget_deleted_pod_logs)
        self.install_istio_crds = install_istio_crds
        # The routing providers whose CRDs are installed at start (keys of crds.PROVIDER_CRDS).
        self.provider_crds: list[str] = provider_names(install_provider_crds)
        self._namespaces = namespaces
        # Every mutating request answered (method, path, User-Agent, code): who wrote what, in order.
        self.audit = AuditLog()
        self._frontend = HttpFrontend(self)
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._seeded = False

    @property
    def readiness_delay(self) -> float:
        return self.controllers.readiness_delay

    @readiness_delay.setter
    def readiness_delay(self, value: float) -> None:
        self.controllers.readiness_delay = value

    @property
    def pod_readiness(self) -> bool:
        return self.controllers.pod_readiness

    @property
    def image_check(self) -> ImageCheck | None:
        return self.controllers.image_check

    @image_check.setter
    def image_check(self, value: ImageCheck | None) -> None:
        self.controllers.image_check = value

    def _forget_deleted_pod_logs(self, event: WatchEvent) -> None:
        if event.type == "DELETED" and event.key == PODS:
            meta = event.obj.get("metadata") or {}
            self.pod_logs.unregister(str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the local cluster is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._runner is not None

    def _seed(self) -> None:
        if self._seeded:
            return
        self._seeded = True
        for name in self._namespaces:
            self.api.ensure_namespace(name)
        if self.install_istio_crds:
            self.install_crds(istio_crds())
        if self.provider_crds:
            self.install_crds(provider_crds(self.provider_crds))

    def install_crds(self, crds: list[dict[str, Any]]) -> None:
        """Create (or leave in place) these CustomResourceDefinitions; must run on the server's loop."""
        crd_type = self.api.resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        for crd in crds:
            if self.api.store.get(crd_type.storage_key, "", crd["metadata"]["name"]) is None:
                self.api.create(crd_type, "", crd)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); returns the URL."""
        if self._runner is not None:
            return self.url
        self._seed()
        self.controllers.start()
        self.knative.start()
        runner = web.AppRunner(
            self._frontend.app(), access_log=None, shutdown_timeout=1.0, handle_signals=False
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        self._runner = runner
        self.host = host
        self.port = port
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        return self.url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.controllers.stop()
        self.knative.stop()
        self.api.store.close_watchers()
        self.pod_logs.end_streams()
        await asyncio.sleep(0)
        await runner.cleanup()

    def compact_history(self) -> None:
        """Forget the watch history: a watch from any older resourceVersion then gets 410 Gone."""
        self.api.store.compact()

    def kubeconfig(self, namespace: str = "default") -> str:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": self.url}}],
            "users": [{"name": CONTEXT_NAME, "user": {"token": LOCAL_TOKEN}}],
            "contexts": [
                {
                    "name": CONTEXT_NAME,
                    "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": namespace},
                }
            ],
            "current-context": CONTEXT_NAME,
            "preferences": {},
        }
        return yaml.safe_dump(config, sort_keys=False)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.kubeconfig(namespace))
        target.chmod(0o600)
        return target


class LocalClusterThread:
    """Runs a LocalCluster on its own event loop in a daemon thread (for tests and synchronous callers).

    >>> with LocalClusterThread(readiness_delay=0.1) as running:
    ...     running.write_kubeconfig("kubeconfig"); print(running.url)
    """

    def __init__(
        self, cluster: LocalCluster | None = None, *, image_check: ImageCheck | None = None, **options: Any
    ) -> None:
        if cluster is None:
            cluster = LocalCluster(image_check=image_check, **options)
        elif image_check is not None:
            cluster.image_check = image_check
        self.cluster = cluster
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def pod_logs(self) -> PodLogs:
        """The cluster's pod log registry (thread-safe: register from this thread or any other)."""
        return self.cluster.pod_logs

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the local cluster thread is not running")
        return self._loop

    def start(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> Self:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="canarist-localcluster", daemon=True)
        self._thread.start()
        started.wait(timeout)
        asyncio.run_coroutine_threadsafe(self.cluster.start(host, port), loop).result(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.cluster.stop(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if not thread.is_alive():
                loop.close()
            self._loop = None
            self._thread = None

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 10.0) -> T:
        """Run fn(*args) on the server's loop (the safe way to touch its state) and return the result."""
        loop = self.loop

        async def invoke() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), loop).result(timeout)

    def compact_history(self) -> None:
        self.call(self.cluster.compact_history)

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        return self.cluster.write_kubeconfig(path, namespace)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
