"""``compare`` on the builtin request-success-rate (issue 16, item 1), through ``evaluate_metric`` against a
real HTTP server answering Prometheus' query API: the four count queries sent (the canary's and the
primary's successes and requests over the same window), the verdicts with known answers, and the evidence
the decision ledger keeps."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canarist.api import CanaryMetric
from canarist.engine.ledger import entry_of
from canarist.engine.model import Check
from canarist.metrics.checks import evaluate_metric
from tests.metrics.test_checks import EMPTY, canary, vector


def counts(*values: float | None) -> list[str]:
    """Answers for (canary successes, canary requests, primary successes, primary requests)."""
    return [EMPTY if v is None else vector(str(v)) for v in values]


def compared(**compare: Any) -> CanaryMetric:
    return CanaryMetric.model_validate({"name": "request-success-rate", "interval": "1m", "compare": compare})


async def judge(capture_server: Any, answers: list[str], metric: CanaryMetric | None = None) -> Any:
    srv = await capture_server(bodies=answers)
    result = await evaluate_metric(canary(), metric or compared(), metrics_server=srv.url)
    return srv, result


async def test_the_same_window_is_counted_for_the_canary_and_the_primary(capture_server: Any) -> None:
    srv, result = await judge(capture_server, counts(995, 1000, 9900, 10000))
    sent = [r.query["query"] for r in srv.requests]
    assert len(sent) == 4
    for query in sent:
        assert query.startswith('sum( increase( istio_requests_total{ reporter="destination"')
        assert query.endswith("[1m] ) )")
    assert 'destination_workload=~"podinfo", response_code!~"5.*"' in sent[0]
    assert 'destination_workload=~"podinfo" }' in sent[1]
    assert 'destination_workload=~"podinfo-primary", response_code!~"5.*"' in sent[2]
    assert 'destination_workload=~"podinfo-primary" }' in sent[3]
    # 0.5 % errors on the canary, 1 % on the primary: not worse
    assert result.ok
    assert result.value == pytest.approx(99.5)
    assert result.primary_value == pytest.approx(99.0)
    assert result.unit == "%"


async def test_a_doubled_error_rate_at_realistic_traffic_fails_with_the_evidence(capture_server: Any) -> None:
    _, result = await judge(capture_server, counts(980, 1000, 9900, 10000))
    assert not result.ok
    assert not result.no_data
    assert result.message.startswith(
        "Halt podinfo.test advancement success rate vs primary: canary error rate 2.00% vs primary 1.00% "
        "(+1.00 points, p="
    )
    assert result.message.endswith("< 0.05): fail")
    assert result.p_value is not None
    assert result.p_value < 0.01
    assert result.effect == pytest.approx(-1.0)  # success rate points, canary minus primary
    entry = entry_of(Check("metric", "request-success-rate"), result.answer(), at="t", weight=10, iteration=0)
    rendered = entry.render()
    assert rendered["verdict"] == "fail"
    assert rendered["primaryValue"] == pytest.approx(99.0)
    assert rendered["pValue"] == pytest.approx(result.p_value, rel=1e-3)
    assert rendered["test"].startswith("exact conditional binomial")


async def test_zero_errors_on_the_primary_is_judged_by_counts(capture_server: Any) -> None:
    # 3 errors in 1000 canary requests, none in 10000 on the primary: p = (1000 / 11000) ** 3
    _, result = await judge(capture_server, counts(997, 1000, 10000, 10000))
    assert not result.ok
    assert result.p_value == pytest.approx((1000 / 11000) ** 3, rel=1e-6)
    # and a single error is not enough evidence
    _, one = await judge(capture_server, counts(999, 1000, 10000, 10000))
    assert one.ok


async def test_too_few_requests_is_no_data(capture_server: Any) -> None:
    _, result = await judge(capture_server, counts(None, None, 9900, 10000))
    assert result.no_data
    assert result.message == (
        "Halt advancement not enough requests to compare podinfo.test with its primary: canary error rate "
        "0.00% vs primary 1.00%: too few requests (canary 0, primary 10000, need 50 each)"
    )


async def test_min_effect_and_a_threshold_apply_as_well(capture_server: Any) -> None:
    # significantly worse, but by less than the 2 points that matter
    _, small = await judge(capture_server, counts(980, 1000, 9900, 10000), compared(minEffect=2))
    assert small.ok
    both = CanaryMetric.model_validate(
        {"name": "request-success-rate", "compare": {}, "thresholdRange": {"min": 99.9}}
    )
    _, result = await judge(capture_server, counts(995, 1000, 9900, 10000), both)
    assert result.message == "Halt podinfo.test advancement success rate 99.50% < 99.9%"


async def test_what_cannot_be_compared_says_so(capture_server: Any) -> None:
    duration = CanaryMetric.model_validate({"name": "request-duration", "compare": {}})
    srv = await capture_server(bodies=[json.dumps({})])
    result = await evaluate_metric(canary(), duration, metrics_server=srv.url)
    assert result.error
    assert result.message == (
        "Metric request-duration compare: only the builtin request-success-rate can be compared with the "
        "primary yet"
    )
    contour = await evaluate_metric(canary(provider="contour"), compared(), metrics_server=srv.url)
    assert contour.error
    assert contour.message == (
        "Metric request-success-rate compare: the contour builtin queries cannot be run for the primary; "
        "compare supports istio, linkerd"
    )
    assert srv.requests == []


async def test_the_evidence_line_names_the_primary(capture_server: Any) -> None:
    from canarist.engine.ledger import evidence_line

    _, result = await judge(capture_server, counts(980, 1000, 9900, 10000))
    entry = entry_of(Check("metric", "request-success-rate"), result.answer(), at="t", weight=10, iteration=0)
    assert evidence_line(entry) == "request-success-rate 98% vs primary 99%, p=0.00585"
