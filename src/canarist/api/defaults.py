"""Flagger's run-time defaults, in one place.

Nothing else in canarist hard-codes these numbers: models expose them through methods
(``Canary.analysis_interval()``, ``Canary.max_weight()``, ``CanaryWebhook.timeout_seconds()``...), and
docs/api.md lists them. Values are those Flagger applies when a field is absent (or zero).
"""

from __future__ import annotations

from typing import Final

API_GROUP: Final = "flagger.app"
API_VERSION: Final = "flagger.app/v1beta1"
VERSION: Final = "v1beta1"

#: ``analysis.interval`` when absent or unparsable.
ANALYSIS_INTERVAL_SECONDS: Final = 60.0
#: lower bound of the analysis interval (the operator can lower it for tests with a flag).
MIN_ANALYSIS_INTERVAL_SECONDS: Final = 10.0
#: ``analysis.threshold`` when ≤ 0.
THRESHOLD: Final = 1
#: ``analysis.maxWeight`` when ≤ 0 (and no ``stepWeights``); also the cap of ``stepWeights``.
MAX_WEIGHT: Final = 100
#: ``spec.progressDeadlineSeconds`` when absent.
PROGRESS_DEADLINE_SECONDS: Final = 600
#: ``analysis.primaryReadyThreshold`` / ``canaryReadyThreshold`` (percent) when absent.
READY_THRESHOLD_PERCENT: Final = 100
#: ``webhooks[].timeout`` when absent or unparsable.
WEBHOOK_TIMEOUT_SECONDS: Final = 10.0
#: ``metrics[].interval`` when absent (canarist applies it to every metric, see docs/api.md).
METRIC_INTERVAL: Final = "1m"
#: ``sessionAffinity.maxAge`` (seconds) when absent or ≤ 0.
SESSION_AFFINITY_MAX_AGE: Final = 86400
#: ``service.portName`` when empty.
PORT_NAME: Final = "http"
#: Istio VirtualService gateways when ``service.gateways`` is empty.
ISTIO_GATEWAYS: Final = ("mesh",)
#: AlertProvider ``channel`` and ``username`` when empty.
ALERT_CHANNEL: Final = "general"
ALERT_USERNAME: Final = "flagger"
#: the severity given to an alert with an empty ``severity`` (Flagger matches nothing; see docs/api.md).
ALERT_SEVERITY: Final = "info"
#: MetricTemplate provider used for unknown ``provider.type`` values.
METRIC_PROVIDER: Final = "prometheus"
#: suffixes of generated objects.
PRIMARY_SUFFIX: Final = "-primary"
CANARY_SUFFIX: Final = "-canary"
FINALIZER: Final = "finalizer.flagger.app"
