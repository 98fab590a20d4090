"""Stopping what the sandbox started: a child process, or a background asyncio task."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float, kill_timeout_s: float) -> None:
    """Terminate ``process`` (when it still runs), waiting ``timeout_s``; kill it when that runs out."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=kill_timeout_s)


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (when there is one) and wait for it to finish."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
