"""Running loadtester commands: asyncio subprocesses, bounded output capture, timeouts that kill the tree."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from dataclasses import dataclass

MAX_CAPTURE_BYTES = 1 << 20  # keep at most 1 MiB of each stream


@dataclass(frozen=True)
class CommandOutcome:
    command: str
    exit_code: int | None  # None when killed on timeout
    stdout: str
    stderr: str
    timed_out: bool = False
    timeout_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.exit_code == 0

    def describe_failure(self) -> str:
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


async def run_command(
    command: str, shell: str = "sh", timeout_s: float = 3600.0, capture_limit: int = MAX_CAPTURE_BYTES
) -> CommandOutcome:
    """Run ``<shell> -c command`` in its own process group; on timeout (or cancellation) kill the group.

    The whole process group is also killed once the shell exits, so nothing it started outlives the task.
    """
    process = await asyncio.create_subprocess_exec(
        shell_path(shell),
        "-c",
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    readers = asyncio.gather(_drain(process.stdout, capture_limit), _drain(process.stderr, capture_limit))
    timed_out = False
    out = err = b""
    try:
        async with asyncio.timeout(timeout_s):
            await process.wait()
            _kill_group(process.pid)
            out, err = await readers
    except TimeoutError:
        timed_out = True
    except asyncio.CancelledError:
        _kill_group(process.pid)
        readers.cancel()
        # Await the cancelled readers too, so their exception is retrieved (no "never retrieved" warning).
        with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
            await process.wait()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await readers
        raise
    if timed_out:
        _kill_group(process.pid)
        await process.wait()
        try:
            async with asyncio.timeout(2):
                out, err = await readers
        except TimeoutError:
            readers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await readers
    return CommandOutcome(
        command=command,
        exit_code=None if timed_out else process.returncode,
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
        timed_out=timed_out,
        timeout_s=timeout_s,
    )


def truncate(text: str, limit: int = 4096) -> str:
    """Shorten ``text`` for a log line, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
