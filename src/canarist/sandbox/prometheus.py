"""A real Prometheus (the Debian ``prometheus`` binary) on 127.0.0.1 with file-based service discovery.

>>> prom = PrometheusProcess(workdir)
>>> prom.start()                                  # a free port, temp TSDB, scrape_interval 1s
>>> prom.set_targets({"127.0.0.1:4100": {"pod": "podinfo-1"}})
>>> await prom.query('up')
>>> prom.stop()                                   # by PID

Targets are written to a ``file_sd`` JSON file by atomic rename; Prometheus notices through inotify, but
its discovery manager forwards updates at most every 5 s, so add targets early (the sandbox starts a pool of
app instances before the story begins for that reason).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from canarist.sandbox.lifecycle import stop_process

__all__ = ["PROMETHEUS_INSTALL", "PrometheusError", "PrometheusProcess", "PrometheusQuery", "free_port"]

PROMETHEUS_INSTALL = "sudo apt-get install -y --no-install-recommends prometheus"


class PrometheusError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def prometheus_config(sd_file: Path, scrape_interval_s: float = 1.0) -> dict[str, Any]:
    interval = f"{round(scrape_interval_s * 1000)}ms"  # Prometheus durations take no fractions
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "scrape_configs": [
            {"job_name": "sandbox", "file_sd_configs": [{"files": [str(sd_file)], "refresh_interval": "1s"}]}
        ],
    }


class PrometheusProcess:
    """One Prometheus subprocess with its own work dir (config, TSDB, targets file, log)."""

    def __init__(self, workdir: Path, binary: str | None = None, scrape_interval_s: float = 1.0) -> None:
        self.workdir = workdir
        self.binary = binary or shutil.which("prometheus")
        self.scrape_interval_s = scrape_interval_s
        self.sd_file = workdir / "targets.json"
        self.log_file = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_in_s = 0.0
        self.targets: dict[str, dict[str, str]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def start(self, timeout_s: float = 30.0) -> None:
        if self.binary is None:
            raise PrometheusError(
                f"the `prometheus` binary is not on PATH; install it with: {PROMETHEUS_INSTALL}"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        data_dir = self.workdir / "data"
        data_dir.mkdir(exist_ok=True)
        self._write_targets()
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps(prometheus_config(self.sd_file, self.scrape_interval_s), indent=1))
        for _attempt in range(3):
            self.port = free_port()
            started = time.monotonic()
            with self.log_file.open("ab") as log:
                self.process = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={config}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        f"--storage.tsdb.path={data_dir}",
                        "--storage.tsdb.retention.time=1d",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            deadline = started + timeout_s
            while time.monotonic() < deadline and self.process.poll() is None:
                with (
                    contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                    urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response,
                ):
                    if response.status == 200:
                        self.started_in_s = time.monotonic() - started
                        return
                time.sleep(0.05)
            self.stop()
            if "address already in use" not in self.log_tail():
                break
        raise PrometheusError(f"prometheus did not become ready; log:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")[-chars:]
        return ""

    def _write_targets(self) -> None:
        groups = [{"targets": [t], "labels": labels} for t, labels in sorted(self.targets.items())]
        tmp = self.sd_file.with_name(f".{self.sd_file.name}.tmp")
        tmp.write_text(json.dumps(groups))
        os.replace(tmp, self.sd_file)

    def set_targets(self, targets: Mapping[str, Mapping[str, str]]) -> None:
        self.targets = {t: dict(labels) for t, labels in targets.items()}
        self._write_targets()

    def add_target(self, target: str, labels: Mapping[str, str] | None = None) -> None:
        self.targets[target] = dict(labels or {})
        self._write_targets()

    def remove_target(self, target: str) -> None:
        self.targets.pop(target, None)
        self._write_targets()

    async def query(self, q: str) -> dict[str, Any]:
        return await PrometheusQuery(self.url).query(q)

    async def value(self, q: str) -> float | None:
        """The first sample of ``q`` as a number, or ``None`` (no data, NaN or an error)."""
        return await PrometheusQuery(self.url).value(q)

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, timeout_s=10, kill_timeout_s=10)


class PrometheusQuery:
    """Instant queries against any Prometheus URL."""

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    async def query(self, q: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{self.url}/api/v1/query",
                params={"query": q},
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as response,
        ):
            answer: dict[str, Any] = await response.json(content_type=None)
            return answer

    async def vector(self, q: str) -> list[tuple[dict[str, str], float]]:
        """``(labels, value)`` of every sample of ``q``; empty on no data or an error."""
        try:
            answer = await self.query(q)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return []
        result = (answer.get("data") or {}).get("result")
        if answer.get("status") != "success" or not isinstance(result, list):
            return []
        out: list[tuple[dict[str, str], float]] = []
        for item in result:
            try:
                value = float(item["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if not math.isnan(value):
                out.append(({str(k): str(v) for k, v in (item.get("metric") or {}).items()}, value))
        return out

    async def value(self, q: str) -> float | None:
        samples = await self.vector(q)
        return samples[0][1] if samples else None
