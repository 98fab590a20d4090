"""Pods for the sandbox: the containers of Deployments, DaemonSets and bare Pods run as local processes.

The local control plane stores workloads and simulates their status but runs nothing; `PodManager` watches
Deployments, DaemonSets and Pods and runs, for each pod, a local process per container chosen by image
(`canarist.sandbox.images`): podinfo images run `canarist.sandbox.podinfo`, Flagger's loadtester image runs
``canarist loadtester``. An image it cannot run gets no process: its Pod stays ``Pending`` with the
container waiting in ``ErrImagePull`` and one Warning event naming the image. See docs/sandbox.md#pods.

* **Pod IPs.** Every pod gets an address of the pod CIDR (``pod_cidr``, default ``127.112.0.0/16``, all
  loopback on Linux), next-fit, freed when the pod goes; its processes listen on ``podIP:containerPort``, so
  the pods of one Deployment all use 9898 as in a cluster. An address is only taken once this process could
  bind its stats port (15020): a listening socket held for the pod's life, so sandboxes running side by
  side never share an address.
* **Pods.** A Deployment has ``spec.replicas`` pods of its current template, named as a ReplicaSet names
  them (``<deployment>-<pod-template-hash>-<5 chars>``); a new template gets new pods, and old ones are
  stopped as new ones serve (a rolling update that keeps the old pods when the new ones cannot run). A
  DaemonSet has one pod per simulated node (``sandbox-node-1``...). The PodManager writes a Pod object for
  each (the template's labels and spec, ``spec.nodeName``, an ownerReference to the workload, ``podIP``,
  ``hostIP`` 127.0.0.1, phase, Ready condition, containerStatuses) and deletes it when the pod goes (before
  stopping its processes). The local control plane (``pod_readiness=True``) counts these Pods for the
  workload's status, so they carry what it reads: the ownerReference's uid, ``pod-template-hash`` (a
  DaemonSet's: ``controller-revision-hash``) from `pod_template_hash`, Ready only while serving. A Pod
  someone else creates (``kubectl run``) is run the same way, its status kept by the PodManager, and stopped
  when it is deleted. A Pod annotated ``PROCESS_ANNOTATION`` stands for a process the sandbox runs itself and
  is left alone, and so is a workload whose pod template carries that annotation (no pods of its own: the
  sandbox writes the one standing for its process, as for the operator's ``flagger`` Deployment). A pod
  whose process exits gets its container terminated (exit code, ``Error`` or ``Completed``), is no longer
  ready and gets a Warning event; the sandbox does not restart it (delete the Pod: its workload gets a new
  one).
* **Serving.** A pod counts as serving (an endpoint, ``Ready`` in its status) once its readiness probe
  passes (``httpGet`` or ``tcpSocket``; an ``exec`` probe, or none, is replaced by a TCP connect to the
  declared container ports; no ports: once its processes run). `endpoints` lists ``podIP:targetPort`` of
  the serving pods a Service selects, ``targetPort`` resolved against the container ports by name.
* **The warm pool.** Prometheus' file discovery forwards new targets only every 5 s, so podinfo processes
  are started ahead, each on a reserved pod IP with its stats port scraped already (``on_new_target``); a
  new pod takes one and assigns it the pod (namespace, name, labels, workload, version, args, env) over the
  stats port, and it opens the ports its args name. The pool refills in the background. A pod's process is
  stopped when the pod goes (``on_target_gone``).
* **What the sandbox reads.** `served` (requests counted by the pods of a workload, also of pods already
  gone: each process writes its tally to a file before answering, read here), `set_knobs` (error rate and
  added latency per workload, now and for later pods), `add_static_endpoint`, ``listeners``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import aiohttp

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import KubeError, NotFound
from canarist.kube.informer import Informer
from canarist.kube.resources import ResourceKind
from canarist.podnames import POD_TEMPLATE_HASH_LABEL, pod_name, pod_template_hash, random_suffix
from canarist.sandbox import images
from canarist.sandbox.envoy_config import Endpoint
from canarist.sandbox.images import PODINFO, Program
from canarist.sandbox.podinfo import (
    ENV_ASSIGNMENT,
    ENV_PARENT,
    ENV_POD_IP,
    ENV_STANDBY,
    ENV_STATS_FD,
    ENV_VERSION,
    STATS_PORT,
)

__all__ = [
    "DEFAULT_POD_CIDR",
    "HOST_IP",
    "MANAGED_ANNOTATION",
    "POD",
    "PROCESS_ANNOTATION",
    "Pod",
    "PodAddresses",
    "PodLogs",
    "PodManager",
    "image_tag",
    "node_name",
]

log = logging.getLogger("canarist.sandbox")

POD: Final = ResourceKind("", "v1", "pods", "Pod", status_subresource=True)
DEFAULT_POD_CIDR: Final = "127.112.0.0/16"
HOST_IP: Final = "127.0.0.1"
MANAGED_ANNOTATION: Final = "sandbox.canarist.dev/pod-manager"
#: a Pod with this annotation stands for a process the sandbox runs itself (its Envoy as a provider's
#: gateway, the operator): the PodManager leaves it alone, and runs no pods for a workload whose pod template
#: carries it (the sandbox writes that workload's Pod itself)
PROCESS_ANNOTATION: Final = "sandbox.canarist.dev/process"
#: environment a process gets from the sandbox's own (the rest comes from the pod's spec)
_PASSED_ENV: Final = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")
Key = tuple[str, str]
WorkloadKey = tuple[str, str, str]  # (kind, namespace, name)
Wrap = Callable[[list[str], str], list[str]]
TargetHook = Callable[[str, dict[str, str]], None]

image_tag = images.image_tag


class PodLogs(Protocol):
    """The local control plane's registry of log files that ``kubectl logs`` serves."""

    def register(self, namespace: str, pod: str, container: str, path: str | Path) -> None: ...

    def unregister(self, namespace: str, pod: str) -> None: ...


def node_name(index: int) -> str:
    """The simulated node ``index`` (0-based): ``sandbox-node-1``, ``sandbox-node-2``..."""
    return f"sandbox-node-{index + 1}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(str(k)) == str(v) for k, v in selector.items())


