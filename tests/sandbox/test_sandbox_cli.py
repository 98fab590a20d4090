"""`canarist sandbox up|status|down` as a user runs them: real processes, real signals, real kubectl.

`up` runs as a subprocess with its own state file (``CANARIST_SANDBOX_STATE``), its own ``TMPDIR`` (to see
that nothing is left behind) and a PATH without canarist on it (so the hints must name it by its path).
Two sandbox starts in the module: one stopped by `canarist sandbox down`, one by SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from canarist.sandbox.session import Session, process_start_ticks

BIN = Path(sys.executable).parent
CANARIST = BIN / "canarist"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 60.0


@dataclass
class Env:
    root: Path
    state: Path
    tmpdir: Path
    vars: dict[str, str]

    def run(self, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.vars) if path is None else {**self.vars, "PATH": path}
        return subprocess.run(
            [str(CANARIST), *args], env=env, capture_output=True, text=True, timeout=STOP_TIMEOUT_S + 30
        )


@pytest.fixture
def env(tmp_path: Path) -> Env:
    assert CANARIST.is_file(), f"the console script {CANARIST} is missing (pip install -e .)"
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != BIN.resolve()
    )
    variables = {k: v for k, v in os.environ.items() if not k.startswith("CANARIST_")}
    variables |= {"CANARIST_SANDBOX_STATE": str(tmp_path / "state" / "sandbox.json"), "TMPDIR": str(tmpdir)}
    variables["PATH"] = path
    return Env(tmp_path, tmp_path / "state" / "sandbox.json", tmpdir, variables)


def start_up(env: Env, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = env.root / "up.out", env.root / "up.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(CANARIST), "sandbox", "up", *args],
            env=env.vars,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    return process, out, err


def wait_running(process: subprocess.Popen[bytes], env: Env, err: Path) -> dict[str, Any]:
    """The state file once it says ``running`` for ``process`` (bounded; fails at once if `up` exits)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`sandbox up` exited with {process.returncode}:\n{err.read_text()}")
        try:
            state: dict[str, Any] = json.loads(env.state.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        if state.get("state") == "running" and state.get("pid") == process.pid:
            return state
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"`sandbox up` was not running within {START_TIMEOUT_S:.0f}s:\n{err.read_text()}")


def wait_for_state(env: Env, ready: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """The state file once ``ready`` holds for it (bounded)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError, ValueError):
            state: dict[str, Any] = json.loads(env.state.read_text())
            if ready(state):
                return state
        time.sleep(0.1)
    pytest.fail(f"the state file did not show {what} within {START_TIMEOUT_S:.0f}s")


def wait_for_command(command: str, env: Env, what: str) -> subprocess.CompletedProcess[str]:
    """``command`` (bash) until it exits 0, bounded: the loadtester pod takes a moment to serve."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        done = subprocess.run(
            ["bash", "-c", command], env=env.vars, capture_output=True, text=True, timeout=30
        )
        if done.returncode == 0 or time.monotonic() > deadline:
            assert done.returncode == 0, f"{what}: {done.stderr}"
            return done
        time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Last resort for a failed test: SIGTERM (which cleans up), then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def hint(stdout: str, needle: str) -> str:
    """The printed line containing ``needle``, stripped."""
    lines = [line.strip() for line in stdout.splitlines() if needle in line]
    assert lines, f"no line with {needle!r} in:\n{stdout}"
    return lines[0]


# ------------------------------------------------------------------------------------------------ no sandbox


def test_down_and_status_without_a_sandbox_are_refused(env: Env) -> None:
    down = env.run("sandbox", "down")
    assert down.returncode == 1, down
    assert "no sandbox is running" in down.stderr
    status = env.run("sandbox", "status")
    assert status.returncode == 1, status
    assert "no sandbox is running" in status.stderr


def test_a_stale_state_file_is_removed_and_a_reused_pid_is_not_signalled(env: Env) -> None:
    # The process that wrote it is gone.
    exited = subprocess.Popen(["true"])
    exited.wait()
    env.state.parent.mkdir(parents=True)
    env.state.write_text(Session(pid=exited.pid, start_ticks=1, state="running").to_json())
    down = env.run("sandbox", "down")
    assert down.returncode == 1, down
    assert f"stale state file {env.state} of pid {exited.pid}" in down.stderr
    assert not env.state.exists()

    # The PID now belongs to another process (a different start time): it is not the sandbox.
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        ticks = process_start_ticks(bystander.pid)
        assert ticks is not None
        env.state.write_text(Session(pid=bystander.pid, start_ticks=ticks - 1, state="running").to_json())
        assert env.run("sandbox", "status").returncode == 1
        down = env.run("sandbox", "down")
        assert down.returncode == 1, down
        assert bystander.poll() is None, "`down` signalled a process that is not the sandbox"
        assert not env.state.exists()
    finally:
        bystander.kill()
        bystander.wait()


# ------------------------------------------------------------------------------------------------ up / down


