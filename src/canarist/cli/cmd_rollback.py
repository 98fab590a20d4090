"""`canarist rollback open|close|check NAME.NS`: drive a loadtester's rollback switch.

A ``type: rollback`` webhook pointing at ``/rollback/check`` rolls the canary back once the switch is open.
"""

from __future__ import annotations

import argparse

from canarist.loadtester.client import add_common, call

ACTIONS = {
    "open": ("/rollback/open", "rollback {canary} opened"),
    "close": ("/rollback/close", "rollback {canary} closed"),
    "check": ("/rollback/check", ""),
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="open, close or check a loadtester rollback switch",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("action", choices=list(ACTIONS), help="open, close or check")
    add_common(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    path, done = ACTIONS[args.action]
    return call(args, path, done)
