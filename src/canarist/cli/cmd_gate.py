"""`canarist gate open|close|approve|check NAME.NAMESPACE`: drive a loadtester's manual gate.

``open`` (alias ``approve``) lets a ``confirm-rollout``/``confirm-promotion`` hook pointing at
``/gate/check`` pass; ``close`` halts it again; ``check`` prints the state (exit 0 open, 1 closed).

The loadtester is ``--url``, else ``$CANARIST_LOADTESTER_URL``, else the loadtester of the running sandbox
(`canarist sandbox up`, `canarist demo --keep`: its state file), else ``http://localhost:9090``.
"""

from __future__ import annotations

import argparse
import os
import re

from canarist.loadtester.client import DEFAULT_URL, add_switch_command, call_action
from canarist.sandbox.session import running_session

ACTIONS = {
    "open": ("/gate/open", "gate {canary} opened"),
    "approve": ("/gate/open", "gate {canary} opened"),
    "close": ("/gate/close", "gate {canary} closed"),
    "check": ("/gate/check", ""),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_switch_command(
        subparsers,
        "gate",
        ACTIONS,
        run,
        help="open, close or check a loadtester gate",
        description=help_text(__doc__),
        action_help="open (= approve), close or check",
    )
    # No default at parse time: `run` picks the env, the running sandbox, then the fixed default.
    for action in parser._actions:
        if action.dest == "url":
            action.help = (
                "loadtester base URL (default: env CANARIST_LOADTESTER_URL, else the running sandbox's "
                f"loadtester, else {DEFAULT_URL})"
            )
    parser.set_defaults(url=None)


def help_text(doc: str | None) -> str:
    """The docstring's paragraphs after the first, as plain text for --help (no reST backquotes)."""
    paragraphs = (doc or "").strip().split("\n\n")[1:]
    return re.sub(r"`+([^`]*)`+", r"\1", "\n\n".join(paragraphs))


def loadtester_url() -> str:
    """The loadtester to use when no ``--url`` is given."""
    from_env = os.environ.get("CANARIST_LOADTESTER_URL")
    if from_env:
        return from_env
    session = running_session()
    if session is not None and session.loadtester_url:
        return session.loadtester_url
    return DEFAULT_URL


def run(args: argparse.Namespace) -> int:
    if args.url is None:
        args.url = loadtester_url()
    return call_action(args, ACTIONS)
