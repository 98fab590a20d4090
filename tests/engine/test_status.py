"""The status the engine writes: Flagger's primitives and the Promoted condition (inventory §1.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canarist.api import CanaryStatus
from canarist.engine.ledger import rfc3339
from canarist.engine.status import StatusDraft, promoted_conditions

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_promoted_condition_per_phase() -> None:
    expected = {
        "Initializing": ("Unknown", "New Deployment detected, starting initialization."),
        "Initialized": ("True", "Deployment initialization completed."),
        "Waiting": ("Unknown", "Waiting for approval."),
        "WaitingPromotion": ("Unknown", "Waiting for approval."),
        "Progressing": ("Unknown", "New revision detected, progressing canary analysis."),
        "Promoting": ("Unknown", "Canary analysis completed, starting primary rolling update."),
        "Finalising": ("Unknown", "Canary analysis completed, routing all traffic to primary."),
        "Succeeded": ("True", "Canary analysis completed successfully, promotion finished."),
        "Failed": ("False", "Canary analysis failed, Deployment scaled to zero."),
        "Terminating": ("Unknown", "New Deployment detected, starting initialization."),
    }
    for phase, (status, message) in expected.items():
        [condition] = promoted_conditions([], phase=phase, kind="Deployment", now=T0)
        assert (condition["type"], condition["status"], condition["reason"], condition["message"]) == (
            "Promoted",
            status,
            phase,
            message,
        )


def test_condition_keeps_transition_time_while_status_stays() -> None:
    [progressing] = promoted_conditions([], phase="Progressing", kind="Deployment", now=T0)
    later = T0 + timedelta(minutes=5)
    [promoting] = promoted_conditions([progressing], phase="Promoting", kind="Deployment", now=later)
    assert promoting["lastTransitionTime"] == rfc3339(T0)
    assert promoting["lastUpdateTime"] == rfc3339(later)
    [succeeded] = promoted_conditions([promoting], phase="Succeeded", kind="Deployment", now=later)
    assert succeeded["lastTransitionTime"] == rfc3339(later)


def test_condition_untouched_when_status_and_reason_stay() -> None:
    [first] = promoted_conditions([], phase="Progressing", kind="Deployment", now=T0)
    again = promoted_conditions([first], phase="Progressing", kind="Deployment", now=T0 + timedelta(hours=1))
    assert again == [first]


def test_other_conditions_are_kept() -> None:
    other = {"type": "Ready", "status": "True", "reason": "x"}
    result = promoted_conditions([other], phase="Failed", kind="DaemonSet", now=T0)
    assert result[0] == other
    assert result[1]["message"] == "Canary analysis failed, DaemonSet scaled to zero."


def test_set_phase_rules() -> None:
    draft = StatusDraft.of(
        CanaryStatus(phase="Progressing", canaryWeight=50, iterations=3, lastAppliedSpec="b")
    )
    draft.set_phase("Promoting")
    assert (draft.canary_weight, draft.iterations) == (50, 3)
    draft.set_phase("WaitingPromotion", analysis_iterations=10)
    assert (draft.canary_weight, draft.iterations) == (0, 9)
    draft.set_phase("WaitingPromotion", analysis_iterations=0)
    assert draft.iterations == 0  # Flagger would write -1
    draft.set_phase("Succeeded")
    assert (draft.canary_weight, draft.iterations, draft.last_promoted_spec) == (0, 0, "b")


def test_sync_records_revision_and_configs() -> None:
    draft = StatusDraft.of(
        CanaryStatus(phase="Succeeded", failedChecks=3, lastAppliedSpec="a", lastPromotedSpec="a")
    )
    draft.sync("Progressing", revision="b", configs={"secret/s": "1"})
    assert (draft.phase, draft.failed_checks, draft.last_applied_spec, draft.last_promoted_spec) == (
        "Progressing",
        0,
        "b",
        "a",
    )
    assert draft.tracked_configs == {"secret/s": "1"}
    draft.sync("Initialized", revision="c", configs={})
    assert draft.last_promoted_spec == "c"


def test_render_keeps_unknown_status_fields_and_stamps_time() -> None:
    base = {"phase": "Progressing", "sessionAffinityCookie": "flagger-cookie-x", "custom": 1}
    draft = StatusDraft.of(CanaryStatus.model_validate(base))
    draft.set_weight(10)
    rendered = draft.render(base, now=T0, kind="Deployment")
    assert rendered["sessionAffinityCookie"] == "flagger-cookie-x"
    assert rendered["custom"] == 1
    assert rendered["canaryWeight"] == 10
    assert rendered["lastTransitionTime"] == "2024-01-01T00:00:00Z"
