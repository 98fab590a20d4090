"""The Knative Serving stand-in, through real kubectl: a Service gets Revision <svc>-00001, which becomes
Ready after the readiness delay; a template change is a new Revision (a traffic change is not); the status
carries the latest created and ready revisions and spec.traffic resolved as Knative resolves it; a traffic
target naming a missing revision is RevisionMissing; a never-ready template stays Unknown; deleting the
Service collects its Revisions."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from canarist.localcluster.knative import revision_deployment
from tests.fixtures.localcluster import LocalClusterHandle

pytestmark = pytest.mark.localcluster(install_provider_crds=["knative"], readiness_delay=0.05)

Obj = dict[str, Any]


def ksvc(image: str = "ghcr.io/stefanprodan/podinfo:6.0.0", **spec: Any) -> Obj:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "podinfo"}},
                "spec": {"containers": [{"image": image, "ports": [{"containerPort": 9898}]}]},
            },
            **spec,
        },
    }


def apply(cluster: LocalClusterHandle, doc: Obj) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=True)


def wait(cluster: LocalClusterHandle, resource: str, condition: str) -> None:
    cluster.kubectl("wait", f"--for={condition}", resource, "--timeout=20s", check=True)


def get(cluster: LocalClusterHandle, resource: str) -> Obj:
    found: Obj = json.loads(cluster.kubectl("get", resource, "-o", "json", check=True).stdout)
    return found


def test_a_service_gets_revisions_and_a_resolved_traffic_status(local_cluster: LocalClusterHandle) -> None:
    apply(local_cluster, ksvc())
    wait(local_cluster, "revision/podinfo-00001", "condition=Ready")
    wait(local_cluster, "ksvc/podinfo", "jsonpath={.status.latestReadyRevisionName}=podinfo-00001")
    service = get(local_cluster, "ksvc/podinfo")
    revision = get(local_cluster, "revision/podinfo-00001")
    assert revision["metadata"]["labels"]["serving.knative.dev/service"] == "podinfo"
    assert revision["metadata"]["labels"]["serving.knative.dev/configurationGeneration"] == "1"
    assert revision["metadata"]["labels"]["app"] == "podinfo"  # the template's labels
    assert revision["metadata"]["ownerReferences"][0]["uid"] == service["metadata"]["uid"]
    assert revision["spec"]["containers"][0]["image"] == "ghcr.io/stefanprodan/podinfo:6.0.0"
    status = service["status"]
    assert status["observedGeneration"] == service["metadata"]["generation"]
    assert status["latestCreatedRevisionName"] == "podinfo-00001"
    assert status["url"] == "http://podinfo.default.example.com"
    # no spec.traffic: all of it to the latest ready revision
    assert status["traffic"] == [{"revisionName": "podinfo-00001", "latestRevision": True, "percent": 100}]
    assert [c["status"] for c in status["conditions"] if c["type"] == "Ready"] == ["True"]

    # pin the traffic: not a new revision, and the status follows
    traffic = [{"latestRevision": True, "percent": 0}, {"revisionName": "podinfo-00001", "percent": 100}]
    apply(local_cluster, ksvc(traffic=traffic))
    wait(local_cluster, "ksvc/podinfo", "jsonpath={.status.traffic[1].percent}=100")
    # a new template: a new revision; latestRevision follows it once it is ready, the pinned one stays
    canary = [{"latestRevision": True, "percent": 10}, {"revisionName": "podinfo-00001", "percent": 90}]
    apply(local_cluster, ksvc("ghcr.io/stefanprodan/podinfo:6.0.1", traffic=canary))
    wait(local_cluster, "revision/podinfo-00002", "condition=Ready")
    wait(local_cluster, "ksvc/podinfo", "jsonpath={.status.latestReadyRevisionName}=podinfo-00002")
    status = get(local_cluster, "ksvc/podinfo")["status"]
    assert status["latestCreatedRevisionName"] == "podinfo-00002"
    assert status["traffic"] == [
        {"revisionName": "podinfo-00002", "latestRevision": True, "percent": 10},
        {"revisionName": "podinfo-00001", "latestRevision": False, "percent": 90},
    ]
    names = [r["metadata"]["name"] for r in get(local_cluster, "revisions")["items"]]
    assert names == ["podinfo-00001", "podinfo-00002"]
    lines = local_cluster.kubectl("get", "ksvc", check=True).stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "URL", "LATESTCREATED", "LATESTREADY"]

    # going back to the first template is a new revision too, as with Knative
    apply(local_cluster, ksvc(traffic=canary))
    wait(local_cluster, "revision/podinfo-00003", "condition=Ready")

    # a traffic target naming a missing revision
    apply(local_cluster, ksvc(traffic=[{"revisionName": "podinfo-00042", "percent": 100}]))
    wait(local_cluster, "ksvc/podinfo", "jsonpath={.status.conditions[0].reason}=RevisionMissing")
    status = get(local_cluster, "ksvc/podinfo")["status"]
    assert status["conditions"][0]["status"] == "False"
    assert status["traffic"][0]["percent"] == 10  # what was routed before stays

    local_cluster.kubectl("delete", "ksvc", "podinfo", "--wait=true", check=True)
    assert get(local_cluster, "revisions")["items"] == []


def test_a_never_ready_template_stays_unknown(local_cluster: LocalClusterHandle) -> None:
    apply(local_cluster, ksvc())
    wait(local_cluster, "revision/podinfo-00001", "condition=Ready")
    apply(local_cluster, ksvc("ghcr.io/stefanprodan/podinfo:never-ready"))
    wait(local_cluster, "ksvc/podinfo", "jsonpath={.status.latestCreatedRevisionName}=podinfo-00002")
    status = get(local_cluster, "ksvc/podinfo")["status"]
    assert status["latestReadyRevisionName"] == "podinfo-00001"
    assert status["traffic"] == [{"revisionName": "podinfo-00001", "latestRevision": True, "percent": 100}]
    # a later revision with the same delay becoming ready proves -00002 had its time: it is still Unknown
    apply(local_cluster, ksvc("ghcr.io/stefanprodan/podinfo:6.0.2"))
    wait(local_cluster, "revision/podinfo-00003", "condition=Ready")
    revision = get(local_cluster, "revision/podinfo-00002")
    assert [(c["type"], c["status"], c["reason"]) for c in revision["status"]["conditions"]] == [
        ("Ready", "Unknown", "Deploying")
    ]


def test_each_revision_runs_in_a_deployment_behind_a_service_of_its_own(
    local_cluster: LocalClusterHandle,
) -> None:
    """As Knative does: ``<revision>-deployment`` runs the Revision's containers (``user-container``,
    ``PORT``), the Service ``<revision>`` (port 80) selects its pods by the revision uid, both are owned by
    the Revision; its Ready condition follows the Deployment; a deleted Deployment comes back."""
    doc = ksvc()
    doc["spec"]["template"]["metadata"]["annotations"] = {"autoscaling.knative.dev/min-scale": "2"}
    apply(local_cluster, doc)
    wait(local_cluster, "revision/podinfo-00001", "condition=Ready")
    revision = get(local_cluster, "revision/podinfo-00001")
    uid = revision["metadata"]["uid"]
    deployment = get(local_cluster, "deployment/podinfo-00001-deployment")
    owner = deployment["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "Revision",
        "podinfo-00001",
        uid,
        True,
    )
    assert deployment["spec"]["replicas"] == 2  # min-scale
    assert deployment["spec"]["selector"] == {"matchLabels": {"serving.knative.dev/revisionUID": uid}}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["serving.knative.dev/revision"] == "podinfo-00001"
    assert labels["serving.knative.dev/service"] == "podinfo"
    assert labels["app"] == "podinfo"  # the template's own app label is kept
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "user-container"
    assert container["image"] == "ghcr.io/stefanprodan/podinfo:6.0.0"
    assert {"name": "PORT", "value": "9898"} in container["env"]
    assert deployment["status"]["availableReplicas"] == 2
    service = get(local_cluster, "service/podinfo-00001")
    assert service["spec"]["selector"] == {"serving.knative.dev/revisionUID": uid}
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [("http", 80, 9898)]
    assert service["metadata"]["ownerReferences"][0]["uid"] == uid
    assert get(local_cluster, "revision/podinfo-00001")["status"]["actualReplicas"] == 2

    local_cluster.kubectl("delete", "deployment", "podinfo-00001-deployment", "--wait=true", check=True)
    wait(local_cluster, "deployment/podinfo-00001-deployment", "condition=Available")

    # a revision whose Deployment never becomes available past its progress deadline fails
    doc = ksvc("ghcr.io/stefanprodan/podinfo:never-ready")
    doc["spec"]["template"]["metadata"]["annotations"] = {"serving.knative.dev/progress-deadline": "1s"}
    apply(local_cluster, doc)
    wait(local_cluster, "revision/podinfo-00002", "condition=Ready=False")
    condition = get(local_cluster, "revision/podinfo-00002")["status"]["conditions"][0]
    assert (condition["reason"], condition["message"]) == (
        "ProgressDeadlineExceeded",
        "Initial scale was never achieved",
    )
    assert get(local_cluster, "ksvc/podinfo")["status"]["latestReadyRevisionName"] == "podinfo-00001"

    # deleting the Service collects its Revisions, and their Deployments and Services
    local_cluster.kubectl("delete", "ksvc", "podinfo", "--wait=true", check=True)
    wait(local_cluster, "deployment/podinfo-00001-deployment", "delete")
    wait(local_cluster, "service/podinfo-00002", "delete")


def test_a_service_of_the_revisions_name_that_it_does_not_own_fails_it(
    local_cluster: LocalClusterHandle,
) -> None:
    taken = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "podinfo-00001"},
        "spec": {"ports": [{"port": 80}]},
    }
    apply(local_cluster, taken)
    apply(local_cluster, ksvc())
    wait(local_cluster, "revision/podinfo-00001", "condition=Ready=False")
    condition = get(local_cluster, "revision/podinfo-00001")["status"]["conditions"][0]
    assert condition["reason"] == "NotOwned"
    assert condition["message"] == "There is an existing Service default/podinfo-00001 that we do not own."
    local_cluster.kubectl("delete", "ksvc", "podinfo", "--wait=true", check=True)
    local_cluster.kubectl("delete", "service", "podinfo-00001", "--wait=true", check=True)


def test_the_progress_deadline_annotation_is_a_go_duration() -> None:
    def deadline(annotations: dict[str, str]) -> int:
        revision = {"metadata": {"name": "podinfo-00001", "uid": "u", "annotations": annotations}, "spec": {}}
        return int(revision_deployment(revision)["spec"]["progressDeadlineSeconds"])

    assert deadline({}) == 600
    assert deadline({"serving.knative.dev/progress-deadline": "1m30s"}) == 90
    assert deadline({"serving.knative.dev/progress-deadline": "2.5s"}) == 3
    assert deadline({"serving.knative.dev/progress-deadline": "soon"}) == 600
