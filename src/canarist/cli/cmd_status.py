"""`canarist status NAME [--wait] [--for-revision REV] [-o text|json]`: where a canary's run stands, for CI.

Prints the canary's phase, weight, failed checks and the decision ledger's headline (the first lines of
``canarist explain``). With ``--wait`` it watches the Canary until the current run ends and exits 0 when it
succeeded, 1 when it failed (printing the failing evidence), 2 when ``--timeout`` ran out first.
``--for-revision`` waits for the run of one revision: an image (``repo:tag``, one of the target's container
images) or a hash (``status.lastAppliedSpec`` or the pod-template-hash of the target's template); a run of
another revision that ends meanwhile is ignored. Exit 3: no such canary; exit 4: the API cannot be reached.

    $ canarist status podinfo -n test --wait --for-revision ghcr.io/stefanprodan/podinfo:6.0.1
    podinfo.test: Succeeded — Canary analysis completed successfully, promotion finished.
      run      revision 5f8bd6c7d4, started 2026-01-01 12:00:00Z, ended after 2m30s; 15 checks, 0 failed
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canarist.api import Canary
from canarist.cli.cmd_explain import header
from canarist.cli.common import (
    EXIT_FAILED,
    EXIT_SUCCEEDED,
    EXIT_TIMEOUT,
    EXIT_UNREACHABLE,
    CliError,
    not_found,
    run_against_cluster,
    states_of,
    unreachable,
)
from canarist.durations import parse_duration
from canarist.engine.ledger import Ledger
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import ApiError, KubeError, NotFound
from canarist.podnames import pod_template_hash
from canarist.workloads.revision import revision_hash

TERMINAL = ("Succeeded", "Failed")
TARGET_KINDS = {"Deployment": kinds.DEPLOYMENT, "DaemonSet": kinds.DAEMON_SET, "Service": kinds.SERVICE}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="a canary's phase, weight and failed checks; with --wait, wait for its run to end (for CI)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("name", help="the Canary's name")
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", default=None, help="path to a kubeconfig (default: $KUBECONFIG)")
    parser.add_argument("--context", default=None, help="the kubeconfig context (default: its current)")
    parser.add_argument("--wait", action="store_true", help="wait until the run ends (exit 0, 1 or 2)")
    parser.add_argument("--timeout", default="10m", help="with --wait: how long to wait (default 10m)")
    parser.add_argument(
        "--for-revision",
        default="",
        metavar="REV",
        help="with --wait: wait for the run of this image (repo:tag) or pod-template hash",
    )
    parser.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="text (default) or json"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        timeout = parse_duration(args.timeout)
    except ValueError:
        print(f"error: --timeout {args.timeout!r} is not a duration such as 30s or 10m", file=sys.stderr)
        return EXIT_TIMEOUT
    return run_against_cluster(args, lambda client, namespace: _status(client, args, namespace, timeout))


# ---------------------------------------------------------------------------------------------- revision


@dataclass(frozen=True)
class Wanted:
    """The revision a run must be of to count (empty: any run)."""

    revision: str = ""

    def matches(self, canary: Mapping[str, Any], target: Mapping[str, Any] | None) -> bool:
        if not self.revision:
            return True
        status = canary.get("status") or {}
        applied = str(status.get("lastAppliedSpec") or "")
        ledger = str((status.get("ledger") or {}).get("revision") or "")
        if self.revision in (applied, ledger) and applied:
            return True
        if target is None or not applied or revision_hash(target) != applied:
            return False
        template = ((target.get("spec") or {}).get("template")) or {}
        return self.revision == pod_template_hash(template) or any(
            image_matches(image, self.revision) for image in images_of(target)
        )


def images_of(target: Mapping[str, Any]) -> list[str]:
    """The container images of a workload's pod template (init containers included)."""
    spec = (((target.get("spec") or {}).get("template")) or {}).get("spec") or {}
    return [
        str(c.get("image") or "")
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if isinstance(c, Mapping)
    ]


def image_matches(image: str, wanted: str) -> bool:
    """``ghcr.io/stefanprodan/podinfo:6.0.1`` is wanted as itself or as ``podinfo:6.0.1``."""
    return bool(image) and (image == wanted or image.endswith("/" + wanted))


# ---------------------------------------------------------------------------------------------- output


