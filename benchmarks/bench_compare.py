"""False-failure and detection rates of ``compare`` (request-success-rate vs the primary) at the sandbox's
traffic levels, against a fixed threshold (issue 16's measure).

Traffic per analysis interval (30 s, the walkthrough's): the sandbox's users send 40 requests/s through the
gateway, split by the canary weight; the walkthrough's load test sends 20 requests/s to the canary directly.
So at weight w the canary sees 600 + 1200 w/100 requests and the primary 1200 (100 - w)/100. Errors are
drawn as independent Bernoulli trials (numpy), and each draw is judged by the same function the operator
uses (``compare_error_rates``, defaults alpha 0.05, minSamples 50, minEffect 0).

* per check: the share of checks that fail (a false failure when the canary is as good as the primary);
* per run: the walkthrough's run (stepWeight 5 up to 50, threshold 10 failed checks; a failed check does not
  advance the weight, as in Flagger): the share of runs rolled back.

    python benchmarks/bench_compare.py [--trials 4000] [--seed 1]
"""

from __future__ import annotations

import argparse

import numpy as np

from canarist.metrics.compare import compare_error_rates

USER_RPS, LOADTEST_RPS, INTERVAL_S = 40, 20, 30
WEIGHTS = list(range(5, 55, 5))
THRESHOLD = 10


def requests_at(weight: int) -> tuple[int, int]:
    users = USER_RPS * INTERVAL_S
    return LOADTEST_RPS * INTERVAL_S + users * weight // 100, users * (100 - weight) // 100


def check(rng: np.random.Generator, weight: int, base: float, factor: float) -> tuple[bool, bool]:
    """(compare fails, fixed 'min 99' threshold fails) for one interval."""
    n_c, n_p = requests_at(weight)
    e_c = int(rng.binomial(n_c, min(1.0, base * factor)))
    e_p = int(rng.binomial(n_p, base))
    verdict = compare_error_rates(e_c, n_c, e_p, n_p).verdict
    return verdict != "pass", 100 * (1 - e_c / n_c) < 99.0


def run(rng: np.random.Generator, base: float, factor: float) -> tuple[bool, bool]:
    """Whether the walkthrough's run is rolled back, judged by compare and by the fixed threshold."""
    outcomes = []
    for judge in (0, 1):
        step, failed = 0, 0
        while step < len(WEIGHTS) and failed < THRESHOLD:
            if check(rng, WEIGHTS[step], base, factor)[judge]:
                failed += 1
            else:
                step += 1
        outcomes.append(failed >= THRESHOLD)
    return outcomes[0], outcomes[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(
        f"per check, {args.trials} intervals per cell, weights 5-50 (canary/primary requests at 5: "
        f"{requests_at(5)}, at 50: {requests_at(50)})"
    )
    print(f"{'primary errors':>15} {'canary x':>9} {'compare fails':>14} {'min 99 fails':>13}")
    cells = [(0.001, 1.0), (0.001, 3.0), (0.01, 1.0), (0.01, 1.5), (0.01, 2.0), (0.015, 1.0), (0.015, 2.0)]
    for base, factor in cells:
        draws = [check(rng, WEIGHTS[i % len(WEIGHTS)], base, factor) for i in range(args.trials)]
        compare_rate = sum(d[0] for d in draws) / len(draws)
        fixed_rate = sum(d[1] for d in draws) / len(draws)
        print(f"{base:>15.1%} {factor:>9g} {compare_rate:>14.2%} {fixed_rate:>13.2%}")
    print(f"\nper run (stepWeight 5 to 50, threshold {THRESHOLD}), {args.runs} runs per cell")
    print(f"{'primary errors':>15} {'canary x':>9} {'compare rolls back':>19} {'min 99 rolls back':>18}")
    for base, factor in cells:
        runs = [run(rng, base, factor) for _ in range(args.runs)]
        print(
            f"{base:>15.1%} {factor:>9g} {sum(r[0] for r in runs) / len(runs):>19.2%} "
            f"{sum(r[1] for r in runs) / len(runs):>18.2%}"
        )


if __name__ == "__main__":
    main()
