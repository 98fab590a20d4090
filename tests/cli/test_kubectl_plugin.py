"""The kubectl plugin: the real ``kubectl`` finds ``kubectl-canarist`` (the venv's entry point) on PATH and
runs ``kubectl canarist status|get`` against the local control plane, with kubectl's flags."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from canarist.localcluster.cluster import CONTEXT_NAME
from tests.cli.kube_helpers import COMMAND_TIMEOUT_S, NAMESPACE, Cluster, env, start_cluster
from tests.fixtures.localcluster import LocalClusterHandle

BIN = Path(sys.executable).parent


@pytest.fixture
async def cluster(local_cluster: LocalClusterHandle) -> AsyncIterator[Cluster]:
    if not (BIN / "kubectl-canarist").exists():
        pytest.fail(
            f"{BIN / 'kubectl-canarist'} is missing: reinstall canarist (pip install -e .)", pytrace=False
        )
    world = await start_cluster(local_cluster)
    await world.write_status({"phase": "Succeeded", "canaryWeight": 0, "lastAppliedSpec": "abc123"})
    try:
        yield world
    finally:
        await world.client.close()


async def kubectl(cluster: Cluster, *argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        cluster.handle.kubectl_bin,
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env(
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            KUBECONFIG=str(cluster.kubeconfig),
            HOME=str(cluster.kubeconfig.parent),
        ),
    )
    out, err = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_kubectl_finds_and_runs_the_plugin(cluster: Cluster) -> None:
    code, out, err = await kubectl(cluster, "plugin", "list", "--name-only")
    assert code == 0, err
    assert "kubectl-canarist" in out.split()

    code, out, err = await kubectl(cluster, "canarist", "status", "podinfo", "-n", NAMESPACE)
    assert code == 0, err
    assert out.splitlines()[0] == "podinfo.test: Succeeded"

    code, out, err = await kubectl(
        cluster, "canarist", "status", "podinfo", "-n", NAMESPACE, "--context", CONTEXT_NAME,
        "--kubeconfig", str(cluster.kubeconfig), "--wait", "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    assert (json.loads(out)["result"], json.loads(out)["revision"]) == ("Succeeded", "abc123")

    code, out, err = await kubectl(cluster, "canarist", "get", "canaries", "-A")
    assert code == 0, err
    assert out.split()[:5] == ["NAMESPACE", "NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert out.splitlines()[1].split()[:3] == [NAMESPACE, "podinfo", "Succeeded"]

    code, out, err = await kubectl(cluster, "canarist", "status", "nosuch", "-n", NAMESPACE)
    assert code == 3, (out, err)
    assert f'canary "nosuch" not found in namespace "{NAMESPACE}"' in err

    code, out, err = await kubectl(cluster, "canarist", "explain", "nosuch", "-n", NAMESPACE)
    assert code == 3, (out, err)
    assert err.strip() == f'error: canary "nosuch" not found in namespace "{NAMESPACE}"'


async def test_the_plugin_names_itself_as_typed(cluster: Cluster) -> None:
    code, out, err = await kubectl(cluster, "canarist", "--help")
    assert code == 0, err
    assert out.startswith("usage: kubectl canarist ")

    code, out, err = await kubectl(cluster, "canarist", "explain", "--help")
    assert code == 0, err
    assert out.startswith("usage: kubectl canarist explain ")
    assert "--context" in out

    code, out, err = await kubectl(
        cluster, "canarist", "explain", "podinfo", "-n", NAMESPACE, "--context", CONTEXT_NAME
    )
    assert code == 0, err
    assert out.startswith("podinfo.test: ")
