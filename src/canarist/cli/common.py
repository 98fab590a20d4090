"""What the commands that talk to a cluster share: one exit-code table (docs/cli.md, "Exit codes"), the
connection from ``--kubeconfig``/``--context``, and the one-sentence errors.

Not a ``cmd_`` module, so the parser does not take it for a command.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any

from canarist.kube.client import KubeClient
from canarist.kube.errors import ApiError, Gone, KubeError, NotAKubeconfig
from canarist.kube.resources import ResourceKind

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
    "states_of",
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


async def states_of(
    client: KubeClient,
    kind: ResourceKind,
    obj: dict[str, Any],
    *,
    what: str,
    reread: Callable[[], Awaitable[dict[str, Any]]],
) -> AsyncGenerator[dict[str, Any], None]:
    """Every new state of the object ``obj`` (``what`` names it in messages), watched from its
    resourceVersion; after a 410 Gone the state ``reread`` returns. Its deletion and a failed watch end
    the command with one sentence."""
    name = str(obj["metadata"]["name"])
    namespace = str(obj["metadata"].get("namespace") or "")
    version = str(obj["metadata"].get("resourceVersion") or "")
    while True:
        try:
            async for event in client.watch(
                kind,
                namespace=namespace,
                resource_version=version,
                field_selector=f"metadata.name={name}",
                timeout_seconds=300,
            ):
                meta = event.object.get("metadata") or {}
                version = str(meta.get("resourceVersion") or version)
                if event.type == "BOOKMARK" or meta.get("name") != name:
                    continue
                if event.type == "DELETED":
                    raise CliError(f"{what} was deleted", EXIT_NOT_FOUND)
                yield event.object
        except Gone:
            current = await reread()
            version = str(current["metadata"].get("resourceVersion") or "")
            yield current
        except ApiError as error:
            raise CliError(f"watching {what}: {error}", EXIT_UNREACHABLE) from error
        except KubeError as error:
            raise unreachable(error) from error
