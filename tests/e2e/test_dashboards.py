"""The Grafana dashboards of deploy/grafana/ work against real data: every PromQL expression (panels and
template variables), with the variables set to this world's values, parses on a real Prometheus (HTTP 200
from /api/v1/query; a parse error is a 400) and returns data during a promotion and a rollback driven
through the real operator, whose /metrics that Prometheus scrapes."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.conftest import World
from tests.e2e.harness import PROMOTION_TIMEOUT_S, fast_seed, phase_is, set_image, wait_for

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = {path.name: json.loads(path.read_text()) for path in sorted(GRAFANA.glob("*.json"))}
# Grafana's built-in interval variables, as Grafana would expand them for a short time range.
BUILTINS = {"__rate_interval": "30s", "__range": "10m", "__interval": "15s"}
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels") or [])
    return out


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in panels(dashboard) for t in p.get("targets") or []]


def variable_queries(dashboard: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"}


def substitute(expr: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def test_dashboards_are_grafana_json_with_a_prometheus_datasource_variable() -> None:
    assert set(DASHBOARDS) == {"istio-canary.json", "operator.json"}
    for name, dashboard in DASHBOARDS.items():
        assert 36 <= dashboard["schemaVersion"] <= 41, name
        assert dashboard["uid"]
        assert dashboard["title"]
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), name
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
                assert used <= set(variables) | set(BUILTINS), (panel["title"], used)
    istio_vars = {v["name"] for v in DASHBOARDS["istio-canary.json"]["templating"]["list"]}
    assert {"namespace", "primary", "canary"} <= istio_vars


async def instant(prometheus_url: str, query: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{prometheus_url}/api/v1/query", params={"query": query}) as response,
    ):
        return response.status, await response.json(content_type=None)


async def ranged(prometheus_url: str, query: str, start: float, end: float) -> list[float]:
    params = {"query": query, "start": repr(start), "end": repr(end), "step": "1"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{prometheus_url}/api/v1/query_range", params=params) as response,
    ):
        answer = await response.json(content_type=None)
    assert response.status == 200, answer
    values = [float(v) for series in answer["data"]["result"] for _, v in series["values"]]
    return [v for v in values if not math.isnan(v)]


async def test_every_dashboard_query_returns_data_from_a_real_run(
    world: World, prometheus_server: Any, capture_server: Any
) -> None:
    hook = await capture_server(statuses=[200])
    process = await world.start_operator()
    assert process.operator is not None
    target = f"127.0.0.1:{process.operator.http.port}"
    prometheus_server.add_target(target)
    try:
        await prometheus_server.wait_for_value(
            f'up{{instance="{target}"}}', accept=lambda v: v == 1, timeout_s=30
        )
        started = time.time()
        await world.apply_podinfo(
            fast_seed(stepWeight=25, webhooks=[{"name": "smoke", "type": "rollout", "url": hook.url}])
        )
        await wait_for(lambda: phase_is(world, "Initialized"), what="Initialized", timeout_s=60)
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.1")
        await wait_for(
            lambda: phase_is(world, "Succeeded"), what="Succeeded", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
        )
        world.canary_app.set_knobs(error_rate=0.5)
        await set_image(world, "quay.io/stefanprodan/podinfo:3.1.2")
        await wait_for(
            lambda: phase_is(world, "Failed"), what="Failed", timeout_s=PROMOTION_TIMEOUT_S, poll_s=0.5
        )
        # Let the last ticks be scraped a few times (1 s scrape interval): increase() needs two samples.
        await prometheus_server.wait_for_value(
            'count_over_time(flagger_canary_failures_total{name="podinfo"}[1m])',
            accept=lambda v: v >= 3,
            timeout_s=20,
        )
        ended = time.time()

        values = {
            "namespace": "test",
            "primary": "podinfo-primary",
            "canary": "podinfo",
            "name": "podinfo",
            "success_threshold": "99",
            "duration_threshold_ms": "500",
            "datasource": "prometheus",
            **BUILTINS,
        }
        expected_choices = {
            "namespace": "test",
            "primary": "podinfo-primary",
            "canary": "podinfo",
            "name": "podinfo",
        }
        problems: list[str] = []
        checked = 0
        for name, dashboard in DASHBOARDS.items():
            # Template variables: label_values(selector, label) must offer this world's value.
            for variable, query in variable_queries(dashboard).items():
                match = LABEL_VALUES.match(query)
                assert match, f"{name}: variable {variable} is not a label_values() query: {query}"
                promql = f"count by ({match['label']}) ({substitute(match['selector'], values)})"
                status, answer = await instant(prometheus_server.url, promql)
                offered = {s["metric"].get(match["label"]) for s in answer.get("data", {}).get("result", [])}
                if status != 200 or expected_choices[variable] not in offered:
                    problems.append(
                        f"{name} variable {variable}: {promql} -> {status} offers {sorted(offered)}"
                    )
                checked += 1
            for title, expr in expressions(dashboard):
                promql = substitute(expr, values)
                status, answer = await instant(prometheus_server.url, promql)
                if status != 200 or answer.get("status") != "success":
                    problems.append(
                        f"{name} [{title}] does not parse ({status}): {promql}: {answer.get('error')}"
                    )
                    continue
                if not await ranged(prometheus_server.url, promql, started, ended):
                    problems.append(f"{name} [{title}] returned no data during the run: {promql}")
                checked += 1
        assert not problems, "\n".join(problems)
        assert checked == sum(len(expressions(d)) + len(variable_queries(d)) for d in DASHBOARDS.values())
    finally:
        prometheus_server.remove_target(target)
