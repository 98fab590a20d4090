"""CLI defects of a new user's first tries (issue 15, item 5): one sentence and a distinct exit code instead of
a traceback, directories for `validate`, plain `--help`, readable watch lines and described CRD fields.

The commands run as the user runs them: the installed `canarist` entry point in a subprocess."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from canarist.operator.runtime import EXIT_KUBECONFIG, EXIT_NO_CRDS, EXIT_UNREACHABLE
from canarist.sandbox.liveview import LiveView, event_messages_for, format_ms, snapshot
from tests.fixtures.localcluster import LocalClusterHandle

ROOT = Path(__file__).resolve().parents[2]
CANARIST = str(Path(sys.executable).parent / "canarist")
TIMEOUT_S = 120.0


def run_canarist(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CANARIST, *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        check=False,
    )


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: c\n  cluster: {{server: '{server}'}}\n"
        "contexts:\n- name: c\n  context: {cluster: c, user: u}\n"
        "users:\n- name: u\n  user: {token: not-a-secret}\n"
    )
    return path


@pytest.fixture
def refused_address() -> Iterator[str]:
    """An address on 127.0.0.1 that refuses connections: bound, never listening, held for the test."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


# ---------------------------------------------------------------------------------------------------- operator


@pytest.mark.parametrize(
    ("content", "expected"),
    [("myhost\n", "not a kubeconfig"), (b"\xff\xfe\x00", "not a kubeconfig"), (None, "cannot read it")],
)
def test_operator_refuses_a_file_that_is_not_a_kubeconfig(
    tmp_path: Path, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "kubeconfig"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    done = run_canarist("operator", "-kubeconfig", str(path), "-log-format", "console")
    assert done.returncode == EXIT_KUBECONFIG, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert f"-kubeconfig {path}: {expected}" in errors[0]
    assert "pass" in errors[0]  # says what to do


def test_operator_says_the_api_server_is_unreachable_not_that_crds_are_missing(
    tmp_path: Path, refused_address: str
) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", refused_address)
    done = run_canarist(
        "operator",
        "-kubeconfig",
        str(kubeconfig),
        "-log-format",
        "console",
        env={"CANARIST_STARTUP_API_TIMEOUT": "1"},
    )
    assert done.returncode == EXIT_UNREACHABLE, done.stderr
    assert "Traceback" not in done.stderr
    last = [line for line in done.stderr.splitlines() if "ERROR" in line][-1]
    assert f"the Kubernetes API server {refused_address}" in last
    assert "is unreachable" in last
    assert "install" not in last
    assert "not installed" not in last
    assert "start it, or point -kubeconfig/-master at a running one" in last


def test_operator_without_crds_says_how_to_install_them(local_cluster: LocalClusterHandle) -> None:
    done = run_canarist("operator", "-kubeconfig", str(local_cluster.kubeconfig), "-log-format", "console")
    assert done.returncode == EXIT_NO_CRDS, done.stderr
    last = [line for line in done.stderr.splitlines() if "ERROR" in line][-1]
    assert "canaries.flagger.app" in last
    assert "install them with: canarist crds | kubectl apply -f -" in last


# ---------------------------------------------------------------------------------------------------- watch view


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0ms"), (0.0004, "<1µs"), (0.35, "350µs"), (0.004, "4µs"), (1.0, "1.00ms"), (12.345, "12.35ms")],
)
def test_durations_are_readable_below_a_millisecond(value: float, text: str) -> None:
    assert format_ms(value) == text


def test_sub_millisecond_request_duration_is_not_shown_as_zero() -> None:
    canary = {
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"analysis": {"metrics": [{"name": "request-duration", "thresholdRange": {"max": 500}}]}},
    }
    line = snapshot(canary, metric_values={"request-duration": 0.00042}).metrics[0].describe()
    assert line.startswith("request-duration 420µs")


def _event(name: str, message: str, last: str, rv: int, canary: str = "podinfo") -> dict[str, object]:
    return {
        "metadata": {"name": name, "namespace": "test", "uid": name, "resourceVersion": str(rv)},
        "involvedObject": {"kind": "Canary", "name": canary, "namespace": "test"},
        "message": message,
        "lastTimestamp": last,
        "count": 1,
    }


