"""The DaemonSet primary, its readiness and the scale-to-zero node selector."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from canarist.engine.model import Readiness
from canarist.workloads import daemonset
from canarist.workloads.revision import revision_hash
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, OWNER, stored

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
W = "waiting for rollout to finish: "


def target() -> dict[str, Any]:
    ds = podinfo.deployment()
    ds["kind"] = "DaemonSet"
    spec = ds["spec"]
    for key in ("progressDeadlineSeconds", "strategy"):
        del spec[key]
    spec["updateStrategy"] = {"type": "RollingUpdate"}
    spec["template"]["spec"]["nodeSelector"] = {"flagger.app/scale-to-zero": "true"}
    return ds


def test_primary() -> None:
    primary = daemonset.build_primary(podinfo.canary(), target(), "app", "podinfo", flagger_id="f")
    assert primary["kind"] == "DaemonSet"
    assert primary["metadata"] == {
        "name": "podinfo-primary",
        "namespace": "test",
        "labels": {"app": "podinfo-primary"},
        "annotations": FLUX,
        "ownerReferences": [OWNER],
    }
    spec = primary["spec"]
    assert spec["minReadySeconds"] == 5
    assert spec["revisionHistoryLimit"] == 5
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    assert spec["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert "nodeSelector" not in spec["template"]["spec"]
    assert spec["template"]["metadata"]["annotations"]["flagger-id"] == "f"
    promoted = daemonset.promote(podinfo.canary(), target(), primary, "app", "podinfo", flagger_id="g")
    assert promoted["spec"]["template"]["metadata"]["annotations"]["flagger-id"] == "g"
    assert promoted["metadata"]["annotations"] == FLUX
    written = stored(primary)
    assert daemonset.promote(podinfo.canary(), target(), written, "app", "podinfo", flagger_id="f") == written


def test_strategy_and_scaling() -> None:
    ds = target()
    assert daemonset.strategy_error(ds) is None
    ds["spec"]["updateStrategy"] = {"type": "OnDelete"}
    ds["metadata"]["namespace"] = "test"
    assert (
        daemonset.strategy_error(ds)
        == "daemonset podinfo.test must have RollingUpdate strategy but have OnDelete"
    )
    assert daemonset.is_scaled_to_zero(target())
    assert daemonset.scale_up_patch() == {
        "spec": {"template": {"spec": {"nodeSelector": {"flagger.app/scale-to-zero": None}}}}
    }
    up = target()
    del up["spec"]["template"]["spec"]["nodeSelector"]
    assert revision_hash(up) == revision_hash(target())


def ds_status(desired: int, updated: int, available: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo-primary", "generation": 2},
        "status": {
            "observedGeneration": 2,
            "desiredNumberScheduled": desired,
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
        },
    }


def check(obj: dict[str, Any], since: str | None = None, deadline: int = 600) -> Readiness:
    return daemonset.readiness(
        obj, ready_threshold_pct=100, progress_deadline_s=deadline, last_transition_time=since, now=NOW
    )


def test_readiness() -> None:
    assert check(ds_status(3, 3, 3)).ready
    assert check(ds_status(3, 1, 1)) == Readiness(False, True, W + "1 out of 3 new pods have been updated")
    assert check(ds_status(3, 3, 2)).message == W + "2 of 3 (readyThreshold 100%) updated pods are available"
    assert check(ds_status(3, 1, 1), since="2024-05-01T11:00:00Z", deadline=60) == Readiness(
        False, False, "exceeded its progressDeadlineSeconds: 60"
    )
    stale = ds_status(3, 3, 3)
    stale["metadata"]["generation"] = 3
    assert check(stale).message == W + "observed daemonset generation less than desired generation"


def test_scaling_to_zero_and_back_is_not_a_new_revision() -> None:
    """A merge patch that removes the scale-to-zero label may leave an empty node selector behind."""
    from canarist.workloads.revision import revision_hash

    base = {
        "kind": "DaemonSet",
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}},
    }
    down = {
        "kind": "DaemonSet",
        "spec": {
            "template": {
                "spec": {
                    **base["spec"]["template"]["spec"],
                    "nodeSelector": {"flagger.app/scale-to-zero": "true"},
                }
            }
        },
    }
    back = {
        "kind": "DaemonSet",
        "spec": {"template": {"spec": {**base["spec"]["template"]["spec"], "nodeSelector": {}}}},
    }
    assert revision_hash(base) == revision_hash(down) == revision_hash(back)
