"""String enums carrying Flagger's values.

Model fields that hold these values are typed ``str`` so that reading an object with an unexpected value
never fails; known values are turned into the enum member on read (see ``canarist.api._base``), and
:mod:`canarist.api.validation` reports unknown ones. A ``StrEnum`` member compares equal to its string.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """``status.phase`` of a Canary (CRD enum, including the empty string)."""

    NONE = ""
    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


class WebhookType(StrEnum):
    """``analysis.webhooks[].type``. The empty type behaves as ``rollout``."""

    NONE = ""
    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    EVENT = "event"
    ROLLBACK = "rollback"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"


class Severity(StrEnum):
    """``analysis.alerts[].severity``. canarist treats the empty severity as ``info`` (see docs/api.md)."""

    NONE = ""
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


class Strategy(StrEnum):
    """Deployment strategy of a canary run (also a metrics label)."""

    CANARY = "canary"
    AB_TESTING = "ab-testing"
    BLUE_GREEN = "blue-green"


class Provider(StrEnum):
    """``spec.provider``: the traffic management provider."""

    APISIX = "apisix"
    APPMESH = "appmesh"
    APPMESH_V1BETA2 = "appmesh:v1beta2"
    CONTOUR = "contour"
    GATEWAYAPI_V1 = "gatewayapi:v1"
    GATEWAYAPI_V1BETA1 = "gatewayapi:v1beta1"
    GLOO = "gloo"
    ISTIO = "istio"
    KNATIVE = "knative"
    KUBERNETES = "kubernetes"
    KUMA = "kuma"
    LINKERD = "linkerd"
    NGINX = "nginx"
    OSM = "osm"
    SKIPPER = "skipper"
    SMI_V1ALPHA1 = "smi:v1alpha1"
    SMI_V1ALPHA2 = "smi:v1alpha2"
    SMI_V1ALPHA3 = "smi:v1alpha3"
    TRAEFIK = "traefik"


class MetricProviderType(StrEnum):
    """MetricTemplate ``spec.provider.type``."""

    PROMETHEUS = "prometheus"
    INFLUXDB = "influxdb"
    DATADOG = "datadog"
    EXTERNALMETRICS = "externalmetrics"
    STACKDRIVER = "stackdriver"
    CLOUDWATCH = "cloudwatch"
    NEWRELIC = "newrelic"
    GRAPHITE = "graphite"
    DYNATRACE = "dynatrace"
    KEPTN = "keptn"
    SPLUNK = "splunk"


class AlertProviderType(StrEnum):
    """AlertProvider ``spec.type``."""

    SLACK = "slack"
    MSTEAMS = "msteams"
    DISCORD = "discord"
    ROCKET = "rocket"
    GCHAT = "gchat"


def values(enum: type[StrEnum]) -> list[str]:
    """The enum's values in declaration order."""
    return [member.value for member in enum]
