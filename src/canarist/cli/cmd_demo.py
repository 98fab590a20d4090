"""`canarist demo`: run the local sandbox and play the seed walkthrough on it (see docs/sandbox.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from canarist.sandbox.demo import (
    FAULTS,
    DemoOptions,
    Sandbox,
    missing_prerequisites,
    play_story,
    summary_lines,
)
from canarist.sandbox.liveview import LiveView
from canarist.sandbox.providers import provider_names

T = TypeVar("T")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the local sandbox (control plane, Envoy, Prometheus, operator) and the walkthrough",
        description=(
            "Start a local control plane, a real Envoy as the mesh, demo-app pods, a real Prometheus, the "
            "loadtester and the operator; then play the walkthrough: a promotion, then a rollback on errors."
        ),
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="analysis interval in seconds (default 2)"
    )
    parser.add_argument(
        "--metric-interval",
        default="10s",
        help="range of the metric queries (default 10s; the seed says 30s)",
    )
    parser.add_argument(
        "--fault",
        choices=FAULTS,
        default="status500",
        help="how the second release fails: status500 (curl /status/500 on the canary, as the walkthrough), "
        "errors (the canary pods fail 50%% of requests) or latency (the canary pods answer 1 s late)",
    )
    parser.add_argument(
        "--provider",
        choices=provider_names(),
        default="istio",
        help="the routing provider of the walkthrough: its CRDs, examples/<dir>/{canary,routing}.yaml, the "
        "operator's -mesh-provider and the Host of user traffic (default istio)",
    )
    parser.add_argument("--keep", action="store_true", help="leave everything running after the story")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where to keep files (default: a temp dir)"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="path of the HTML run report (default: canarist-demo-<provider>.html in the current directory)",
    )
    parser.add_argument("--plain", action="store_true", help="plain lines instead of the live panels")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    missing = missing_prerequisites(args.provider)
    if missing:
        print("canarist demo needs:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    report = args.report or Path.cwd() / f"canarist-demo-{args.provider.replace(':', '-')}.html"
    problem = unwritable(report)
    if problem:
        print(f"canarist demo: cannot write the report {report}: {problem}", file=sys.stderr)
        return 2
    options = DemoOptions(
        interval_s=args.interval,
        metric_interval=args.metric_interval,
        fault=args.fault,
        keep=args.keep,
        workdir=args.workdir,
        live=False if args.plain else None,
        report_path=report,
        provider=args.provider,
    )
    try:
        return asyncio.run(demo(options))
    except KeyboardInterrupt:
        return 130


async def demo(options: DemoOptions) -> int:
    """Start, play, report, stop (or keep running until Ctrl-C with --keep). The exit code."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_cancellations)
    interrupted = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupted.set)
    sandbox = Sandbox(options)
    view = LiveView(options.stream, live=options.live)
    code = 1
    try:
        with view:
            provider = sandbox.provider
            view.print(
                f"provider {provider.name}: operator -mesh-provider={provider.mesh_provider}, "
                f"examples/{provider.examples_dir}, user traffic Host {provider.host}"
            )
            view.print(f"starting the sandbox in {sandbox.workdir}")
            await _until(sandbox.start(), interrupted)
            view.print(f"sandbox up in {sandbox.started_in_s:.1f}s; gateway {sandbox.gateway_url}")
            result = await _until(play_story(sandbox, options, view), interrupted)
        for line in summary_lines(result):
            print(line, file=options.stream or sys.stdout)
        code = 0 if result.ok else 1
        if options.keep:
            _print_keep(sandbox, options)
            await interrupted.wait()
    except _Interrupted:
        print("interrupted; stopping the sandbox", file=sys.stderr)
        code = 130
    except (RuntimeError, OSError) as error:  # EnvoyError, PrometheusError, an operator that did not start
        print(f"canarist demo: {error}", file=sys.stderr)
        print(f"files and logs: {sandbox.workdir}", file=sys.stderr)
        code = 1
    finally:
        await sandbox.stop()
    return code


def unwritable(path: Path) -> str:
    """Why the report could not be written at ``path`` (``""``: it can), checked before the story starts."""
    if path.is_dir():
        return "it is a directory"
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if path.exists():
        return "" if os.access(path, os.W_OK) else "the file is not writable"
    return "" if os.access(parent, os.W_OK | os.X_OK) else f"{parent} is not writable"


def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Cancelled helper futures nobody awaited (the loadtester's output readers when hey is killed at
    shutdown) are not worth a traceback; everything else goes to the default handler."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


class _Interrupted(Exception):
    pass


async def _until(work: Coroutine[Any, Any, T], interrupted: asyncio.Event) -> T:
    """Run ``work`` unless Ctrl-C comes first (then cancel it and raise `_Interrupted`)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(interrupted.wait())
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise _Interrupted
    return task.result()


def _print_keep(sandbox: Sandbox, options: DemoOptions) -> None:
    out = options.stream or sys.stdout
    provider = sandbox.provider
    lines = [
        "",
        f"the sandbox ({provider.name}) keeps running (Ctrl-C stops it):",
        f"  export KUBECONFIG={sandbox.kubeconfig}",
        "  kubectl get canaries -w          # or: canarist get canaries --watch",
        "  kubectl -n test set image deployment/podinfo podinfod=quay.io/stefanprodan/podinfo:3.1.3",
        f"  proxy (gateway):   curl -H 'Host: {provider.host}' {sandbox.gateway_url}/",
    ]
    if provider.ab_header is not None:
        header, value = provider.ab_header
        lines.append(
            f"  A/B request:       curl -H 'Host: {provider.host}' -H '{header}: {value}' {sandbox.gateway_url}/"
        )
    lines += [
        f"  prometheus:        {sandbox.prometheus.url}",
        f"  loadtester:        {sandbox.loadtester.url}",
        "  services (one Envoy listener per Service port, like a ClusterIP):",
    ]
    lines += [f"    {name:<28} {url}" for name, url in sandbox.service_urls().items()]
    lines.append(f"  files and logs:    {sandbox.workdir}")
    print("\n".join(lines), file=out, flush=True)