def status_json(canary: Canary, result: str) -> dict[str, Any]:
    """The stable object of ``-o json``; ``result`` is Succeeded, Failed, Timeout or Running."""
    book = Ledger.of(canary.status.ledger)
    lines = header(canary, book)
    return {
        "canary": canary.key,
        "name": canary.metadata.name,
        "namespace": canary.metadata.namespace,
        "phase": str(canary.status.phase or "Initializing"),
        "result": result,
        "canaryWeight": canary.status.canary_weight,
        "iterations": canary.status.iterations,
        "failedChecks": canary.status.failed_checks,
        "threshold": canary.threshold(),
        "revision": canary.status.last_applied_spec or book.revision,
        "headline": lines[0],
        "details": lines[1:],
    }


def status_text(canary: Canary) -> str:
    status = canary.status
    book = Ledger.of(status.ledger)
    phase = str(status.phase or "Initializing")
    first = (
        f"phase {phase}, weight {status.canary_weight}, failed checks {status.failed_checks} of "
        f"{canary.threshold()}, revision {status.last_applied_spec or book.revision or '?'}"
    )
    return "\n".join([*header(canary, book), f"  status   {first}"])


def _print(obj: Mapping[str, Any], output: str, result: str) -> None:
    canary = Canary.model_validate(dict(obj))
    if output == "json":
        print(json.dumps(status_json(canary, result), indent=2))
    else:
        if result == "Timeout":
            print(f"{canary.key}: the run did not end in time; it stands at:")
        print(status_text(canary))


def _exit_code(result: str) -> int:
    return {"Succeeded": EXIT_SUCCEEDED, "Failed": EXIT_FAILED, "Timeout": EXIT_TIMEOUT}.get(result, 0)


# ---------------------------------------------------------------------------------------------- wait


async def _status(client: KubeClient, args: argparse.Namespace, namespace: str, wait_s: float) -> int:
    try:
        obj = await _get_canary(client, args.name, namespace)
        if not args.wait:
            phase = str((obj.get("status") or {}).get("phase") or "")
            result = phase if phase in TERMINAL else "Running"
            _print(obj, args.output, result)
            return 0
        seen = [obj]  # the last state the watch saw, printed on a timeout
        try:
            async with asyncio.timeout(wait_s):
                last = await _wait(client, seen, namespace, Wanted(args.for_revision))
        except TimeoutError:
            _print(seen[-1], args.output, "Timeout")
            return EXIT_TIMEOUT
        result = str((last.get("status") or {}).get("phase"))
        _print(last, args.output, result)
        return _exit_code(result)
    finally:
        await client.close()


async def _get_canary(client: KubeClient, name: str, namespace: str) -> dict[str, Any]:
    try:
        return await client.get(kinds.CANARY, name, namespace=namespace)
    except NotFound as error:
        raise not_found(name, namespace) from error
    except ApiError as error:
        raise CliError(f"canary {name}.{namespace}: {error}", EXIT_UNREACHABLE) from error
    except KubeError as error:
        raise unreachable(error) from error


async def _target(client: KubeClient, canary: Mapping[str, Any], namespace: str) -> dict[str, Any] | None:
    ref = (canary.get("spec") or {}).get("targetRef") or {}
    kind = TARGET_KINDS.get(str(ref.get("kind") or "Deployment"))
    if kind is None or not ref.get("name"):
        return None
    try:
        return await client.get_or_none(kind, str(ref["name"]), namespace=namespace)
    except KubeError:
        return None


async def _ended(client: KubeClient, obj: Mapping[str, Any], namespace: str, wanted: Wanted) -> bool:
    phase = str((obj.get("status") or {}).get("phase") or "")
    if phase not in TERMINAL:
        return False
    target = await _target(client, obj, namespace) if wanted.revision else None
    return wanted.matches(obj, target)


async def _wait(
    client: KubeClient, seen: list[dict[str, Any]], namespace: str, wanted: Wanted
) -> dict[str, Any]:
    """The Canary once a run (of ``wanted``) has ended, watched from the resourceVersion of ``seen[-1]``;
    each state the watch sees is put in ``seen``."""
    obj = seen[-1]
    name = str(obj["metadata"]["name"])
    what = f" of revision {wanted.revision}" if wanted.revision else ""
    print(f"waiting for the run{what} of canary {name}.{namespace} to end", file=sys.stderr, flush=True)
    current = obj
    if await _ended(client, current, namespace, wanted):
        return current
    states = states_of(
        client,
        kinds.CANARY,
        current,
        what=f'canary "{name}" in namespace "{namespace}"',
        reread=lambda: _get_canary(client, name, namespace),
    )
    # closed on return, so the watch stream under it is closed too
    async with contextlib.aclosing(states) as watched:
        async for current in watched:
            seen[-1] = current
            if await _ended(client, current, namespace, wanted):
                return current
    raise AssertionError("unreachable: the watch is restarted until the run ends")  # pragma: no cover
