"""Runtime commands end to end (issue 15, item 1; docs/control.md): the real `canarist` CLI in a subprocess
creates CanaryCommands in the local control plane; the real operator consumes each once.

* a pause holds the run through a GitOps-style server-side apply of the original Canary (another field
  manager, as Flux does), resume lets it finish; a command for a phase it does not apply to is refused
  (exit 1, with the reason);
* abort rolls back at once (cause Aborted, who and why in the events); retry runs the failed revision again
  without a pod-template change, and `status --wait` sees it succeed;
* a command created while the operator is dead (SIGKILL) is applied once by the next one, and not again by
  the one after it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import yaml

from canarist.kube import resources as kinds
from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    canary_status,
    event_messages,
    fast_seed,
    initialize,
    operator_subprocess,
    phase_is,
    reaches,
    set_image,
    ticks_pass,
    wait_for,
)


async def cli(world: World, *argv: str, timeout_s: float = 120.0) -> tuple[int, str, str]:
    """Run `canarist ARGV --kubeconfig K -n test` as a real process (the test's loop keeps running)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarist",
        *argv,
        "--kubeconfig",
        str(world.kubeconfig),
        "-n",
        NAMESPACE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def weight_at_least(world: World, weight: int) -> int | None:
    status = await canary_status(world.client)
    current = int(status.get("canaryWeight") or 0)
    return current if status.get("phase") == "Progressing" and current >= weight else None


async def kubectl(world: World, *argv: str, stdin: str = "") -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "kubectl",
        f"--kubeconfig={world.kubeconfig}",
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(stdin.encode()), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_pause_survives_a_gitops_reapply_resume_finishes_and_a_wrong_phase_is_refused(
    world: World,
) -> None:
    manifest = fast_seed(stepWeight=10, maxWeight=50)
    operator = await initialize(world, manifest)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_for(lambda: weight_at_least(world, 10), what="traffic on the canary", timeout_s=60)

    code, out, err = await cli(world, "pause", "podinfo", "--reason", "checking the EU dashboards")
    assert code == 0, (out, err)
    assert out.startswith("podinfo.test: pause applied: held at weight "), out
    held = int((await canary_status(world.client))["canaryWeight"])

    # Flux puts the manifest from Git back (server-side apply, its own field manager): the hold stays.
    code, text = await kubectl(
        world,
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=kustomize-controller",
        "-f",
        "-",
        stdin=yaml.safe_dump(manifest),
    )
    assert code == 0, text
    await ticks_pass(operator, 6)
    status = await canary_status(world.client)
    assert (status["phase"], status["canaryWeight"]) == ("Progressing", held)
    assert status["hold"]["action"] == "pause"
    assert status["hold"]["reason"] == "checking the EU dashboards"
    assert status["hold"]["requestedBy"] == "localcluster-admin"  # the SelfSubjectReview's answer
    assert "wait" not in status  # the progress deadline does not run while a person holds the run

    code, out, err = await cli(world, "resume", "podinfo")
    assert code == 0, (out, err)
    assert out == f"podinfo.test: resume applied: resumed at weight {held}\n"
    await reaches(world, "Succeeded")

    code, out, err = await cli(world, "abort", "podinfo")
    assert code == 1
    assert err == "podinfo.test: abort refused: abort: there is no run under way (phase Succeeded)\n"
    commands = (await canary_status(world.client))["commands"]
    assert [(c["action"], c["outcome"]) for c in commands] == [
        ("pause", "Applied"),
        ("resume", "Applied"),
        ("abort", "Refused"),
    ]
    listed = await world.client.list(kinds.CANARY_COMMAND, namespace=NAMESPACE)
    assert sorted(str(o["status"]["phase"]) for o in listed.items) == ["Applied", "Applied", "Refused"]


async def test_abort_rolls_back_now_and_retry_runs_the_revision_again(world: World) -> None:
    await initialize(world, fast_seed(stepWeight=10, maxWeight=30))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_for(lambda: weight_at_least(world, 10), what="traffic on the canary", timeout_s=60)

    code, out, err = await cli(world, "abort", "podinfo", "--reason", "latency regression")
    assert code == 0, (out, err)
    await reaches(world, "Failed")
    status = await canary_status(world.client)
    assert status["ledger"]["end"]["cause"] == "Aborted"
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert [int(d.get("weight") or 0) for d in vs["spec"]["http"][0]["route"]] == [100, 0]
    assert any(
        m.startswith("podinfo.test abort requested by") and "(latency regression): rolling back" in m
        for m in event_messages(world.events)
    ), event_messages(world.events)
    revision = status["lastAppliedSpec"]

    code, out, err = await cli(world, "retry", "podinfo")
    assert code == 0, (out, err)
    assert out == f"podinfo.test: retry applied: starting a new run of revision {revision}\n"
    code, out, err = await cli(world, "status", "podinfo", "--wait", "--timeout", "2m")
    assert code == 0, (out, err)
    status = await canary_status(world.client)
    assert (status["phase"], status["lastPromotedSpec"]) == ("Succeeded", revision)


async def test_set_weight_moves_the_traffic_and_promote_force_finishes_past_a_closed_gate(
    world: World,
) -> None:
    gate = {"name": "approve", "type": "confirm-promotion", "url": "http://127.0.0.1:1/closed"}
    await initialize(world, fast_seed(stepWeight=10, maxWeight=50, webhooks=[gate]))
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
    await wait_for(lambda: weight_at_least(world, 10), what="traffic on the canary", timeout_s=60)

    code, out, err = await cli(world, "set-weight", "podinfo", "40")
    assert code == 0, (out, err)
    assert out == "podinfo.test: set-weight applied: canary weight set to 40 and held until resumed\n"
    vs = await world.client.get(kinds.VIRTUAL_SERVICE, "podinfo", namespace=NAMESPACE)
    assert [int(d.get("weight") or 0) for d in vs["spec"]["http"][0]["route"]] == [60, 40]
    status = await canary_status(world.client)
    assert (status["canaryWeight"], status["hold"]["action"]) == (40, "set-weight")

    # the confirm-promotion gate never opens (nothing listens there): only --force promotes
    code, out, err = await cli(world, "promote", "podinfo", "--force", "--reason", "hotfix")
    assert code == 0, (out, err)
    await reaches(world, "Succeeded")
    messages = event_messages(world.events)
    assert any("promote requested by" in m and "(hotfix)" in m for m in messages), messages
    assert not any(m.startswith("Advance podinfo.test canary weight 50") for m in messages), messages


async def test_a_command_sent_while_the_operator_is_dead_is_applied_once(
    world: World, tmp_path: Path
) -> None:
    await world.apply_podinfo(fast_seed(stepWeight=10, maxWeight=50))
    async with operator_subprocess(world, log=tmp_path / "operator-1.log") as first:
        await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_for(lambda: weight_at_least(world, 10), what="traffic on the canary", timeout_s=60)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    code, out, err = await cli(world, "pause", "podinfo", "--no-wait")
    assert code == 0, (out, err)
    assert "pause sent as canarycommand podinfo-pause-" in out

    async def applied(action: str) -> bool:
        listed = await world.client.list(kinds.CANARY_COMMAND, namespace=NAMESPACE)
        return any(
            o["spec"]["action"] == action and (o.get("status") or {}).get("phase") for o in listed.items
        )

    async with operator_subprocess(world, log=tmp_path / "operator-2.log") as second:
        await wait_for(lambda: applied("pause"), what="the pause to be applied", timeout_s=60)
        second.send_signal(signal.SIGKILL)
        second.wait(10)
    async with operator_subprocess(world, log=tmp_path / "operator-3.log"):
        code, out, err = await cli(world, "resume", "podinfo")
        assert code == 0, (out, err)
        await reaches(world, "Succeeded")
    status = await canary_status(world.client)
    assert [(c["action"], c["outcome"]) for c in status["commands"]] == [
        ("pause", "Applied"),
        ("resume", "Applied"),
    ]
    messages = event_messages(world.events)
    assert sum(" pause requested by " in m for m in messages) == 1, messages
    assert sum(" resume requested by " in m for m in messages) == 1, messages
