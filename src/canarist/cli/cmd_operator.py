"""`canarist operator`: run the operator (kubeconfig or in-cluster), with Flagger's flags."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from canarist.kube.client import KubeClient
from canarist.kube.errors import KubeError
from canarist.operator.logs import configure_logging
from canarist.operator.runtime import Operator
from canarist.operator.settings import OperatorSettings, add_operator_flags, settings_from_args

log = logging.getLogger("canarist")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the canarist operator",
        description="Run the operator. Flags keep Flagger's names; -flag and --flag both work.",
        allow_abbrev=False,
    )
    add_operator_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(_serve(settings))
    except SystemExit as stop:
        log.error(str(stop.code))
        return 1


async def _serve(settings: OperatorSettings) -> int:
    try:
        client = KubeClient.connect(settings.kubeconfig or None, server=settings.master or None)
    except KubeError as error:
        log.error("cannot connect to Kubernetes: %s", error)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await Operator(settings, client).run(stop)
    finally:
        await client.close()
    return 0
