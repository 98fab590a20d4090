"""`canarist localcluster`: run the local control plane in the foreground and write a kubeconfig."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from canarist.localcluster import LocalCluster
from canarist.localcluster.crds import PROVIDER_CRDS, provider_names
from canarist.localcluster.faults import Faults, parse_error_spec


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "localcluster",
        help="run a local Kubernetes-API-compatible control plane (for kubectl, tests and the sandbox)",
        description="Serve the Kubernetes API in memory on plain HTTP, write a kubeconfig and wait for Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free port)")
    parser.add_argument(
        "--kubeconfig",
        default="./.canarist/kubeconfig",
        help="where to write the kubeconfig (default ./.canarist/kubeconfig)",
    )
    parser.add_argument(
        "--readiness-delay",
        type=float,
        default=0.2,
        help="seconds until a rolled-out Deployment/DaemonSet becomes ready (default 0.2)",
    )
    parser.add_argument(
        "--istio-crds",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="install minimal networking.istio.io CRDs (default on)",
    )
    parser.add_argument(
        "--provider-crds",
        nargs="?",
        const="all",
        default="",
        metavar="NAMES",
        help="install routing providers' CRDs: all (the default with no value) or a comma-separated list of "
        f"{', '.join(PROVIDER_CRDS)}",
    )
    parser.add_argument("--history-size", type=int, default=10_000, help="watch events kept for resuming")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to every resource request")
    faults.add_argument(
        "--error-rate",
        action="append",
        default=[],
        metavar="VERB:CODE:RATE",
        help="answer CODE (403, 409, 429, 500, 503) to a fraction RATE of VERB requests, e.g. patch:409:0.2; repeatable",
    )
    faults.add_argument(
        "--drop-watch-after-events", type=int, default=None, help="end watch streams after N events"
    )
    faults.add_argument(
        "--drop-watch-after-seconds", type=float, default=None, help="end watch streams after S seconds"
    )
    faults.add_argument("--fault-seed", type=int, default=None, help="seed for the random fault choices")
    parser.set_defaults(handler=run)


def build_faults(args: argparse.Namespace) -> Faults:
    faults = Faults(latency=args.latency)
    if args.fault_seed is not None:
        faults.update({"seed": args.fault_seed})
    for spec in args.error_rate:
        rule = parse_error_spec(spec)
        faults.add_error(rule.verb, rule.code, rule.rate)
    faults.drop_watch_after_events = args.drop_watch_after_events
    faults.drop_watch_after_seconds = args.drop_watch_after_seconds
    return faults


def parse_provider_crds(value: str) -> bool | list[str]:
    """`--provider-crds` → LocalCluster's install_provider_crds (ValueError on an unknown name)."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        return False
    if names == ["all"]:
        return True
    return provider_names(names)


async def serve(args: argparse.Namespace, faults: Faults, providers: bool | list[str] = False) -> int:
    cluster = LocalCluster(
        readiness_delay=args.readiness_delay,
        install_istio_crds=args.istio_crds,
        install_provider_crds=providers,
        history_size=args.history_size,
        faults=faults,
    )
    try:
        url = await cluster.start(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    path = cluster.write_kubeconfig(Path(args.kubeconfig)).resolve()
    print(f"canarist localcluster serving the Kubernetes API at {url}", flush=True)
    print(f"kubeconfig written to {path}")
    print("use it with:")
    print(f"  export KUBECONFIG={path}")
    print("  kubectl get namespaces")
    print("stop with Ctrl-C", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await cluster.stop()
        print("canarist localcluster stopped", flush=True)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        faults = build_faults(args)
        providers = parse_provider_crds(getattr(args, "provider_crds", "") or "")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(args, faults, providers))
