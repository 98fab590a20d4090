import io
import sys
from pathlib import Path

import pytest

from canarist.cli.main import main
from canarist.routers import registry as routers
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
INVALID = ROOT / "tests" / "api" / "invalid"

VALID = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis: {interval: 30s, threshold: 5, stepWeight: 10}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: podinfo}
"""


def _write(tmp_path: Path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return str(path)


def test_valid_file_exits_0_and_lists_skipped(tmp_path, capsys):
    assert main(["validate", _write(tmp_path, "ok.yaml", VALID)]) == 0
    out = capsys.readouterr().out
    assert "skipped Deployment/podinfo (not a flagger.app object)" in out


def test_examples_are_valid(capsys):
    """Every example is a valid resource; the only problems are providers canarist cannot route yet."""
    files = [str(p) for p in sorted((ROOT / "examples" / "podinfo").glob("*.yaml"))]
    files += [str(p) for p in sorted((SHARED / "reference" / "examples").glob("*.yaml"))]
    status = main(["validate", *files])
    problems = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("skipped ")]
    supported = set(routers.supported())
    unsupported = [line for line in problems if "spec.provider: provider" in line and "not supported" in line]
    assert problems == unsupported, problems
    assert status == (1 if unsupported else 0)
    assert all(name not in line.split("supported:")[0] for line in unsupported for name in supported)


def test_a_provider_canarist_cannot_route_yet_is_refused_with_its_path(tmp_path, capsys, without_knative):
    # every Flagger provider has a router: this test's registry lacks knative (whose targets are Knative
    # Services)
    text = VALID.replace("spec:\n", "spec:\n  provider: knative\n", 1).replace(
        "{apiVersion: apps/v1, kind: Deployment, name: podinfo}",
        "{apiVersion: serving.knative.dev/v1, kind: Service, name: podinfo}",
        1,
    )
    assert main(["validate", _write(tmp_path, "knative.yaml", text)]) == 1
    out = capsys.readouterr().out
    assert "spec.provider: provider 'knative' is not supported by canarist yet" in out


def test_a_spec_the_router_cannot_route_is_refused_with_its_path(tmp_path, capsys):
    text = VALID.replace("spec:\n", "spec:\n  provider: kubernetes\n", 1).replace(
        "analysis: {", "analysis: {mirror: true, ", 1
    )
    assert main(["validate", _write(tmp_path, "mirror.yaml", text)]) == 1
    assert "spec.analysis.mirror: provider kubernetes cannot mirror traffic" in capsys.readouterr().out
    assert main(["validate", "--mesh-provider", "kubernetes", _write(tmp_path, "m.yaml", VALID)]) == 0


def test_invalid_file_prints_one_line_per_problem_and_exits_1(tmp_path, capsys):
    text = VALID.replace("stepWeight: 10", "stepWeight: -10")
    assert main(["validate", _write(tmp_path, "bad.yaml", text)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == "podinfo: spec.analysis.stepWeight: must be >= 0"


def test_several_files_are_prefixed_with_the_file_name(capsys):
    a = str(INVALID / "step-weight-negative.yaml")
    b = str(INVALID / "webhook-bad-url.yaml")
    assert main(["validate", a, b]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{a}: podinfo: spec.analysis.stepWeight: must be >= 0" in lines
    assert any(line.startswith(f"{b}: podinfo: spec.analysis.webhooks[0].url: invalid URL") for line in lines)


def test_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(VALID.encode())))
    assert main(["validate", "-"]) == 0


JUNK: list[tuple[str, bytes]] = [
    ("malformed", b"apiVersion: flagger.app/v1beta1\nkind: [Canary\n"),
    ("tabs", b"a:\n\tb: 1\n"),
    ("not-utf8", b"apiVersion: \xff\xfe flagger\n"),
    ("binary", bytes(range(256)) * 4),
    ("nul", b"kind: Canary\x00\n"),
    ("list-doc", b"- apiVersion: flagger.app/v1beta1\n  kind: Canary\n"),
    ("scalar-doc", b"apiVersion: flagger.app/v1beta1\n---\n42\n"),
    ("python-tag", b"!!python/object/apply:os.system ['true']\n"),
    (
        "huge-number",
        b"apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec: {progressDeadlineSeconds: 1"
        + b"0" * 5000
        + b"}\n",
    ),
    (
        "inf",
        b"apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec: {analysis: {threshold: .inf}}\n",
    ),
    ("deep", b"[" * 5000 + b"]" * 5000),
    (
        "alias-loop",
        b"apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec: &a {service: *a}\n",
    ),
    (
        "non-string-keys",
        b"apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: x}\nspec: {1: 2, [a]: b}\n",
    ),
    ("kind-map", b"apiVersion: flagger.app/v1beta1\nkind: {a: b}\n"),
    ("metadata-list", b"apiVersion: flagger.app/v1beta1\nkind: AlertProvider\nmetadata: [x]\nspec: []\n"),
]


@pytest.mark.parametrize(("name", "data"), JUNK, ids=[n for n, _ in JUNK])
def test_junk_never_tracebacks(tmp_path, capsys, name, data):
    assert main(["validate", _write(tmp_path, f"{name}.yaml", data)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "internal error" not in captured.out
    assert captured.out.strip()


def test_empty_documents_are_fine(tmp_path):
    assert main(["validate", _write(tmp_path, "empty.yaml", "---\n---\n")]) == 0


def test_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().out


def test_what_a_provider_needs_or_cannot_route_is_refused_with_its_path(tmp_path, capsys):
    gateway = VALID.replace("spec:\n", "spec:\n  provider: gatewayapi:v1\n", 1)
    assert main(["validate", _write(tmp_path, "gw.yaml", gateway)]) == 1
    assert "spec.service.gatewayRefs: is required for the gatewayapi:v1 provider" in capsys.readouterr().out
    nginx = VALID.replace("spec:\n", "spec:\n  provider: nginx\n", 1)
    assert main(["validate", _write(tmp_path, "nginx.yaml", nginx)]) == 1
    assert "spec.ingressRef: is required for the nginx provider" in capsys.readouterr().out
    ab = VALID.replace("spec:\n", "spec:\n  provider: linkerd\n", 1).replace(
        "analysis: {", "analysis: {match: [{headers: {x-canary: {exact: insider}}}], ", 1
    )
    assert main(["validate", _write(tmp_path, "ab.yaml", ab)]) == 1
    assert "spec.analysis.match: provider linkerd cannot route by header" in capsys.readouterr().out
