"""A small loadtester client for `canarist gate` and `canarist rollback`: one POST, clear errors, no tracebacks."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping

from canarist.hooks import build_payload, call_webhook

DEFAULT_URL = "http://localhost:9090"


def split_canary(text: str) -> tuple[str, str]:
    """``NAME.NAMESPACE`` (namespaces have no dots, so the last dot splits)."""
    name, dot, namespace = text.rpartition(".")
    if not dot or not name or not namespace:
        raise argparse.ArgumentTypeError(f"expected NAME.NAMESPACE, got {text!r}")
    return name, namespace


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "canary", type=split_canary, metavar="NAME.NAMESPACE", help="the canary, e.g. podinfo.test"
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("CANARIST_LOADTESTER_URL", DEFAULT_URL),
        help=f"loadtester base URL (env CANARIST_LOADTESTER_URL, default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("CANARIST_LOADTESTER_TOKEN", ""),
        help="bearer token, when the loadtester runs with --token (env CANARIST_LOADTESTER_TOKEN)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")


def add_switch_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    command: str,
    actions: Mapping[str, tuple[str, str]],
    handler: Callable[[argparse.Namespace], int],
    *,
    help: str,
    description: str,
    action_help: str,
) -> argparse.ArgumentParser:
    """The ``canarist COMMAND ACTION NAME.NAMESPACE`` parser of a loadtester switch (the gate, the rollback)."""
    parser = subparsers.add_parser(command, help=help, description=description)
    parser.add_argument("action", choices=list(actions), help=action_help)
    add_common(parser)
    parser.set_defaults(handler=handler)
    return parser


def call_action(args: argparse.Namespace, actions: Mapping[str, tuple[str, str]]) -> int:
    """`call` with the (path, done) of ``args.action`` in ``actions``."""
    path, done = actions[args.action]
    return call(args, path, done)


def call(args: argparse.Namespace, path: str, done: str) -> int:
    """POST the canary's payload to ``url + path``; print ``done`` (or the check's answer)."""
    name, namespace = args.canary
    url = args.url.rstrip("/") + path
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    payload = build_payload(name, namespace, "", "")
    result = asyncio.run(call_webhook(url, payload, timeout_s=args.timeout, headers=headers))
    if path.endswith("/check"):
        if result.ok:
            print(f"{name}.{namespace}: open")
            return 0
        if result.status == 403:
            print(f"{name}.{namespace}: closed")
            return 1
    elif result.ok:
        print(done.format(canary=f"{name}.{namespace}"))
        return 0
    if result.status == 401:
        print(f"error: {url}: unauthorized, pass --token", file=sys.stderr)
    elif result.status is None:
        print(f"error: cannot reach the loadtester: {result.error}", file=sys.stderr)
    else:
        print(f"error: {url} answered {result.status}: {result.error}", file=sys.stderr)
    return 2
