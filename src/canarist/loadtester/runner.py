"""Running loadtester commands: exec'ed pipelines, bounded output capture, timeouts that kill the tree.

Every stage runs in its own session (so its own process group); on timeout, cancellation (stop) or exit,
every stage's group is killed with SIGKILL, so nothing a command started outlives its task. A process
that was being spawned when the cancellation arrived is waited for and killed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_CAPTURE_BYTES = 1 << 20  # keep at most 1 MiB of each stream

SpawnHook = Callable[[int], None]


@dataclass(frozen=True)
class CommandOutcome:
    command: str
    exit_code: int | None  # None when killed on timeout, or when it could not be started
    stdout: str
    stderr: str
    timed_out: bool = False
    timeout_s: float = 0.0
    error: str = ""  # why it could not be started (E2BIG, ENOENT...)

    @property
    def ok(self) -> bool:
        return not self.timed_out and not self.error and self.exit_code == 0

    def describe_failure(self) -> str:
        if self.error:
            return f"command {self.command} cannot be run: {self.error}"
        if self.timed_out:
            return f"command {self.command} timed out after {self.timeout_s:g}s"
        detail = (self.stderr or self.stdout).strip()
        text = f"command {self.command} failed: exit status {self.exit_code}"
        return f"{text}: {detail}" if detail else text


async def _drain(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    if stream is None:
        return b""
    kept = bytearray()
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return bytes(kept)
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def shell_path(name: str) -> str:
    """``sh`` or ``bash`` from PATH (``/bin/sh`` as the last resort)."""
    return shutil.which(name) or shutil.which("sh") or "/bin/sh"


class _Job:
    """The processes of one pipeline, so that every exit path can kill all of them."""

    def __init__(self, on_spawn: SpawnHook | None) -> None:
        self.processes: list[asyncio.subprocess.Process] = []
        self.on_spawn = on_spawn

    def _add(self, process: asyncio.subprocess.Process) -> None:
        self.processes.append(process)
        if self.on_spawn is not None:
            self.on_spawn(process.pid)

    async def spawn(self, argv: Sequence[str], stdin: int, stdout: int) -> asyncio.subprocess.Process:
        """Start ``argv`` in a new session. A cancellation arriving meanwhile does not interrupt the spawn
        (which would leave the child running unnoticed): the spawn completes, the process is recorded
        (so :meth:`kill` reaches it) and the cancellation is re-raised."""
        spawning = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *argv,
                stdin=stdin,
                stdout=stdout,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        )
        try:
            process = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            while not spawning.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({spawning})
            if not spawning.cancelled() and spawning.exception() is None:
                self._add(spawning.result())
            raise
        self._add(process)
        return process

    def kill(self) -> None:
        for process in self.processes:
            _kill_group(process.pid)

    async def reap(self) -> None:
        """Wait for every process (after :meth:`kill`), even if cancelled again meanwhile."""
        for process in self.processes:
            while process.returncode is None:
                with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
                    await process.wait()


async def run_pipeline(
    command: str,
    argvs: Sequence[Sequence[str]],
    timeout_s: float = 3600.0,
    capture_limit: int = MAX_CAPTURE_BYTES,
    on_spawn: SpawnHook | None = None,
) -> CommandOutcome:
    """Exec ``argvs`` as a pipeline (stage *i*'s stdout → stage *i+1*'s stdin), no shell involved.

    The outcome's exit code is the last stage's (as in ``sh``), stdout the last stage's, stderr every
    stage's in order. ``command`` is only used to describe the outcome.
    """
    job = _Job(on_spawn)
    readers: list[asyncio.Future[bytes]] = []
    timed_out = False
    error = ""
    try:
        async with asyncio.timeout(timeout_s):
            error = await _start(job, argvs, readers, capture_limit)
            if not error:
                for process in job.processes:
                    await process.wait()
                job.kill()  # whatever a stage left behind holds our pipes open
                await asyncio.gather(*readers)
    except TimeoutError:
        timed_out = True
    except BaseException:
        job.kill()
        await job.reap()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        raise
    if timed_out or error:
        job.kill()
        await job.reap()
        try:
            async with asyncio.timeout(2):
                await asyncio.gather(*readers)
        except TimeoutError:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    outputs = [reader.result() if reader.done() and not reader.cancelled() else b"" for reader in readers]
    stdout = outputs[-1] if outputs and not error else b""
    stderr = b"".join(outputs[:-1] if outputs and not error else outputs)
    last = job.processes[-1] if job.processes and not error else None
    return CommandOutcome(
        command=command,
        exit_code=None if (timed_out or last is None) else last.returncode,
        stdout=stdout.decode(errors="replace"),
        stderr=stderr.decode(errors="replace"),
        timed_out=timed_out,
        timeout_s=timeout_s,
        error=error,
    )


async def _start(
    job: _Job, argvs: Sequence[Sequence[str]], readers: list[asyncio.Future[bytes]], limit: int
) -> str:
    """Spawn every stage; return why a stage could not be started ("" when all started)."""
    pipes = [os.pipe() for _ in range(len(argvs) - 1)]
    open_fds = {fd for pair in pipes for fd in pair}

    def close(fd: int) -> None:
        if fd in open_fds:
            open_fds.discard(fd)
            os.close(fd)

    try:
        for index, argv in enumerate(argvs):
            stdin = asyncio.subprocess.DEVNULL if index == 0 else pipes[index - 1][0]
            last = index == len(argvs) - 1
            stdout = asyncio.subprocess.PIPE if last else pipes[index][1]
            try:
                process = await job.spawn(argv, stdin, stdout)
            except (OSError, ValueError) as err:
                reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
                return f"{argv[0]}: {reason}"
            if index > 0:
                close(pipes[index - 1][0])
            if not last:
                close(pipes[index][1])
            readers.append(asyncio.ensure_future(_drain(process.stderr, limit)))
            if last:
                readers.append(asyncio.ensure_future(_drain(process.stdout, limit)))
    finally:
        for fd in list(open_fds):
            close(fd)
    return ""


async def run_command(
    command: str,
    shell: str = "sh",
    timeout_s: float = 3600.0,
    capture_limit: int = MAX_CAPTURE_BYTES,
    on_spawn: SpawnHook | None = None,
) -> CommandOutcome:
    """Run ``<shell> -c command`` (only for ``--allow-any-command``), with the same kill guarantees."""
    return await run_pipeline(
        command, [[shell_path(shell), "-c", command]], timeout_s, capture_limit, on_spawn
    )


def truncate(text: str, limit: int = 4096) -> str:
    """Shorten ``text`` for a log line, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