class PodAddresses:
    """Pod IPs of a CIDR, allocated next-fit (the address after the last one given, wrapping round) and
    freed on release."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        if self.network.version != 4:
            raise ValueError(f"pod CIDR must be IPv4: {cidr}")
        first, last = int(self.network.network_address), int(self.network.broadcast_address)
        if self.network.num_addresses > 2:
            first, last = first + 1, last - 1
        self._first, self._last = first, last
        self._next = first
        self.used: set[str] = set()

    @property
    def size(self) -> int:
        return self._last - self._first + 1

    def allocate(self, usable: Callable[[str], bool] | None = None) -> str:
        """The next free address for which ``usable`` holds; RuntimeError when there is none."""
        for _ in range(self.size):
            candidate = str(ipaddress.ip_address(self._next))
            self._next = self._next + 1 if self._next < self._last else self._first
            if candidate in self.used:
                continue
            if usable is not None and not usable(candidate):
                continue
            self.used.add(candidate)
            return candidate
        raise RuntimeError(f"no free pod IP in {self.network} (the pod CIDR is full)")

    def release(self, address: str) -> None:
        self.used.discard(address)


def _reserve(address: str) -> socket.socket | None:
    """A listening socket on the address's stats port, or None when another process holds it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, STATS_PORT))
        sock.listen(128)
    except OSError:
        sock.close()
        return None
    return sock


@dataclass
class AppHandle:
    """A podinfo process as the old ``on_new_app`` hook saw an app: where Prometheus scrapes it."""

    metrics_target: str


@dataclass
class _Standby:
    """A podinfo process of the pool: started on a reserved pod IP, waiting for a pod."""

    ip: str
    key: str
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def stats(self) -> str:
        return f"{self.ip}:{STATS_PORT}"


@dataclass
class Container:
    """One container of a pod and its process."""

    name: str
    image: str
    spec: Mapping[str, Any]
    program: Program | None
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    state: str = "waiting"  # waiting, running, terminated
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def status(self, ready: bool) -> dict[str, Any]:
        state: dict[str, Any]
        if self.state == "running":
            state = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {
                "terminated": {
                    "exitCode": self.exit_code if self.exit_code is not None else 128,
                    "reason": self.reason,
                    "startedAt": self.started_at or self.finished_at,
                    "finishedAt": self.finished_at,
                    **({"message": self.message} if self.message else {}),
                }
            }
        else:
            state = {
                "waiting": {"reason": self.reason, **({"message": self.message} if self.message else {})}
            }
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": ready and self.state == "running",
            "restartCount": 0,
            "started": self.state == "running",
            "state": state,
        }
        if self.pid is not None:
            out["containerID"] = f"sandbox://{self.pid}"
        return out


@dataclass
class Pod:
    """A pod the PodManager runs."""

    namespace: str
    name: str
    #: the workload the telemetry names (the Deployment or DaemonSet; a bare pod's own name)
    workload: str
    owner: WorkloadKey | None
    template_hash: str
    labels: dict[str, str]
    spec: dict[str, Any]
    node: str
    version: str
    annotations: dict[str, str] = field(default_factory=dict)
    owner_uid: str = ""
    uid: str = ""
    ip: str = ""
    containers: list[Container] = field(default_factory=list)
    serving: bool = False
    deleting: bool = False
    started_at: str = ""
    tally_path: Path | None = None
    start_task: asyncio.Task[Any] | None = None
    stats: str = ""  # "ip:15020" of its podinfo process
    reservation: socket.socket | None = None
    warned: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def pids(self) -> list[int]:
        return [c.pid for c in self.containers if c.pid is not None and c.state == "running"]

    def container_port(self, target: Any) -> int | None:
        """A Service's ``targetPort`` against this pod: a number as it is, a name looked up in the
        containers' ports."""
        if isinstance(target, int) and not isinstance(target, bool):
            return target
        text = str(target)
        if text.isdigit():
            return int(text)
        for container in self.spec.get("containers") or []:
            for port in (container or {}).get("ports") or []:
                if str(port.get("name") or "") == text and port.get("containerPort"):
                    return int(port["containerPort"])
        return None

    def phase(self) -> str:
        states = [c.state for c in self.containers]
        if not states or "waiting" in states:
            return "Pending"
        policy = str(self.spec.get("restartPolicy") or "Always")
        if all(s == "terminated" for s in states) and policy != "Always":
            return "Succeeded" if all(c.exit_code == 0 for c in self.containers) else "Failed"
        return "Running"

    def status(self) -> dict[str, Any]:
        now = _now()
        ready = self.serving and not self.deleting
        running = bool(self.containers) and all(c.state == "running" for c in self.containers)

        def condition(kind: str, ok: bool, reason: str = "") -> dict[str, Any]:
            out: dict[str, Any] = {
                "type": kind,
                "status": "True" if ok else "False",
                "lastTransitionTime": now,
            }
            if not ok and reason:
                out["reason"] = reason
            return out

        not_ready = "ContainersNotReady"
        status: dict[str, Any] = {
            "phase": self.phase(),
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "startTime": self.started_at or now,
            "qosClass": "BestEffort",
            "conditions": [
                condition("PodScheduled", True),
                condition("Initialized", True),
                condition("ContainersReady", ready and running, not_ready),
                condition("Ready", ready and running, not_ready),
            ],
            "containerStatuses": [c.status(ready) for c in self.containers],
        }
        if self.ip:
            status["podIP"] = self.ip
            status["podIPs"] = [{"ip": self.ip}]
        return status


