"""`canarist rollback open|close|check NAME.NS`: drive a loadtester's rollback switch.

A ``type: rollback`` webhook pointing at ``/rollback/check`` rolls the canary back once the switch is open.
"""

from __future__ import annotations

import argparse

from canarist.loadtester.client import add_switch_command, call_action

ACTIONS = {
    "open": ("/rollback/open", "rollback {canary} opened"),
    "close": ("/rollback/close", "rollback {canary} closed"),
    "check": ("/rollback/check", ""),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_switch_command(
        subparsers,
        "rollback",
        ACTIONS,
        run,
        help="open, close or check a loadtester rollback switch",
        description=__doc__.split("\n\n")[1],
        action_help="open, close or check",
    )


def run(args: argparse.Namespace) -> int:
    return call_action(args, ACTIONS)
