"""canarist.engine: the canary state machine as a pure function.

``decide(canary, observation, answers, settings)`` returns the next check to run (``NeedCheck``) or the
``Decision`` for this tick. No I/O, no clock, no randomness. See docs/engine.md.
"""

from __future__ import annotations

from canarist.engine.decide import decide
from canarist.engine.model import (
    Action,
    Alert,
    Check,
    CheckResult,
    CountOutcome,
    Decision,
    EngineSettings,
    Event,
    Initialize,
    NeedCheck,
    Observation,
    Promote,
    Readiness,
    Routes,
    RunPostRollout,
    ScaleDownTarget,
    ScaleUpTarget,
    SetRoutes,
    TargetFacts,
    WriteStatus,
)

__all__ = [
    "Action",
    "Alert",
    "Check",
    "CheckResult",
    "CountOutcome",
    "Decision",
    "EngineSettings",
    "Event",
    "Initialize",
    "NeedCheck",
    "Observation",
    "Promote",
    "Readiness",
    "Routes",
    "RunPostRollout",
    "ScaleDownTarget",
    "ScaleUpTarget",
    "SetRoutes",
    "TargetFacts",
    "WriteStatus",
    "decide",
]