class PodManager:
    """Runs the sandbox's pods as local processes (see the module's description).

    ``pool_size``: podinfo processes kept started ahead (per namespace in ``pool_namespaces`` when ``wrap``
    is given, since a wrapped process sees one namespace's names; else one pool). ``wrap(argv, namespace)``
    turns a command into the one started (the sandbox passes `ClusterNetwork.command`). ``workdir``: where
    the logs and tallies go (default: a temp dir removed at `stop`). ``pod_logs``: the control plane's log
    registry for ``kubectl logs``. ``nodes``: the simulated nodes (DaemonSets get one pod on each).
    """

    def __init__(
        self,
        client: KubeClient,
        pool_size: int = 6,
        *,
        pod_cidr: str = DEFAULT_POD_CIDR,
        wrap: Wrap | None = None,
        workdir: str | os.PathLike[str] | None = None,
        pod_logs: PodLogs | None = None,
        pool_namespaces: Sequence[str] = ("test",),
        nodes: int = 1,
        python: str | None = None,
    ) -> None:
        self.client = client
        self.pool_size = pool_size
        self.addresses = PodAddresses(pod_cidr)
        self.wrap = wrap
        self.own_workdir = workdir is None
        self.workdir = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="canarist-pods-"))
        )
        self.logs_dir = self.workdir / "pods"
        self.pod_logs = pod_logs
        self.pool_namespaces = tuple(pool_namespaces) if wrap is not None else ("",)
        self.nodes = max(1, nodes)
        self.python = python or sys.executable
        self.pool: dict[str, list[_Standby]] = {}
        self.pods: dict[Key, Pod] = {}
        self.knobs: dict[Key, dict[str, float]] = {}
        self.deployments = Informer(client, kinds.DEPLOYMENT, name="sandbox-deployments")
        self.daemonsets = Informer(client, kinds.DAEMON_SET, name="sandbox-daemonsets")
        self.services = Informer(client, kinds.SERVICE, name="sandbox-services")
        self.pod_objects = Informer(client, POD, name="sandbox-pods")
        self.listeners: list[Callable[[], None]] = []
        #: a podinfo process to scrape: ``(host:port, labels)`` (``__metrics_path__`` among them)
        self.on_new_target: TargetHook | None = None
        #: a scrape target whose process is gone
        self.on_target_gone: Callable[[str], None] | None = None
        #: the former hook (an object with ``metrics_target``, scraped at ``/metrics``); used when
        #: ``on_new_target`` is not set
        self.on_new_app: Callable[[AppHandle], None] | None = None
        #: endpoints that are no pod: a sandbox process behind a Service without a selector (the
        #: loadtester behind `flagger-loadtester.test`, Prometheus behind `prometheus.istio-system`).
        self.static_endpoints: dict[Key, list[Endpoint]] = {}
        self._tallies: list[tuple[str, str, Path]] = []  # (namespace, workload, tally file) of every pod
        self._final: dict[Path, list[tuple[str, str, str, int]]] = {}  # tallies of processes that ended
        self._dirty: set[WorkloadKey] = set()
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lifecycle: set[asyncio.Task[Any]] = set()
        self._refilling: set[str] = set()
        self._http: aiohttp.ClientSession | None = None
        self._started = False
        self._stopping = False
        self._seq = 0

    # -- helpers ----------------------------------------------------------------------------------------

    def _spawn(self, coro: Any, name: str, lifecycle: bool = False) -> asyncio.Task[Any]:
        """A background task; ``lifecycle`` ones (starting and stopping processes) are waited for at `stop`,
        the others (probes, watches, knob pushes) cancelled."""
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro, name=name)
        tasks = self._lifecycle if lifecycle else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._http

    def _base_env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
        env[ENV_PARENT] = str(os.getpid())
        return env

    def _command(self, argv: list[str], namespace: str) -> list[str]:
        return self.wrap(list(argv), namespace) if self.wrap is not None else list(argv)

    async def _exec(
        self, argv: list[str], log_path: Path, env: Mapping[str, str], pass_fds: Sequence[int] = ()
    ) -> asyncio.subprocess.Process:
        """Start argv with stdout and stderr appended to ``log_path``, in a session of its own (a Ctrl-C
        reaches the sandbox, which stops it)."""
        out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        try:
            return await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(env),
                cwd=self.logs_dir,
                pass_fds=tuple(pass_fds),
                start_new_session=True,
            )
        finally:
            os.close(out)

    def _pool_key(self, namespace: str) -> str:
        return namespace if self.wrap is not None else ""

    def _notify(self) -> None:
        for listener in self.listeners:
            try:
                listener()
            except Exception:  # a listener must not break the pod manager
                log.exception("pod listener failed")

    def _new_log(self, stem: str) -> Path:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        return self.logs_dir / f"{stem}.{self._seq}.log"

    # -- the pool ---------------------------------------------------------------------------------------

    @property
    def all_apps(self) -> list[AppHandle]:
        """Every podinfo process with a stats port (pool and pods), as scrape targets."""
        out = [AppHandle(s.stats) for standbys in self.pool.values() for s in standbys]
        out += [AppHandle(p.stats) for p in self.pods.values() if p.stats and not p.deleting]
        return out

    async def _start_standby(self, key: str) -> _Standby:
        """A podinfo process on a new pod IP, its stats port answering and announced to Prometheus."""
        reserved: list[socket.socket] = []

        def usable(address: str) -> bool:
            sock = _reserve(address)
            if sock is not None:
                reserved.append(sock)
            return sock is not None

        ip = self.addresses.allocate(usable)
        sock = reserved[0]
        log_path = self._new_log(f"pool_{ip}")
        env = self._base_env()
        env.update({ENV_POD_IP: ip, ENV_STATS_FD: str(sock.fileno()), ENV_STANDBY: "1"})
        argv = self._command([self.python, *PODINFO.module], key or "default")
        try:
            process = await self._exec(argv, log_path, env, (sock.fileno(),))
        except BaseException:
            self.addresses.release(ip)
            raise
        finally:
            sock.close()
        standby = _Standby(ip, key, process, log_path)
        try:
            await self._wait_answering(f"http://{standby.stats}/sandbox/state", process, 60.0)
        except BaseException:
            await _terminate(process, 2.0)
            self.addresses.release(ip)
            raise
        self._announce(standby.stats)
        return standby

    def _announce(self, target: str) -> None:
        if self.on_new_target is not None:
            self.on_new_target(target, {"__metrics_path__": "/stats/prometheus"})
        elif self.on_new_app is not None:
            self.on_new_app(AppHandle(target))

    def _retire_target(self, target: str) -> None:
        if self.on_target_gone is not None:
            with contextlib.suppress(Exception):
                self.on_target_gone(target)

    async def _wait_answering(
        self, url: str, process: asyncio.subprocess.Process | None, timeout_s: float
    ) -> None:
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            if process is not None and process.returncode is not None:
                raise RuntimeError(
                    f"the process ended (exit status {process.returncode}) before {url} answered"
                )
            try:
                async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout_s:.0f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def fill_pool(self) -> None:
        """Start podinfo processes until every pool has ``pool_size`` of them."""
        for key in self.pool_namespaces:
            pool = self.pool.setdefault(key, [])
            missing = self.pool_size - len(pool)
            if missing <= 0:
                continue
            started = await asyncio.gather(
                *(self._start_standby(key) for _ in range(missing)), return_exceptions=True
            )
            for item in started:
                if isinstance(item, BaseException):
                    log.warning("a podinfo process of the pool did not start: %s", item)
                elif self._stopping:
                    await _terminate(item.process, 2.0)
                else:
                    pool.append(item)

    def _refill(self, key: str) -> None:
        if self._stopping or key in self._refilling or key not in self.pool_namespaces:
            return
        self._refilling.add(key)

        async def refill() -> None:
            try:
                pool = self.pool.setdefault(key, [])
                while not self._stopping and len(pool) < self.pool_size:
                    standby = await self._start_standby(key)
                    if self._stopping:
                        await _terminate(standby.process, 2.0)
                        return
                    pool.append(standby)
            finally:
                self._refilling.discard(key)

        self._spawn(refill(), f"sandbox-pool-{key or 'any'}", lifecycle=True)

    async def _take_standby(self, namespace: str) -> _Standby:
        key = self._pool_key(namespace)
        pool = self.pool.get(key) or []
        while pool:
            standby = pool.pop(0)
            if standby.process.returncode is None:
                self._refill(key)
                return standby
            self._retire_target(standby.stats)
            self.addresses.release(standby.ip)
        self._refill(key)
        return await self._start_standby(key or namespace)

    # -- knobs ------------------------------------------------------------------------------------------

    def set_knobs(
        self,
        namespace: str,
        workload: str,
        *,
        error_rate: float | None = None,
        latency_ms: float | None = None,
    ) -> asyncio.Task[None]:
        """Error rate (0..1) / added latency (ms) for every pod of ``workload``, now and later. The pods get
        them over their stats port: await the returned task to know they have them."""
        if error_rate is not None and not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be within [0, 1], got {error_rate}")
        if latency_ms is not None and not latency_ms >= 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency_ms}")
        knobs = self.knobs.setdefault((namespace, workload), {})
        if error_rate is not None:
            knobs["error_rate"] = error_rate
        if latency_ms is not None:
            knobs["latency_ms"] = latency_ms
        body = {k: v for k, v in (("error_rate", error_rate), ("latency_ms", latency_ms)) if v is not None}
        targets = [
            p.stats
            for p in self.pods.values()
            if (p.namespace, p.workload) == (namespace, workload) and p.stats and not p.deleting
        ]
        return self._spawn(self._push_knobs(targets, body), f"sandbox-knobs-{namespace}-{workload}")

    async def _push_knobs(self, targets: Iterable[str], body: Mapping[str, float]) -> None:
        async def push(target: str) -> None:
            try:
                async with self.http.post(f"http://{target}/sandbox/knobs", json=dict(body)) as response:
                    if response.status != 200:
                        log.warning(
                            "knobs for %s: HTTP %d %s", target, response.status, await response.text()
                        )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("knobs for %s: %s", target, exc)

        await asyncio.gather(*(push(t) for t in targets))

    # -- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        await self.fill_pool()
        self.deployments.add_handler(functools.partial(self._on_workload, "Deployment"))
        self.daemonsets.add_handler(functools.partial(self._on_workload, "DaemonSet"))
        self.services.add_handler(self._on_service)
        self.pod_objects.add_handler(self._on_pod)
        for informer in (self.deployments, self.daemonsets, self.services, self.pod_objects):
            await informer.start()
        async with asyncio.timeout(30):
            for informer in (self.deployments, self.daemonsets, self.services, self.pod_objects):
                await informer.wait_synced()
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="sandbox-pods")

    async def stop(self) -> None:
        self._stopping = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._started:
            for informer in (self.deployments, self.daemonsets, self.services, self.pod_objects):
                await informer.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        # Processes being started are let finish (a cancelled start could leave one unknown), then stopped.
        if self._lifecycle:
            _, late = await asyncio.wait(list(self._lifecycle), timeout=60)
            for task in late:
                task.cancel()
        await asyncio.gather(
            *(self._stop_pod(pod, delete_object=False, notify=False) for pod in list(self.pods.values())),
            return_exceptions=True,
        )
        standbys = [s for pool in self.pool.values() for s in pool]
        self.pool.clear()
        await asyncio.gather(*(_terminate(s.process, 5.0) for s in standbys), return_exceptions=True)
        for standby in standbys:
            self._retire_target(standby.stats)
            self.addresses.release(standby.ip)
        if self._http is not None:
            await self._http.close()
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- events -----------------------------------------------------------------------------------------

    async def _on_service(self, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._notify()

    def _on_workload(
        self, kind: str, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        meta = obj.get("metadata") or {}
        self._mark((kind, str(meta.get("namespace") or "default"), str(meta.get("name") or "")))

    def _mark(self, key: WorkloadKey) -> None:
        self._dirty.add(key)
        self._wake.set()

    def _on_pod(self, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name") or ""))
        uid = str(meta.get("uid") or "")
        annotations = meta.get("annotations") or {}
        if PROCESS_ANNOTATION in annotations:
            return
        ours = annotations.get(MANAGED_ANNOTATION) == "true"
        pod = self.pods.get(key)
        gone = event_type == "DELETED" or bool(meta.get("deletionTimestamp"))
        if gone:
            if pod is not None and not pod.deleting and (not pod.uid or pod.uid == uid):
                self._spawn(
                    self._stop_pod(pod, delete_object=event_type != "DELETED"),
                    f"sandbox-stop-{key[1]}",
                    lifecycle=True,
                )
                if pod.owner is not None:
                    self._mark(pod.owner)
            return
        if ours or pod is not None or self._stopping:
            return
        self._run_bare(obj)

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            keys, self._dirty = self._dirty, set()
            for key in sorted(keys):
                try:
                    self._reconcile(key)
                except Exception:
                    log.exception("pods of %s %s/%s", *key)

    # -- workloads --------------------------------------------------------------------------------------

    def _reconcile(self, key: WorkloadKey) -> None:
        kind, namespace, name = key
        informer = self.deployments if kind == "Deployment" else self.daemonsets
        obj = informer.get(namespace, name)
        mine = [p for p in self.pods.values() if p.owner == key and not p.deleting]
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            for pod in mine:
                self._spawn(self._stop_pod(pod), f"sandbox-stop-{pod.name}", lifecycle=True)
            return
        spec = obj.get("spec") or {}
        template = spec.get("template") or {}
        if PROCESS_ANNOTATION in ((template.get("metadata") or {}).get("annotations") or {}):
            # A sandbox process shown as a workload (the operator's Deployment): its Pod is the sandbox's.
            for pod in mine:
                self._spawn(self._stop_pod(pod), f"sandbox-stop-{pod.name}", lifecycle=True)
            return
        template_hash = pod_template_hash(template)
        uid = str((obj.get("metadata") or {}).get("uid") or "")
        if kind == "Deployment":
            replicas = spec.get("replicas", 1)
            desired = int(replicas) if isinstance(replicas, int) and not isinstance(replicas, bool) else 1
            nodes: list[str] = [node_name(i % self.nodes) for i in range(desired)]
        else:
            scheduled = (obj.get("status") or {}).get("desiredNumberScheduled")
            count = int(scheduled) if isinstance(scheduled, int) and scheduled > 0 else self.nodes
            nodes = [node_name(i) for i in range(count)]
            desired = len(nodes)
        current = [p for p in mine if p.template_hash == template_hash and p.owner_uid == uid]
        old = [p for p in mine if p not in current]
        # Surplus pods of the current template go first: those not serving, the newest.
        current.sort(key=lambda p: (not p.serving, p.started_at), reverse=True)
        while len(current) > desired:
            pod = current.pop(0)
            self._spawn(self._stop_pod(pod), f"sandbox-stop-{pod.name}", lifecycle=True)
        taken = {p.node for p in current}
        free_nodes = [n for n in nodes if n not in taken] if kind == "DaemonSet" else nodes[len(current) :]
        for node in free_nodes[: desired - len(current)]:
            pod = self._new_workload_pod(kind, namespace, name, uid, template, template_hash, node, obj)
            current.append(pod)
            self.pods[pod.key] = pod
            pod.start_task = self._spawn(
                self._start_pod(pod, create=True), f"sandbox-start-{pod.name}", lifecycle=True
            )
        # Old pods stay until as many new ones serve (new first, then the old ones go).
        keep = max(0, desired - sum(p.serving for p in current))
        old.sort(key=lambda p: not p.serving)
        for pod in old[keep:]:
            self._spawn(self._stop_pod(pod), f"sandbox-stop-{pod.name}", lifecycle=True)

    def _new_workload_pod(
        self,
        kind: str,
        namespace: str,
        workload: str,
        uid: str,
        template: Mapping[str, Any],
        template_hash: str,
        node: str,
        obj: Mapping[str, Any],
    ) -> Pod:
        labels = _labels(template)
        if kind == "Deployment":
            name = pod_name(workload, template_hash)
            labels[POD_TEMPLATE_HASH_LABEL] = template_hash
        else:
            name = f"{workload}-{random_suffix()}"
            labels["controller-revision-hash"] = template_hash
            labels["pod-template-generation"] = str((obj.get("metadata") or {}).get("generation") or 1)
        while (namespace, name) in self.pods:
            name = name[:-5] + random_suffix()
        meta = template.get("metadata") or {}
        annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
        spec = json.loads(json.dumps(template.get("spec") or {}))
        return Pod(
            namespace=namespace,
            name=name,
            workload=workload,
            owner=(kind, namespace, workload),
            owner_uid=uid,
            template_hash=template_hash,
            labels=labels,
            spec=spec,
            node=node,
            version=_version(spec),
            annotations=annotations,
        )

    def _run_bare(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        spec = json.loads(json.dumps(obj.get("spec") or {}))
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name") or "")
        pod = Pod(
            namespace=namespace,
            name=name,
            workload=name,
            owner=None,
            template_hash="",
            labels=_labels(obj),
            spec=spec,
            node=str(spec.get("nodeName") or node_name(0)),
            version=_version(spec),
            uid=str(meta.get("uid") or ""),
        )
        self.pods[pod.key] = pod
        pod.start_task = self._spawn(
            self._start_pod(pod, create=False), f"sandbox-start-{name}", lifecycle=True
        )

    # -- one pod ----------------------------------------------------------------------------------------

    def _pod_object(self, pod: Pod) -> dict[str, Any]:
        assert pod.owner is not None
        kind, _, owner = pod.owner
        spec = dict(pod.spec)
        spec["nodeName"] = pod.node
        spec.setdefault("restartPolicy", "Always")
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod.name,
                "namespace": pod.namespace,
                "labels": pod.labels,
                "annotations": {**pod.annotations, MANAGED_ANNOTATION: "true"},
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": kind,
                        "name": owner,
                        "uid": pod.owner_uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }

    async def _start_pod(self, pod: Pod, create: bool) -> None:
        pod.started_at = _now()
        if create:
            try:
                created = await self.client.create(self._pod_object(pod), kind=POD)
            except KubeError as exc:
                log.warning(
                    "pod %s/%s: the Pod object could not be created: %s", pod.namespace, pod.name, exc
                )
                self.pods.pop(pod.key, None)
                return
            pod.uid = str((created.get("metadata") or {}).get("uid") or "")
        elif not pod.spec.get("nodeName"):
            with contextlib.suppress(KubeError):
                await self.client.patch(
                    POD, pod.name, {"spec": {"nodeName": pod.node}}, namespace=pod.namespace
                )
        containers = [c for c in pod.spec.get("containers") or [] if isinstance(c, dict)]
        pod.containers = [
            Container(
                name=str(c.get("name") or f"container-{i}"),
                image=str(c.get("image") or ""),
                spec=c,
                program=images.program_for(str(c.get("image") or "")),
                log_path=self.logs_dir / f"{pod.namespace}_{pod.name}_{c.get('name') or i}.log",
            )
            for i, c in enumerate(containers)
        ]
        if pod.deleting:
            return
        refused = [c for c in pod.containers if c.program is None]
        if refused or not pod.containers:
            for c in refused:
                c.reason = "ErrImagePull"
                c.message = images.image_check(c.image) or ""
            await self._write_status(pod)
            for c in refused:
                await self._warn(pod, "Failed", f'Failed to pull image "{c.image}": {c.message}', c.name)
            return
        try:
            envs = [await self._environment(pod, c.spec) for c in pod.containers]
        except _ConfigError as exc:
            for c in pod.containers:
                c.reason, c.message = "CreateContainerConfigError", str(exc)
            await self._write_status(pod)
            await self._warn(pod, "Failed", f"Error: {exc}", pod.containers[0].name)
            return
        await self._write_status(pod)
        if self.pod_logs is not None:
            for c in pod.containers:
                with contextlib.suppress(Exception):
                    c.log_path.touch()
                    self.pod_logs.register(pod.namespace, pod.name, c.name, c.log_path)
        try:
            await self._run_containers(pod, envs)
        except Exception as exc:
            log.warning("pod %s/%s did not start: %s", pod.namespace, pod.name, exc)
            for c in pod.containers:
                if c.state == "waiting":
                    c.state, c.reason, c.message, c.exit_code = "terminated", "StartError", str(exc), 128
                    c.finished_at = _now()
            await self._write_status(pod)
            await self._warn(pod, "Failed", f"Error: {exc}", pod.containers[0].name)
            return
        if pod.deleting:
            return
        await self._write_status(pod)
        self._spawn(self._probe(pod), f"sandbox-probe-{pod.name}")

    async def _environment(self, pod: Pod, container: Mapping[str, Any]) -> dict[str, str]:
        """The container's environment: ``envFrom`` then ``env`` (values, ConfigMap and Secret keys, pod
        fields), ``$(VAR)`` expanded as the kubelet does."""
        env: dict[str, str] = {"HOSTNAME": pod.name}
        for source in container.get("envFrom") or []:
            prefix = str(source.get("prefix") or "")
            for ref_kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                ref = source.get(key)
                if not ref:
                    continue
                data = await self._config_data(pod.namespace, ref_kind, str(ref.get("name") or ""), ref)
                env.update({prefix + k: v for k, v in (data or {}).items()})
        for item in container.get("env") or []:
            name = str(item.get("name") or "")
            if not name:
                continue
            if "value" in item or not item.get("valueFrom"):
                env[name] = _expand(str(item.get("value") or ""), env)
                continue
            value = await self._value_from(pod, item["valueFrom"])
            if value is not None:
                env[name] = value
        return env

    async def _value_from(self, pod: Pod, source: Mapping[str, Any]) -> str | None:
        for ref_kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            ref = source.get(key)
            if not ref:
                continue
            name, item = str(ref.get("name") or ""), str(ref.get("key") or "")
            data = await self._config_data(pod.namespace, ref_kind, name, ref)
            if data is None:
                return None
            if item not in data:
                if ref.get("optional"):
                    return None
                raise _ConfigError(f"couldn't find key {item} in {ref_kind} {pod.namespace}/{name}")
            return data[item]
        field_ref = source.get("fieldRef")
        if field_ref:
            path = str(field_ref.get("fieldPath") or "")
            fields = {
                "metadata.name": pod.name,
                "metadata.namespace": pod.namespace,
                "metadata.uid": pod.uid,
                "spec.nodeName": pod.node,
                "spec.serviceAccountName": str(pod.spec.get("serviceAccountName") or "default"),
                "status.hostIP": HOST_IP,
                "status.podIP": pod.ip,
            }
            found = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
            if found:
                source_map = pod.labels if found.group(1) == "labels" else pod.annotations
                return source_map.get(found.group(2), "")
            return fields.get(path, "")
        return None  # resourceFieldRef and others: not set

    async def _config_data(
        self, namespace: str, ref_kind: str, name: str, ref: Mapping[str, Any]
    ) -> dict[str, str] | None:
        kind = kinds.CONFIG_MAP if ref_kind == "ConfigMap" else kinds.SECRET
        try:
            obj = await self.client.get(kind, name, namespace=namespace)
        except NotFound:
            if ref.get("optional"):
                return None
            raise _ConfigError(f'{ref_kind.lower()} "{name}" not found') from None
        if ref_kind == "ConfigMap":
            return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
        out = {}
        for k, v in (obj.get("data") or {}).items():
            try:
                out[str(k)] = base64.b64decode(str(v)).decode("utf-8", "replace")
            except ValueError:
                out[str(k)] = ""
        out.update({str(k): str(v) for k, v in (obj.get("stringData") or {}).items()})
        return out

    async def _run_containers(self, pod: Pod, envs: list[dict[str, str]]) -> None:
        """Start a process per container: the first podinfo container from the pool (stats port, assigned
        over it), the others on the pod IP directly."""
        main = next((c for c in pod.containers if c.program is PODINFO), None)
        argvs = {}
        for c in pod.containers:
            assert c.program is not None
            argv = images.container_argv(c.spec, c.program)
            argv = [_expand(word, envs[pod.containers.index(c)]) for word in argv]
            try:
                argvs[c.name] = images.local_argv(argv, c.program, self.python)
            except ValueError as exc:
                c.state, c.reason, c.message, c.exit_code = "terminated", "StartError", str(exc), 128
                c.finished_at = _now()
                await self._warn(pod, "Failed", f"Error: {exc}", c.name)
        if main is not None and main.name in argvs:
            standby = await self._take_standby(pod.namespace)
            pod.ip = standby.ip
            if pod.deleting:  # stopped meanwhile: the process is the pod's, stopped with it
                main.process = standby.process
                return
            pod.stats = standby.stats
            index = pod.containers.index(main)
            args = argvs[main.name][len(PODINFO.module) + 1 :]
            await self._assign(pod, main, standby, args, _with_pod_ip(main.spec, envs[index], pod.ip))
        else:
            reserved: list[socket.socket] = []

            def usable(address: str) -> bool:
                sock = _reserve(address)
                if sock is not None:
                    reserved.append(sock)
                return sock is not None

            pod.ip = self.addresses.allocate(usable)
            pod.reservation = reserved[0]
        for index, c in enumerate(pod.containers):
            if c is main or c.name not in argvs or pod.deleting:
                continue
            argv = argvs[c.name]
            env = {**self._base_env(), **_with_pod_ip(c.spec, envs[index], pod.ip), ENV_POD_IP: pod.ip}
            if c.program is PODINFO:
                env[ENV_VERSION] = images.image_tag(c.image)
                env[ENV_ASSIGNMENT] = json.dumps(self._assignment(pod, [], {}))
            else:
                argv = [*argv, f"--host={pod.ip}"]
            c.process = await self._exec(self._command(argv, pod.namespace), c.log_path, env)
            c.state, c.reason, c.started_at = "running", "", _now()
            self._spawn(self._watch(pod, c), f"sandbox-watch-{pod.name}-{c.name}")

    def _assignment(self, pod: Pod, args: list[str], env: Mapping[str, str]) -> dict[str, Any]:
        return {
            "namespace": pod.namespace,
            "pod": pod.name,
            "workload": pod.workload,
            "version": pod.version,
            "labels": pod.labels,
            "args": args,
            "env": dict(env),
            "knobs": dict(self.knobs.get((pod.namespace, pod.workload), {})),
            "tally_file": str(pod.tally_path) if pod.tally_path else "",
        }

    async def _assign(
        self, pod: Pod, container: Container, standby: _Standby, args: list[str], env: Mapping[str, str]
    ) -> None:
        container.process = standby.process
        with contextlib.suppress(OSError):
            os.replace(standby.log_path, container.log_path)
        pod.tally_path = self.logs_dir / f"{pod.namespace}_{pod.name}.tally.json"
        self._tallies.append((pod.namespace, pod.workload, pod.tally_path))
        body = self._assignment(pod, args, env)
        body["version"] = images.image_tag(container.image)
        sent = dict(body["knobs"])
        container.state, container.reason, container.started_at = "running", "", _now()
        self._spawn(self._watch(pod, container), f"sandbox-watch-{pod.name}-{container.name}")
        try:
            async with self.http.post(f"http://{standby.stats}/sandbox/assign", json=body) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RuntimeError(f"assigning the pod to its podinfo process failed: {exc}") from exc
        if response.status != 200:
            # The process exits (a flag it refuses, a port it cannot bind): wait for that, so the pod is
            # never taken as serving meanwhile; the watcher records the exit.
            log.info("pod %s/%s: podinfo refused its assignment: %s", pod.namespace, pod.name, answer)
            try:
                await asyncio.wait_for(standby.process.wait(), 10.0)
            except TimeoutError:
                await _terminate(standby.process, 2.0)
            return
        now = self.knobs.get((pod.namespace, pod.workload), {})
        if now != sent:  # changed while the assignment was on its way
            await self._push_knobs([standby.stats], now)

    async def _watch(self, pod: Pod, container: Container) -> None:
        process = container.process
        assert process is not None
        code = await process.wait()
        if pod.deleting or self._stopping:
            return
        container.state, container.exit_code, container.finished_at = "terminated", code, _now()
        container.reason = "Completed" if code == 0 else "Error"
        was_serving, pod.serving = pod.serving, False
        if was_serving:
            self._notify()
        if pod.tally_path is not None and container.program is PODINFO:
            self._final[pod.tally_path] = _read_tally(pod.tally_path)
        await self._write_status(pod)
        await self._warn(
            pod,
            "ContainerExited",
            f"Container {container.name} exited with status {code}; the sandbox does not restart it "
            f"(kubectl logs {pod.name} -c {container.name})",
            container.name,
        )
        if pod.owner is not None:
            self._mark(pod.owner)

    async def _probe(self, pod: Pod) -> None:
        """Until the pod serves: its readiness probes, else TCP connects to its declared ports."""
        checks: list[tuple[str, int, str]] = []  # (kind, port, path)
        for c in pod.containers:
            probe = c.spec.get("readinessProbe") or {}
            if probe.get("httpGet"):
                port = pod.container_port(probe["httpGet"].get("port"))
                if port is not None:
                    checks.append(("http", port, str(probe["httpGet"].get("path") or "/")))
                    continue
            if probe.get("tcpSocket"):
                port = pod.container_port(probe["tcpSocket"].get("port"))
                if port is not None:
                    checks.append(("tcp", port, ""))
                    continue
            for port_spec in c.spec.get("ports") or []:
                if port_spec.get("containerPort") and str(port_spec.get("protocol") or "TCP") == "TCP":
                    checks.append(("tcp", int(port_spec["containerPort"]), ""))
        delay = 0.02
        while not pod.deleting and not self._stopping:
            if any(
                c.state != "running" or (c.process is not None and c.process.returncode is not None)
                for c in pod.containers
            ):
                return
            if all([await self._check(pod.ip, *check) for check in checks]):
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        else:
            return
        pod.serving = True
        log.info("pod %s/%s serving on %s", pod.namespace, pod.name, pod.ip)
        self._notify()  # an endpoint first, then Ready (what the control plane's workload status counts)
        await self._write_status(pod)
        if pod.owner is not None:
            self._mark(pod.owner)

    async def _check(self, ip: str, kind: str, port: int, path: str) -> bool:
        if kind == "http":
            try:
                async with self.http.get(
                    f"http://{ip}:{port}{path}", timeout=aiohttp.ClientTimeout(total=1)
                ) as response:
                    return 200 <= response.status < 400
            except (aiohttp.ClientError, TimeoutError):
                return False
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), 1.0)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    async def _stop_pod(self, pod: Pod, delete_object: bool = True, notify: bool = True) -> None:
        """Out of the endpoints, its processes stopped (their last tally read), the Pod object deleted."""
        if pod.deleting:
            return
        pod.deleting = True
        was_serving, pod.serving = pod.serving, False
        if was_serving and notify:
            self._notify()
        start = pod.start_task
        if start is not None and start is not asyncio.current_task() and not start.done():
            await asyncio.wait([start])  # its processes are known once it is done
        # The Pod object goes first: a terminating pod no longer counts for its workload's status (a scale
        # to zero is at zero at once), as kube-controller-manager leaves out pods being deleted.
        if delete_object:
            await self._delete_object(pod)
        grace = pod.spec.get("terminationGracePeriodSeconds")
        timeout = min(float(grace), 5.0) if isinstance(grace, int | float) else 5.0
        await asyncio.gather(
            *(_terminate(c.process, timeout) for c in pod.containers if c.process is not None),
            return_exceptions=True,
        )
        if pod.tally_path is not None:
            self._final[pod.tally_path] = _read_tally(pod.tally_path)
        if pod.stats:
            self._retire_target(pod.stats)
        if pod.reservation is not None:
            pod.reservation.close()
        if pod.ip:
            self.addresses.release(pod.ip)
        if self.pod_logs is not None:
            with contextlib.suppress(Exception):
                self.pod_logs.unregister(pod.namespace, pod.name)
        if self.pods.get(pod.key) is pod:
            del self.pods[pod.key]
        if pod.stats or pod.containers:
            log.info("pod %s/%s stopped", pod.namespace, pod.name)

    async def _delete_object(self, pod: Pod) -> None:
        if not pod.uid:
            return
        async with pod.lock:  # after a status write in flight, never before it
            try:
                await self.client.delete(
                    POD,
                    pod.name,
                    namespace=pod.namespace,
                    grace_period_seconds=0,
                    missing_ok=True,
                    preconditions={"uid": pod.uid},
                )
            except KubeError as exc:
                log.debug("deleting Pod %s/%s: %s", pod.namespace, pod.name, exc)

    async def _write_status(self, pod: Pod) -> None:
        if not pod.uid:
            return
        async with pod.lock:
            if pod.deleting and self.pods.get(pod.key) is not pod:
                return
            try:
                await self.client.patch_status(
                    POD, pod.name, {"status": pod.status()}, namespace=pod.namespace
                )
            except NotFound:
                pass
            except KubeError as exc:
                log.warning("status of Pod %s/%s: %s", pod.namespace, pod.name, exc)

    async def _warn(self, pod: Pod, reason: str, message: str, container: str) -> None:
        """A Warning event on the pod, once per reason."""
        if reason in pod.warned or not pod.uid:
            return
        pod.warned.add(reason)
        now = _now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod.name}.{secrets.token_hex(8)}", "namespace": pod.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod.name,
                "namespace": pod.namespace,
                "uid": pod.uid,
                "fieldPath": f"spec.containers{{{container}}}",
            },
            "reason": reason,
            "message": message,
            "type": "Warning",
            "source": {"component": "kubelet", "host": pod.node},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": pod.node,
        }
        try:
            await self.client.create(event, kind=kinds.EVENT)
        except KubeError as exc:
            log.warning("event on Pod %s/%s: %s", pod.namespace, pod.name, exc)
        log.warning("pod %s/%s: %s", pod.namespace, pod.name, message)

    # -- reads ------------------------------------------------------------------------------------------

    def add_static_endpoint(self, namespace: str, service: str, host: str, port: int) -> None:
        """Serve ``service.namespace`` (also) by ``host:port``, a process of the sandbox."""
        members = self.static_endpoints.setdefault((namespace, service), [])
        if all((e.host, e.port) != (host, port) for e in members):
            members.append(Endpoint(host, port, {}))
        self._notify()

    def endpoints(self) -> dict[Key, list[Endpoint]]:
        """``(namespace, service)`` -> ``podIP:targetPort`` of the serving pods the Service selects (the
        first port's ``targetPort``, a name resolved against the pod's container ports), and the Service's
        static endpoints (`add_static_endpoint`)."""
        out: dict[Key, list[Endpoint]] = {}
        serving = sorted((p for p in self.pods.values() if p.serving and not p.deleting), key=lambda p: p.key)
        for service in self.services.list():
            meta = service.get("metadata") or {}
            namespace = str(meta.get("namespace") or "default")
            spec = service.get("spec") or {}
            selector = spec.get("selector") or {}
            ports = spec.get("ports") or []
            target = (ports[0].get("targetPort") or ports[0].get("port")) if ports else None
            members = []
            for pod in serving:
                if pod.namespace != namespace or not _selector_matches(selector, pod.labels):
                    continue
                port = pod.container_port(target) if target is not None else None
                if port is not None:
                    members.append(Endpoint(pod.ip, port, dict(pod.labels)))
            key = (namespace, str(meta.get("name") or ""))
            out[key] = members + list(self.static_endpoints.get(key, ()))
        return out

    def workload_pods(self, namespace: str, workload: str) -> list[Pod]:
        """The running pods of a workload (sorted by name)."""
        return sorted(
            (
                p
                for p in self.pods.values()
                if (p.namespace, p.workload) == (namespace, workload) and not p.deleting
            ),
            key=lambda p: p.name,
        )

    def served(self, namespace: str, workload: str, source: str | None = None) -> int:
        """Requests counted by the pods of ``workload`` (optionally only from one ``source_workload``),
        including pods that are gone."""
        total = 0
        for ns, name, path in self._tallies:
            if (ns, name) != (namespace, workload):
                continue
            rows = self._final.get(path)
            if rows is None:
                rows = _read_tally(path)
            total += sum(
                count
                for row_ns, row_workload, src, count in rows
                if (row_ns, row_workload) == (namespace, workload) and (source is None or src == source)
            )
        return total


