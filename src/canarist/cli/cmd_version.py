"""`canarist version`: print the version, in Flagger's format."""

from __future__ import annotations

import argparse

from canarist import REVISION, __version__


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("version", help="print the canarist version")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(f"canarist version {__version__} revision {REVISION}")
    return 0
