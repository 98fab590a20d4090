"""`canarist demo`: run the local sandbox and play the seed walkthrough on it (see docs/sandbox.md).

With ``--keep`` the sandbox keeps running after the story, published in the same state file as
`canarist sandbox up`'s, so `canarist sandbox status|down` and `canarist gate` find it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
from pathlib import Path

from canarist.cli.cmd_sandbox import (
    Interrupted,
    StopSignals,
    canarist_command,
    claim_or_explain,
    hint_lines,
    hold,
    publish,
    quiet_cancellations,
    until,
)
from canarist.sandbox.demo import (
    FAULTS,
    DemoOptions,
    Sandbox,
    canary_service_port,
    missing_prerequisites,
    play_story,
    summary_lines,
)
from canarist.sandbox.liveview import LiveView
from canarist.sandbox.providers import provider_names
from canarist.sandbox.session import AlreadyRunning, Session, release, state_path, write_session


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the local sandbox (control plane, Envoy, Prometheus, operator) and the walkthrough",
        description=(
            "Start a local control plane, a real Envoy as the mesh, pods as local processes, a real "
            "Prometheus and the operator, on cluster networking (Services' ClusterIPs on loopback addresses, "
            "their names resolving for the sandbox's processes; see docs/sandbox.md); then play the "
            "walkthrough's manifests as written (podinfo, the loadtester's Deployment and Service, the "
            "Canary): a promotion, then a rollback on errors."
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
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave the sandbox running after the story, until `canarist sandbox down` or Ctrl-C",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to keep files; kept after the sandbox stops (default: a temp dir, removed)",
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
    # With --keep the sandbox outlives the story like `canarist sandbox up`'s, in the same state file:
    # claimed before anything starts, so a second one is refused at once.
    session: Session | None = None
    path = state_path()
    if args.keep:
        session = Session.for_this_process("demo --keep", args.provider)
        if not claim_or_explain(session, path):
            return 1
    try:
        return asyncio.run(demo(options, session, path))
    except KeyboardInterrupt:
        return 130
    finally:
        if session is not None:
            release(session.pid, path)


async def demo(options: DemoOptions, session: Session | None = None, path: Path | None = None) -> int:
    """Start, play, report, stop (or, with a ``session``, keep running until `canarist sandbox down`,
    Ctrl-C or SIGTERM, published in the state file at ``path``). The exit code."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_cancellations)
    stop = StopSignals(loop)
    interrupted = stop.event
    sandbox = Sandbox(options)
    view = LiveView(options.stream, live=options.live)
    path = path or state_path()
    code = 1
    try:
        with view:
            provider = sandbox.provider
            view.print(
                f"provider {provider.name}: operator -mesh-provider={provider.mesh_provider}, "
                f"examples/{provider.examples_dir}, user traffic Host {provider.host}"
            )
            view.print(f"starting the sandbox in {sandbox.workdir}")
            await until(sandbox.start(), interrupted)
            if session is not None:
                publish(sandbox, session, path)  # `canarist sandbox down` stops it from now on
            view.print(f"sandbox up in {sandbox.started_in_s:.1f}s; gateway {sandbox.gateway_url}")
            result = await until(play_story(sandbox, options, view), interrupted)
        for line in summary_lines(result):
            print(line, file=options.stream or sys.stdout)
        code = 0 if result.ok else 1
        if session is not None:
            publish(sandbox, session, path)
            _print_keep(sandbox, options, path)
            await hold(sandbox, session, path, interrupted)
            print(f"{stop.received or 'stop'}: stopping the sandbox", file=sys.stderr, flush=True)
    except Interrupted:
        print("interrupted; stopping the sandbox", file=sys.stderr)
        code = 130
    except (RuntimeError, OSError) as error:  # EnvoyError, PrometheusError, an operator that did not start
        print(f"canarist demo: {error}", file=sys.stderr)
        print(f"files and logs: {sandbox.workdir}", file=sys.stderr)
        code = 1
    finally:
        if session is not None:
            session.state = "stopping"
            with contextlib.suppress(OSError, AlreadyRunning):
                write_session(session, path)
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


def _print_keep(sandbox: Sandbox, options: DemoOptions, path: Path) -> None:
    out = options.stream or sys.stdout
    provider = sandbox.provider
    kubeconfig = shlex.quote(str(sandbox.kubeconfig))
    commands = [
        f"kubectl --kubeconfig {kubeconfig} -n test set image deployment/podinfo "
        "podinfod=quay.io/stefanprodan/podinfo:3.1.3",
        f"curl -H 'Host: {provider.host}' {sandbox.gateway_url}/",
    ]
    if provider.ab_header is not None:
        header, value = provider.ab_header
        commands.append(f"curl -H 'Host: {provider.host}' -H '{header}: {value}' {sandbox.gateway_url}/")
    port = canary_service_port(provider)
    canary_url = f"http://podinfo-canary{'' if port == 80 else f':{port}'}/status/500"
    commands.append(
        f"{canarist_command()} sandbox exec -n test -- curl {canary_url}   (as from a pod of namespace test)"
    )
    lines = ["", f"the sandbox ({provider.name}) keeps running:", *hint_lines(sandbox, path, commands)]
    lines.append("  services (ClusterIPs; Envoy listens on each Service port):")
    lines += [f"    {name:<28} {url}" for name, url in sandbox.service_urls().items()]
    print("\n".join(lines), file=out, flush=True)