class _ConfigError(Exception):
    """A ConfigMap or Secret a container's environment needs is missing."""


def _expand(text: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` from ``env`` (left as it is when unknown), ``$$`` as ``$``, as the kubelet expands."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR.sub(one, text)


def _with_pod_ip(container: Mapping[str, Any], env: Mapping[str, str], ip: str) -> dict[str, str]:
    """``env`` with the variables taken from ``status.podIP`` set to ``ip`` (known once it is allocated)."""
    out = dict(env)
    for item in container.get("env") or []:
        if ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") == "status.podIP":
            out[str(item.get("name"))] = ip
    return out


def _version(spec: Mapping[str, Any]) -> str:
    """The image tag of the pod's first runnable container (else of its first container)."""
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    for c in containers:
        if images.program_for(str(c.get("image") or "")) is not None:
            return images.image_tag(str(c.get("image")))
    return images.image_tag(str(containers[0].get("image") or "")) if containers else ""


def _read_tally(path: Path) -> list[tuple[str, str, str, int]]:
    try:
        rows = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    out = []
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, list) and len(row) == 4 and isinstance(row[3], int):
            out.append((str(row[0]), str(row[1]), str(row[2]), int(row[3])))
    return out


async def _terminate(process: asyncio.subprocess.Process | None, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns once the process is gone."""
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sandbox pods: %s failed", task.get_name(), exc_info=task.exception())
