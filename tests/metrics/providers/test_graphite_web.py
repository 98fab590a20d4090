"""The Graphite provider against a real graphite-web (Debian package ``graphite-web``, run with Django's
server from its own settings module) reading Whisper files written with the ``whisper`` library it ships
with (``python3-whisper``): the render API answers as in production, nulls, functions and errors included."""

from __future__ import annotations

import shutil
import socket
import subprocess
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from canarist.metrics.providers import NoValuesError, ProviderSpec, QueryError
from canarist.metrics.providers.graphite import GraphiteProvider

SYSTEM_PYTHON = "/usr/bin/python3"
MANAGE = "/usr/bin/graphite-manage"

SETTINGS = """
import os
ROOT = os.path.dirname(os.path.abspath(__file__))
STORAGE_DIR = os.path.join(ROOT, "storage")
WHISPER_DIR = os.path.join(STORAGE_DIR, "whisper")
LOG_DIR = os.path.join(STORAGE_DIR, "log", "webapp")
INDEX_FILE = os.path.join(STORAGE_DIR, "index")
SECRET_KEY = "canarist-tests"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(STORAGE_DIR, "graphite.db")}}
"""

# Three series at 10 s resolution, values listed newest first: two error counters (the newest point of one
# is missing) and a latency.
WRITE = """
import sys, time, whisper
root = sys.argv[1]
now = int(time.time()) // 10 * 10
def series(name, values):
    path = f"{root}/{name.replace('.', '/')}.wsp"
    import os
    os.makedirs(os.path.dirname(path), exist_ok=True)
    whisper.create(path, [(10, 720)])
    whisper.update_many(path, [(now - 10 * i, v) for i, v in enumerate(values) if v is not None])
series("podinfo.a.errors", [None, 3.0, 2.0, 1.0])
series("podinfo.b.errors", [4.0, 4.0, 4.0, 4.0])
series("podinfo.latency", [0.25, 0.5, 0.75, 1.0])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def graphite_web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """graphite-web on 127.0.0.1 over Whisper files written just now; yields its base URL."""
    if not Path(MANAGE).exists() or shutil.which("python3", path="/usr/bin") is None:
        pytest.fail("graphite-web is required: apt-get install -y --no-install-recommends graphite-web")
    root: Path = tmp_path_factory.mktemp("graphite")
    (root / "storage" / "log" / "webapp").mkdir(parents=True)
    (root / "canarist_graphite_settings.py").write_text(textwrap.dedent(SETTINGS))
    subprocess.run([SYSTEM_PYTHON, "-c", WRITE, str(root / "storage" / "whisper")], check=True, timeout=60)
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(root),
        "GRAPHITE_SETTINGS_MODULE": "canarist_graphite_settings",
    }
    log = (root / "graphite.log").open("wb")
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/render?target=constantLine(1)&format=json", timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"graphite-web did not start:\n{(root / 'graphite.log').read_text()}")
                time.sleep(0.1)  # polling a starting process, not timing a behaviour
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def client(url: str) -> GraphiteProvider:
    return GraphiteProvider(ProviderSpec(type="graphite", address=url))


async def test_an_aggregate_is_the_last_non_null_point(graphite_web: str) -> None:
    # Oldest to newest, a is 1, 2, 3, null and b is 4, 4, 4, 4: the newest point of their sum is 4 (graphite
    # sums what is there); a bucket begun since the files were written is null for both, and skipped.
    value = await client(graphite_web).query("target=sumSeries(podinfo.*.errors)&from=-5min")
    assert value == 4.0
    latest = await client(graphite_web).query("target=podinfo.a.errors&from=-5min")
    assert latest == 3.0  # its newest point is missing: the last non-null one is taken


async def test_a_function_of_one_series(graphite_web: str) -> None:
    value = await client(graphite_web).query("target=scale(podinfo.latency, 1000)&from=-5min")
    assert value == 250.0


async def test_a_series_that_does_not_exist_is_no_values(graphite_web: str) -> None:
    with pytest.raises(NoValuesError):
        await client(graphite_web).query("target=podinfo.nothing.here&from=-5min")


async def test_more_than_one_series_is_a_query_error(graphite_web: str) -> None:
    with pytest.raises(QueryError):
        await client(graphite_web).query("target=podinfo.*.errors&from=-5min")


async def test_a_bad_function_is_a_query_error(graphite_web: str) -> None:
    with pytest.raises(QueryError):
        await client(graphite_web).query("target=noSuchFunction(podinfo.latency)&from=-5min")


async def test_graphite_web_is_online(graphite_web: str) -> None:
    assert await client(graphite_web).is_online()
