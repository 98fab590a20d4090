"""`canarist gate open|close|approve|check NAME.NS`: drive a loadtester's manual gate.

``open`` (alias ``approve``) lets a ``confirm-rollout``/``confirm-promotion`` hook pointing at
``/gate/check`` pass; ``close`` halts it again; ``check`` prints the state (exit 0 open, 1 closed).
"""

from __future__ import annotations

import argparse

from canarist.loadtester.client import add_switch_command, call_action

ACTIONS = {
    "open": ("/gate/open", "gate {canary} opened"),
    "approve": ("/gate/open", "gate {canary} opened"),
    "close": ("/gate/close", "gate {canary} closed"),
    "check": ("/gate/check", ""),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_switch_command(
        subparsers,
        "gate",
        ACTIONS,
        run,
        help="open, close or check a loadtester gate",
        description=__doc__.split("\n\n")[1],
        action_help="open (= approve), close or check",
    )


def run(args: argparse.Namespace) -> int:
    return call_action(args, ACTIONS)
