"""The sandbox's operator as its cluster shows it: the `flagger` Deployment of istio-system and its one Pod,
which follows the operator process when the sandbox restarts it (docs/sandbox.md, "The operator's pod").

One real sandbox (control plane, Envoy, Prometheus, the operator as a subprocess), read with the real
kubectl; the restart is `Sandbox.restart_operator` (a new process: the same Pod, restartCount 1, the ended
run in lastState, the log going on).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

from canarist.sandbox.demo import POD, DemoOptions, Sandbox, missing_prerequisites

NS = "istio-system"


def _kubectl(kubeconfig: Path, *args: str) -> str:
    done = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "-n", NS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def _starts(log: str) -> int:
    messages = [json.loads(line)["msg"] for line in log.splitlines() if line.strip()]
    return sum(1 for m in messages if m.startswith("Starting canarist version "))


async def test_the_operator_pod_counts_a_restart_and_keeps_its_log(tmp_path: Path) -> None:
    assert missing_prerequisites() == []
    sandbox = Sandbox(DemoOptions(workdir=tmp_path / "sandbox", live=False))
    try:
        await sandbox.start()
        assert sandbox.client is not None
        assert sandbox.operator is not None
        kubeconfig = sandbox.kubeconfig
        [pod] = json.loads(
            await asyncio.to_thread(_kubectl, kubeconfig, "get", "pods", "-l", "app=flagger", "-o", "json")
        )["items"]
        name = pod["metadata"]["name"]
        [status] = pod["status"]["containerStatuses"]
        assert (status["restartCount"], status["ready"]) == (0, True), status
        assert "lastState" not in status, status
        first_pid = sandbox.operator.pid
        log = await asyncio.to_thread(_kubectl, kubeconfig, "logs", "deployment/flagger")
        assert _starts(log) == 1, log[-2000:]

        await sandbox.restart_operator()
        assert sandbox.operator is not None
        assert sandbox.operator.pid != first_pid
        after: dict[str, Any] = await sandbox.client.get(POD, name, namespace=NS)
        [status] = after["status"]["containerStatuses"]
        assert (status["restartCount"], status["ready"]) == (1, True), status
        ended = status["lastState"]["terminated"]
        assert ended["startedAt"] <= ended["finishedAt"] <= status["state"]["running"]["startedAt"], status
        assert after["status"]["startTime"] == pod["status"]["startTime"]
        listed = await asyncio.to_thread(_kubectl, kubeconfig, "get", "pods", "-l", "app=flagger")
        [row] = [line.split() for line in listed.splitlines()[1:]]
        assert row[:4] == [name, "1/1", "Running", "1"], listed
        deployment = json.loads(
            await asyncio.to_thread(_kubectl, kubeconfig, "get", "deployment", "flagger", "-o", "json")
        )
        assert deployment["status"].get("availableReplicas") == 1, deployment["status"]
        # The log goes on: both runs' start-up lines, in `kubectl logs` of the Deployment.
        log = await asyncio.to_thread(_kubectl, kubeconfig, "logs", "deployment/flagger")
        assert _starts(log) == 2, log[-2000:]
    finally:
        await sandbox.stop()
