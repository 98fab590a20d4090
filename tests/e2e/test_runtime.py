"""The operator as a platform team runs it: two replicas with leader election, a leader that dies, a
graceful SIGTERM, and the `/metrics` a dashboard reads."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import NotFound
from canarist.operator.runtime import LEASE_NAME, Operator
from tests.e2e.conftest import World
from tests.e2e.harness import (
    ELECTION_FLAGS,
    NAMESPACE,
    apply,
    event_messages,
    event_seen,
    fast_seed,
    load_example,
    operator_subprocess,
    phase_is,
    reaches,
    set_image,
    wait_for,
)


async def lease_holder(client: KubeClient) -> str:
    try:
        lease = await client.get(kinds.LEASE, LEASE_NAME, namespace=NAMESPACE)
    except NotFound:
        return ""
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def test_a_standby_takes_over_from_a_dead_leader_and_finishes_the_run(
    world: World, tmp_path: Path
) -> None:
    await world.apply_podinfo(fast_seed(stepWeight=10))
    async with operator_subprocess(world, *ELECTION_FLAGS, log=tmp_path / "leader.log") as leader:
        first = await wait_for(lambda: lease_holder(world.client), what="a leader", timeout_s=30)
        await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)

        standby_settings = world.settings.__class__(
            **{
                **world.settings.__dict__,
                "enable_leader_election": True,
                "leader_election_namespace": NAMESPACE,
                "leader_election_lease_duration_s": 3.0,
                "leader_election_renew_deadline_s": 2.0,
                "leader_election_retry_period_s": 0.5,
            }
        )
        client = KubeClient.from_kubeconfig(world.kubeconfig)
        lease_reads: list[float] = []  # when the standby asked for the Lease (its election attempts)
        client.add_request_hook(lambda record: _note_lease_read(record, lease_reads))
        standby = Operator(standby_settings, client, http_host="127.0.0.1")
        stop = asyncio.Event()
        task = asyncio.create_task(standby.run(stop))
        try:
            await wait_for(lambda: _synced(standby), what="standby caches", timeout_s=30)
            # Not a leader in the subprocess's ticks (we cannot count them) but in the election's own terms:
            # a standby that took the Lease it saw first as expired after a lease duration, or ignored the
            # holder, would lead after attempts spanning more than a lease duration (3 s); wait for those.
            await wait_for(
                lambda: _attempts_span(lease_reads, standby_settings.leader_election_lease_duration_s + 1),
                what="standby election attempts over more than a lease duration",
                timeout_s=30,
            )
            assert not standby.leading, "two leaders at once"
            assert await lease_holder(world.client) == first

            await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
            await event_seen(world, "Advance podinfo.test canary weight 10")
            leader.send_signal(signal.SIGKILL)  # dies without releasing the Lease
            killed_at = time.monotonic()
            leader.wait(10)
            await wait_for(lambda: _leading(standby), what="the standby to lead", timeout_s=15)
            handover_s = time.monotonic() - killed_at
            assert await lease_holder(world.client) == standby.identity

            await reaches(world, "Succeeded")
            advances = [
                m for m in event_messages(world.events) if m.startswith("Advance podinfo.test canary")
            ]
            assert advances == [f"Advance podinfo.test canary weight {w}" for w in range(10, 60, 10)]
            print(f"leader handover took {handover_s:.1f}s")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await client.close()
    # A standby that stops cleanly releases the Lease so the next replica does not wait for it to expire.
    assert await lease_holder(world.client) == ""


def _note_lease_read(record: Any, reads: list[float]) -> None:
    if getattr(record, "resource", "") == "leases" and getattr(record, "verb", "") == "get":
        reads.append(time.monotonic())


async def _attempts_span(reads: list[float], seconds: float) -> bool:
    return len(reads) >= 2 and reads[-1] - reads[0] >= seconds


async def _synced(operator: Operator) -> bool:
    return operator.controller.synced


async def _leading(operator: Operator) -> bool:
    return operator.leading


async def test_sigterm_stops_the_operator_cleanly_and_releases_the_lease(
    world: World, tmp_path: Path
) -> None:
    log = tmp_path / "operator.log"
    await apply(world.client, load_example("namespace.yaml"))
    async with operator_subprocess(world, *ELECTION_FLAGS, log=log) as process:
        try:
            await wait_for(lambda: lease_holder(world.client), what="a leader", timeout_s=30)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{log.read_text()}") from None
        process.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, process.wait, 20)
    output = log.read_text()
    assert code == 0, output
    assert await lease_holder(world.client) == "", output
    assert "leader election lost" not in output
    assert "Traceback" not in output


async def test_metrics_report_the_run(world: World) -> None:
    process = await world.start_operator()
    await world.apply_podinfo(fast_seed(stepWeight=25))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await event_seen(world, "Advance podinfo.test canary weight 25")
    assert process.operator is not None
    url = f"http://127.0.0.1:{process.operator.http.port}/metrics"
    # flagger_canary_total is a periodic count of the Canaries (every 2 s), not tied to a tick: wait for it
    total = 'flagger_canary_total{namespace="test"}'
    during: dict[str, float] = {}

    async def counted() -> bool:
        during.update(await _scrape(url))
        return during.get(total) == 1

    await wait_for(counted, what="flagger_canary_total to count the canary", timeout_s=30)
    assert during['flagger_canary_status{name="podinfo",namespace="test"}'] == 0
    assert during['flagger_canary_weight{namespace="test",workload="podinfo"}'] >= 25

    await reaches(world, "Succeeded")
    after = await _scrape(url)
    labels = 'analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="test"'
    assert after[f"flagger_canary_successes_total{{{labels}}}"] == 1
    assert after['flagger_canary_status{name="podinfo",namespace="test"}'] == 1
    assert after['flagger_canary_weight{namespace="test",workload="podinfo"}'] == 0
    assert after['flagger_canary_weight{namespace="test",workload="podinfo-primary"}'] == 100
    assert (
        0
        < after[
            'flagger_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="test"}'
        ]
        <= 100
    )
    assert after['flagger_canary_duration_seconds_count{name="podinfo",namespace="test"}'] >= 3
    assert any(key.startswith("canarist_api_requests_total{") for key in after)
    assert after["canarist_leader"] == 1


async def _scrape(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        text = await response.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
    return values


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    # The subprocess operators talk to 127.0.0.1 only.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    return os.environ
