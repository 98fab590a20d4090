"""How long `canarist.simulate.run` takes for 30 virtual minutes of analysis (not a test).

The canary advances 1% per 30s interval up to 60%, so the analysis runs for the whole window: every
metric check goes through the operator's code and an HTTP round trip to the local Prometheus-API
server. Run: ``.venv/bin/python benchmarks/bench_simulate.py``.

Then the same 30 minutes replayed from a real Prometheus (``canarist simulate --prometheus``, when the
``prometheus`` binary is installed): the checks are a MetricTemplate whose query (``vector(100)``) has a
value at any past instant, so every step is an instant query answered by Prometheus itself.
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from canarist.simulate import Replay, Scenario, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CANARY = Path(__file__).resolve().parents[1] / "examples" / "simulate" / "canary.yaml"


def main() -> None:
    window = 1800.0
    scenario = Scenario(
        metrics={"request-success-rate": [(0.0, 100.0)], "request-duration": [(0.0, 0.1)]}, duration_s=window
    )
    manifest = yaml.safe_load(CANARY.read_text())
    # 1% steps up to 60%: 60 analysis runs at the 30s interval, a 30-minute analysis
    manifest["spec"]["analysis"].update(stepWeight=1, maxWeight=60)
    started = time.perf_counter()
    result = run(manifest, scenario)
    took = time.perf_counter() - started
    print(
        f"{len(result.steps)} decisions over {window / 60:.0f} virtual minutes, end {result.phase!r}: {took:.2f}s"
    )
    if shutil.which("prometheus"):
        replay(manifest, window)


def replay(manifest: dict[str, object], window: float) -> None:
    from tests.fixtures.prometheus import start_prometheus

    prometheus = start_prometheus()
    try:
        spec = manifest["spec"]
        assert isinstance(spec, dict)
        spec["analysis"]["metrics"] = [
            {"name": "always-100", "templateRef": {"name": "always-100"}, "thresholdRange": {"min": 99}}
        ]
        template = {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "MetricTemplate",
            "metadata": {"name": "always-100", "namespace": "test"},
            "spec": {"provider": {"type": "prometheus", "address": prometheus.url}, "query": "vector(100)"},
        }
        end = datetime.now(UTC)
        recorded = Replay(prometheus.url, end - timedelta(seconds=window), end)
        started = time.perf_counter()
        result = run(manifest, Scenario(), templates=[template], replay=recorded)
        took = time.perf_counter() - started
        print(
            f"replay of {window / 60:.0f} minutes from a real Prometheus: {len(result.steps)} decisions, "
            f"end {result.phase!r}: {took:.2f}s"
        )
    finally:
        prometheus.stop()


if __name__ == "__main__":
    main()
