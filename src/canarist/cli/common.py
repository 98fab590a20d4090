"""What the commands that talk to a cluster share: one exit-code table (docs/cli.md, "Exit codes"), the
connection from ``--kubeconfig``/``--context``, and the one-sentence errors.

Not a ``cmd_`` module, so the parser does not take it for a command.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from canarist.kube.client import KubeClient
from canarist.kube.errors import KubeError, NotAKubeconfig

__all__ = [
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_SUCCEEDED",
    "EXIT_TIMEOUT",
    "EXIT_UNREACHABLE",
    "CliError",
    "connect",
    "not_found",
    "run_against_cluster",
    "unreachable",
]

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_TIMEOUT = 2
EXIT_NOT_FOUND = 3
EXIT_UNREACHABLE = 4


class CliError(Exception):
    """A failure the command reports as one sentence with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def connect(kubeconfig: str | None, context: str | None) -> KubeClient:
    """A client for the kubeconfig and context, or `CliError` (exit 4) saying why there is none."""
    try:
        return KubeClient.connect(kubeconfig, context)
    except (KubeError, OSError, ValueError, TypeError, AttributeError, KeyError) as error:
        where = kubeconfig or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
        if isinstance(error, KubeError | OSError) and not isinstance(error, NotAKubeconfig):
            message = f"cannot use {where} to reach Kubernetes ({error}); pass a valid file with --kubeconfig"
        else:
            message = (
                f"{where} is not a kubeconfig (a YAML mapping of clusters, contexts and users); "
                "pass a valid file with --kubeconfig"
            )
        raise CliError(message, EXIT_UNREACHABLE) from error


def unreachable(error: KubeError) -> CliError:
    return CliError(f"cannot reach the Kubernetes API ({error}); check the cluster is up", EXIT_UNREACHABLE)


def not_found(name: str, namespace: str) -> CliError:
    return CliError(f'canary "{name}" not found in namespace "{namespace}"', EXIT_NOT_FOUND)


def run_against_cluster(
    args: argparse.Namespace, body: Callable[[KubeClient, str], Coroutine[Any, Any, int]]
) -> int:
    """Connect with ``--kubeconfig``/``--context``, take ``-n`` (else the context's namespace), and run
    ``body(client, namespace)``; a `CliError` is one line on stderr and its exit code, Ctrl-C exits 130."""
    try:
        client = connect(args.kubeconfig, args.context)
        namespace = args.namespace or str(getattr(client, "namespace", "") or "default")
        return asyncio.run(body(client, namespace))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130
