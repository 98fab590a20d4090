"""Replay (`Replay`, ``canarist simulate --prometheus``): each check is the instant query the operator would
have sent at the replayed instant, to a Prometheus-API server on 127.0.0.1 that records what it is asked."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from canarist.simulate import Replay, Scenario, run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "simulate"
RELEASED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Recorded(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Answer)
        self.asked: list[tuple[str, float]] = []  # (query, time)
        #: the success rate as a function of the queried instant (seconds after the release)
        self.success = lambda offset: 100.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Answer(BaseHTTPRequestHandler):
    server: Recorded

    def do_GET(self) -> None:
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        query, at = params["query"][0], float(params["time"][0])
        self.server.asked.append((query, at))
        offset = at - RELEASED.timestamp()
        value = self.server.success(offset) if "istio_requests_total" in query else 0.1
        body = {"status": "success", "data": {"resultType": "vector", "result": []}}
        if value is not None:
            body["data"]["result"] = [{"metric": {}, "value": [at, repr(value)]}]
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def prometheus() -> Iterator[Recorded]:
    server = Recorded()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_each_check_is_the_instant_query_at_the_replayed_instant(prometheus: Recorded) -> None:
    # the canary breaks 5 minutes after the release: the replay must fail it then, not before
    prometheus.success = lambda offset: 100.0 if offset < 300 else 50.0
    replay = Replay(prometheus.url, RELEASED, RELEASED + timedelta(minutes=20))
    result = run(EXAMPLES / "canary.yaml", Scenario(), replay=replay)
    assert result.phase == "Failed", result.timeline()
    offsets = sorted({round(at - RELEASED.timestamp()) for query, at in prometheus.asked})
    assert offsets[0] >= 0  # nothing before the release is asked
    assert offsets[-1] <= 20 * 60
    # the analysis interval is 30 s: one instant per step
    assert all(b - a >= 30 for a, b in itertools.pairwise(offsets)), offsets
    success = [q for q, _ in prometheus.asked if "istio_requests_total" in q]
    assert success
    assert 'destination_workload=~"podinfo"' in success[0]
    assert "[30s]" in success[0]  # the metric's interval, rendered as the operator renders it
    # the first failing check is the first instant at or after 300 s
    assert result.failed_at is not None
    halts = [s for s in result.steps if any(m.startswith("Halt ") for m in s.events)]
    assert halts
    assert halts[0].t - 60 >= 300  # virtual time 60 s is the release


def test_a_prometheus_that_cannot_be_reached_is_a_provider_error_not_a_crash() -> None:
    replay = Replay("http://127.0.0.1:9", RELEASED, RELEASED + timedelta(minutes=10))
    result = run(EXAMPLES / "canary.yaml", Scenario(), replay=replay)
    assert result.phase != "Succeeded"
    assert any("127.0.0.1:9" in m for m in result.messages), result.timeline()


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"--to \(.*\) must be after --from"):
        Replay("http://127.0.0.1:9", RELEASED, RELEASED - timedelta(seconds=1))
    with pytest.raises(ValueError, match="need a time zone"):
        Replay("http://127.0.0.1:9", RELEASED.replace(tzinfo=None), RELEASED)


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canarist", "simulate", "-f", str(EXAMPLES / "canary.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prometheus", "http://127.0.0.1:9"], "error: --prometheus needs --from"),
        (
            ["--prometheus", "http://x", "--from", "2026-12-01T09:00:00"],
            "error: --from: '2026-12-01T09:00:00' has no",
        ),
        (
            ["--prometheus", "http://x", "--from", "yesterday", "--to", "1"],
            "error: --from: 'yesterday' is neither",
        ),
        (["--from", "1", "--to", "2"], "error: --from and --to need --prometheus"),
        ([], "error: give --scenario, or --prometheus with --from and --to"),
    ],
)
def test_bad_replay_flags_are_one_sentence_exit_2(args: list[str], message: str) -> None:
    done = simulate(*args)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_replays_a_window_and_says_how_it_ended(prometheus: Recorded) -> None:
    start = RELEASED.isoformat().replace("+00:00", "Z")
    done = simulate("--prometheus", prometheus.url, "--from", start, "--to", str(RELEASED.timestamp() + 1200))
    assert done.returncode == 0, done.stderr + done.stdout
    assert done.stdout.splitlines()[-1].startswith("end: Succeeded")
    assert prometheus.asked
