"""`canarist get canaries` against the local control plane: the kubectl-like table and the plain watch."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canarist.api.crds import crds
from canarist.cli.cmd_get import canary_table
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.localcluster import LocalClusterThread
from canarist.sandbox.liveview import CanarySnapshot, LiveView, render_panel, snapshot
from tests.fixtures.canaries import canary_manifest

# The walkthrough's canary without an autoscaler, deadline, gateways or webhooks.
CANARY: dict[str, Any] = canary_manifest(
    progress_deadline_s=None, autoscaler=None, service={"port": 9898}, webhooks=None
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[LocalClusterThread, Path]]:
    thread = LocalClusterThread(readiness_delay=0.05).start()
    try:
        yield thread, thread.write_kubeconfig(tmp_path / "kubeconfig", namespace="test")
    finally:
        thread.stop()


async def _setup(kubeconfig: Path) -> KubeClient:
    client = KubeClient.from_kubeconfig(kubeconfig)
    for crd in crds():
        await client.create(crd, kind=kinds.CUSTOM_RESOURCE_DEFINITION)
    await client.ensure(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "test"}}, kind=kinds.NAMESPACE
    )
    await client.create(CANARY, kind=kinds.CANARY)
    await _status(client, "Progressing", 15, 1)
    return client


async def _status(client: KubeClient, phase: str, weight: int, failed: int) -> None:
    canary = await client.get(kinds.CANARY, "podinfo", namespace="test")
    canary["status"] = {
        "phase": phase,
        "canaryWeight": weight,
        "failedChecks": failed,
        "iterations": 0,
        "lastTransitionTime": "2019-01-16T14:05:07Z",
    }
    await client.replace_status(canary, kind=kinds.CANARY)


def _canarist(*args: str) -> list[str]:
    return [sys.executable, "-m", "canarist", *args]


async def test_table_like_kubectl(cluster: tuple[LocalClusterThread, Path]) -> None:
    _, kubeconfig = cluster
    client = await _setup(kubeconfig)
    await client.close()
    done = await asyncio.to_thread(
        subprocess.run,
        _canarist("get", "canaries", "--kubeconfig", str(kubeconfig), "-A"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert lines[1].split() == ["test", "podinfo", "Progressing", "15", "2019-01-16T14:05:07Z"]

    done = await asyncio.to_thread(
        subprocess.run,
        _canarist("get", "canaries", "--kubeconfig", str(kubeconfig), "-n", "other"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "No resources found in other namespace." in done.stderr


async def test_watch_prints_plain_lines_on_change(cluster: tuple[LocalClusterThread, Path]) -> None:
    _, kubeconfig = cluster
    client = await _setup(kubeconfig)
    process = await asyncio.create_subprocess_exec(
        *_canarist("get", "canaries", "--kubeconfig", str(kubeconfig), "--watch"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        assert b"test/podinfo phase=Progressing weight=15%/50% failed=1/10" in first
        await _status(client, "Progressing", 20, 1)
        second = await asyncio.wait_for(process.stdout.readline(), 30)
        assert b"weight=20%/50%" in second
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
        await client.close()
    assert process.returncode == 0


def test_snapshot_panel_and_table() -> None:
    canary = {**CANARY, "status": {"phase": "Progressing", "canaryWeight": 25, "failedChecks": 2}}
    snap = snapshot(
        canary,
        ["Advance podinfo.test canary weight 25"],
        {"request-success-rate": 98.5, "request-duration": 0.12},
    )
    assert isinstance(snap, CanarySnapshot)
    [rate, duration] = snap.metrics
    assert rate.ok is False
    assert duration.value == pytest.approx(120.0)
    assert duration.ok is True
    assert duration.describe() == "request-duration 120.00ms (<= 500ms)"
    panel = render_panel(snap)
    view = LiveView(live=True)
    with view.console.capture() as captured:
        view.console.print(panel)
    text = captured.get()
    assert "25% / 50%" in text
    assert "2 / 10" in text
    assert "Advance podinfo.test canary weight 25" in text
    assert canary_table([canary], all_namespaces=False).splitlines()[1].split() == [
        "podinfo",
        "Progressing",
        "25",
    ]


def test_demo_without_prerequisites_says_how_to_install(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # neither prometheus nor hey on PATH
    done = subprocess.run(_canarist("demo"), capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "apt-get install -y --no-install-recommends prometheus" in done.stderr
    assert "apt-get install -y --no-install-recommends hey" in done.stderr