def test_watch_lines_carry_each_events_own_time_in_order() -> None:
    # Listed out of order (as a list answer may be), from two canaries, hours ago.
    events = [
        _event("e3", "Advance podinfo.test canary weight 10", "2026-01-02T03:04:30Z", 3),
        _event("e1", "New revision detected! Scaling up podinfo.test", "2026-01-02T03:04:05Z", 9),
        _event("e2", "Starting canary analysis for podinfo.test", "2026-01-02T03:04:20Z", 1, canary="other"),
    ]
    snaps = [
        snapshot({"metadata": {"name": name, "namespace": "test"}}, event_messages_for(events, "test", name))
        for name in ("podinfo", "other")
    ]
    out = io.StringIO()
    view = LiveView(stream=out, live=False)
    view.update(snaps)
    event_lines = [line for line in out.getvalue().splitlines() if " event: " in line]
    assert event_lines == [
        "03:04:05 test/podinfo event: New revision detected! Scaling up podinfo.test",
        "03:04:20 test/other event: Starting canary analysis for podinfo.test",
        "03:04:30 test/podinfo event: Advance podinfo.test canary weight 10",
    ]


# ---------------------------------------------------------------------------------------------------- validate


def _manifests(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    (root / "sub").mkdir(parents=True)
    shutil.copy(ROOT / "examples/nginx/canary.yaml", root / "canary.yaml")
    shutil.copy(ROOT / "examples/nginx/routing.yaml", root / "routing.yml")
    (root / "notes.txt").write_text("kind: Canary\nthis is not read: not a manifest extension\n")
    (root / "sub" / "broken.json").write_text('{"apiVersion": "flagger.app/v1beta1", "kind": "Canary"}')
    return root


def test_validate_reads_a_directory_as_kubectl_apply_f_does(tmp_path: Path) -> None:
    root = _manifests(tmp_path)
    for argv in (["validate", str(root)], ["validate", "-f", str(root)]):
        done = run_canarist(*argv)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"skipped {root / 'routing.yml'}: Ingress/podinfo" in done.stdout
        assert "notes.txt" not in done.stdout
        assert "broken" not in done.stdout
        assert "1 flagger.app object(s) checked, 1 skipped: valid" in done.stderr


def test_validate_recursive_reads_subdirectories(tmp_path: Path) -> None:
    root = _manifests(tmp_path)
    done = run_canarist("validate", "-R", str(root))
    assert done.returncode == 1
    assert f"{root / 'sub' / 'broken.json'}: " in done.stdout
    assert "2 flagger.app object(s) checked" in done.stderr


def test_validate_an_empty_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "deeper").mkdir()
    (tmp_path / "deeper" / "c.yaml").write_text("{}\n")
    done = run_canarist("validate", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{tmp_path}: no .json, .yaml or .yml file in this directory (add -R to read its subdirectories)"
    ]


def test_validate_without_a_file_is_a_usage_error() -> None:
    done = run_canarist("validate")
    assert done.returncode == 2
    assert done.stderr.strip() == "canarist validate: give a manifest file, a directory, or - for stdin"


# ---------------------------------------------------------------------------------------------------- gate help


def test_gate_help_is_plain_text() -> None:
    done = run_canarist("gate", "--help")
    assert done.returncode == 0
    assert "`" not in done.stdout
    assert "open (alias approve) lets a confirm-rollout/confirm-promotion" in " ".join(done.stdout.split())


# ---------------------------------------------------------------------------------------------------- CRDs


def test_kubectl_explain_describes_the_canary_fields(local_cluster: LocalClusterHandle) -> None:
    crds = run_canarist("crds")
    assert crds.returncode == 0
    assert crds.stdout == (ROOT / "deploy/base/operator/crds.yaml").read_text()  # regenerated
    local_cluster.kubectl("apply", "-f", "-", input=crds.stdout, check=True)
    analysis = local_cluster.kubectl("explain", "canary.spec.analysis", check=True).stdout
    text = " ".join(analysis.split())
    assert "How the canary is analysed and promoted" in text
    assert "interval <string> Time between two analysis steps" in text
    assert "threshold <number> Number of failed checks after which the canary is rolled back" in text
    assert "`" not in analysis
    for path, words in [
        ("canary.spec.targetRef", "the Deployment or DaemonSet to deliver"),
        ("canary.spec.service", "The Services generated for the target"),
        ("canary.spec.analysis.metrics", "Metric checks run at every step"),
        ("canary.status", "The observed state of the canary"),
        ("canary.status.phase", "Phase of the canary"),
    ]:
        explained = local_cluster.kubectl("explain", path, check=True).stdout
        assert words in " ".join(explained.split()), explained
