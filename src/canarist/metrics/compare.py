"""Canary-versus-primary statistical comparisons (pure functions, no I/O).

Two one-sided tests ("only worse fails"):

* :func:`compare_error_rates` - failure counts on both sides. Conditional on the total number of
  errors ``k = e_canary + e_primary``, under "equal rates" the canary's share of the errors is
  ``Binomial(k, n_canary / (n_canary + n_primary))`` (the exact Poisson rate-ratio test). It is
  exact for any counts, including zero errors on either side.
* :func:`compare_latency` - bucketed histograms (cumulative ``le`` counts, as Prometheus exposes
  ``*_bucket``). A Mann-Whitney rank test with ties (every observation in one bucket is a tie),
  computed from the bucket counts, plus the shift of a quantile interpolated inside the buckets.

A comparison fails only when the test is significant (``p < alpha``) AND the effect is at least
``min_effect``; too few samples on either side gives ``inconclusive`` (the metric's no-data policy).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Verdict = Literal["pass", "fail", "inconclusive"]


@functools.cache
def _stats() -> Any:
    """``scipy.stats``, imported on the first comparison: it adds about 70 MiB and half a second to a
    process, which an operator whose canaries never compare should not pay."""
    from scipy import stats  # type: ignore[import-untyped]  # no stubs shipped; imported lazily on purpose

    return stats


@dataclass(frozen=True)
class Comparison:
    """The outcome of one canary-versus-primary test."""

    verdict: Verdict
    test: str
    canary: float  # the canary's value (error ratio, or the quantile in the histogram's unit)
    primary: float
    effect: float  # canary - primary (positive = canary worse for lower-is-better)
    p_value: float | None
    alpha: float
    min_effect: float
    canary_samples: int
    primary_samples: int
    reason: str

    def sentence(self, what: str, percent: bool = False) -> str:
        """One sentence for an event message."""

        def fmt(v: float) -> str:
            return f"{v * 100:.2f}%" if percent else f"{v:.4g}"

        eff = f"{self.effect * 100:+.2f} points" if percent else f"{self.effect:+.4g}"
        if self.p_value is None:
            return f"canary {what} {fmt(self.canary)} vs primary {fmt(self.primary)}: {self.reason}"
        rel = "<" if self.p_value < self.alpha else ">="
        return (
            f"canary {what} {fmt(self.canary)} vs primary {fmt(self.primary)} "
            f"({eff}, p={self.p_value:.3g} {rel} {self.alpha:g}): {self.verdict}"
        )


def _check_params(alpha: float, min_effect: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if min_effect < 0 or not math.isfinite(min_effect):
        raise ValueError(f"minEffect must be a finite number >= 0, got {min_effect}")


def compare_error_rates(
    canary_errors: float,
    canary_total: float,
    primary_errors: float,
    primary_total: float,
    *,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    min_samples: int = 1,
    direction: Literal["lower-is-better", "higher-is-better"] = "lower-is-better",
) -> Comparison:
    """Exact one-sided test that the canary's failure rate is higher than the primary's.

    Counts may be floats (Prometheus ``increase`` extrapolates); they are rounded to integers.
    ``direction="higher-is-better"`` treats the counts as successes (a lower canary rate is worse).
    ``min_effect`` is in rate units (0.01 = one percentage point).
    """
    _check_params(alpha, min_effect)
    vals = (canary_errors, canary_total, primary_errors, primary_total)
    if any(not math.isfinite(v) or v < 0 for v in vals):
        raise ValueError(f"counts must be finite and >= 0, got {vals}")
    ec, nc, ep, np_ = (round(v) for v in vals)
    if ec > nc or ep > np_:
        raise ValueError(f"errors exceed requests: canary {ec}/{nc}, primary {ep}/{np_}")
    if direction == "higher-is-better":  # test the complements (failures)
        ec, ep = nc - ec, np_ - ep
    elif direction != "lower-is-better":
        raise ValueError(f"direction must be lower-is-better or higher-is-better, got {direction!r}")
    rc = ec / nc if nc else 0.0
    rp = ep / np_ if np_ else 0.0
    test = "exact conditional binomial (Poisson rate ratio), one-sided"
    if nc < max(min_samples, 1) or np_ < max(min_samples, 1):
        return Comparison(
            "inconclusive", test, rc, rp, rc - rp, None, alpha, min_effect, nc, np_,
            f"too few requests (canary {nc}, primary {np_}, need {max(min_samples, 1)} each)",
        )  # fmt: skip
    k = ec + ep
    if k == 0:
        return Comparison(
            "pass", test, rc, rp, 0.0, 1.0, alpha, min_effect, nc, np_, "no errors on either side"
        )
    share = nc / (nc + np_)
    p = float(_stats().binomtest(ec, k, share, alternative="greater").pvalue)
    effect = rc - rp
    if p < alpha and effect >= min_effect:
        verdict: Verdict = "fail"
        reason = "canary significantly worse"
    else:
        verdict = "pass"
        reason = "not significantly worse" if p >= alpha else "difference below minEffect"
    return Comparison(verdict, test, rc, rp, effect, p, alpha, min_effect, nc, np_, reason)


def bucket_counts(cumulative: Sequence[float]) -> np.ndarray:
    """Per-bucket counts from cumulative ``le`` counts (Prometheus ``_bucket``, +Inf last)."""
    c = np.maximum.accumulate(np.clip(np.asarray(cumulative, dtype=float), 0.0, None))
    return np.diff(np.concatenate(([0.0], c)))


def histogram_quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float:
    """The q-quantile by linear interpolation inside a bucket (as PromQL's histogram_quantile)."""
    c = np.maximum.accumulate(np.asarray(cumulative, dtype=float))
    total = float(c[-1]) if len(c) else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    i = int(np.searchsorted(c, rank, side="left"))
    i = min(i, len(c) - 1)
    if math.isinf(bounds[i]):
        return float(bounds[i - 1]) if i > 0 else math.nan
    lower = 0.0 if i == 0 else float(bounds[i - 1])
    below = 0.0 if i == 0 else float(c[i - 1])
    inside = float(c[i]) - below
    if inside <= 0:
        return float(bounds[i])
    return lower + (float(bounds[i]) - lower) * (rank - below) / inside


def _rank_test_greater(xc: np.ndarray, xp: np.ndarray) -> float:
    """One-sided Mann-Whitney p-value (canary stochastically larger), ties per bucket, from counts."""
    n1, n2 = float(xc.sum()), float(xp.sum())
    tot = xc + xp
    n = n1 + n2
    # mid-rank of each bucket
    before = np.concatenate(([0.0], np.cumsum(tot)[:-1]))
    mid = before + (tot + 1.0) / 2.0
    r1 = float((xc * mid).sum())
    u = r1 - n1 * (n1 + 1.0) / 2.0
    mu = n1 * n2 / 2.0
    tie = float((tot**3 - tot).sum())
    var = n1 * n2 / 12.0 * ((n + 1.0) - tie / (n * (n - 1.0)))
    if var <= 0:
        return 1.0
    z = (u - mu - 0.5) / math.sqrt(var)  # continuity correction
    return float(_stats().norm.sf(z))


def compare_latency(
    bounds: Sequence[float],
    canary_cumulative: Sequence[float],
    primary_cumulative: Sequence[float],
    *,
    quantile: float = 0.99,
    alpha: float = 0.05,
    min_effect: float = 0.0,
    min_samples: int = 1,
) -> Comparison:
    """One-sided test that the canary's latency is higher, from both sides' ``le`` buckets.

    ``bounds`` are the buckets' upper bounds (ascending, ``inf`` last); the cumulative counts are
    per bound (rounded). Fails when the rank test is significant and the ``quantile`` shift
    (canary - primary, in the histogram's unit) is at least ``min_effect``.
    """
    _check_params(alpha, min_effect)
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if len(bounds) != len(canary_cumulative) or len(bounds) != len(primary_cumulative):
        raise ValueError("bounds and both sides' bucket counts must have the same length")
    if list(bounds) != sorted(bounds):
        raise ValueError("bucket bounds must be ascending")
    xc = np.round(bucket_counts(canary_cumulative))
    xp = np.round(bucket_counts(primary_cumulative))
    nc, np_ = int(xc.sum()), int(xp.sum())
    qc = histogram_quantile(quantile, bounds, np.cumsum(xc).tolist())
    qp = histogram_quantile(quantile, bounds, np.cumsum(xp).tolist())
    test = f"Mann-Whitney rank test on buckets (ties), one-sided; p{quantile * 100:g} shift"
    need = max(min_samples, 2)
    if nc < need or np_ < need:
        return Comparison(
            "inconclusive", test, qc, qp, math.nan, None, alpha, min_effect, nc, np_,
            f"too few observations (canary {nc}, primary {np_}, need {need} each)",
        )  # fmt: skip
    p = _rank_test_greater(xc, xp)
    effect = qc - qp
    if p < alpha and effect >= min_effect and effect > 0:
        verdict: Verdict = "fail"
        reason = "canary significantly slower"
    else:
        verdict = "pass"
        reason = "not significantly slower" if p >= alpha else "shift below minEffect"
    return Comparison(verdict, test, qc, qp, effect, p, alpha, min_effect, nc, np_, reason)
