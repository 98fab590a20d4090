"""The decision ledger end to end: a canary that is rolled back for its error rate, then `canarist explain`
(a real subprocess) naming the failing check with its value in its first lines, and `kubectl get canary
-o yaml` showing the ledger in the status (Flagger's printer columns unchanged)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any

import yaml

from tests.e2e.conftest import World
from tests.e2e.harness import (
    NAMESPACE,
    PROMOTION_TIMEOUT_S,
    canary_status,
    fast_seed,
    phase_is,
    set_image,
    wait_for,
)

COMMAND_TIMEOUT_S = 60


async def command(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    assert process.returncode == 0, (argv, out.decode(), err.decode())
    return out.decode()


async def explain(world: World, *extra: str) -> str:
    return await command(
        sys.executable,
        "-m",
        "canarist",
        "explain",
        "podinfo",
        "-n",
        NAMESPACE,
        "--kubeconfig",
        str(world.kubeconfig),
        *extra,
    )


async def kubectl(world: World, *argv: str) -> str:
    return await command("kubectl", "--kubeconfig", str(world.kubeconfig), "-n", NAMESPACE, *argv)


async def rolled_back(world: World) -> dict[str, Any]:
    await world.start_operator()
    await world.apply_podinfo(fast_seed(stepWeight=10, threshold=2))
    await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
    world.canary_app.set_knobs(error_rate=0.5)
    await set_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
    await wait_for(
        lambda: phase_is(world, "Failed"), what="Failed", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
    )
    return await canary_status(world.client)


async def test_explain_names_the_failing_check_and_kubectl_shows_the_ledger(world: World) -> None:
    status = await rolled_back(world)
    book = status["ledger"]
    end = book["end"]
    assert (end["phase"], end["reason"]) == ("Failed", "Failed checks threshold reached 2")
    evidence = end["evidence"]
    assert evidence["check"] == "request-success-rate"
    assert (evidence["result"], evidence["verdict"], evidence["unit"], evidence["min"]) == (
        "value",
        "fail",
        "%",
        99,
    )
    assert evidence["query"].startswith("sum(")
    assert evidence["provider"] == f"prometheus {world.settings.metrics_server}"
    assert book["revision"] == status["lastAppliedSpec"]
    rates = [e for e in book["entries"] if e["check"] == "request-success-rate"]
    assert [e["verdict"] for e in rates][-2:] == ["fail", "fail"]

    text = await explain(world)
    first_five = text.splitlines()[:5]
    value = f"{evidence['value']:.2f}".rstrip("0").rstrip(".")
    headline = re.escape(
        f"podinfo.test: Failed at weight {evidence['weight']} — request-success-rate {value}% < 99% "
        "(2 of 2 failed checks)"
    )
    assert re.fullmatch(headline, first_five[0]), text
    assert "  why      Failed checks threshold reached 2 [FailedChecks]" in first_five
    assert any(line.startswith("  query    sum(") for line in first_five), text
    assert "Canary failed! Scaling down podinfo.test" in text  # the events are in the timeline
    assert "New revision detected! Scaling up podinfo.test" in text

    structured = json.loads(await explain(world, "-o", "json"))
    assert structured["ledger"] == book
    assert structured["headline"] == first_five[0]
    assert structured["phase"] == "Failed"

    manifest = yaml.safe_load(await kubectl(world, "get", "canary", "podinfo", "-o", "yaml"))
    assert manifest["status"]["ledger"] == book
    columns = (await kubectl(world, "get", "canary", "podinfo")).splitlines()[0].split()
    assert columns == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]


async def test_explain_of_a_missing_canary_is_a_clear_error(world: World) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "canarist",
        "explain",
        "nosuch",
        "-n",
        NAMESPACE,
        "--kubeconfig",
        str(world.kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    assert process.returncode == 3  # docs/cli.md: the named canary does not exist
    assert out == b""
    assert err.decode().strip() == f'error: canary "nosuch" not found in namespace "{NAMESPACE}"'
