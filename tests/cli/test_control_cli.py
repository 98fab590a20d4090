"""The runtime commands' CLI against the local control plane with no operator (issue 15, items 1, 3, 4):
what a command creates, who it says asked, and each failure as one sentence with its exit code — the API
server's 403, no such canary, no operator to answer, a weight out of range. The operator's side is in
tests/e2e/test_control.py."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from canarist.kube import resources as kinds
from tests.cli.kube_helpers import NAMESPACE, Cluster, canarist, start_cluster
from tests.cli.test_kubectl_plugin import BIN, kubectl
from tests.fixtures.localcluster import LocalClusterHandle


@pytest.fixture
async def cluster(local_cluster: LocalClusterHandle) -> AsyncIterator[Cluster]:
    world = await start_cluster(local_cluster)
    await world.write_status({"phase": "Progressing", "canaryWeight": 20, "lastAppliedSpec": "abc123"})
    try:
        yield world
    finally:
        await world.client.close()


def kube(cluster: Cluster) -> tuple[str, ...]:
    return ("--kubeconfig", str(cluster.kubeconfig), "-n", NAMESPACE)


async def test_a_command_is_a_canarycommand_naming_the_requester(cluster: Cluster) -> None:
    assert (BIN / "kubectl-canarist").exists()
    assert os.access(cluster.handle.kubectl_bin, os.X_OK)
    code, out, err = await kubectl(
        cluster,
        "canarist",
        "set-weight",
        "podinfo",
        "30",
        "-n",
        NAMESPACE,
        "--reason",
        "more load",
        "--no-wait",
    )
    assert code == 0, err
    assert out.startswith("podinfo.test: set-weight sent as canarycommand podinfo-set-weight-"), out
    listed = (await cluster.client.list(kinds.CANARY_COMMAND, namespace=NAMESPACE)).items
    assert len(listed) == 1
    assert listed[0]["spec"] == {
        "canary": "podinfo",
        "action": "set-weight",
        "weight": 30,
        "reason": "more load",
        # the API server's answer to a SelfSubjectReview for the local control plane's own kubeconfig
        "requestedBy": "localcluster-admin",
    }
    # the Canary's spec is not touched
    canary = await cluster.client.get(kinds.CANARY, "podinfo", namespace=NAMESPACE)
    assert canary["metadata"]["generation"] == 1


async def test_the_api_servers_403_is_one_sentence_naming_the_role_to_ask_for(
    cluster: Cluster, local_cluster: LocalClusterHandle
) -> None:
    local_cluster.server.faults.fail("create", 403)
    code, out, err = await canarist("abort", "podinfo", *kube(cluster))
    assert code == 1
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: the API server refused to create a canarycommand in namespace test for you")
    assert err.rstrip().endswith("ask for the canarist-release-operator role there")
    assert "Traceback" not in err


async def test_no_such_canary_no_operator_and_a_bad_weight_have_their_exit_codes(cluster: Cluster) -> None:
    code, _, err = await canarist("pause", "nosuch", *kube(cluster))
    assert (code, err) == (3, 'error: canary "nosuch" not found in namespace "test"\n')
    # nobody consumes the command: the CLI gives up after --timeout and says where to look
    code, _, err = await canarist("pause", "podinfo", "--timeout", "1s", *kube(cluster))
    assert code == 2
    assert "was not applied within 1s; is the operator running?" in err
    code, _, err = await canarist("set-weight", "podinfo", "140", *kube(cluster))
    assert (code, err) == (2, "error: the weight must be 0-100 (got 140)\n")


def test_explain_shows_the_hold_and_the_commands_of_the_run() -> None:
    from canarist.api import Canary
    from canarist.cli.cmd_explain import explain_text
    from tests.fixtures.canaries import canary_manifest

    status = {
        "phase": "Progressing",
        "canaryWeight": 20,
        "ledger": {"revision": "abc123", "startedAt": "2026-12-02T10:00:00Z"},
        "hold": {
            "action": "pause",
            "weight": 20,
            "since": "2026-12-02T10:01:30Z",
            "requestedBy": "alice@example.com",
            "reason": "dashboards",
        },
        "commands": [
            {
                "uid": "u0",
                "action": "abort",
                "outcome": "Refused",
                "message": "of a run before",
                "at": "2026-12-02T09:00:00Z",
            },
            {
                "uid": "u1",
                "action": "pause",
                "outcome": "Applied",
                "message": "held at weight 20 until resumed",
                "requestedBy": "alice@example.com",
                "reason": "dashboards",
                "at": "2026-12-02T10:01:30Z",
            },
            {
                "uid": "u2",
                "action": "set-weight",
                "weight": 140,
                "outcome": "Refused",
                "message": "set-weight: the weight must be 0-100 (got 140)",
                "at": "2026-12-02T10:02:00Z",
            },
        ],
    }
    text = explain_text(Canary.model_validate(canary_manifest(status=status)), [])
    lines = text.splitlines()
    assert (
        "  held     pause at weight 20 by alice@example.com (dashboards) since 2026-12-02T10:01:30Z" in lines
    )
    assert lines[lines.index("commands") + 1 :] == [
        "    +1m30s  pause applied, by alice@example.com (dashboards): held at weight 20 until resumed",
        "       +2m  set-weight 140 refused, by an unknown user: set-weight: the weight must be 0-100 (got 140)",
    ]
