"""`canarist get canaries` like kubectl, against the local control plane (a real subprocess): the table and
``-o wide|json|yaml``, kubectl's message and exit 3 for a missing canary, one sentence and exit 4 for a file
that is not a kubeconfig, and no import of the sandbox package."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import yaml

from tests.cli.kube_helpers import NAMESPACE, Cluster, canarist, start_cluster
from tests.fixtures.localcluster import LocalClusterHandle

STATUS = {
    "phase": "Progressing",
    "canaryWeight": 20,
    "failedChecks": 1,
    "iterations": 0,
    "lastAppliedSpec": "abc123",
    "lastTransitionTime": "2026-01-01T12:00:00Z",
}


@pytest.fixture
async def cluster(local_cluster: LocalClusterHandle) -> AsyncIterator[Cluster]:
    world = await start_cluster(local_cluster)
    await world.write_status(STATUS)
    try:
        yield world
    finally:
        await world.client.close()


async def get(cluster: Cluster, *argv: str) -> tuple[int, str, str]:
    return await canarist("get", *argv, "--kubeconfig", str(cluster.kubeconfig))


async def test_the_table_and_wide(cluster: Cluster) -> None:
    code, out, err = await get(cluster, "canaries", "-n", NAMESPACE)
    assert code == 0, err
    assert [line.split() for line in out.splitlines()] == [
        ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"],
        ["podinfo", "Progressing", "20", "2026-01-01T12:00:00Z"],
    ]
    code, out, err = await get(cluster, "canaries", "-A", "-o", "wide")
    assert code == 0, err
    assert [line.split() for line in out.splitlines()] == [
        [
            "NAMESPACE",
            "NAME",
            "STATUS",
            "WEIGHT",
            "FAILEDCHECKS",
            "ITERATIONS",
            "REVISION",
            "LASTTRANSITIONTIME",
        ],
        [NAMESPACE, "podinfo", "Progressing", "20", "1", "0", "abc123", "2026-01-01T12:00:00Z"],
    ]
    code, out, err = await get(cluster, "canaries", "-n", "default")
    assert (code, out, err) == (0, "", "No resources found in default namespace.\n")


async def test_json_and_yaml(cluster: Cluster) -> None:
    code, out, err = await get(cluster, "canary", "podinfo", "-n", NAMESPACE, "-o", "json")
    assert code == 0, err
    one = json.loads(out)
    assert (one["kind"], one["metadata"]["name"], one["status"]["canaryWeight"]) == ("Canary", "podinfo", 20)
    code, out, err = await get(cluster, "canaries", "-n", NAMESPACE, "-o", "yaml")
    assert code == 0, err
    listed = yaml.safe_load(out)
    assert listed["kind"] == "List"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["podinfo"]
    assert listed["items"][0]["status"]["phase"] == "Progressing"


async def test_a_missing_canary_and_a_file_that_is_not_a_kubeconfig(cluster: Cluster) -> None:
    code, out, err = await get(cluster, "canary", "nosuch", "-n", NAMESPACE)
    assert (code, out) == (3, "")
    assert err == 'error: Error from server (NotFound): canaries.flagger.app "nosuch" not found\n'
    code, out, err = await canarist("get", "canaries", "--kubeconfig", "/etc/hostname")
    assert (code, out) == (4, "")
    assert err.startswith("error: /etc/hostname is not a kubeconfig"), err
    assert err.count("\n") == 1, err


def test_get_does_not_import_the_sandbox() -> None:
    probe = "import sys, canarist.cli.cmd_get; print([m for m in sys.modules if m.startswith('canarist.sandbox')])"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
