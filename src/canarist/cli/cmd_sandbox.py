"""`canarist sandbox up|down|status|exec`: the local sandbox with no story, to bring your own manifests to.

``up`` starts what `canarist demo` starts (the local control plane with the flagger CRDs and those of the
provider, Envoy, Prometheus, the pods and the operator, on cluster networking), applies nothing (not even
the loadtester: `kubectl apply -f examples/podinfo/loadtester.yaml` as the walkthrough installs it), prints
the kubeconfig and the URLs, writes the state file (`canarist.sandbox.session`) and runs
until ``down``, Ctrl-C, SIGTERM or SIGHUP. ``down`` signals that process and waits for it to exit;
``status`` prints the state file; ``exec -n NS -- CMD...`` runs a command on this machine with the names a
pod of NS resolves. `canarist demo --keep` leaves the same kind of running sandbox behind (same state file).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, TypeVar

from canarist.sandbox import cluster_net
from canarist.sandbox.demo import EXAMPLES, NAMESPACE, DemoOptions, Sandbox, missing_prerequisites
from canarist.sandbox.providers import provider_names
from canarist.sandbox.session import (
    AlreadyRunning,
    Session,
    claim,
    describe,
    read_session,
    release,
    running_session,
    state_path,
    stop_session,
    write_session,
)

T = TypeVar("T")

#: How often a running sandbox refreshes the services and PIDs in its state file.
REFRESH_S = 2.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run the local sandbox with no story (up), stop it (down), show it (status), run a command "
        "with its names (exec)",
        description=(
            "up: start the local sandbox (control plane, Envoy, Prometheus, pods, operator) with "
            "nothing applied, print the kubeconfig and the URLs, and run until `canarist sandbox down` or "
            "Ctrl-C. down: stop it and wait until it is gone. status: print it. exec: run a command with the "
            "names a pod of a namespace sees. `canarist demo --keep` leaves the same running sandbox behind."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = actions.add_parser(
        "up",
        help="start the sandbox and keep it running until `canarist sandbox down` or Ctrl-C",
        description="Start the local sandbox (control plane, Envoy, Prometheus, pods, operator) "
        "with nothing applied (apply examples/podinfo/loadtester.yaml for the walkthrough's loadtester), print the kubeconfig and the URLs, and keep running until "
        "`canarist sandbox down`, Ctrl-C or SIGTERM.",
    )
    up.add_argument(
        "--provider",
        choices=provider_names(),
        default="istio",
        help="the routing provider: its CRDs and the operator's -mesh-provider (default istio)",
    )
    up.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to keep the kubeconfig, logs and data; kept after `down` (default: a temp dir, removed)",
    )
    up.add_argument(
        "--interval",
        type=float,
        default=2.0,
        help="the operator's control-loop interval and floor of analysis intervals, in seconds (default 2)",
    )
    up.set_defaults(handler=run_up)

    down = actions.add_parser("down", help="stop the running sandbox and wait until it is gone")
    down.add_argument(
        "--timeout", type=float, default=90.0, help="seconds to wait for it to exit (default 90)"
    )
    down.set_defaults(handler=run_down)

    status = actions.add_parser("status", help="print the running sandbox's state (exit 1: none)")
    status.add_argument("--json", action="store_true", help="the state file as JSON")
    status.set_defaults(handler=run_status)

    run = actions.add_parser(
        "exec",
        help="run a command on this machine with the names a pod of NAMESPACE sees",
        usage="canarist sandbox exec [-n NAMESPACE] -- CMD [ARGS...]",
        description="Run CMD on this machine as a pod of NAMESPACE of the running sandbox resolves names: "
        "`name` (a Service of NAMESPACE), `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local` are the "
        "Services' ClusterIPs, other names do not resolve. stdin, stdout, stderr and the terminal are "
        "CMD's; the exit status is CMD's. Example: canarist sandbox exec -n test -- curl "
        "http://podinfo-canary:9898/status/500",
    )
    run.add_argument(
        "-n", "--namespace", default=NAMESPACE, help=f"the pod's namespace (default {NAMESPACE})"
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    run.set_defaults(handler=run_exec)


# ------------------------------------------------------------------------------------------------ up


def run_up(args: argparse.Namespace) -> int:
    missing = missing_prerequisites(args.provider)
    if missing:
        print("canarist sandbox up needs:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2
    options = DemoOptions(
        interval_s=args.interval,
        workdir=args.workdir,
        provider=args.provider,
        live=False,
    )
    path = state_path()
    session = Session.for_this_process("sandbox up", args.provider)
    if not claim_or_explain(session, path):
        return 1
    # Until asyncio's handlers are installed, SIGTERM stops like Ctrl-C (the state file is released).
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return asyncio.run(up(options, session, path))
    except KeyboardInterrupt:
        return 130
    finally:
        release(session.pid, path)
        signal.signal(signal.SIGTERM, previous)


def claim_or_explain(session: Session, path: Path) -> bool:
    """Claim the state file; when another sandbox holds it (or it cannot be written) say so on stderr."""
    try:
        claim(session, path)
    except AlreadyRunning as busy:
        other = busy.session
        print(
            f"a sandbox is already running (pid {other.pid}, `canarist {other.command}`, state "
            f"{other.state}); state file {path}",
            file=sys.stderr,
        )
        if other.kubeconfig:
            print(f"  kubeconfig: {other.kubeconfig}", file=sys.stderr)
        print(f"  stop it with: {canarist_command()} sandbox down", file=sys.stderr)
        return False
    except OSError as error:
        print(f"cannot write the sandbox state file {path}: {error}", file=sys.stderr)
        return False
    return True


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def up(options: DemoOptions, session: Session, path: Path, out: IO[str] | None = None) -> int:
    """Start the sandbox, publish it in the state file, print how to use it, run until a stop signal."""
    out = out or sys.stdout
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(quiet_cancellations)
    stop = StopSignals(loop)
    sandbox = Sandbox(options)
    code = 0
    try:
        print(f"starting the sandbox ({sandbox.provider.name}) in {sandbox.workdir}", file=out, flush=True)
        await until(sandbox.start(), stop.event)
        publish(sandbox, session, path)
        lines = [f"sandbox up in {sandbox.started_in_s:.1f}s ({sandbox.provider.name}), nothing applied:"]
        lines += hint_lines(sandbox, path)
        print("\n".join(lines), file=out, flush=True)
        await hold(sandbox, session, path, stop.event)
        print(f"{stop.received or 'stop'}: stopping the sandbox", file=sys.stderr, flush=True)
    except Interrupted:
        print(f"{stop.received}: stopping the sandbox before it was up", file=sys.stderr, flush=True)
    except (RuntimeError, OSError) as error:  # EnvoyError, PrometheusError, an operator that did not start
        print(f"canarist sandbox up: {error}", file=sys.stderr)
        print(f"files and logs: {sandbox.workdir}", file=sys.stderr)
        code = 1
    finally:
        session.state = "stopping"
        with contextlib.suppress(OSError, AlreadyRunning):
            write_session(session, path)
        await sandbox.stop()
    return code


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP set one event (and name the signal) instead of killing the process."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.event = asyncio.Event()
        self.received = ""
        for signum in self.SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        self.received = signal.Signals(signum).name
        self.event.set()


def publish(sandbox: Sandbox, session: Session, path: Path) -> None:
    """Write the running sandbox's addresses, files and PIDs into its state file."""
    session.state = "running"
    session.workdir = str(sandbox.workdir)
    session.kubeconfig = str(sandbox.kubeconfig)
    session.gateway_url = sandbox.gateway_url
    session.prometheus_url = sandbox.prometheus.url
    session.cluster_net_dir = str(sandbox.net.dir) if sandbox.net is not None else ""
    session.service_cidr = sandbox.service_cidr
    session.pod_cidr = sandbox.pod_cidr
    _refresh(sandbox, session)
    write_session(session, path)


