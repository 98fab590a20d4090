"""Field descriptions of the generated CRDs, shown by ``kubectl explain``: plain text, keyed by the field's
path from the kind's root (list items are addressed through the list's own name)."""

from __future__ import annotations

from typing import Any

_REF = "a reference to {what}: apiVersion, kind and name, in the Canary's namespace"

_ANALYSIS = {
    "analysis": (
        "How the canary is analysed and promoted: the interval between steps, the traffic steps (stepWeight, "
        "stepWeights, maxWeight) or iterations, the failed-check threshold, the metrics, webhooks and alerts."
    ),
    "analysis.interval": "Time between two analysis steps, a Go duration such as 1m or 30s.",
    "analysis.iterations": (
        "Number of analysis iterations for a blue/green or A/B run (no traffic steps); the run promotes "
        "after this many successful checks."
    ),
    "analysis.threshold": "Number of failed checks after which the canary is rolled back.",
    "analysis.maxWeight": "Highest traffic percentage routed to the canary before promotion (default 100).",
    "analysis.stepWeight": "Traffic percentage added to the canary at each step.",
    "analysis.stepWeights": "Explicit list of traffic percentages, one per step (instead of stepWeight).",
    "analysis.stepWeightPromotion": (
        "Traffic percentage shifted back to the primary at each step of the promotion (default: all at once)."
    ),
    "analysis.mirror": "Mirror traffic to the canary instead of shifting it (Istio, blue/green only).",
    "analysis.mirrorWeight": "Percentage of the traffic mirrored to the canary when mirror is true.",
    "analysis.primaryReadyThreshold": "Percentage of primary pods that must be ready to proceed (default 100).",
    "analysis.canaryReadyThreshold": "Percentage of canary pods that must be ready to proceed (default 100).",
    "analysis.match": "HTTP match conditions routing matching requests to the canary (A/B testing).",
    "analysis.metrics": (
        "Metric checks run at every step: builtin request-success-rate and request-duration, or a "
        "MetricTemplate named by templateRef."
    ),
    "analysis.metrics.name": "Name of the metric: request-success-rate, request-duration, or your own.",
    "analysis.metrics.interval": "Range of the metric query, a Go duration such as 1m.",
    "analysis.metrics.threshold": "Deprecated: the highest value accepted; use thresholdRange.",
    "analysis.metrics.thresholdRange": "Range of accepted values: min, max, or both.",
    "analysis.metrics.query": "Deprecated: an inline Prometheus query; use a MetricTemplate and templateRef.",
    "analysis.metrics.templateRef": "The MetricTemplate (name, and namespace if not the Canary's) to query.",
    "analysis.metrics.templateVariables": "Variables substituted into the MetricTemplate's query.",
    "analysis.webhooks": (
        "Webhooks called during the run: confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, "
        "confirm-promotion, post-rollout, rollback and event hooks."
    ),
    "analysis.webhooks.name": "Name of the webhook, shown in events and alerts.",
    "analysis.webhooks.type": "When the webhook is called (default rollout, at every step).",
    "analysis.webhooks.url": "URL the webhook's POST is sent to.",
    "analysis.webhooks.timeout": "How long to wait for the webhook's answer, a Go duration.",
    "analysis.webhooks.metadata": "Key/value pairs sent with the webhook's payload.",
    "analysis.webhooks.muteAlert": "Do not send an alert when this webhook fails.",
    "analysis.alerts": "Alerts sent through AlertProviders about this canary.",
    "analysis.alerts.name": "Name of the alert.",
    "analysis.alerts.severity": "Lowest severity sent: info, warn or error.",
    "analysis.alerts.providerRef": "The AlertProvider (name, and namespace if not the Canary's) to send to.",
    "analysis.sessionAffinity": "Session affinity: users who reached the canary keep reaching it (cookie).",
}

