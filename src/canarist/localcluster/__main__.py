"""`python -m canarist.localcluster [flags]`: the `canarist localcluster` command without the other commands'
imports (the fastest way to start the local control plane)."""

from __future__ import annotations

import argparse
import sys

from canarist.cli.cmd_localcluster import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m canarist.localcluster")
    subparsers = parser.add_subparsers(dest="command")
    register(subparsers)
    args = parser.parse_args(["localcluster", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