def _refresh(sandbox: Sandbox, session: Session) -> bool:
    """Update the PIDs and services of ``session``; whether they changed."""
    processes = {
        name: pid
        for name, pid in (
            ("envoy", sandbox.envoy.pid),
            ("prometheus", sandbox.prometheus.pid),
            ("operator", sandbox.operator.pid if sandbox.operator is not None else 0),
        )
        if pid
    }
    services = sandbox.service_urls() if sandbox.mesh is not None else {}
    # the loadtester is a workload someone applies (or deletes) at any time: its Service's address
    loadtester = sandbox.loadtester_url
    changed = (processes, services, loadtester) != (
        session.processes,
        session.services,
        session.loadtester_url,
    )
    session.processes, session.services, session.loadtester_url = processes, services, loadtester
    return changed


async def hold(sandbox: Sandbox, session: Session, path: Path, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set, keeping the state file's services and PIDs current."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), REFRESH_S)
        if not stop.is_set() and _refresh(sandbox, session):
            with contextlib.suppress(OSError, AlreadyRunning):
                write_session(session, path)


def canarist_command() -> str:
    """How to run this canarist from a shell, as printed in hints: ``canarist`` when that is what PATH
    finds, else the full path of the console script, else ``<python> -m canarist``."""
    on_path = shutil.which("canarist")
    candidates = []
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "canarist" and argv0.is_file():
        candidates.append(argv0.absolute())
    candidates.append(Path(sys.executable).parent / "canarist")  # the console script of this environment
    for script in candidates:
        if script.is_file():
            if on_path is not None and Path(on_path).resolve() == script.resolve():
                return "canarist"
            return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m canarist"


def hint_lines(sandbox: Sandbox, path: Path, commands: Sequence[str] = ()) -> list[str]:
    """Commands that work as printed (the kubeconfig on every kubectl line, canarist by a path that runs),
    ``commands`` after canarist's own, then the addresses."""
    canarist = canarist_command()
    kubeconfig = shlex.quote(str(sandbox.kubeconfig))
    loadtester = sandbox.loadtester_url
    if loadtester:
        gate = [
            f"  {canarist} gate open podinfo.test --url {loadtester}",
            "      (without --url, `canarist gate` uses the loadtester of the running sandbox)",
            f"  {canarist} sandbox exec -n test -- curl -s http://flagger-loadtester/healthz   (names as a pod of test sees them)",
            f"  kubectl --kubeconfig {kubeconfig} -n test logs deployment/flagger-loadtester   (hey and curl of the webhooks)",
        ]
    else:
        manifests = shlex.quote(str(EXAMPLES))
        gate = [
            f"  kubectl --kubeconfig {kubeconfig} apply -f {manifests}/namespace.yaml -f {manifests}/loadtester.yaml",
            "      (the walkthrough's loadtester, flagger-loadtester.test; then `canarist gate` finds it)",
            f"  {canarist} sandbox exec -n istio-system -- curl -s http://prometheus:9090/-/ready   (names as a pod of istio-system sees them)",
        ]
    return [
        f"  export KUBECONFIG={kubeconfig}",
        f"  kubectl --kubeconfig {kubeconfig} get canaries -A --watch",
        f"  {canarist} get canaries -A --watch --kubeconfig {kubeconfig}",
        *gate,
        *(f"  {command}" for command in commands),
        *gateway_lines(sandbox, kubeconfig),
        f"  prometheus:  {sandbox.prometheus.url}",
        f"  loadtester:  {loadtester or '- (none applied yet)'}",
        f"  state:       {path}   ({canarist} sandbox status)",
        f"  files, logs: {sandbox.workdir}",
        f"  stop it:     {canarist} sandbox down   (or Ctrl-C here)",
    ]


def gateway_lines(sandbox: Sandbox, kubeconfig: str) -> list[str]:
    """The gateway's URL, and for a provider with an ingress Service how its tutorial finds the address."""
    provider = sandbox.provider
    gateway = provider.gateway
    lines = [f"  gateway:     {sandbox.gateway_url}   (routes by Host, e.g. Host: {provider.host})"]
    if gateway is not None:
        lines.append(
            f"      = svc/{gateway.name} in {gateway.namespace}: GATEWAY_IP=$(kubectl --kubeconfig {kubeconfig} "
            f"-n {gateway.namespace} get svc/{gateway.name} -ojson | jq -r .status.loadBalancer.ingress[0].ip)"
        )
    return lines


def quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Cancelled helper futures nobody awaited (the loadtester's output readers when hey is killed at
    shutdown) are not worth a traceback; everything else goes to the default handler."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


class Interrupted(Exception):
    """A stop signal came while a step was still running."""


async def until(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T:
    """Run ``work`` unless a stop signal comes first (then cancel it and raise `Interrupted`)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise Interrupted
    return task.result()


# ------------------------------------------------------------------------------------------------ down


def run_down(args: argparse.Namespace) -> int:
    path = state_path()
    session = read_session(path)
    if session is None or not session.alive():
        existed = path.exists()
        running_session(path)  # removes a stale file
        if session is not None:
            why = f"removed the stale state file {path} of pid {session.pid}, which is gone"
        elif existed:
            why = f"{path} is not a sandbox state file"
        else:
            why = f"no state file {path}"
        print(f"no sandbox is running ({why})", file=sys.stderr)
        return 1
    print(f"stopping the sandbox (pid {session.pid}, `canarist {session.command}`)", flush=True)
    started = time.monotonic()
    if not stop_session(session, args.timeout, path):
        print(
            f"the sandbox (pid {session.pid}) is still running after {args.timeout:g}s; "
            f"`kill -KILL {session.pid}` forces it (its Envoy, Prometheus and operator then keep running: "
            f"pids {', '.join(str(p) for p in session.processes.values()) or '-'})",
            file=sys.stderr,
        )
        return 1
    workdir = Path(session.workdir) if session.workdir else None
    kept = f"; kept {workdir}" if workdir is not None and workdir.exists() else ""
    print(f"sandbox stopped in {time.monotonic() - started:.1f}s{kept}")
    return 0


# ------------------------------------------------------------------------------------------------ exec


def run_exec(args: argparse.Namespace) -> int:
    """Replace this process with CMD wrapped in the running sandbox's cluster network (so the terminal,
    the standard streams and the exit status are CMD's own)."""
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("usage: canarist sandbox exec [-n NAMESPACE] -- CMD [ARGS...]", file=sys.stderr)
        return 2
    path = state_path()
    session = running_session(path)
    if session is None:
        print(
            f"no sandbox is running (state file {path}); start one with: {canarist_command()} sandbox up",
            file=sys.stderr,
        )
        return 1
    directory = session.cluster_net_dir
    if not directory or not Path(directory).is_dir():
        print(
            f"the running sandbox (pid {session.pid}) publishes no cluster network in {path}; "
            f"restart it with this canarist ({canarist_command()} sandbox down, then up)",
            file=sys.stderr,
        )
        return 1
    try:
        services = cluster_net.read_services(directory)
        namespaces = sorted({s.namespace for s in services})
        if args.namespace not in namespaces:
            print(
                f"namespace {args.namespace!r} has no Services in the sandbox (pid {session.pid}); "
                f"namespaces with Services: {', '.join(namespaces) or 'none'}",
                file=sys.stderr,
            )
            return 1
        argv = cluster_net.wrap_command(command, args.namespace, directory)
    except (cluster_net.ClusterNetError, ValueError) as error:
        print(f"canarist sandbox exec: {error}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        print(f"canarist sandbox exec: cannot run {argv[0]}: {error.strerror or error}", file=sys.stderr)
        return 126
    return 0  # not reached: execvp replaced this process


# ------------------------------------------------------------------------------------------------ status


def run_status(args: argparse.Namespace) -> int:
    path = state_path()
    session = running_session(path)
    if session is None:
        print(f"no sandbox is running (state file {path})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(session), indent=2, sort_keys=True))
    else:
        print("\n".join(describe(session, path)))
    return 0
