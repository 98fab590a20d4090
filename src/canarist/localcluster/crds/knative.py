"""Knative Serving (`serving.knative.dev/v1`): Service and Revision, namespaced, each with a `/status`
subresource.

Typed: a Service's `spec.traffic[]` (revisionName, latestRevision, percent, tag, configurationName, url) and
its status fields canarist reads (observedGeneration, latestCreatedRevisionName, latestReadyRevisionName,
traffic, url); a Revision's status conditions.

Free-form (`x-kubernetes-preserve-unknown-fields`): the Service's `spec.template` (a Revision template: the
pod spec and its options) and a Revision's spec, which Knative validates with its own webhook, not with the
CRD schema; the status conditions' details. No Knative controller runs here: the local control plane's
stand-in (`localcluster.knative`) creates the Revisions and writes the statuses.
"""

from __future__ import annotations

from canarist.localcluster.crds._schema import (
    AGE,
    Obj,
    array,
    boolean,
    column,
    crd,
    free,
    int64,
    integer,
    obj,
    root,
    string,
    version,
)

GROUP = "serving.knative.dev"
VERSION = "v1"
CATEGORIES = ("all", "knative", "serving")


def _traffic() -> Obj:
    return array(
        obj(
            {
                "revisionName": string(),
                "configurationName": string(),
                "latestRevision": boolean(),
                "percent": integer(minimum=0, maximum=100),
                "tag": string(),
                "url": string(),
            }
        )
    )


def _conditions() -> Obj:
    return array(
        obj(
            {
                "type": string(),
                "status": string(),
                "reason": string(),
                "message": string(),
                "severity": string(),
                "lastTransitionTime": string(),
            },
            required=("type", "status"),
        )
    )


def service_schema() -> Obj:
    spec = obj({"template": free(), "traffic": _traffic()})
    status = obj(
        {
            "observedGeneration": int64(),
            "latestCreatedRevisionName": string(),
            "latestReadyRevisionName": string(),
            "traffic": _traffic(),
            "url": string(),
            "address": free(),
            "conditions": _conditions(),
        }
    )
    return root(spec, status)


def revision_schema() -> Obj:
    status = obj(
        {
            "observedGeneration": int64(),
            "conditions": _conditions(),
            "actualReplicas": integer(),
            "desiredReplicas": integer(),
        }
    )
    return root(free(), status)


def knative_crds() -> list[Obj]:
    ready = column("Ready", '.status.conditions[?(@.type=="Ready")].status')
    service_columns = (
        column("URL", ".status.url"),
        column("LatestCreated", ".status.latestCreatedRevisionName"),
        column("LatestReady", ".status.latestReadyRevisionName"),
        ready,
        AGE,
    )
    revision_columns = (
        column("Config Name", ".metadata.labels['serving\\.knative\\.dev/configuration']"),
        ready,
        AGE,
    )
    return [
        crd(
            GROUP,
            "Service",
            "services",
            [version(VERSION, service_schema(), storage=True, status=True, columns=service_columns)],
            short_names=("kservice", "ksvc"),
            categories=CATEGORIES,
        ),
        crd(
            GROUP,
            "Revision",
            "revisions",
            [version(VERSION, revision_schema(), storage=True, status=True, columns=revision_columns)],
            short_names=("rev",),
            categories=CATEGORIES,
        ),
    ]


CRDS: list[Obj] = knative_crds()
