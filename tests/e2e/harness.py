"""End-to-end harness: the real operator against the local control plane, a real Prometheus and two demo
apps standing in for the primary and canary pods.

There is no Istio here, so `TrafficDriver` plays the mesh: it reads the VirtualService the operator wrote
and splits a bounded stream of requests between the two apps by its weights, the way Envoy would. The apps
report Istio-named metrics, which Prometheus scrapes, which the operator's builtin checks query.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import yaml

from canarist.api.crds import crds
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import KubeError, NotFound
from canarist.operator.controller import Controller
from canarist.operator.runtime import Operator
from canarist.operator.settings import OperatorSettings
from canarist.sandbox.demo_app import DemoApp
from tests.fixtures.canaries import canary_manifest

if TYPE_CHECKING:
    from tests.e2e.conftest import World

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "podinfo"
NAMESPACE = "test"
#: How long a whole run (a new revision to Succeeded or Failed) may take.
PROMOTION_TIMEOUT_S = 120


def load_example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return document


def fast_seed(**overrides: Any) -> dict[str, Any]:
    """The walkthrough's Canary with short intervals (analysis 3 s, metrics 10 s) and without its webhooks
    (the webhook suite passes ``webhooks=``); ``overrides`` are keywords of `canary_manifest`."""
    options: dict[str, Any] = {"interval": "3s", "metric_interval": "10s", "webhooks": None}
    options.update(overrides)
    return canary_manifest(**options)


@dataclass
class TrafficDriver:
    """A bounded request loop that follows the VirtualService weights (our stand-in for the mesh)."""

    client: KubeClient
    primary: DemoApp
    canary: DemoApp
    rate_per_s: float = 40.0
    vs_name: str = "podinfo"
    sent: dict[str, int] = field(default_factory=lambda: {"primary": 0, "canary": 0})
    weights: tuple[int, int] = (100, 0)
    _task: asyncio.Task[None] | None = None

    async def _refresh_weights(self) -> None:
        try:
            vs = await self.client.get(kinds.VIRTUAL_SERVICE, self.vs_name, namespace=NAMESPACE)
        except NotFound:
            self.weights = (100, 0)
            return
        except KubeError:
            return  # an API error (tests inject them): a proxy keeps the routes it has
        for route in (vs.get("spec") or {}).get("http") or []:
            weights = {d["destination"]["host"]: int(d.get("weight") or 0) for d in route.get("route") or []}
            if f"{self.vs_name}-canary" in weights:
                self.weights = (weights.get(f"{self.vs_name}-primary", 0), weights[f"{self.vs_name}-canary"])
                return

    def _pick(self) -> str:
        total = self.sent["primary"] + self.sent["canary"] + 1
        canary_share = self.weights[1] / 100
        return "canary" if self.sent["canary"] < canary_share * total else "primary"

    async def _run(self) -> None:
        period = 1.0 / self.rate_per_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            tick = 0
            while True:
                if tick % 10 == 0:
                    await self._refresh_weights()
                tick += 1
                side = self._pick()
                app = self.canary if side == "canary" else self.primary
                self.sent[side] += 1
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"{app.url}/") as response:
                        await response.read()
                await asyncio.sleep(period)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="traffic")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def install_crds(client: KubeClient) -> None:
    for crd in crds():
        await client.create(crd, kind=kinds.CUSTOM_RESOURCE_DEFINITION)


async def apply(client: KubeClient, obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    kind = kinds.kind_of(obj)
    result = await client.ensure(obj, kind=kind)
    return result.object


async def wait_for(
    predicate: Callable[[], Any], *, timeout_s: float = 60.0, what: str = "condition", poll_s: float = 0.1
) -> Any:
    """Poll an async predicate until it returns something truthy; fail the test with ``what`` otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last value: {last!r}")


STOP_TIMEOUT_S = 30
SLOW_STOP_S = 5


