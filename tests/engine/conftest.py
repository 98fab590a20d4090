"""Canary manifests for the engine stories: the seed walkthrough's canary and variations of it."""

from __future__ import annotations

from typing import Any

from canarist.engine.model import Check, CheckResult
from canarist.engine.simulate import World
from tests.fixtures.canaries import canary_manifest

# The walkthrough's canary with a plain service (no gateways, hosts or traffic policy) and its load test
# as the only webhook.
ENGINE_CANARY: dict[str, Any] = {
    "service": {"port": 9898},
    "webhooks": [
        {
            "name": "load-test",
            "url": "http://flagger-loadtester.test/",
            "timeout": "5s",
            "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"},
        }
    ],
}


def canary(**overrides: Any) -> dict[str, Any]:
    """The engine's seed canary with ``overrides`` (keywords of `canary_manifest`: analysis fields such as
    ``stepWeight=10``; a value of None removes the field)."""
    return canary_manifest(**{**ENGINE_CANARY, **overrides})


SEED: dict[str, Any] = canary()


def hook(name: str, type: str, url: str = "http://flagger-loadtester.test/gate/check") -> dict[str, Any]:
    return {"name": name, "type": type, "url": url}


class Script:
    """Answers checks from a story: per check name, a list of results handed out in order
    (the last one repeats); anything unscripted passes.

    >>> script = Script({"request-success-rate": [ok(), fail("Halt ...")]})
    """

    def __init__(self, answers: dict[str, list[CheckResult]] | None = None) -> None:
        self._answers = {name: list(results) for name, results in (answers or {}).items()}
        self.asked: list[Check] = []
        self._pass = CheckResult(ok=True)

    def __call__(self, check: Check, world: World) -> CheckResult:
        self.asked.append(check)
        results = self._answers.get(check.name)
        if not results:
            return self._pass
        return results.pop(0) if len(results) > 1 else results[0]


def ok() -> CheckResult:
    return CheckResult(ok=True)


def fail(message: str = "error") -> CheckResult:
    return CheckResult(ok=False, message=message)


def initialized(manifest: dict[str, Any], **world: Any) -> World:
    """A world whose canary finished initialization (the primary took 5 s to roll out)."""
    w = World(manifest, **world)
    w.run_until(lambda w: w.phase == "Initialized")
    return w


def assert_one_status_write_per_decision(world: World) -> None:
    """One status write per decision, or two for a committed one (pending side effects, then cleared)."""
    from canarist.engine.model import WriteStatus

    for tock in world.history:
        writes = [a for a in tock.decision.actions if isinstance(a, WriteStatus)]
        if len(writes) == 2:  # a committed decision: its record with the side effects pending, then cleared
            first, second = (dict(w.status.get("decision") or {}) for w in writes)
            assert first.get("pending"), tock
            assert not second.get("pending"), tock
            assert {**writes[0].status, "decision": None} == {**writes[1].status, "decision": None}, tock
        else:
            assert len(writes) <= 1, tock
