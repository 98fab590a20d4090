"""`canarist operator`: run the operator (kubeconfig or in-cluster), with Flagger's flags."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

import yaml

from canarist.kube.client import KubeClient
from canarist.kube.errors import KubeError
from canarist.operator.logs import configure_logging
from canarist.operator.runtime import EXIT_FAILED, EXIT_KUBECONFIG, Operator
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
        return int(getattr(stop, "exit_status", EXIT_FAILED))


def kubeconfig_problem(path: str) -> str | None:
    """Why ``path`` cannot be a kubeconfig (one sentence saying what to do), or None when it may be one."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return (
            f"-kubeconfig {path}: cannot read it ({error.strerror or error}): pass a readable kubeconfig file"
        )
    try:
        doc = yaml.safe_load(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError):
        return f"-kubeconfig {path}: not a kubeconfig (not YAML): pass the file kubectl uses (~/.kube/config)"
    if not isinstance(doc, dict) or not any(
        key in doc for key in ("clusters", "contexts", "current-context")
    ):
        return (
            f"-kubeconfig {path}: not a kubeconfig (no clusters, contexts or current-context): pass the file "
            "kubectl uses (~/.kube/config)"
        )
    return None


def _startup_api_timeout() -> float | None:
    value = os.environ.get("CANARIST_STARTUP_API_TIMEOUT", "")
    try:
        return float(value) if value else None
    except ValueError:
        return None


async def _serve(settings: OperatorSettings) -> int:
    if settings.kubeconfig:
        problem = kubeconfig_problem(settings.kubeconfig)
        if problem is not None:
            log.error(problem)
            return EXIT_KUBECONFIG
    try:
        client = KubeClient.connect(settings.kubeconfig or None, server=settings.master or None)
    except KubeError as error:
        log.error("cannot connect to Kubernetes: %s: pass a working -kubeconfig or -master", error)
        return EXIT_KUBECONFIG
    except (AttributeError, TypeError, KeyError, ValueError) as error:  # a kubeconfig of the wrong shape
        log.error("the kubeconfig is not usable (%s): pass the file kubectl uses (~/.kube/config)", error)
        return EXIT_KUBECONFIG
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    operator = Operator(settings, client)
    timeout = _startup_api_timeout()
    if timeout is not None:
        operator.crd_timeout_s = timeout
    try:
        await operator.run(stop)
    finally:
        await client.close()
    return 0
