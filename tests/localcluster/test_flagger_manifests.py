"""The project's own Flagger CRDs (`canarist crds`) and the podinfo example, applied with plain kubectl."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "podinfo"


def test_generated_crds_and_podinfo_example(local_cluster):
    crds = subprocess.run(
        [sys.executable, "-m", "canarist", "crds"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    local_cluster.kubectl("apply", "-f", "-", input=crds, check=True)
    local_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/canaries.flagger.app", "--timeout=10s", check=True
    )
    namespaces = sorted(EXAMPLES.glob("namespace*.yaml"))
    for manifest in namespaces:
        local_cluster.kubectl("apply", "-f", str(manifest), check=True)
    done = local_cluster.kubectl("apply", "-f", str(EXAMPLES), check=True)
    assert "canary.flagger.app/podinfo created" in done.stdout
    canary = json.loads(local_cluster.kubectl("get", "canaries", "-A", "-o", "json", check=True).stdout)[
        "items"
    ][0]
    namespace = canary["metadata"]["namespace"]
    target = canary["spec"]["targetRef"]["name"]
    local_cluster.kubectl(
        "rollout", "status", f"deployment/{target}", "-n", namespace, "--timeout=20s", check=True
    )
    wide = local_cluster.kubectl(
        "get", "canaries", "-n", namespace, "-o", "wide", check=True
    ).stdout.splitlines()
    header = wide[0].split()
    assert header[:2] == ["NAME", "STATUS"]
    assert "STEPWEIGHT" in header
    assert wide[1].split()[0] == "podinfo"
    short = (
        local_cluster.kubectl("get", "canaries", "-n", namespace, check=True).stdout.splitlines()[0].split()
    )
    assert "STEPWEIGHT" not in short
