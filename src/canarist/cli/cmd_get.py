"""`canarist get canaries`: a table like `kubectl get canaries`, or the live view with ``--watch``.

Works against any cluster (``--kubeconfig``, ``-n/--namespace``, ``-A/--all-namespaces``). With ``--watch``
a terminal shows one panel per canary (phase, weight bar, metric values against thresholds, failed checks,
events); other outputs get one plain line per change. Metric values are the operator's
``flagger_canary_metric_analysis`` series, read from Prometheus when ``--metrics-server`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import KubeError
from canarist.kube.informer import Informer
from canarist.sandbox.liveview import LiveView, canary_table, event_messages_for, snapshot
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
        client = KubeClient.connect(args.kubeconfig)
    except (KubeError, OSError, ValueError) as error:
        print(f"cannot connect to Kubernetes: {error}", file=sys.stderr)
        return 1
    namespace = None if args.all_namespaces else (args.namespace or _default_namespace(client))
    try:
        if args.watch:
            return asyncio.run(_watch(client, namespace, args))
        return asyncio.run(_table(client, namespace, args))
    except KeyboardInterrupt:
        return 130


def _default_namespace(client: KubeClient) -> str:
    namespace = getattr(client, "namespace", None)
    return str(namespace) if namespace else "default"


def _selected(canaries: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [c for c in canaries if not name or (c.get("metadata") or {}).get("name") == name]


async def _table(client: KubeClient, namespace: str | None, args: argparse.Namespace) -> int:
    try:
        listed = await client.list(kinds.CANARY, namespace=namespace)
    except KubeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    canaries = _selected(list(listed.items), args.name)
    if not canaries:
        where = "any namespace" if namespace is None else f"{namespace} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return 0
    print(canary_table(canaries, all_namespaces=namespace is None))
    return 0


async def _watch(client: KubeClient, namespace: str | None, args: argparse.Namespace) -> int:
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
        async with asyncio.timeout(30):
            await canaries.wait_synced()
            await events.wait_synced()
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
