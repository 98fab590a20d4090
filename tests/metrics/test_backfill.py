"""Deterministic PromQL values from a promtool-backfilled TSDB served by a second real Prometheus."""

from __future__ import annotations

from pathlib import Path

from canarist.metrics import PrometheusProvider, ProviderSpec
from tests.fixtures.prometheus import backfill, start_prometheus


async def test_backfilled_success_rate_is_exact(tmp_path: Path) -> None:
    start = 1_700_000_000
    lines = ["# TYPE req counter"]
    for second in range(0, 600, 1):
        t = start + second
        lines.append(f'req_total{{code="200"}} {second * 19} {t}')
        lines.append(f'req_total{{code="500"}} {second * 1} {t}')
    lines.append("# EOF")
    backfill("\n".join(lines) + "\n", tmp_path / "data")
    server = start_prometheus(tmp_path / "data", workdir=tmp_path)
    try:
        end = start + 590
        query = f'sum(rate(req_total{{code!~"5.."}}[1m] @ {end})) / sum(rate(req_total[1m] @ {end})) * 100'
        value = await PrometheusProvider(ProviderSpec(address=server.url)).query(query)
    finally:
        server.stop()
    assert value == 95.0
