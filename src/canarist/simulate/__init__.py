"""Simulate a Canary's analysis in virtual time: what would the operator have decided?

``run(canary, Scenario(...))`` runs the real engine (:class:`canarist.engine.simulate.World`) and answers
each metric check with the operator's own code (:func:`canarist.metrics.checks.evaluate_metric`: the same
query rendering, Prometheus client and threshold verdict). The scenario's value for the metric at the
virtual instant is served by a small Prometheus-API server on 127.0.0.1, so nothing of the check is
replaced. Webhook checks are answered from the scenario (pass by default).

``run(canary, scenario, replay=Replay(url, start, end))`` answers the metric checks instead from a real
Prometheus as it was over a past window: each check is the same instant query at the replayed instant.
"""

from __future__ import annotations

from canarist.simulate.core import Replay, Scenario, SimulationResult, Step, run

__all__ = ["Replay", "Scenario", "SimulationResult", "Step", "run"]
