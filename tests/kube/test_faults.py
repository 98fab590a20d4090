"""Faults against the local control plane: transient errors on writes are retried (only where that is
safe), the write fence refuses writes before they are sent, error bodies are bounded, `wait_for_crds` tells
a missing CRD from an unavailable server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from canarist.kube import (
    ApiError,
    ApiUnavailable,
    CrdsMissing,
    EventRecorder,
    Fenced,
    KubeClient,
    LeaderElection,
    RequestLog,
    RetryPolicy,
    TransportError,
    wait_for_crds,
)
from canarist.kube import resources as r
from canarist.kube.errors import MAX_ERROR_BODY

from ._net import ClusterControl
from .conftest import canary, configmap

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=0.05, budget=1.0)
FLAGGER_CRDS = ["canaries.flagger.app", "metrictemplates.flagger.app", "alertproviders.flagger.app"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- retries of writes


@pytest.mark.parametrize("code", [503, 500, 429])
async def test_status_writes_recover_from_transient_errors(
    kube: KubeClient, control: ClusterControl, ns: str, crds: None, request_log: RequestLog, code: int
) -> None:
    await kube.create(canary("c", ns))
    times = 1 if code == 429 else 2  # a 429 carries Retry-After: 1, which is honoured
    await control.fail("update", code, times=times)
    written = await kube.update_status(
        r.CANARY, "c", ns, lambda o: o.setdefault("status", {}).update(iterations=3)
    )
    assert written["status"]["iterations"] == 3
    assert request_log.counts[("update", "canaries.flagger.app/status", code)] == times
    assert request_log.counts[("update", "canaries.flagger.app/status", 200)] == 1
    # A transient error does not count as a conflict: the object was read once.
    assert request_log.counts[("get", "canaries.flagger.app", 200)] == 1

    await control.fail("patch", code, times=times)
    patched = await kube.patch_status(r.CANARY, "c", {"status": {"canaryWeight": 20}}, namespace=ns)
    assert patched["status"]["canaryWeight"] == 20
    assert (await kube.get(r.CANARY, "c", namespace=ns))["status"]["canaryWeight"] == 20


async def test_a_status_write_gives_up_after_its_attempts_with_the_typed_error(
    kube: KubeClient, control: ClusterControl, ns: str, crds: None, request_log: RequestLog
) -> None:
    obj = await kube.create(canary("c", ns))
    obj["status"] = {"phase": "Progressing"}
    await control.fail("update", 503, times=10)
    with pytest.raises(ApiError) as info:
        await kube.replace_status(obj, retry=FAST_RETRY)
    assert info.value.code == 503
    assert any("gave up after 4 attempts" in note for note in info.value.__notes__)
    assert request_log.counts[("update", "canaries.flagger.app/status", 503)] == 4
    await control.clear_faults()
    assert "status" not in await kube.get(r.CANARY, "c", namespace=ns)


async def test_a_create_is_retried_only_when_the_error_proves_it_was_not_applied(
    kube: KubeClient, control: ClusterControl, ns: str, request_log: RequestLog
) -> None:
    # A 500 may come after the object was stored: no blind retry (it could only answer AlreadyExists).
    await control.fail("create", 500)
    with pytest.raises(ApiError) as info:
        await kube.create(configmap("once", ns))
    assert info.value.code == 500
    assert request_log.counts[("create", "configmaps", 500)] == 1
    # A 429 is a refusal before any work: retried, after the server's Retry-After.
    await control.fail("create", 429)
    await kube.create(configmap("twice", ns))
    assert request_log.counts[("create", "configmaps", 429)] == 1
    assert request_log.counts[("create", "configmaps", 201)] == 1


async def test_a_refused_connection_is_retried_then_raised() -> None:
    log = RequestLog()
    client = KubeClient.from_url(f"http://127.0.0.1:{_closed_port()}", on_request=log)
    client.retry = FAST_RETRY
    try:
        with pytest.raises(TransportError) as info:
            await client.create(configmap("x", "default"))
        assert info.value.sent is False
        assert log.counts[("create", "configmaps", None)] == 4
        # Reads are not retried by the client: their callers loop.
        with pytest.raises(TransportError):
            await client.get(r.CONFIG_MAP, "x", namespace="default")
        assert log.counts[("get", "configmaps", None)] == 1
    finally:
        await client.close()


# ---------------------------------------------------------------- bounded error bodies


@pytest.fixture
async def noisy_server() -> AsyncIterator[str]:
    """A real HTTP server on loopback that answers every request with a 100 kB HTML error page."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>" + "x" * 100_000 + "</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_error_bodies_are_bounded(noisy_server: str) -> None:
    client = KubeClient.from_url(noisy_server)
    try:
        with pytest.raises(ApiError) as info:
            await client.get(r.CONFIG_MAP, "x", namespace="default")
    finally:
        await client.close()
    assert info.value.code == 502
    assert len(info.value.message) < MAX_ERROR_BODY + 100
    assert len(str(info.value)) < MAX_ERROR_BODY + 100
    assert info.value.message.endswith("more characters]")


