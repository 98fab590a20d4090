"""Flagger's golden event sequence (inventory §2.13, unit test TestWebhooks) reproduced through decide()."""

from __future__ import annotations

from typing import Any

from canarist.engine.model import EngineSettings
from canarist.engine.simulate import World
from tests.engine.conftest import ENGINE_CANARY, Script, hook
from tests.fixtures.canaries import canary_manifest


def golden_canary(**analysis: Any) -> dict[str, Any]:
    return canary_manifest(
        namespace="default",
        service=ENGINE_CANARY["service"],
        analysis={
            "interval": "30s",
            "threshold": 10,
            "stepWeight": 100,
            "maxWeight": 50,
            "stepWeightPromotion": 50,
            "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "1m"}],
            "webhooks": [
                hook("confirm-rollout-webhook", "confirm-rollout"),
                hook("pre-rollout-webhook", "pre-rollout"),
                hook("rollout-webhook", "rollout"),
                hook("confirm-traffic-increase-webhook", "confirm-traffic-increase"),
                hook("confirm-promotion-webhook", "confirm-promotion"),
                hook("post-rollout-webhook", "post-rollout"),
            ],
            **analysis,
        },
    )


def run_golden(manifest: dict[str, Any], settings: EngineSettings) -> tuple[World, Script]:
    script = Script()
    world = World(manifest, settings=settings, answer=script)
    world.run_until(lambda w: w.phase == "Initialized")
    world.change_target("rev-2")
    world.run_until(lambda w: w.phase == "Succeeded")
    return world, script


FLAGGER_GOLDEN = [
    "all the metrics providers are available!",
    "podinfo-primary.default not ready: waiting for rollout to finish: 0 out of 1 new replicas have been updated",
    "all the metrics providers are available!",
    "Initialization done! podinfo.default",
    "Confirm-rollout check confirm-rollout-webhook passed",
    "New revision detected! Scaling up podinfo.default",
    "Starting canary analysis for podinfo.default",
    "Pre-rollout check pre-rollout-webhook passed",
    "Confirm-traffic-increase check confirm-traffic-increase-webhook passed",
    "Advance podinfo.default canary weight 100",
    "Confirm-traffic-increase check confirm-traffic-increase-webhook passed",
    "Confirm-promotion check confirm-promotion-webhook passed",
    "Copying podinfo.default template spec to podinfo-primary.default",
    "Advance podinfo.default primary weight 50",
    "Advance podinfo.default primary weight 100",
    "Post-rollout check post-rollout-webhook passed",
    "Promotion completed! Scaling down podinfo.default",
]


def test_golden_sequence_is_flaggers_exactly_with_flaggers_overshoot() -> None:
    world, _script = run_golden(golden_canary(), EngineSettings(overshoot_max_weight=True))
    assert world.messages() == FLAGGER_GOLDEN


def test_golden_sequence_with_the_capped_last_step() -> None:
    """canarist's default caps the step at maxWeight 50, so the shift back takes one step, not two."""
    world, _ = run_golden(golden_canary(), EngineSettings())
    expected = [
        message.replace("canary weight 100", "canary weight 50")
        for message in FLAGGER_GOLDEN
        if message != "Advance podinfo.default primary weight 50"
    ]
    assert world.messages() == expected


def test_golden_hook_phases() -> None:
    _, script = run_golden(golden_canary(), EngineSettings(overshoot_max_weight=True))
    phases: dict[str, set[str]] = {}
    for check in script.asked:
        if check.kind == "webhook":
            phases.setdefault(check.webhook_type, set()).add(check.phase)
    assert phases == {
        "confirm-rollout": {"Initialized"},
        "pre-rollout": {"Progressing"},
        "rollout": {"Progressing"},
        "confirm-traffic-increase": {"Progressing"},
        "confirm-promotion": {"Progressing"},
        "post-rollout": {"Succeeded"},
    }


def test_golden_event_webhook_phases() -> None:
    world, _ = run_golden(golden_canary(), EngineSettings(overshoot_max_weight=True))
    phase_of = {event.message: event.phase for _, event in world.events}
    assert phase_of["New revision detected! Scaling up podinfo.default"] == "Progressing"
    assert phase_of["Copying podinfo.default template spec to podinfo-primary.default"] == "Progressing"
    assert phase_of["Promotion completed! Scaling down podinfo.default"] == "Succeeded"


def test_golden_skip_analysis_case() -> None:
    manifest = golden_canary()
    manifest["spec"]["skipAnalysis"] = True
    world, script = run_golden(manifest, EngineSettings())
    events = [(event.message, event.phase) for _, event in world.events]
    assert events == [
        ("Initialization done! podinfo.default", "Initialized"),
        ("Confirm-rollout check confirm-rollout-webhook passed", "Initialized"),
        ("New revision detected! Scaling up podinfo.default", "Progressing"),
        ("Copying podinfo.default template spec to podinfo-primary.default", "Progressing"),
        ("Post-rollout check post-rollout-webhook passed", "Succeeded"),
        ("Promotion completed! Canary analysis was skipped for podinfo.default", "Succeeded"),
    ]
    assert world.alert_messages()[-1] == "Canary analysis was skipped, promotion finished."
    assert [(o.outcome, o.analysis_status) for o in world.outcomes] == [("success", "skipped")]
    assert not any(c.kind == "metric" or c.kind == "providers" for c in script.asked)
    assert world.primary is not None
    assert world.primary.revision == "rev-2"
    assert world.target.replicas == 0
