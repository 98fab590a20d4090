"""Statistical unit tests with known answers for canarist.metrics.compare (seeded simulations)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from canarist.metrics.compare import (
    compare_error_rates,
    compare_latency,
    histogram_quantile,
)

ALPHA = 0.05
RUNS = 2000
# 10% traffic to the canary at ~100 req/s for a 1-minute interval: ~600 vs ~5,400 requests.
N_CANARY, N_PRIMARY = 600, 5400
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, math.inf]


def test_identical_error_rates_false_failure_at_most_alpha() -> None:
    rng = np.random.default_rng(1)
    fails = 0
    for _ in range(RUNS):
        ec = rng.binomial(N_CANARY, 0.01)
        ep = rng.binomial(N_PRIMARY, 0.01)
        fails += compare_error_rates(ec, N_CANARY, ep, N_PRIMARY, alpha=ALPHA).verdict == "fail"
    # the exact conditional test is conservative: false-failure <= alpha + 3 binomial s.d.
    assert fails / RUNS <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def test_doubled_error_rate_at_realistic_traffic_fails() -> None:
    # 2% vs 1% with 6,000 canary requests (10% of 1,000 req/s for a minute)
    rng = np.random.default_rng(2)
    nc, np_ = 6000, 54000
    detected = sum(
        compare_error_rates(rng.binomial(nc, 0.02), nc, rng.binomial(np_, 0.01), np_).verdict == "fail"
        for _ in range(200)
    )
    assert detected / 200 >= 0.95
    r = compare_error_rates(120, nc, 540, np_)
    assert r.verdict == "fail"
    assert r.p_value is not None
    assert r.p_value < 1e-6
    assert r.effect == pytest.approx(0.01)
    assert "+1.00 points" in r.sentence("error rate", percent=True)


def test_zero_primary_errors_few_canary_errors_judged_by_counts() -> None:
    # 5 errors in 600 canary requests, none in 5,400 primary: p = 0.1**5 = 1e-5
    r = compare_error_rates(5, 600, 0, 5400)
    assert r.verdict == "fail"
    assert r.p_value == pytest.approx(0.1**5)
    # one error is not evidence (p = 0.1)
    assert compare_error_rates(1, 600, 0, 5400).verdict == "pass"


def test_zero_errors_both_sides_passes_and_no_traffic_inconclusive() -> None:
    assert compare_error_rates(0, 600, 0, 5400).verdict == "pass"
    r = compare_error_rates(0, 0, 0, 5400)
    assert r.verdict == "inconclusive"
    assert r.p_value is None
    assert compare_error_rates(3, 30, 0, 5400, min_samples=50).verdict == "inconclusive"


def test_min_effect_and_direction() -> None:
    # huge traffic: a 0.1-point difference is significant but below a 0.5-point minEffect
    r = compare_error_rates(1100, 1_000_000, 1000, 1_000_000, min_effect=0.005)
    assert r.p_value is not None
    assert r.p_value < ALPHA
    assert r.verdict == "pass"
    # success counts: the canary succeeds less often -> fail
    assert compare_error_rates(570, 600, 5346, 5400, direction="higher-is-better").verdict == "fail"
    # canary better than primary never fails (one-sided)
    assert compare_error_rates(0, 600, 500, 5400).verdict == "pass"


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="errors exceed requests"):
        compare_error_rates(10, 5, 0, 5)
    with pytest.raises(ValueError, match="alpha"):
        compare_error_rates(0, 5, 0, 5, alpha=2)


def _hist(rng: np.random.Generator, n: int, median: float) -> list[float]:
    obs = rng.lognormal(math.log(median), 0.5, n)
    return [float((obs <= b).sum()) for b in BOUNDS]


def test_histogram_quantile_interpolates() -> None:
    cum = [0, 0, 0, 0, 50, 100, 100, 100, 100, 100, 100]
    assert histogram_quantile(0.5, BOUNDS, cum) == pytest.approx(0.1)
    assert histogram_quantile(0.75, BOUNDS, cum) == pytest.approx(0.175)


def test_identical_latency_false_failure_at_most_alpha() -> None:
    rng = np.random.default_rng(3)
    fails = 0
    for _ in range(RUNS):
        c, p = _hist(rng, N_CANARY, 0.08), _hist(rng, N_PRIMARY, 0.08)
        fails += compare_latency(BOUNDS, c, p, quantile=0.99).verdict == "fail"
    assert fails / RUNS <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def test_latency_shift_detected() -> None:
    rng = np.random.default_rng(4)
    detected = 0
    for _ in range(200):
        c, p = _hist(rng, N_CANARY, 0.12), _hist(rng, N_PRIMARY, 0.08)
        r = compare_latency(BOUNDS, c, p, quantile=0.99, min_effect=0.01)
        detected += r.verdict == "fail"
    assert detected / 200 >= 0.95
    # faster canary never fails; too few observations is inconclusive
    c, p = _hist(rng, N_CANARY, 0.04), _hist(rng, N_PRIMARY, 0.08)
    assert compare_latency(BOUNDS, c, p).verdict == "pass"
    assert compare_latency(BOUNDS, [0] * 11, p).verdict == "inconclusive"
