"""The state file of a running sandbox (`canarist sandbox up`, `canarist demo --keep`).

One sandbox per user at a time: the process that runs it *claims* the state file before it starts anything
(created with ``O_EXCL``, so two ``up`` racing cannot both win), fills it in once the components listen
(``state: running``, the kubeconfig, the URLs, the PIDs of its subprocesses) and removes it when it stops.
`canarist sandbox down` signals the PID it names and waits for that process to exit; `canarist sandbox
status` prints it; `canarist gate` reads the loadtester URL from it; `canarist sandbox exec` finds the
sandbox's cluster network (the directory of its generated hosts files) through it.

A file whose process is gone (killed with SIGKILL, a reboot) is *stale*: it does not block a new sandbox
and is removed by whoever finds it. A PID is only taken as the sandbox's while the process's start time
(``/proc/PID/stat``, field 22) is the one recorded, so a reused PID is not mistaken for it.

Where: ``$CANARIST_SANDBOX_STATE`` when set, else ``$XDG_RUNTIME_DIR/canarist/sandbox.json`` (a per-user
tmpfs on systemd machines, emptied at logout), else ``$XDG_CACHE_HOME/canarist/sandbox.json`` (default
``~/.cache/canarist/sandbox.json``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

__all__ = [
    "STATE_ENV",
    "AlreadyRunning",
    "Session",
    "claim",
    "describe",
    "process_running",
    "process_start_ticks",
    "read_session",
    "release",
    "running_session",
    "state_path",
    "stop_session",
    "write_session",
]

STATE_ENV = "CANARIST_SANDBOX_STATE"


@dataclass
class Session:
    """What the state file holds. ``state`` is ``starting`` until the sandbox listens, then ``running``."""

    pid: int
    start_ticks: int | None = None
    state: str = "starting"
    command: str = "sandbox up"
    provider: str = ""
    created_at: float = 0.0
    workdir: str = ""
    kubeconfig: str = ""
    gateway_url: str = ""
    prometheus_url: str = ""
    loadtester_url: str = ""
    #: PIDs of the sandbox's subprocesses by component (envoy, prometheus, operator).
    processes: dict[str, int] = field(default_factory=dict)
    #: ``name.ns:port`` -> the URL of that Service port (its ClusterIP, on which Envoy listens).
    services: dict[str, str] = field(default_factory=dict)
    #: the sandbox's cluster network: the directory of its per-namespace hosts files, and its address ranges
    cluster_net_dir: str = ""
    service_cidr: str = ""
    pod_cidr: str = ""

    @classmethod
    def for_this_process(cls, command: str, provider: str) -> Session:
        pid = os.getpid()
        return cls(
            pid=pid,
            start_ticks=process_start_ticks(pid),
            command=command,
            provider=provider,
            created_at=time.time(),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Session:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int):
            raise ValueError("not a sandbox state file (no pid)")
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def alive(self) -> bool:
        """The process that wrote this file still runs (same PID, same start time)."""
        if not process_running(self.pid):
            return False
        if self.start_ticks is None:
            return True
        return process_start_ticks(self.pid) == self.start_ticks


class AlreadyRunning(Exception):
    """Another live process holds the state file."""

    def __init__(self, session: Session, path: Path) -> None:
        super().__init__(f"a sandbox is already running (pid {session.pid}, state file {path})")
        self.session = session
        self.path = path


def state_path() -> Path:
    """Where the state file lives (see the module docstring)."""
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir() and os.access(runtime, os.W_OK | os.X_OK):
        return Path(runtime) / "canarist" / "sandbox.json"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "canarist" / "sandbox.json"


# ------------------------------------------------------------------------------------------------ processes


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (field 3, the state, first)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return text[text.rfind(")") + 2 :].split()


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None without /proc or without the process)."""
    rest = _proc_stat(pid)
    if rest is None or len(rest) < 20:
        return None
    return int(rest[19])  # field 22 of stat; ``rest`` starts at field 3


def process_running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (an exited child its parent has not reaped yet)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    rest = _proc_stat(pid)
    return rest is None or rest[0] not in ("Z", "X")


# ------------------------------------------------------------------------------------------------ the file


def read_session(path: Path | None = None) -> Session | None:
    """The session in the state file (None when there is none or it cannot be read as one)."""
    path = path or state_path()
    try:
        return Session.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return None


def running_session(path: Path | None = None) -> Session | None:
    """The session of a sandbox that still runs; a stale file is removed on the way."""
    path = path or state_path()
    session = read_session(path)
    if session is not None and session.alive():
        return session
    if session is None and _just_created(path):
        return None  # being written by the process that claimed it an instant ago
    if path.exists():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return None


def claim(session: Session, path: Path | None = None) -> Path:
    """Create the state file for ``session`` (raises `AlreadyRunning` when a live sandbox holds it)."""
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            holder = read_session(path)
            if holder is not None and holder.alive():
                raise AlreadyRunning(holder, path) from None
            if holder is None and _just_created(path):
                # Another process created it an instant ago and is writing it.
                time.sleep(0.2)
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w") as out:
            out.write(session.to_json())
        return path
    holder = read_session(path)
    if holder is not None and holder.alive():
        raise AlreadyRunning(holder, path)
    raise OSError(f"could not create the sandbox state file {path}")


def _just_created(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime < 2.0
    except FileNotFoundError:
        return False


def write_session(session: Session, path: Path | None = None) -> None:
    """Replace the state file's content (atomically) while it is ``session``'s own."""
    path = path or state_path()
    current = read_session(path)
    if current is not None and current.pid != session.pid:
        raise AlreadyRunning(current, path)
    temporary = path.with_name(f".{path.name}.{session.pid}.tmp")
    temporary.write_text(session.to_json())
    temporary.chmod(0o600)
    os.replace(temporary, path)


def release(pid: int, path: Path | None = None) -> None:
    """Remove the state file if process ``pid`` holds it."""
    path = path or state_path()
    current = read_session(path)
    if current is not None and current.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def stop_session(session: Session, timeout_s: float, path: Path | None = None) -> bool:
    """SIGTERM the sandbox's process and wait (polling /proc) up to ``timeout_s`` for it to exit; then the
    state file is removed if it still names that process. False when it still runs."""
    path = path or state_path()
    with contextlib.suppress(ProcessLookupError):
        os.kill(session.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while session.alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    release(session.pid, path)
    return True


def describe(session: Session, path: Path) -> list[str]:
    """Human lines for `canarist sandbox status`."""
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(session.created_at))
    lines = [
        f"sandbox {session.state} (pid {session.pid}, `canarist {session.command}`, provider "
        f"{session.provider or '-'}, since {started})",
        f"  state file:  {path}",
        f"  workdir:     {session.workdir or '-'}",
        f"  kubeconfig:  {session.kubeconfig or '-'}",
        f"  gateway:     {session.gateway_url or '-'}",
        f"  prometheus:  {session.prometheus_url or '-'}",
        f"  loadtester:  {session.loadtester_url or '-'}",
        f"  network:     Services {session.service_cidr or '-'}, pods {session.pod_cidr or '-'}",
    ]
    for name, pid in sorted(session.processes.items()):
        lines.append(f"  {name + ':':<12} pid {pid} ({'running' if process_running(pid) else 'exited'})")
    if session.services:
        lines.append("  services (ClusterIPs; Envoy listens on them):")
        lines += [f"    {name:<28} {url}" for name, url in sorted(session.services.items())]
    return lines