CANARY: dict[str, str] = {
    "spec": "The desired canary: the workload to deliver, how its traffic is routed, and how it is analysed.",
    "spec.provider": "Traffic management provider (istio, linkerd, nginx, contour, gatewayapi, …).",
    "spec.metricsServer": "Prometheus URL for the builtin metrics, overriding the operator's -metrics-server.",
    "spec.targetRef": _REF.format(what="the Deployment or DaemonSet to deliver"),
    "spec.targetRef.apiVersion": "API version of the target, e.g. apps/v1.",
    "spec.targetRef.kind": "Kind of the target: Deployment or DaemonSet.",
    "spec.targetRef.name": "Name of the target.",
    "spec.autoscalerRef": _REF.format(
        what="the HorizontalPodAutoscaler (or KEDA ScaledObject) of the target"
    ),
    "spec.ingressRef": _REF.format(what="the Ingress routing the traffic (NGINX provider)"),
    "spec.routeRef": _REF.format(what="the route object routing the traffic"),
    "spec.upstreamRef": _REF.format(what="the upstream routing the traffic (Gloo provider)"),
    "spec.service": (
        "The Services generated for the target (apex, -primary, -canary) and the routing options of the "
        "provider."
    ),
    "spec.service.name": "Name of the apex Service (default: the target's name).",
    "spec.service.port": "Port exposed by the generated Services.",
    "spec.service.portName": "Name of the Services' port (default http).",
    "spec.service.targetPort": "Container port (number or name) the Services send traffic to.",
    "spec.service.portDiscovery": "Also expose every other container port of the target.",
    "spec.service.timeout": "Request timeout of the generated route.",
    "spec.service.hosts": "Host names the generated route answers for.",
    "spec.service.gateways": "Gateways the generated route is attached to.",
    "spec.service.match": "URI match conditions of the generated route.",
    "spec.service.retries": "Retry policy of the generated route.",
    "spec.service.headers": "Headers added or removed on requests and responses.",
    "spec.progressDeadlineSeconds": (
        "Seconds the canary may make no progress (pods not ready) before it is rolled back (default 600)."
    ),
    "spec.skipAnalysis": "Promote without running the analysis.",
    "spec.revertOnDeletion": "Give the target its traffic and replicas back when the Canary is deleted.",
    "spec.suspend": "Suspend the canary: no analysis and no change until it is false again.",
    "status": "The observed state of the canary, written by the operator.",
    "status.phase": (
        "Phase of the canary: Initializing, Initialized, Waiting, Progressing, WaitingPromotion, Promoting, "
        "Finalising, Succeeded or Failed."
    ),
    "status.failedChecks": "Failed checks of the current run.",
    "status.canaryWeight": "Traffic percentage routed to the canary now.",
    "status.iterations": "Iterations done in the current run.",
    "status.trackedConfigs": "Checksums of the ConfigMaps and Secrets the target uses.",
    "status.lastAppliedSpec": "Hash of the target's pod template the current run is about.",
    "status.lastPromotedSpec": "Hash of the target's pod template last promoted.",
    "status.lastTransitionTime": "When the phase last changed.",
    "status.conditions": "Conditions of the canary: Promoted, with its reason and message.",
}
for _key, _text in _ANALYSIS.items():
    CANARY[f"spec.{_key}"] = _text
    CANARY[f"spec.{_key.replace('analysis', 'canaryAnalysis', 1)}"] = _text
CANARY["spec.canaryAnalysis"] = "Deprecated spelling of spec.analysis; use spec.analysis."

DESCRIPTIONS: dict[str, dict[str, str]] = {"Canary": CANARY}


def plain(text: str) -> str:
    """A description without reST backquotes."""
    return text.replace("``", "").replace("`", "")


def apply_descriptions(kind: str, schema: dict[str, Any]) -> None:
    """Set the descriptions of ``kind``'s table into ``schema`` (in place) and make every description plain."""
    for path, text in DESCRIPTIONS.get(kind, {}).items():
        node: dict[str, Any] | None = schema
        for part in path.split("."):
            if node is None:
                break
            if node.get("type") == "array":
                node = node.get("items")
            node = (node or {}).get("properties", {}).get(part)
        if node is not None:
            node["description"] = text
    _plain_all(schema)


def _plain_all(node: Any) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            node["description"] = plain(node["description"])
        for value in node.values():
            _plain_all(value)
    elif isinstance(node, list):
        for value in node:
            _plain_all(value)