def pending_stacks() -> str:
    """Every unfinished task of the loop with its whole stack (where each one is waiting)."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        if not task.done() and task is not asyncio.current_task():
            print(f"--- {task.get_name()} ({task.get_coro()!r})", file=out)
            task.print_stack(limit=None, file=out)
    return out.getvalue()


class OperatorProcess:
    """The real operator running on the test loop (same code as `canarist operator`)."""

    def __init__(self, settings: OperatorSettings, kubeconfig: Path) -> None:
        self.settings = settings
        self.kubeconfig = kubeconfig
        self.client: KubeClient | None = None
        self.operator: Operator | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Operator:
        self.client = KubeClient.from_kubeconfig(self.kubeconfig)
        self.operator = Operator(self.settings, self.client, http_host="127.0.0.1")
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self.operator.run(self._stop), name="operator")
        await wait_for(self._synced, what="operator caches to sync", timeout_s=30)
        return self.operator

    async def _synced(self) -> bool:
        if self._task is not None and self._task.done():
            self._task.result()  # surface the operator's crash in the test
        return self.operator is not None and self.operator.controller.synced and self.operator.leading

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            loop = asyncio.get_running_loop()
            started = loop.time()
            done, _ = await asyncio.wait({self._task}, timeout=STOP_TIMEOUT_S)
            if not done:
                stacks = pending_stacks()
                self._task.cancel()
                raise AssertionError(
                    f"the operator did not stop within {STOP_TIMEOUT_S:g} s; pending tasks:\n{stacks}"
                )
            took = loop.time() - started
            if took > SLOW_STOP_S:
                print(f"the operator took {took:.1f} s to stop")  # shown with the output of a failing test
            self._task.result()
        if self.client is not None:
            await self.client.close()


async def canary_status(client: KubeClient, name: str = "podinfo") -> dict[str, Any]:
    canary = await client.get(kinds.CANARY, name, namespace=NAMESPACE)
    status: dict[str, Any] = canary.get("status") or {}
    return status


def event_messages(sink: Any) -> list[str]:
    """Event messages in the order the operator emitted them, as delivered to the `--event-webhook` sink
    (a capture server): exact order and every repeat, unlike Kubernetes Events which aggregate."""
    return [str(r.json["metadata"]["eventMessage"]) for r in sink.requests if r.method == "POST"]


async def delivered(read: Callable[[], list[str]], message: str, *, timeout_s: float = 30.0) -> list[str]:
    """Wait until ``message`` is among what ``read`` returns, and return that.

    A phase is written to the status before the event that closes it (an initialization, a promotion after
    its post-rollout hooks, a finalizer's last words) is delivered, so a test that saw the phase must still
    wait for that event before asserting on the sequence."""

    async def arrived() -> list[str] | None:
        messages = read()
        return messages if message in messages else None

    found: list[str] = await wait_for(arrived, what=f"{message!r} to be delivered", timeout_s=timeout_s)
    return found


async def phase_is(world: World, *phases: str) -> str | None:
    phase = (await canary_status(world.client)).get("phase")
    return phase if phase in phases else None


async def set_image(world: World, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": image}]}}}}
    await world.client.patch(kinds.DEPLOYMENT, "podinfo", patch, namespace=NAMESPACE, patch_type="strategic")


async def initialize(world: World, canary: dict[str, Any], **operator_settings: Any) -> OperatorProcess:
    """Start the operator, apply the podinfo objects and the canary, wait for Initialized."""
    process = await world.start_operator(**operator_settings)
    await world.apply_podinfo(canary)
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
    return process


# The event a run sends after writing its final phase (post-rollout hooks run in between).
CLOSING_EVENT = {"Succeeded": "Promotion completed!", "Failed": "Canary failed!"}


def run_events(world: World) -> list[str]:
    """Events from the last "New revision detected" on, without the readiness waits (timing-dependent)."""
    messages = [m for m in event_messages(world.events) if " not ready: waiting for rollout" not in m]
    starts = [i for i, m in enumerate(messages) if m.startswith("New revision detected! Scaling up")]
    return messages[starts[-1] :] if starts else messages


async def reaches(world: World, phase: str) -> None:
    """The canary is in ``phase`` and the event that closes that phase has been delivered."""
    await wait_for(lambda: phase_is(world, phase), what=phase, timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.3)
    prefix = CLOSING_EVENT.get(phase)
    if prefix is not None:

        async def closed() -> bool:
            return any(m.startswith(prefix) for m in run_events(world))

        await wait_for(closed, what=f"an event starting {prefix!r}", timeout_s=30)


async def event_seen(world: World, message: str) -> None:
    await delivered(lambda: event_messages(world.events), message, timeout_s=PROMOTION_TIMEOUT_S)


def _controller(operator: OperatorProcess | Operator) -> Controller:
    running = operator.operator if isinstance(operator, OperatorProcess) else operator
    assert running is not None, "the operator has not been started"
    return running.controller


async def ticks_pass(
    operator: OperatorProcess | Operator,
    n: int,
    namespace: str = NAMESPACE,
    name: str = "podinfo",
    *,
    timeout_s: float = 60.0,
) -> None:
    """Wait until the canary's worker has completed ``n`` more ticks than when called.

    Tests that prove that something does *not* happen wait for ticks, not for wall-clock time: a busy
    machine slows the operator down, and a sleep would then cover no tick at all. The first of the ``n``
    ticks may have been in flight at the call (it started before it), so ``n`` ticks guarantee ``n - 1``
    whole ticks that started after the call. A worker ticks on every change of what it watches, when its
    next paced step is due, and at least once per control-loop interval (2 s in the e2e world).
    """
    controller = _controller(operator)
    start = controller.ticks(namespace, name)

    async def passed() -> int | None:
        count = controller.ticks(namespace, name)
        return count if count >= start + n else None

    await wait_for(passed, what=f"{n} more ticks of {name}.{namespace} (from {start})", timeout_s=timeout_s)


async def operator_sees(
    operator: OperatorProcess | Operator,
    kind: kinds.ResourceKind,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    namespace: str = NAMESPACE,
) -> None:
    """Wait until the operator's cache holds ``name`` in a state for which ``check`` is true, so that every
    tick from then on sees that state."""
    controller = _controller(operator)

    async def seen() -> bool:
        obj = controller.cache.get(kind, namespace, name)
        return obj is not None and check(obj)

    await wait_for(seen, what=f"the operator's cache to show the expected {kind.kind} {name}", timeout_s=30)


def image_of(workload: dict[str, Any]) -> str:
    return str(workload["spec"]["template"]["spec"]["containers"][0]["image"])


ELECTION_FLAGS = [
    "-enable-leader-election",
    f"-leader-election-namespace={NAMESPACE}",
    "--leader-election-lease-duration=3s",
    "--leader-election-renew-deadline=2s",
    "--leader-election-retry-period=500ms",
]


def operator_command(world: World, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "canarist",
        "operator",
        f"-kubeconfig={world.kubeconfig}",
        f"-metrics-server={world.settings.metrics_server}",
        f"-event-webhook={world.settings.event_webhook}",
        "--min-analysis-interval=1s",
        "-port=0",
        "-log-level=info",
        *extra,
    ]


@contextlib.asynccontextmanager
async def operator_subprocess(world: World, *extra: str, log: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(operator_command(world, *extra), stdout=out, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
