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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from canarist.api.crds import crds
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import NotFound
from canarist.operator.runtime import Operator
from canarist.operator.settings import OperatorSettings
from canarist.sandbox.demo_app import DemoApp

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "podinfo"
NAMESPACE = "test"


def load_example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return document


def seed_canary(**analysis_overrides: Any) -> dict[str, Any]:
    """The walkthrough's Canary without webhooks (the webhook suite adds them), with overrides."""
    canary = load_example("canary.yaml")
    analysis = canary["spec"]["analysis"]
    analysis.pop("webhooks", None)
    analysis.update(analysis_overrides)
    return canary


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
            done, _ = await asyncio.wait({self._task}, timeout=30)
            if not done:
                stacks = "\n".join(
                    f"{task.get_name()}: {task.get_stack(limit=3)}"
                    for task in asyncio.all_tasks()
                    if not task.done()
                )
                self._task.cancel()
                raise AssertionError(f"the operator did not stop within 30 s; pending tasks:\n{stacks}")
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