async def test_a_long_server_message_is_bounded(kube: KubeClient, ns: str) -> None:
    huge = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a" * 5000, "namespace": ns}}
    with pytest.raises(ApiError) as info:
        await kube.create(huge)
    assert info.value.code == 422
    assert len(str(info.value)) < MAX_ERROR_BODY + 100


# ---------------------------------------------------------------- events through faults


async def test_an_event_is_recorded_through_transient_faults(
    kube: KubeClient, control: ClusterControl, ns: str, crds: None, request_log: RequestLog
) -> None:
    target = await kube.create(canary("podinfo", ns))
    recorder = EventRecorder(kube, retry=FAST_RETRY)
    await control.fail("create", 500, times=2)
    first = await recorder.record(target, "Warning", "Synced", "failing")
    assert first is not None
    assert request_log.counts[("create", "events", 500)] == 2
    await control.fail("patch", 503)
    again = await recorder.record(target, "Warning", "Synced", "failing")
    assert again is not None
    assert again["count"] == 2
    events = (await kube.list(r.EVENT, namespace=ns)).items
    assert [(e["message"], e["count"]) for e in events] == [("failing", 2)]
    assert recorder.failures == 0


async def test_an_event_recorder_gives_up_with_one_warning(
    kube: KubeClient, control: ClusterControl, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = EventRecorder(kube, retry=FAST_RETRY)
    cm = await kube.create(configmap("x", ns))
    await control.fail("create", 503, times=10)
    with caplog.at_level(logging.WARNING, logger="canarist.kube.events"):
        assert await recorder.record(cm, "Normal", "Synced", "lost") is None
    assert recorder.failures == 1
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "gave up after 4 attempts" in warnings[0].getMessage()
    await control.clear_faults()
    assert (await kube.list(r.EVENT, namespace=ns)).items == []


# ---------------------------------------------------------------- the write fence


async def test_the_fence_refuses_writes_but_not_reads_or_lease_writes(
    kube: KubeClient, ns: str, crds: None, request_log: RequestLog
) -> None:
    cm = await kube.create(configmap("guarded", ns, {"v": "1"}))
    can = await kube.create(canary("c", ns))
    allowed = False
    kube.set_write_fence(lambda: allowed)
    request_log.clear()

    changed = {**cm, "data": {"v": "2"}}
    with pytest.raises(Fenced, match="not the leader"):
        await kube.replace(changed)
    with pytest.raises(Fenced):
        await kube.patch(r.CONFIG_MAP, "guarded", {"data": {"v": "3"}}, namespace=ns)
    with pytest.raises(Fenced):
        await kube.update_status(
            r.CANARY, "c", ns, lambda o: o.setdefault("status", {}).update(phase="Failed")
        )
    with pytest.raises(Fenced):
        await kube.patch_status(r.CANARY, "c", {"status": {"phase": "Failed"}}, namespace=ns)
    with pytest.raises(Fenced):
        await kube.create(configmap("new", ns))
    with pytest.raises(Fenced):
        await kube.delete(r.CONFIG_MAP, "guarded", namespace=ns)
    assert await EventRecorder(kube).record(can, "Normal", "Synced", "fenced") is None
    # Nothing was sent: only the reads reached the server.
    assert request_log.total() == request_log.total("get")

    # Reads work, and show that nothing changed.
    assert (await kube.get(r.CONFIG_MAP, "guarded", namespace=ns))["data"] == {"v": "1"}
    assert "status" not in await kube.get(r.CANARY, "c", namespace=ns)
    assert await kube.get_or_none(r.CONFIG_MAP, "new", namespace=ns) is None
    assert (await kube.list(r.EVENT, namespace=ns)).items == []

    # The election's own Lease writes pass the fence.
    election = LeaderElection(kube, ns, identity="me", lease_duration=5, renew_deadline=2, retry_period=1)
    assert await election.try_acquire_or_renew()
    assert await election.try_acquire_or_renew()
    assert await election.release()

    allowed = True
    assert (await kube.replace(changed))["data"] == {"v": "2"}
    kube.set_write_fence(None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_holds_lease_follows_the_monotonic_clock(kube: KubeClient, ns: str) -> None:
    clock = FakeClock()
    election = LeaderElection(
        kube, ns, identity="me", lease_duration=10, renew_deadline=5, retry_period=1, monotonic=clock
    )
    assert election.fence_margin == 1.0  # max(1 s, 10 % of 10 s)
    assert not election.holds_lease()
    assert await election.try_acquire_or_renew()
    kube.set_write_fence(election.holds_lease)
    assert election.holds_lease()
    await kube.create(configmap("w", ns))

    clock.now += 8.9
    assert election.holds_lease()
    assert not election.holds_lease(margin_s=1.2)
    clock.now += 0.2  # 9.1 s since the renewal: within the margin of the lease's end
    assert not election.holds_lease()
    assert not election.lease_lapsed()
    with pytest.raises(Fenced):
        await kube.patch(r.CONFIG_MAP, "w", {"data": {"k": "late"}}, namespace=ns)
    assert (await kube.get(r.CONFIG_MAP, "w", namespace=ns))["data"] == {"k": "v"}

    assert await election.try_acquire_or_renew()  # a renewal in time restores it
    assert election.holds_lease()
    await kube.patch(r.CONFIG_MAP, "w", {"data": {"k": "renewed"}}, namespace=ns)
    clock.now += 60  # a stall: SIGSTOP, a long pause
    assert not election.holds_lease()
    assert election.lease_lapsed()


async def test_a_leader_that_wakes_after_its_lease_lapsed_steps_down_without_renewing(
    kube: KubeClient, ns: str, request_log: RequestLog
) -> None:
    offset = 0.0
    election = LeaderElection(
        kube,
        ns,
        identity="sleeper",
        lease_duration=1.5,
        renew_deadline=1.0,
        retry_period=0.1,
        release_on_stop=False,
        monotonic=lambda: time.monotonic() + offset,
    )
    stopped: list[bool] = []
    leading = asyncio.Event()

    async def work() -> None:
        leading.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(election.run(work, lambda: stopped.append(election.holds_lease())))
    try:
        async with asyncio.timeout(10):
            await leading.wait()
        assert election.holds_lease()
        offset = 5.0  # as if the process had been stopped for 5 s
        assert not election.holds_lease()  # at once, before any renewal
        async with asyncio.timeout(10):
            await task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert election.lost
    assert stopped == [False]
    lease = await kube.get(r.LEASE, "flagger-leader-election", namespace=ns)
    assert lease["spec"]["holderIdentity"] == "sleeper"  # lost, not released
    assert lease["spec"]["renewTime"] == election.observed_renew_time  # and not renewed after the wake-up


# ---------------------------------------------------------------- wait_for_crds


async def test_wait_for_crds_rides_out_transient_errors(
    kube: KubeClient, control: ClusterControl, crds: None, request_log: RequestLog
) -> None:
    request_log.clear()
    await control.fail("get", 503, times=3)
    await control.fail("get", 429)
    await wait_for_crds(kube, FLAGGER_CRDS, timeout_s=20, initial_delay=0.02)
    assert request_log.counts[("get", "customresourcedefinitions.apiextensions.k8s.io", 503)] == 3
    assert request_log.counts[("get", "customresourcedefinitions.apiextensions.k8s.io", 200)] == 3


async def test_wait_for_crds_names_the_missing_ones(kube: KubeClient, crds: None) -> None:
    with pytest.raises(CrdsMissing) as info:
        await wait_for_crds(kube, [*FLAGGER_CRDS, "nosuch.example.com", "other.example.com"], timeout_s=5)
    assert info.value.names == ("nosuch.example.com", "other.example.com")
    assert "install" in str(info.value)


async def test_wait_for_crds_on_an_unreachable_server_says_so(caplog: pytest.LogCaptureFixture) -> None:
    client = KubeClient.from_url(f"http://127.0.0.1:{_closed_port()}")
    try:
        with (
            caplog.at_level(logging.INFO, logger="canarist.kube.crds"),
            pytest.raises(ApiUnavailable) as info,
        ):
            await wait_for_crds(client, FLAGGER_CRDS, timeout_s=1.0, initial_delay=0.05)
    finally:
        await client.close()
    assert not isinstance(info.value, CrdsMissing)
    assert "unreachable" in str(info.value)
    assert "kubectl apply" not in str(info.value)
    assert isinstance(info.value.last_error, TransportError)
    assert any("waiting for the API server" in rec.getMessage() for rec in caplog.records)


async def test_wait_for_crds_on_a_server_that_keeps_failing(
    kube: KubeClient, control: ClusterControl, crds: None
) -> None:
    await control.faults(errors=[{"verb": "get", "code": 503, "rate": 1.0}])
    with pytest.raises(ApiUnavailable) as info:
        await wait_for_crds(kube, FLAGGER_CRDS, timeout_s=1.0, initial_delay=0.05)
    assert isinstance(info.value.last_error, ApiError)
    assert info.value.last_error.code == 503
