"""`canarist promote|abort|pause|resume|retry|set-weight NAME`: runtime commands that GitOps does not revert.

Each command creates a ``canarist.dev/v1alpha1`` CanaryCommand next to the Canary (never an edit of the
Canary's spec, which Flux or Argo CD own) and waits until the operator consumed it: exit 0 when it was
applied, 1 when the operator refused it (the message says why) or the API server refused to create it (for
example 403: ask for the canarist-release-operator role), 2 when ``--timeout`` ran out first (is the operator
running?), 3 when there is no such canary, 4 when the API cannot be reached. ``--no-wait`` returns once the
command is created. docs/control.md has the design, docs/cli.md each command's output.

    $ canarist pause podinfo -n test --reason "checking the EU dashboards"
    podinfo.test: pause applied: held at weight 20 until resumed
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from canarist.api import command as cc
from canarist.cli.common import (
    EXIT_FAILED,
    EXIT_SUCCEEDED,
    EXIT_TIMEOUT,
    CliError,
    not_found,
    run_against_cluster,
    states_of,
    unreachable,
)
from canarist.durations import parse_duration
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import ApiError, Forbidden, KubeError, NotFound
from canarist.kube.resources import ResourceKind

SELF_SUBJECT_REVIEW = ResourceKind(
    "authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False
)

HELP = {
    "promote": "finish the run now: skip the remaining steps (confirm-promotion still applies unless --force)",
    "abort": "roll the run back now",
    "pause": "hold the run at its current weight until resume (its progress deadline stops)",
    "resume": "continue a paused run (or one held by set-weight)",
    "retry": "start a new run of the current revision after a failed one, without touching the pod template",
    "set-weight": "move the canary to WEIGHT percent of the traffic and hold it there until resume",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for action, text in HELP.items():
        parser = subparsers.add_parser(action, help=text, description=f"{text}. " + _common_description())
        parser.add_argument("name", help="the Canary's name")
        if action == "set-weight":
            parser.add_argument("weight", type=int, help="the canary's weight, 0-100")
        if action == "promote":
            parser.add_argument(
                "--force", action="store_true", help="promote without waiting for the confirm-promotion gates"
            )
        parser.add_argument(
            "--reason", default="", help="why (recorded in the event, the alert and the ledger)"
        )
        parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the context's)")
        parser.add_argument("--kubeconfig", default=None, help="path to a kubeconfig (default: $KUBECONFIG)")
        parser.add_argument("--context", default=None, help="the kubeconfig context (default: its current)")
        parser.add_argument(
            "--timeout", default="60s", help="how long to wait for the operator to apply it (default 60s)"
        )
        parser.add_argument("--no-wait", action="store_true", help="return once the command is created")
        parser.add_argument(
            "-o", "--output", choices=["text", "json"], default="text", help="text (default) or json"
        )
        parser.set_defaults(handler=run, action=action)


def _common_description() -> str:
    return (
        "The command is a CanaryCommand object beside the Canary (the Canary's spec is not edited), applied "
        "once by the operator. Exit 0 applied, 1 refused, 2 timeout, 3 no such canary, 4 API unreachable."
    )


def run(args: argparse.Namespace) -> int:
    try:
        timeout = parse_duration(args.timeout)
    except ValueError:
        print(f"error: --timeout {args.timeout!r} is not a duration such as 30s or 2m", file=sys.stderr)
        return EXIT_TIMEOUT
    if args.action == "set-weight" and not 0 <= args.weight <= 100:
        print(f"error: the weight must be 0-100 (got {args.weight})", file=sys.stderr)
        return EXIT_TIMEOUT
    return run_against_cluster(args, lambda client, namespace: _send(client, args, namespace, timeout))


async def requester(client: KubeClient) -> str:
    """The user as the API server sees this client (a SelfSubjectReview), or "" where it is not served."""
    try:
        review = await client.create(
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, kind=SELF_SUBJECT_REVIEW
        )
    except KubeError:
        return ""
    user = ((review.get("status") or {}).get("userInfo") or {}).get("username")
    return str(user or "")


def command_object(args: argparse.Namespace, namespace: str, user: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"canary": args.name, "action": args.action}
    if args.action == "set-weight":
        spec["weight"] = args.weight
    if getattr(args, "force", False):
        spec["force"] = True
    if args.reason:
        spec["reason"] = args.reason
    if user:
        spec["requestedBy"] = user
    return {
        "apiVersion": cc.API_VERSION,
        "kind": cc.KIND,
        "metadata": {"generateName": f"{args.name}-{args.action}-", "namespace": namespace},
        "spec": spec,
    }


async def _send(client: KubeClient, args: argparse.Namespace, namespace: str, timeout_s: float) -> int:
    try:
        try:
            await client.get(kinds.CANARY, args.name, namespace=namespace)
        except NotFound as error:
            raise not_found(args.name, namespace) from error
        except ApiError as error:
            raise CliError(f"canary {args.name}.{namespace}: {error}", EXIT_FAILED) from error
        except KubeError as error:
            raise unreachable(error) from error
        user = await requester(client)
        try:
            created = await client.create(command_object(args, namespace, user), kind=kinds.CANARY_COMMAND)
        except Forbidden as error:
            raise CliError(
                f"the API server refused to create a canarycommand in namespace {namespace} for you ({error}); "
                "ask for the canarist-release-operator role there",
                EXIT_FAILED,
            ) from error
        except NotFound as error:
            raise CliError(
                f"the cluster does not serve {cc.CRD_NAME} ({error}); install it with: "
                "canarist crds | kubectl apply -f -",
                EXIT_FAILED,
            ) from error
        except ApiError as error:
            raise CliError(f"creating the {args.action} command: {error}", EXIT_FAILED) from error
        except KubeError as error:
            raise unreachable(error) from error
        name = str(created["metadata"]["name"])
        if args.no_wait:
            _print(created, args, namespace)
            return EXIT_SUCCEEDED
        try:
            async with asyncio.timeout(timeout_s):
                done = await _wait(client, created, namespace)
        except TimeoutError:
            raise CliError(
                f"canarycommand {name}.{namespace} was not applied within {args.timeout}; is the operator "
                f"running? (kubectl get canarycommand {name} -n {namespace} shows it)",
                EXIT_TIMEOUT,
            ) from None
        _print(done, args, namespace)
        phase = str((done.get("status") or {}).get("phase") or "")
        return EXIT_SUCCEEDED if phase == cc.APPLIED else EXIT_FAILED
    finally:
        await client.close()


def _print(obj: dict[str, Any], args: argparse.Namespace, namespace: str) -> None:
    if args.output == "json":
        print(json.dumps(obj, indent=2))
        return
    status = obj.get("status") or {}
    phase = str(status.get("phase") or "")
    key = f"{args.name}.{namespace}"
    if not phase:
        print(f"{key}: {args.action} sent as canarycommand {obj['metadata']['name']}")
    elif phase == cc.APPLIED:
        print(f"{key}: {args.action} applied: {status.get('message', '')}")
    else:
        print(f"{key}: {args.action} refused: {status.get('message', '')}", file=sys.stderr)


async def _wait(client: KubeClient, created: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The command once the operator wrote its status (watched from its creation)."""
    name = str(created["metadata"]["name"])
    if (created.get("status") or {}).get("phase"):
        return created
    states = states_of(
        client,
        kinds.CANARY_COMMAND,
        created,
        what=f"canarycommand {name}.{namespace}",
        reread=lambda: client.get(kinds.CANARY_COMMAND, name, namespace=namespace),
    )
    # closed on return, so the watch stream under it is closed too
    async with contextlib.aclosing(states) as watched:
        async for current in watched:
            if (current.get("status") or {}).get("phase"):
                return current
    raise AssertionError(
        "unreachable: the watch is restarted until the command is answered"
    )  # pragma: no cover
