"""How long `canarist.simulate.run` takes for 30 virtual minutes of analysis (not a test).

The canary advances 1% per 30s interval up to 60%, so the analysis runs for the whole window: every
metric check goes through the operator's code and an HTTP round trip to the local Prometheus-API
server. Run: ``.venv/bin/python benchmarks/bench_simulate.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from canarist.simulate import Scenario, run

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


if __name__ == "__main__":
    main()
