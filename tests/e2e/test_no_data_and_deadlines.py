"""No data, provider errors and the progress deadline end to end: the real operator, the local control
plane, a real Prometheus (one of the test's own, so that it can be stopped and started again) and real
webhooks (the loadtester's gate, Slack-shaped alerts to a capture server).

* Prometheus stopped mid-run: the step holds, the errors are counted apart from failed checks (their own
  warnings, no promotion), and the run goes on when Prometheus is back; or, still down, the run ends with
  ProviderErrors past its budget.
* A ``noData: hold`` metric (with a ``minSamples`` guard) and no traffic: the step holds, then the run ends
  at its progress deadline with NoData.
* A closed confirm-promotion gate: the run ends at its deadline with GateClosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    PROMOTION_TIMEOUT_S,
    canary_status,
    delivered,
    event_messages,
    fast_seed,
    initialize,
    load_example,
    set_image,
    wait_for,
)
from tests.e2e.hooks_helpers import (
    alert_provider,
    apply_all,
    posts,
    running_loadtester,
    secret,
    wait_phase,
)
from tests.fixtures.capture import CaptureFactory, CaptureServer
from tests.fixtures.prometheus import PrometheusServer, start_prometheus

KEY = "podinfo.test"
RATE = "request-success-rate"
SUCCESS_RATE = {"name": RATE, "thresholdRange": {"min": 99}, "interval": "10s", "noData": "hold"}
DURATION = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "10s", "noData": "hold"}


# ---------------------------------------------------------------------------------------------- a Prometheus of our own


async def _ready(server: PrometheusServer) -> bool:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    return await asyncio.to_thread(probe)


async def scrapes_both_apps(world: World, server: PrometheusServer) -> None:
    for app in (world.primary_app, world.canary_app):
        await server.wait_for_value(
            f'up{{instance="{app.metrics_target}"}}', timeout_s=60, accept=lambda v: v == 1
        )


@contextlib.asynccontextmanager
async def own_prometheus(world: World, workdir: Path) -> AsyncIterator[PrometheusServer]:
    """A Prometheus for this test only, scraping both apps (stopped at the end)."""
    server = await asyncio.to_thread(start_prometheus, workdir=workdir)
    try:
        for app in (world.primary_app, world.canary_app):
            server.add_target(app.metrics_target)
        await scrapes_both_apps(world, server)
        yield server
    finally:
        server.stop()


def _relaunch(server: PrometheusServer) -> None:
    with server.log_file.open("ab") as log:
        server.process = subprocess.Popen(
            server.process.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )


async def start_again(world: World, server: PrometheusServer) -> None:
    """Start the stopped Prometheus again: same address, same data, same targets."""
    await asyncio.to_thread(_relaunch, server)

    async def ready() -> bool:
        return await _ready(server)

    await wait_for(ready, what="Prometheus ready again", timeout_s=60, poll_s=0.2)
    await scrapes_both_apps(world, server)


# ---------------------------------------------------------------------------------------------- helpers


def provider_errors(world: World) -> list[str]:
    prefix = f"Halt {KEY} advancement metric {RATE} provider error ("
    return [m for m in event_messages(world.events) if m.startswith(prefix)]


async def weight_at_least(world: World, weight: int) -> int | None:
    status = await canary_status(world.client)
    value = int(status.get("canaryWeight") or 0)
    return value if status.get("phase") == "Progressing" and value >= weight else None


async def errors_seen(world: World, count: int) -> list[str] | None:
    seen = provider_errors(world)
    return seen if len(seen) >= count else None


def ended(status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in status.get("conditions") or [] if c["type"] == "Ended")


def alerts_to(sink: CaptureServer) -> list[tuple[str, dict[str, str]]]:
    """(text, fields by title) of each Slack-shaped alert the sink received."""
    out = []
    for body in posts(sink):
        attachment = body["attachments"][0]
        out.append((attachment["text"], {f["title"]: f["value"] for f in attachment["fields"]}))
    return out


async def with_alerts(
    world: World, capture_server: CaptureFactory
) -> tuple[CaptureServer, list[dict[str, Any]]]:
    """A Slack-shaped AlertProvider that receives every alert of the canary."""
    sink = await capture_server(statuses=[200])
    await apply_all(
        world,
        load_example("namespace.yaml"),
        secret("on-call-url", {"address": sink.url}),
        alert_provider("on-call", "on-call-url"),
    )
    return sink, [{"name": "on-call", "severity": "info", "providerRef": {"name": "on-call"}}]


def seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


# ---------------------------------------------------------------------------------------------- Prometheus stopped


async def test_prometheus_stopped_mid_run_holds_the_step_apart_from_failed_checks_and_the_run_resumes(
    world: World, tmp_path: Path
) -> None:
    async with own_prometheus(world, tmp_path / "prometheus") as prometheus:
        canary = fast_seed(
            stepWeight=10,
            maxWeight=50,
            threshold=2,
            maxProviderErrors=1000,
            metrics=[SUCCESS_RATE, DURATION],
            metrics_server=prometheus.url,
            progress_deadline_s=600,
        )
        await initialize(world, canary)
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_for(lambda: weight_at_least(world, 20), what="weight 20", timeout_s=PROMOTION_TIMEOUT_S)

        prometheus.stop()
        await wait_for(lambda: errors_seen(world, 3), what="three provider errors", timeout_s=60)
        status = await canary_status(world.client)
        held_at = status["canaryWeight"]
        assert (status["phase"], status["failedChecks"]) == ("Progressing", 0)
        assert status["wait"]["reason"] == "ProviderErrors"
        assert status["wait"]["providerErrors"] >= 3
        # the errors' own words: which metric, how many in a row, what the provider said
        first = provider_errors(world)[0]
        assert first.startswith(
            f"Halt {KEY} advancement metric {RATE} provider error (1 in a row, 1000 tolerated): "
        )
        assert "Prometheus query failed" in first

        await start_again(world, prometheus)
        await wait_phase(world, "Succeeded", timeout_s=PROMOTION_TIMEOUT_S)
        await delivered(lambda: event_messages(world.events), f"Promotion completed! Scaling down {KEY}")

    messages = event_messages(world.events)
    first_error = messages.index(provider_errors(world)[0])
    last_error = messages.index(provider_errors(world)[-1])
    # while Prometheus was down the step did not advance; once it answered again, the run went on
    assert not [m for m in messages[first_error:last_error] if m.startswith(f"Advance {KEY} canary weight")]
    assert f"Advance {KEY} canary weight {held_at + 10}" in messages[last_error:]
    status = await canary_status(world.client)
    assert status["failedChecks"] == 0  # an outage is not a bad release
    assert "wait" not in status
    assert ended(status)["reason"] == "Succeeded"
    rates = [e for e in status["ledger"]["entries"] if e["check"] == RATE]
    assert "error" in [e["result"] for e in rates]


async def test_prometheus_that_stays_down_ends_the_run_with_provider_errors_and_never_promotes(
    world: World, tmp_path: Path, capture_server: CaptureFactory
) -> None:
    sink, alerts = await with_alerts(world, capture_server)
    async with own_prometheus(world, tmp_path / "prometheus") as prometheus:
        canary = fast_seed(
            stepWeight=10,
            maxWeight=50,
            threshold=2,
            maxProviderErrors=2,
            metrics=[SUCCESS_RATE, DURATION],
            metrics_server=prometheus.url,
            progress_deadline_s=600,
            alerts=alerts,
        )
        await initialize(world, canary)
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_for(lambda: weight_at_least(world, 20), what="weight 20", timeout_s=PROMOTION_TIMEOUT_S)
        prometheus.stop()
        await wait_phase(world, "Failed", timeout_s=PROMOTION_TIMEOUT_S)
        await delivered(lambda: event_messages(world.events), f"Canary failed! Scaling down {KEY}")

    messages = event_messages(world.events)
    errors = provider_errors(world)
    assert [e.split(":", 1)[0] for e in errors] == [
        f"Halt {KEY} advancement metric {RATE} provider error (1 in a row, 2 tolerated)",
        f"Halt {KEY} advancement metric {RATE} provider error (2 in a row, 2 tolerated)",
    ]
    [ending] = [m for m in messages if m.startswith(f"Rolling back {KEY} ProviderErrors: ")]
    assert ending.startswith(
        f"Rolling back {KEY} ProviderErrors: 3 provider errors in a row for metric {RATE} (2 tolerated): "
        "Prometheus query failed"
    )
    assert f"Copying podinfo.{NAMESPACE} template spec to podinfo-primary.{NAMESPACE}" not in messages
    assert not [m for m in messages if "failed checks threshold reached" in m]
    status = await canary_status(world.client)
    assert status["failedChecks"] == 0
    assert (ended(status)["status"], ended(status)["reason"]) == ("True", "ProviderErrors")
    assert status["ledger"]["end"]["cause"] == "ProviderErrors"

    async def alerted() -> list[tuple[str, dict[str, str]]] | None:
        found = [a for a in alerts_to(sink) if a[0].startswith("ProviderErrors: ")]
        return found or None

    [(text, fields)] = await wait_for(alerted, what="the ProviderErrors alert", timeout_s=30)
    assert fields["Reason"] == "ProviderErrors"
    assert fields["Failed check"].startswith(f"{RATE}: error: Prometheus query failed")
    assert text == ending.removeprefix(f"Rolling back {KEY} ")


# ---------------------------------------------------------------------------------------------- no data


async def test_a_hold_metric_without_traffic_holds_then_ends_the_run_with_no_data(
    world: World, capture_server: CaptureFactory
) -> None:
    sink, alerts = await with_alerts(world, capture_server)
    await world.traffic.stop()  # nobody uses the service: the canary gets no requests
    guarded = {
        **SUCCESS_RATE,
        "minSamples": {
            "query": 'sum(increase(istio_requests_total{destination_workload="{{ target }}"}[{{ interval }}]))',
            "count": 5,
        },
    }
    canary = fast_seed(stepWeight=10, maxWeight=50, metrics=[guarded], progress_deadline_s=15, alerts=alerts)
    await initialize(world, canary)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_phase(world, "Failed", timeout_s=PROMOTION_TIMEOUT_S)
    await delivered(lambda: event_messages(world.events), f"Canary failed! Scaling down {KEY}")

    messages = event_messages(world.events)
    holding = (
        f"Halt {KEY} advancement holding for data of metric {RATE} (noData: hold), progress deadline in "
    )
    assert [m for m in messages if m.startswith(holding)]
    expired = f"NoData: no data for metric {RATE} after 15s (noData: hold)"
    assert messages[-2:] == [
        f"Rolling back {KEY} progress deadline exceeded {expired}",
        f"Canary failed! Scaling down {KEY}",
    ]
    status = await canary_status(world.client)
    assert status["failedChecks"] == 0  # held, never failed
    assert ended(status)["reason"] == "NoData"
    end = status["ledger"]["end"]
    assert end["cause"] == "NoData"
    assert seconds_between(end["since"], end["at"]) >= 15
    # the guard's evidence: too few samples, from its own query
    assert end["evidence"]["result"] == "noData"
    assert end["evidence"]["message"].startswith(f"Halt advancement too few samples for metric {RATE}: ")
    assert "istio_requests_total" in end["evidence"]["query"]

    async def alerted() -> list[tuple[str, dict[str, str]]] | None:
        found = [a for a in alerts_to(sink) if a[0] == f"Progress deadline exceeded {expired}"]
        return found or None

    [(_, fields)] = await wait_for(alerted, what="the NoData alert", timeout_s=30)
    assert (fields["Reason"], fields["Waiting since"]) == ("NoData", end["since"])


# ---------------------------------------------------------------------------------------------- a closed gate


async def test_a_closed_gate_ends_the_run_at_its_deadline_with_gate_closed(
    world: World, capture_server: CaptureFactory
) -> None:
    sink, alerts = await with_alerts(world, capture_server)
    async with running_loadtester() as tester:
        gate = {"name": "approval", "type": "confirm-promotion", "url": f"{tester.url}gate/check"}
        canary = fast_seed(
            stepWeight=25, maxWeight=50, webhooks=[gate], metrics=[], progress_deadline_s=10, alerts=alerts
        )
        await initialize(world, canary)
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_phase(world, "WaitingPromotion", timeout_s=PROMOTION_TIMEOUT_S)
        waiting = await canary_status(world.client)
        assert (waiting["wait"]["reason"], waiting["wait"]["check"]) == ("GateClosed", "approval")
        await wait_phase(world, "Failed", timeout_s=PROMOTION_TIMEOUT_S)
        await delivered(lambda: event_messages(world.events), f"Canary failed! Scaling down {KEY}")

    messages = event_messages(world.events)
    expired = "GateClosed: confirm-promotion gate approval still closed after 10s"
    assert f"Halt {KEY} advancement waiting for promotion approval approval" in messages
    assert messages[-2:] == [
        f"Rolling back {KEY} progress deadline exceeded {expired}",
        f"Canary failed! Scaling down {KEY}",
    ]
    assert f"Copying podinfo.{NAMESPACE} template spec to podinfo-primary.{NAMESPACE}" not in messages
    status = await canary_status(world.client)
    assert (ended(status)["reason"], status["ledger"]["end"]["cause"]) == ("GateClosed", "GateClosed")
    assert seconds_between(waiting["wait"]["since"], status["ledger"]["end"]["at"]) >= 10

    async def alerted() -> list[tuple[str, dict[str, str]]] | None:
        found = [a for a in alerts_to(sink) if a[0] == f"Progress deadline exceeded {expired}"]
        return found or None

    [(_, fields)] = await wait_for(alerted, what="the GateClosed alert", timeout_s=30)
    assert fields["Reason"] == "GateClosed"
    assert fields["Failed check"].startswith("approval (confirm-promotion)")