def test_up_prints_working_commands_refuses_a_second_up_and_down_stops_everything(env: Env) -> None:
    process, out, err = start_up(env)
    try:
        state = wait_running(process, env, err)
        stdout = out.read_text()
        assert state["pid"] == process.pid
        children = state["processes"]
        assert set(children) == {"envoy", "prometheus", "operator"}, state
        assert all(not gone(pid) for pid in children.values()), state

        # The kubeconfig it prints works with kubectl.
        kubeconfig = shlex.split(hint(stdout, "export KUBECONFIG=").removeprefix("export "))[0].split("=", 1)[
            1
        ]
        assert kubeconfig == state["kubeconfig"]
        namespaces = subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig, "get", "ns", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert namespaces.returncode == 0, namespaces.stderr
        assert "namespace/default" in namespaces.stdout.split()
        watch = hint(stdout, "get canaries -A --watch")
        assert watch.startswith(f"kubectl --kubeconfig {kubeconfig} "), watch
        canaries = subprocess.run(
            ["kubectl", "--kubeconfig", kubeconfig, "get", "canaries", "-A"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert canaries.returncode == 0, canaries.stderr  # the flagger CRDs are installed

        # Nothing is applied: the hints say how to apply the walkthrough's loadtester, and the line works.
        apply = hint(stdout, "/loadtester.yaml")
        assert apply.startswith(f"kubectl --kubeconfig {kubeconfig} apply -f "), apply
        applied = subprocess.run(["bash", "-c", apply], capture_output=True, text=True, timeout=60)
        assert applied.returncode == 0, applied.stderr
        # The state file learns the loadtester's Service address once it is applied.
        state = wait_for_state(env, lambda s: bool(s.get("loadtester_url")), "the loadtester's url")
        # canarist is not on this PATH: the gate command names it by its path and runs as printed.
        gate = f"{CANARIST} gate open podinfo.test --url {state['loadtester_url']}"
        opened = wait_for_command(gate, env, "the loadtester to answer")
        assert opened.stdout.strip() == "gate podinfo.test opened"
        # Without --url, the gate finds the sandbox's loadtester through the state file.
        check = env.run("gate", "check", "podinfo.test")
        assert (check.returncode, check.stdout.strip()) == (0, "podinfo.test: open"), check

        status = env.run("sandbox", "status")
        assert status.returncode == 0, status
        assert f"sandbox running (pid {process.pid}" in status.stdout
        assert state["loadtester_url"] in status.stdout
        as_json = json.loads(env.run("sandbox", "status", "--json").stdout)
        assert as_json["pid"] == process.pid
        assert as_json["gateway_url"] == state["gateway_url"]

        # A second `up` is refused at once, names the first, and leaves it alone; on a PATH that has
        # canarist, the hint says plain `canarist`.
        second = env.run("sandbox", "up", path=f"{BIN}{os.pathsep}{env.vars['PATH']}")
        assert second.returncode == 1, second
        assert f"a sandbox is already running (pid {process.pid}" in second.stderr
        assert "stop it with: canarist sandbox down" in second.stderr
        # `demo --keep` would leave a second one running: refused too, before its story starts.
        demo = subprocess.run(
            [str(CANARIST), "demo", "--keep", "--plain"],
            env=env.vars,
            cwd=env.root,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert demo.returncode == 1, demo
        assert f"a sandbox is already running (pid {process.pid}" in demo.stderr
        assert "starting the sandbox" not in demo.stdout
        assert json.loads(env.state.read_text())["pid"] == process.pid
        assert process.poll() is None

        # `down` stops it: the process and its children are gone, and so are the state file and the
        # temp work dir (TMPDIR is empty again).
        workdir = Path(state["workdir"])
        assert workdir.parent == env.tmpdir
        down = env.run("sandbox", "down")
        assert down.returncode == 0, down
        assert "sandbox stopped in" in down.stdout
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0, err.read_text()
    finally:
        stop(process)
    assert gone(process.pid)
    assert [name for name, pid in children.items() if not gone(pid)] == []
    assert not env.state.exists()
    assert list(env.tmpdir.iterdir()) == []
    assert "SIGTERM: stopping the sandbox" in err.read_text()


def test_sigterm_to_up_cleans_up_and_keeps_the_workdir_asked_for(env: Env) -> None:
    # A stale state file (its process is gone) does not stop `up`.
    exited = subprocess.Popen(["true"])
    exited.wait()
    env.state.parent.mkdir(parents=True)
    env.state.write_text(Session(pid=exited.pid, start_ticks=1, state="running").to_json())
    workdir = env.root / "work"
    process, _, err = start_up(env, "--workdir", str(workdir))
    try:
        state = wait_running(process, env, err)
        assert state["workdir"] == str(workdir)
        children = state["processes"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0, err.read_text()
    finally:
        stop(process)
    assert [name for name, pid in children.items() if not gone(pid)] == []
    assert not env.state.exists()
    assert (workdir / "kubeconfig").is_file()
    assert (workdir / "operator.log").is_file()
    assert list(env.tmpdir.iterdir()) == []
