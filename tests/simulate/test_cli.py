"""`canarist simulate` as a real subprocess: exit codes, -o json, --compare, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "simulate"


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canarist", "simulate", *args], capture_output=True, text=True, timeout=120
    )


def test_failing_scenario_exits_1_with_the_end() -> None:
    done = simulate("-f", str(EXAMPLES / "canary.yaml"), "--scenario", str(EXAMPLES / "failing.yaml"))
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-1] == "end: Failed at 365s"


def test_json_output(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("metrics:\n  request-success-rate: 100\n  request-duration: 0.1\n")
    done = simulate("-f", str(EXAMPLES / "canary.yaml"), "--scenario", str(good), "-o", "json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout).values()
    assert result["phase"] == "Succeeded"
    assert result["failedAt"] is None


def test_compare_prints_two_columns(tmp_path: Path) -> None:
    lenient = tmp_path / "lenient.yaml"
    text = (EXAMPLES / "canary.yaml").read_text().replace("threshold: 99", "threshold: 40")
    assert text != (EXAMPLES / "canary.yaml").read_text()
    lenient.write_text(text)
    done = simulate(
        "-f",
        str(EXAMPLES / "canary.yaml"),
        "--scenario",
        str(EXAMPLES / "failing.yaml"),
        "--compare",
        str(lenient),
    )
    last = done.stdout.splitlines()[-1]
    assert "end: Failed at 365s" in last
    assert "end: Succeeded" in last.split("||")[1]


def test_bad_input_is_one_sentence_exit_2(tmp_path: Path) -> None:
    done = simulate("-f", str(tmp_path / "missing.yaml"), "--scenario", str(EXAMPLES / "failing.yaml"))
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {tmp_path / 'missing.yaml'}: cannot read the manifest")
    assert "Traceback" not in done.stderr
