"""KEDA (`keda.sh/v1alpha1`): ScaledObject, namespaced, with a `/status` subresource.

Typed: `spec.scaleTargetRef` (name required; apiVersion, kind, envSourceContainerName), the polling and
cooldown periods, the idle, min and max replica counts, `advanced` (`horizontalPodAutoscalerConfig` with its
name, `restoreToOriginalReplicaCount`), `triggers[]` (type and metadata required; name, metricType,
useCachedMetrics, authenticationRef) and `fallback` (failureReplicas and replicas required).

Free-form (`x-kubernetes-preserve-unknown-fields`): the HPA `behavior`, `advanced.scalingModifiers`, and the
status (KEDA's operator writes it; no controller here does).
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
    int32,
    obj,
    root,
    string,
    string_map,
    version,
)

GROUP = "keda.sh"
VERSION = "v1alpha1"


def scaledobject_schema() -> Obj:
    trigger = obj(
        {
            "type": string(),
            "name": string(),
            "metadata": string_map(),
            "metricType": string(enum=("AverageValue", "Value", "Utilization")),
            "useCachedMetrics": boolean(),
            "authenticationRef": obj({"name": string(), "kind": string()}, required=("name",)),
        },
        required=("type", "metadata"),
    )
    spec = obj(
        {
            "scaleTargetRef": obj(
                {
                    "apiVersion": string(),
                    "kind": string(),
                    "name": string(),
                    "envSourceContainerName": string(),
                },
                required=("name",),
            ),
            "pollingInterval": int32(),
            "cooldownPeriod": int32(),
            "initialCooldownPeriod": int32(),
            "idleReplicaCount": int32(),
            "minReplicaCount": int32(),
            "maxReplicaCount": int32(),
            "advanced": obj(
                {
                    "horizontalPodAutoscalerConfig": obj({"name": string(), "behavior": free()}),
                    "restoreToOriginalReplicaCount": boolean(),
                    "scalingModifiers": free(),
                }
            ),
            "triggers": array(trigger),
            "fallback": obj(
                {"failureReplicas": int32(), "replicas": int32(), "behavior": string()},
                required=("failureReplicas", "replicas"),
            ),
        },
        required=("scaleTargetRef", "triggers"),
    )
    return root(spec, free(), required=("spec",))


def keda_crds() -> list[Obj]:
    columns = (
        column("ScaleTargetName", ".spec.scaleTargetRef.name"),
        column("Min", ".spec.minReplicaCount", "integer"),
        column("Max", ".spec.maxReplicaCount", "integer"),
        AGE,
    )
    return [
        crd(
            GROUP,
            "ScaledObject",
            "scaledobjects",
            [version(VERSION, scaledobject_schema(), storage=True, status=True, columns=columns)],
            short_names=("so",),
        )
    ]


CRDS: list[Obj] = keda_crds()
