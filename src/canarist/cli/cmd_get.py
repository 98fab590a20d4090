"""`canarist get canaries`: a table like `kubectl get canaries`, or the live view with ``--watch``.

Works against any cluster (``--kubeconfig``, ``--context``, ``-n/--namespace``, ``-A/--all-namespaces``) and
prints ``-o json|yaml|wide`` like kubectl; a named canary that does not exist exits 3 with kubectl's message,
an unusable kubeconfig or an unreachable API server exits 4 with one sentence. With ``--watch``
a terminal shows one panel per canary (phase, weight bar, metric values against thresholds, failed checks,
events); other outputs get one plain line per change. Metric values are the operator's
``flagger_canary_metric_analysis`` series, read from Prometheus when ``--metrics-server`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import yaml

from canarist.cli.common import EXIT_NOT_FOUND, CliError, connect, unreachable
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import ApiError, KubeError, NotFound
from canarist.kube.informer import Informer

if TYPE_CHECKING:  # the live view (``--watch``) is imported only when watching
    from canarist.sandbox.prometheus import PrometheusQuery


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "get", help="list canaries (like kubectl get canaries), or watch them live"
    )
    parser.add_argument(
        "resource", choices=["canaries", "canary", "canaries.flagger.app"], help="what to get"
    )
    parser.add_argument("name", nargs="?", default="", help="only this canary")
    parser.add_argument("--kubeconfig", default=None, help="path to a kubeconfig (default: $KUBECONFIG)")
    parser.add_argument("--context", default=None, help="the kubeconfig context (default: its current)")
    parser.add_argument(
        "-o", "--output", choices=["table", "wide", "json", "yaml"], default="table", help="output format"
    )
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the context's)")
    parser.add_argument("-A", "--all-namespaces", action="store_true", help="canaries of every namespace")
    parser.add_argument("-w", "--watch", action="store_true", help="keep watching, with the live view")
    parser.add_argument("--plain", action="store_true", help="with --watch: plain lines, never panels")
    parser.add_argument(
        "--metrics-server", default="", help="Prometheus URL scraping the operator (for metric values)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        client = connect(args.kubeconfig, args.context)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    namespace = None if args.all_namespaces else (args.namespace or _default_namespace(client))
    try:
        if args.watch:
            return asyncio.run(_watch(client, namespace, args))
        return asyncio.run(_table(client, namespace, args))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130


def _default_namespace(client: KubeClient) -> str:
    namespace = getattr(client, "namespace", None)
    return str(namespace) if namespace else "default"


def _selected(canaries: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in canaries if not name or (c.get("metadata") or {}).get("name") == name]


async def _fetch(client: KubeClient, namespace: str | None, name: str) -> list[dict[str, Any]]:
    """The canaries asked for; `CliError` for a missing named one (3) or an unreachable server (4)."""
    try:
        if name and namespace is not None:
            return [await client.get(kinds.CANARY, name, namespace=namespace)]
        return _selected(list((await client.list(kinds.CANARY, namespace=namespace)).items), name)
    except NotFound as error:
        raise CliError(
            f'Error from server (NotFound): canaries.flagger.app "{name}" not found', EXIT_NOT_FOUND
        ) from error
    except ApiError as error:
        raise CliError(f"Error from server: {error}", 1) from error
    except KubeError as error:
        raise unreachable(error) from error


async def _table(client: KubeClient, namespace: str | None, args: argparse.Namespace) -> int:
    try:
        canaries = await _fetch(client, namespace, args.name)
    finally:
        await client.close()
    if args.name and not canaries:  # -A with a name that no namespace has
        raise CliError(
            f'Error from server (NotFound): canaries.flagger.app "{args.name}" not found', EXIT_NOT_FOUND
        )
    if args.output in ("json", "yaml"):
        document: dict[str, Any] = (
            canaries[0]
            if args.name and len(canaries) == 1
            else {"apiVersion": "v1", "kind": "List", "items": canaries, "metadata": {"resourceVersion": ""}}
        )
        if args.output == "json":
            print(json.dumps(document, indent=4))
        else:
            print(yaml.safe_dump(document, sort_keys=False), end="")
        return 0
    if not canaries:
        where = "any namespace" if namespace is None else f"{namespace} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return 0
    print(canary_table(canaries, all_namespaces=namespace is None, wide=args.output == "wide"))
    return 0


def canary_table(canaries: Iterable[Mapping[str, Any]], *, all_namespaces: bool, wide: bool = False) -> str:
    """``kubectl get canaries`` columns: [NAMESPACE] NAME STATUS WEIGHT LASTTRANSITIONTIME; ``wide`` adds
    FAILEDCHECKS, ITERATIONS and REVISION (``status.lastAppliedSpec``) before LASTTRANSITIONTIME."""
    header = ["NAMESPACE"] if all_namespaces else []
    header += ["NAME", "STATUS", "WEIGHT"]
    header += ["FAILEDCHECKS", "ITERATIONS", "REVISION"] if wide else []
    header += ["LASTTRANSITIONTIME"]
    rows = [header]
    for canary in sorted(
        canaries, key=lambda c: ((c.get("metadata") or {}).get("namespace", ""), c["metadata"]["name"])
    ):
        meta = canary.get("metadata") or {}
        status = canary.get("status") or {}
        row = [str(meta.get("namespace") or "")] if all_namespaces else []
        row += [
            str(meta.get("name") or ""),
            str(status.get("phase") or ""),
            str(status.get("canaryWeight", 0)),
        ]
        if wide:
            row += [
                str(status.get("failedChecks", 0)),
                str(status.get("iterations", 0)),
                str(status.get("lastAppliedSpec") or ""),
            ]
        row += [str(status.get("lastTransitionTime") or "")]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


async def _watch(client: KubeClient, namespace: str | None, args: argparse.Namespace) -> int:
    from canarist.sandbox.liveview import LiveView, event_messages_for, snapshot
    from canarist.sandbox.prometheus import PrometheusQuery

    try:
        await _fetch(client, namespace, args.name)  # says at once when the server is unreachable
    except CliError:
        await client.close()
        raise
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    canaries = Informer(client, kinds.CANARY, namespace=namespace, name="get-canaries")
    events = Informer(client, kinds.EVENT, namespace=namespace, name="get-events")
    changed = asyncio.Event()

    def poke(*_: object) -> None:
        changed.set()

    canaries.add_handler(poke)
    events.add_handler(poke)
    prometheus = PrometheusQuery(args.metrics_server) if args.metrics_server else None
    try:
        await canaries.start()
        await events.start()
        try:
            async with asyncio.timeout(30):
                await canaries.wait_synced()
                await events.wait_synced()
        except TimeoutError as error:
            raise CliError("the Kubernetes API did not answer the watch within 30s", 4) from error
        with LiveView(live=False if args.plain else None) as view:
            while not stop.is_set():
                values = await _metric_values(prometheus) if prometheus is not None else {}
                all_events = events.list()
                snaps = []
                for canary in sorted(
                    _selected(canaries.list(), args.name),
                    key=lambda c: (c["metadata"].get("namespace", ""), c["metadata"]["name"]),
                ):
                    ns, name = canary["metadata"].get("namespace", "default"), canary["metadata"]["name"]
                    target = ((canary.get("spec") or {}).get("targetRef") or {}).get("name", name)
                    snaps.append(
                        snapshot(canary, event_messages_for(all_events, ns, name), values.get((ns, target)))
                    )
                view.update(snaps)
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await asyncio.wait(
                            [asyncio.ensure_future(changed.wait()), asyncio.ensure_future(stop.wait())],
                            return_when=asyncio.FIRST_COMPLETED,
                        )
    except KubeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await canaries.stop()
        await events.stop()
        await client.close()
    return 0


async def _metric_values(prometheus: PrometheusQuery) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    for labels, value in await prometheus.vector("flagger_canary_metric_analysis"):
        key = (labels.get("namespace", ""), labels.get("name", ""))
        out.setdefault(key, {})[labels.get("metric", "")] = value
    return out
