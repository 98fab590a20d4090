"""`canarist status` against the local control plane: the Canary's status is written through the API by the
test (no operator), the command runs as a real subprocess and its exit codes are the contract for CI."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canarist.cli.cmd_status import Wanted
from canarist.podnames import pod_template_hash
from canarist.workloads.revision import revision_hash
from tests.cli.kube_helpers import (
    COMMAND_TIMEOUT_S,
    NAMESPACE,
    NEW_IMAGE,
    Cluster,
    canarist,
    deployment,
    spawn,
    start_cluster,
)
from tests.fixtures.localcluster import LocalClusterHandle


@pytest.fixture
async def cluster(local_cluster: LocalClusterHandle) -> AsyncIterator[Cluster]:
    world = await start_cluster(local_cluster)
    try:
        yield world
    finally:
        await world.client.close()


def progressing(revision: str, weight: int = 10, failed: int = 0) -> dict[str, Any]:
    return {
        "phase": "Progressing",
        "canaryWeight": weight,
        "failedChecks": failed,
        "iterations": 0,
        "lastAppliedSpec": revision,
        "lastTransitionTime": "2026-01-01T12:00:00Z",
    }


def ended(revision: str, phase: str) -> dict[str, Any]:
    evidence = {
        "at": "2026-01-01T12:02:00Z",
        "check": "request-success-rate",
        "kind": "metric",
        "weight": 10,
        "iteration": 0,
        "result": "value",
        "verdict": "fail",
        "value": 71.2,
        "unit": "%",
        "min": 99,
        "query": "sum(rate(istio_requests_total[1m]))",
        "provider": "prometheus http://prometheus.istio-system:9090",
    }
    end: dict[str, Any] = {
        "at": "2026-01-01T12:02:30Z",
        "phase": phase,
        "reason": "Failed checks threshold reached 10"
        if phase == "Failed"
        else "Canary analysis completed successfully, promotion finished.",
        "failedChecks": 10 if phase == "Failed" else 0,
        "threshold": 10,
    }
    if phase == "Failed":
        end["evidence"] = evidence
        end["cause"] = "FailedChecks"
    return {
        **progressing(revision, weight=0, failed=end["failedChecks"]),
        "phase": phase,
        "ledger": {
            "revision": revision,
            "startedAt": "2026-01-01T12:00:00Z",
            "entries": [evidence] if phase == "Failed" else [],
            "dropped": 0,
            "summary": [],
            "end": end,
        },
    }


class Waiter:
    """`canarist status --wait` running; `started` returns once it watches the Canary."""

    def __init__(self, cluster: Cluster, *extra: str) -> None:
        self.argv = (
            sys.executable, "-m", "canarist", "status", "podinfo", "-n", NAMESPACE,
            "--kubeconfig", str(cluster.kubeconfig), "--wait", *extra,
        )  # fmt: skip
        self.process: asyncio.subprocess.Process | None = None
        self.err_head = b""

    async def started(self) -> None:
        self.process = await spawn(*self.argv)
        assert self.process.stderr is not None
        self.err_head = await asyncio.wait_for(self.process.stderr.readline(), COMMAND_TIMEOUT_S)
        assert b"waiting for the run" in self.err_head, self.err_head

    async def result(self) -> tuple[int, str, str]:
        assert self.process is not None
        out, err = await asyncio.wait_for(self.process.communicate(), COMMAND_TIMEOUT_S)
        assert self.process.returncode is not None
        return self.process.returncode, out.decode(), (self.err_head + err).decode()


async def test_status_prints_phase_weight_and_headline(cluster: Cluster) -> None:
    revision = await cluster.revision()
    await cluster.write_status(progressing(revision, weight=20, failed=1))
    code, out, err = await canarist(
        "status", "podinfo", "-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig)
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "podinfo.test: Progressing at weight 20 (1 of 10 failed checks)"
    assert lines[-1] == f"  status   phase Progressing, weight 20, failed checks 1 of 10, revision {revision}"

    code, out, err = await canarist(
        "status", "podinfo", "-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig), "-o", "json"
    )
    assert code == 0, err
    document = json.loads(out)
    assert document == {
        "canary": "podinfo.test",
        "name": "podinfo",
        "namespace": NAMESPACE,
        "phase": "Progressing",
        "result": "Running",
        "canaryWeight": 20,
        "iterations": 0,
        "failedChecks": 1,
        "threshold": 10,
        "revision": revision,
        "headline": lines[0],
        "details": document["details"],
    }
    assert document["details"][-1].startswith("  run      ")


async def test_wait_exits_0_when_the_run_succeeds(cluster: Cluster) -> None:
    revision = await cluster.revision()
    await cluster.write_status(progressing(revision))
    waiter = Waiter(cluster, "-o", "json")
    await waiter.started()
    await cluster.write_status(progressing(revision, weight=20))
    await cluster.write_status(ended(revision, "Succeeded"))
    code, out, err = await waiter.result()
    assert code == 0, err
    document = json.loads(out)
    assert (document["phase"], document["result"], document["revision"]) == (
        "Succeeded",
        "Succeeded",
        revision,
    )
    assert document["headline"].startswith("podinfo.test: Succeeded — Canary analysis completed")


async def test_wait_exits_1_with_the_failing_evidence(cluster: Cluster) -> None:
    revision = await cluster.revision()
    await cluster.write_status(progressing(revision))
    waiter = Waiter(cluster)
    await waiter.started()
    await cluster.write_status(ended(revision, "Failed"))
    code, out, err = await waiter.result()
    assert code == 1, (out, err)
    lines = out.splitlines()
    assert lines[0] == (
        "podinfo.test: Failed at weight 10 — request-success-rate 71.2% < 99% (10 of 10 failed checks)"
    )
    assert lines[1] == "  why      Failed checks threshold reached 10 [FailedChecks]"
    assert "  provider prometheus http://prometheus.istio-system:9090" in lines


async def test_wait_exits_2_on_timeout(cluster: Cluster) -> None:
    await cluster.write_status(progressing(await cluster.revision()))
    code, out, err = await canarist(
        "status", "podinfo", "-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig),
        "--wait", "--timeout", "1s",
    )  # fmt: skip
    assert code == 2, (out, err)
    assert out.splitlines()[0] == "podinfo.test: the run did not end in time; it stands at:"
    assert "Progressing at weight 10" in out


async def test_for_revision_ignores_a_previous_run_that_ends_meanwhile(cluster: Cluster) -> None:
    old = await cluster.revision()
    await cluster.write_status(progressing(old))
    new = await cluster.set_image(NEW_IMAGE)  # the pipeline applies its manifest
    assert new != old
    waiter = Waiter(cluster, "--for-revision", NEW_IMAGE)
    await waiter.started()
    await cluster.write_status(ended(old, "Failed"))  # the previous run: not the pipeline's
    await cluster.write_status(progressing(new))
    await cluster.write_status(ended(new, "Succeeded"))
    code, out, err = await waiter.result()
    assert code == 0, (out, err)
    assert out.splitlines()[0].startswith("podinfo.test: Succeeded")
    assert f"revision {new}" in out


async def test_unknown_canary_exits_3_and_unreachable_api_exits_4(cluster: Cluster, tmp_path: Any) -> None:
    code, out, err = await canarist(
        "status", "nosuch", "-n", NAMESPACE, "--kubeconfig", str(cluster.kubeconfig), "--wait"
    )
    assert (code, out, err) == (3, "", f'error: canary "nosuch" not found in namespace "{NAMESPACE}"\n')

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    text = cluster.kubeconfig.read_text().replace(cluster.handle.url, f"http://127.0.0.1:{port}")
    assert str(port) in text
    closed = tmp_path / "closed-kubeconfig"
    closed.write_text(text)
    code, out, err = await canarist("status", "podinfo", "-n", NAMESPACE, "--kubeconfig", str(closed))
    assert code == 4, (out, err)
    assert err.startswith("error: cannot reach the Kubernetes API ("), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err

    code, out, err = await canarist("status", "podinfo", "--kubeconfig", "/etc/hostname")
    assert code == 4, err
    assert err.startswith("error: /etc/hostname is not a kubeconfig"), err
    assert err.count("\n") == 1, err


def test_a_revision_is_an_image_or_a_hash() -> None:
    target = deployment(NEW_IMAGE)
    applied = revision_hash(target)
    canary = {"status": {"phase": "Succeeded", "lastAppliedSpec": applied}}
    for wanted in (NEW_IMAGE, "podinfo:6.0.1", applied, pod_template_hash(target["spec"]["template"]), ""):
        assert Wanted(wanted).matches(canary, target), wanted
    for other in ("podinfo:6.0.0", "nginx:6.0.1", "bcdf"):
        assert not Wanted(other).matches(canary, target), other
    # the target already has the image, but the run that ended is of the previous template
    previous = {"status": {"phase": "Failed", "lastAppliedSpec": revision_hash(deployment("x:1"))}}
    assert not Wanted(NEW_IMAGE).matches(previous, target)
