"""`canarist loadtester`: run the flagger-loadtester compatible API server.

Flags accept Go's single-dash spelling too (``-port=8080 -timeout=1h``), so Flagger's loadtester
manifests keep working.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal

from canarist.loadtester.safety import DEFAULT_ALLOWED_COMMANDS
from canarist.loadtester.server import LoadTesterConfig, serve

log = logging.getLogger("canarist.loadtester")


def _duration(text: str) -> float:
    from canarist.durations import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"timeout must be positive, got {text!r}")
    return seconds


def _regexp(text: str) -> str:
    try:
        re.compile(text)
    except re.error as err:
        raise argparse.ArgumentTypeError(f"invalid regular expression {text!r}: {err}") from err
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "loadtester",
        help="run the loadtester API (flagger-loadtester compatible)",
        description="Run the loadtester: webhook tasks (cmd, bash), gates and rollback switches.",
        allow_abbrev=False,
    )
    parser.add_argument("--port", "-port", type=int, default=9090, help="listen port (default 9090)")
    parser.add_argument("--host", "-host", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    parser.add_argument(
        "--timeout", "-timeout", type=_duration, default=3600.0, help="per-task timeout (Go duration, 1h)"
    )
    parser.add_argument(
        "--namespace-regexp",
        "-namespace-regexp",
        type=_regexp,
        default="",
        help="only accept payloads whose namespace matches this regular expression",
    )
    parser.add_argument("--log-level", "-log-level", default="info", help="debug, info, warn, error")
    parser.add_argument(
        "--zap-encoding", "-zap-encoding", default="json", choices=["json", "console"], help="log format"
    )
    parser.add_argument(
        "--zap-replace-globals", "-zap-replace-globals", action="store_true", help=argparse.SUPPRESS
    )
    parser.add_argument("--token", "-token", default="", help="require 'Authorization: Bearer TOKEN'")
    parser.add_argument(
        "--allow-command",
        "-allow-command",
        action="append",
        default=None,
        metavar="PROGRAM",
        help=f"a program commands may run (repeatable; replaces the default {', '.join(DEFAULT_ALLOWED_COMMANDS)})",
    )
    parser.add_argument(
        "--allow-any-command",
        "-allow-any-command",
        action="store_true",
        help="run any command through sh -c / bash -c unchecked, as flagger-loadtester does (unsafe)",
    )
    parser.add_argument(
        "--proto-dir",
        "-proto-dir",
        action="append",
        default=None,
        metavar="DIR",
        help="a directory ghz may read --proto/--protoset/-i files from (repeatable; default none)",
    )
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> LoadTesterConfig:
    allowed = tuple(args.allow_command) if args.allow_command else DEFAULT_ALLOWED_COMMANDS
    return LoadTesterConfig(
        port=args.port,
        host=args.host,
        timeout_s=args.timeout,
        namespace_regexp=args.namespace_regexp,
        token=args.token,
        allowed_commands=allowed,
        allow_any_command=args.allow_any_command,
        proto_dirs=tuple(args.proto_dir or ()),
    )


def run(args: argparse.Namespace) -> int:
    from canarist.operator.logs import configure_logging

    configure_logging(level=args.log_level, fmt=args.zap_encoding)
    config = config_from_args(args)  # the loadtester logs its allow-list (or a WARNING) when it starts

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, stop.set)
        await serve(config, stop)

    try:
        asyncio.run(main())
    except OSError as err:
        log.error("cannot start the loadtester on %s:%s: %s", config.host, config.port, err.strerror or err)
        return 1
    return 0
