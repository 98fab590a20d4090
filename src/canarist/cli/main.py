"""The `canarist` command line.

Each subcommand lives in its own module `canarist.cli.cmd_<name>` exposing
``register(subparsers) -> None``; the parser is assembled from whatever modules
exist, so adding a command touches one new file and nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import canarist.cli as cli_package

Handler = Callable[[argparse.Namespace], int]


def program_name(argv0: str) -> str:
    """``canarist``, or ``kubectl canarist`` when run as the kubectl plugin (kubectl runs ``kubectl-canarist``),
    so usage lines and ``--help`` show what the user typed."""
    return "kubectl canarist" if Path(argv0).name == "kubectl-canarist" else "canarist"


def build_parser(prog: str = "canarist") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Progressive delivery for Kubernetes (a drop-in for Flagger).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(cli_package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("cmd_"):
            module = importlib.import_module(f"{cli_package.__name__}.{module_info.name}")
            module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(program_name(sys.argv[0]))
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
