"""`canarist simulate --canary NAME -n NS`: the Canary and the MetricTemplates it names are read from a real
(local) control plane, and the simulation is the one the same manifests give from a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "simulate"

TEMPLATE = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "MetricTemplate",
    "metadata": {"name": "error-rate", "namespace": "shared"},
    "spec": {"provider": {"type": "prometheus", "address": "http://prometheus:9090"}, "query": "vector(1)"},
}


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canarist", "simulate", *args], capture_output=True, text=True, timeout=120
    )


def _apply(local_cluster: Any, *objects: dict[str, Any]) -> None:
    local_cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects), check=True)


def test_a_canary_in_the_cluster_simulates_as_its_manifest_does(local_cluster: Any, tmp_path: Path) -> None:
    local_cluster.kubectl("apply", "-f", "-", input=_crds(), check=True)
    canary = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    canary["spec"]["analysis"]["metrics"].append(
        {
            "name": "errors",
            "templateRef": {"name": "error-rate", "namespace": "shared"},
            "thresholdRange": {"max": 5},
        }
    )
    for namespace in ("test", "shared"):
        local_cluster.kubectl("create", "namespace", namespace, check=True)
    _apply(local_cluster, canary, TEMPLATE)
    # a status from a run in the cluster is not where a simulation starts
    local_cluster.kubectl(
        "patch",
        "canary",
        "podinfo",
        "-n",
        "test",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status": {"phase": "Failed"}}',
        check=True,
    )
    manifest = tmp_path / "canary.yaml"
    manifest.write_text(yaml.safe_dump_all([canary, TEMPLATE]))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "metrics:\n  request-success-rate: 100\n  request-duration: 0.1\n  errors: [[0, 1], [120, 9]]\n"
    )
    kubeconfig = str(local_cluster.kubeconfig)
    from_cluster = simulate(
        "--canary", "podinfo", "-n", "test", "--kubeconfig", kubeconfig, "--scenario", str(scenario)
    )
    from_file = simulate("-f", str(manifest), "--scenario", str(scenario))
    assert from_file.returncode == 1, from_file.stderr
    assert (from_cluster.returncode, from_cluster.stdout) == (from_file.returncode, from_file.stdout), (
        from_cluster.stderr
    )
    # the template was read from the cluster and judged: it fails the run from 120 s on
    assert "Halt podinfo.test advancement errors 9.00 > 5" in from_cluster.stdout


def test_a_missing_canary_or_template_is_one_sentence(local_cluster: Any) -> None:
    local_cluster.kubectl("apply", "-f", "-", input=_crds(), check=True)
    kubeconfig = str(local_cluster.kubeconfig)
    scenario = str(EXAMPLES / "failing.yaml")
    done = simulate("--canary", "nope", "-n", "default", "--kubeconfig", kubeconfig, "--scenario", scenario)
    assert done.returncode == 3
    assert done.stderr == 'error: canary "nope" not found in namespace "default"\n'

    canary = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    canary["metadata"]["namespace"] = "default"
    canary["spec"]["analysis"]["metrics"].append({"name": "errors", "templateRef": {"name": "gone"}})
    _apply(local_cluster, canary)
    done = simulate(
        "--canary", "podinfo", "-n", "default", "--kubeconfig", kubeconfig, "--scenario", scenario
    )
    assert done.returncode == 3
    assert (
        done.stderr
        == 'error: metric template "gone" (of metric \'errors\') not found in namespace "default"\n'
    )

    done = simulate("--canary", "podinfo", "--kubeconfig", "/nonexistent", "--scenario", scenario)
    assert done.returncode == 4
    assert "Traceback" not in done.stderr


def _crds() -> str:
    from canarist.api.crds import crds

    return yaml.safe_dump_all(crds())
