"""Helpers of the webhook and notification end-to-end tests (tests/e2e/test_webhooks.py,
tests/e2e/test_notifications.py): Canaries with webhooks, a real loadtester, waits and captured payloads.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from canarist.loadtester import LoadTester, LoadTesterConfig
from tests.e2e.conftest import World
from tests.e2e.harness import NAMESPACE, apply, fast_seed, phase_is, wait_for
from tests.fixtures.canaries import walkthrough_canary
from tests.fixtures.capture import CaptureServer

RUN_TIMEOUT_S = 60
SEED_CANARY_HOST = "http://podinfo-canary.test:9898"
SEED_LOADTESTER_URL = "http://flagger-loadtester.test/"
KEY = "podinfo.test"


def fast_canary(
    *, webhooks: list[dict[str, Any]] | None = None, metrics: bool = True, **analysis: Any
) -> dict[str, Any]:
    """The walkthrough's Canary with short intervals (analysis 3 s, metrics 10 s), the given webhooks, and
    optionally without metrics (so that a run's events are exactly the webhook sequence)."""
    return fast_seed(webhooks=webhooks, **({} if metrics else {"metrics": []}), **analysis)


def golden_canary(webhooks: list[dict[str, Any]], **analysis: Any) -> dict[str, Any]:
    """A spec comparable to inventory §2.13 (Flagger's TestWebhooks "canary" case: stepWeight 100,
    maxWeight 50, stepWeightPromotion 50), no metrics. canarist caps the last step at maxWeight where
    Flagger overshoots it (docs/engine.md), so maxWeight 100 gives Flagger's ladder: canary weight 100, then
    primary weight 50 and 100."""
    options: dict[str, Any] = {"stepWeight": 100, "maxWeight": 100, "stepWeightPromotion": 50, "threshold": 2}
    options.update(analysis)
    return fast_canary(webhooks=webhooks, metrics=False, **options)


def seed_webhooks_for(
    loadtester_url: str, canary_url: str, load_duration: str = "2s"
) -> list[dict[str, Any]]:
    """The walkthrough's two webhooks, pointed at a local loadtester and the canary demo app."""
    hooks: list[dict[str, Any]] = walkthrough_canary()["spec"]["analysis"]["webhooks"]
    for hook in hooks:
        assert hook["url"] == SEED_LOADTESTER_URL
        hook["url"] = loadtester_url
        cmd = hook["metadata"]["cmd"]
        assert SEED_CANARY_HOST in cmd
        cmd = cmd.replace(SEED_CANARY_HOST, canary_url.rstrip("/"))
        hook["metadata"]["cmd"] = cmd.replace("-z 1m", f"-z {load_duration}")
    return hooks


@asynccontextmanager
async def running_loadtester(**options: Any) -> AsyncIterator[LoadTester]:
    """A real loadtester on 127.0.0.1, a free port; stopped (tasks killed) on exit."""
    tester = LoadTester(LoadTesterConfig(port=0, host="127.0.0.1", **options))
    await tester.start()
    try:
        yield tester
    finally:
        await tester.stop()


async def post_json(url: str, payload: dict[str, Any]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(url, json=payload) as response,
    ):
        return response.status, await response.text()


async def wait_phase(world: World, *phases: str, timeout_s: float = RUN_TIMEOUT_S) -> str:
    phase: str = await wait_for(
        lambda: phase_is(world, *phases), what=" or ".join(phases), timeout_s=timeout_s, poll_s=0.1
    )
    return phase


def posts(sink: CaptureServer, path: str | None = None) -> list[Any]:
    """JSON bodies of the POSTs a capture server received (optionally only those to ``path``)."""
    return [r.json for r in sink.requests if r.method == "POST" and (path is None or r.path == path)]


def messages_of(sink: CaptureServer) -> list[str]:
    """Event messages delivered to an event-webhook sink, in order."""
    return [str(body["metadata"]["eventMessage"]) for body in posts(sink)]


def slack_texts(sink: CaptureServer) -> list[str]:
    """The alert texts of Slack-format notifications a capture server received, in order."""
    return [body["attachments"][0]["text"] for body in posts(sink)]


def without_readiness_waits(messages: list[str]) -> list[str]:
    """Drop the readiness retries, whose number depends on timing."""
    return [m for m in messages if " not ready: " not in m]


async def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = RUN_TIMEOUT_S) -> None:
    async def check() -> bool:
        return predicate()

    await wait_for(check, what=what, timeout_s=timeout_s, poll_s=0.1)


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def alert_provider(name: str, secret_name: str, channel: str = "on-call") -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"type": "slack", "channel": channel, "secretRef": {"name": secret_name}},
    }


async def apply_all(world: World, *objects: dict[str, Any]) -> None:
    for obj in objects:
        await apply(world.client, obj)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)
