"""A Knative Service target: its record (no pods, no -primary object, revisions as objects of their own),
the initialization (primary annotation, traffic all to it), the promotion (the annotation moves), readiness
from the Revision's Ready condition, and revision detection from ``status.latestCreatedRevisionName``."""

from __future__ import annotations

import copy
from typing import Any

from canarist.api import Canary
from canarist.kube import resources as kinds
from canarist.workloads import knative
from canarist.workloads.revision import revision_hash
from canarist.workloads.targets import KNATIVE_SERVICE, target_kind
from tests.fixtures.canaries import canary_model

TARGET_REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}


def canary() -> Canary:
    return canary_model(provider="knative", autoscaler=None, spec={"targetRef": TARGET_REF})


def target(
    latest: str = "podinfo-00001", image: str = "ghcr.io/stefanprodan/podinfo:6.0.0"
) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test", "annotations": {"team": "api"}},
        "spec": {"template": {"spec": {"containers": [{"image": image}]}}},
        "status": {"latestCreatedRevisionName": latest, "latestReadyRevisionName": latest},
    }


def revision(name: str, status: str | None, reason: str = "", message: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": "test", "labels": {knative.SERVICE_LABEL: "podinfo"}},
        "status": {},
    }
    if status is not None:
        obj["status"]["conditions"] = [
            {"type": "Ready", "status": status, "reason": reason, "message": message}
        ]
    return obj


def test_the_record() -> None:
    record = target_kind("Service", "serving.knative.dev/v1")
    assert record is KNATIVE_SERVICE
    assert record.resource is kinds.KNATIVE_SERVICE
    assert record.resource.group_resource == "services.serving.knative.dev"
    assert not record.runs_pods
    assert not record.has_replicas
    assert record.canary_copy is None
    assert record.on_demand
    assert record.revisions is not None
    assert record.revisions.resource is kinds.KNATIVE_REVISION
    assert kinds.kind_of(target()) is kinds.KNATIVE_SERVICE  # not the Kubernetes Service
    assert record.scale_patch(target(), 0) is None
    assert record.scale_patch(target(), 3) is None
    assert not record.is_scaled_down(target())
    assert record.revisions.canary(target("podinfo-00003")) == "podinfo-00003"
    assert record.revisions.primary(target()) == ""
    assert record.revisions.owner(revision("podinfo-00001", "True")) == "podinfo"
    assert record.problem(target()) is None
    assert record.problem(target(latest="")) == (
        "Knative Service podinfo.test has no revision yet (status.latestCreatedRevisionName is empty)"
    )


def test_initialization_names_the_latest_revision_primary_and_sends_it_all_the_traffic() -> None:
    built = KNATIVE_SERVICE.build_primary(canary(), target(), "", "", flagger_id="x")
    assert built["metadata"]["name"] == "podinfo"  # the target itself, not a copy
    assert built["metadata"]["annotations"] == {
        "team": "api",
        "flagger.app/primary-revision": "podinfo-00001",
    }
    assert built["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 0},
        {"revisionName": "podinfo-00001", "percent": 100},
    ]
    assert built["spec"]["template"] == target()["spec"]["template"]
    assert "ownerReferences" not in built["metadata"]


def test_promotion_moves_the_annotation_to_the_latest_revision() -> None:
    initialized = KNATIVE_SERVICE.build_primary(canary(), target(), "", "")
    changed = copy.deepcopy(initialized)
    changed["status"]["latestCreatedRevisionName"] = "podinfo-00002"
    changed["spec"]["traffic"] = knative.traffic("podinfo-00001", 40, 60)
    promoted = KNATIVE_SERVICE.promote(canary(), changed, changed, "", "", flagger_id="y")
    assert knative.primary_revision(promoted) == "podinfo-00002"
    assert promoted["metadata"]["annotations"]["team"] == "api"
    # the primary's share follows the primary: the percents the analysis left, both to the new revision
    assert promoted["spec"]["traffic"] == knative.traffic("podinfo-00002", 40, 60)
    # a replayed promotion changes nothing
    assert KNATIVE_SERVICE.promote(canary(), promoted, promoted, "", "") == promoted


def test_readiness_is_the_revision_s_ready_condition() -> None:
    assert KNATIVE_SERVICE.readiness(revision("podinfo-00001", "True"), None).ready  # type: ignore[arg-type]
    starting = knative.readiness(revision("podinfo-00002", "Unknown"))
    assert (starting.ready, starting.retriable) == (False, True)
    assert starting.message == "Knative Revision podinfo-00002.test is not ready"
    fresh = knative.readiness(revision("podinfo-00002", None))
    assert (fresh.ready, fresh.retriable, fresh.message) == (False, True, starting.message)
    failed = knative.readiness(revision("podinfo-00002", "False", "ProgressDeadlineExceeded", "pods failed"))
    assert (failed.ready, failed.retriable) == (False, False)
    assert (
        failed.message == "Knative Revision podinfo-00002.test failed: ProgressDeadlineExceeded: pods failed"
    )
    missing = knative.readiness(None)
    assert (missing.ready, missing.retriable) == (False, True)


def test_the_revision_is_the_latest_created_revision_name() -> None:
    base = revision_hash(target())
    # a template change is a new revision only once Knative created it
    assert revision_hash(target(image="ghcr.io/stefanprodan/podinfo:6.0.1")) == base
    assert revision_hash(target("podinfo-00002")) != base
    annotated = KNATIVE_SERVICE.build_primary(canary(), target(), "", "")
    assert revision_hash(annotated) == base  # the annotation and the traffic are not a revision
