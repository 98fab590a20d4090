"""MetricTemplate ``provider.type`` → provider implementation.

Unknown types: Flagger's factory silently builds a Prometheus provider for any type it does not know. The
CRD's enum rejects unknown types on a validating API server, so this only happens with a hand-installed
CRD. canarist keeps the fallback (a drop-in must not start failing analyses that pass under Flagger) but
logs a warning naming the type. Every type Flagger implements has a factory here; a Flagger type without
one (should one be removed) raises :class:`UnsupportedProviderError`, so that a check using it fails with a
clear message instead of querying the wrong backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final

from canarist.metrics.providers._http import DEFAULT_INTERVAL
from canarist.metrics.providers.base import MetricProvider, ProviderSpec, UnsupportedProviderError
from canarist.metrics.providers.cloudwatch import CloudWatchProvider
from canarist.metrics.providers.datadog import DatadogProvider
from canarist.metrics.providers.dynatrace import DynatraceProvider
from canarist.metrics.providers.externalmetrics import ExternalMetricsProvider
from canarist.metrics.providers.graphite import GraphiteProvider
from canarist.metrics.providers.influxdb import InfluxDBProvider
from canarist.metrics.providers.keptn import KeptnProvider
from canarist.metrics.providers.newrelic import NewRelicProvider
from canarist.metrics.providers.prometheus import PrometheusProvider
from canarist.metrics.providers.splunk import SplunkProvider
from canarist.metrics.providers.stackdriver import StackdriverProvider

__all__ = ["FLAGGER_PROVIDER_TYPES", "create_provider", "register", "supported_types"]

log = logging.getLogger(__name__)

#: every type Flagger's CRD allows.
FLAGGER_PROVIDER_TYPES: Final = (
    "prometheus",
    "influxdb",
    "datadog",
    "externalmetrics",
    "stackdriver",
    "cloudwatch",
    "newrelic",
    "graphite",
    "dynatrace",
    "keptn",
    "splunk",
)

Factory = Callable[[ProviderSpec, Mapping[str, str] | None], MetricProvider]


def _interval(spec: ProviderSpec) -> str:
    """The metric's interval for the providers that query a time range (their default without one)."""
    return spec.interval or DEFAULT_INTERVAL


_FACTORIES: dict[str, Factory] = {
    "prometheus": lambda spec, secret: PrometheusProvider(spec, secret),
    "datadog": lambda spec, secret: DatadogProvider(spec, secret, interval=_interval(spec)),
    "newrelic": lambda spec, secret: NewRelicProvider(spec, secret, interval=_interval(spec)),
    "influxdb": lambda spec, secret: InfluxDBProvider(spec, secret),
    "graphite": lambda spec, secret: GraphiteProvider(spec, secret),
    "dynatrace": lambda spec, secret: DynatraceProvider(spec, secret, interval=_interval(spec)),
    "splunk": lambda spec, secret: SplunkProvider(spec, secret, interval=_interval(spec)),
    "externalmetrics": lambda spec, secret: ExternalMetricsProvider(spec, secret),
    "keptn": lambda spec, secret: KeptnProvider(spec, secret),
    "cloudwatch": lambda spec, secret: CloudWatchProvider(spec, secret, interval=_interval(spec)),
    "stackdriver": lambda spec, secret: StackdriverProvider(spec, secret),
}


def register(provider_type: str, factory: Factory) -> None:
    """Add (or replace) the implementation of a provider type."""
    _FACTORIES[provider_type] = factory


def supported_types() -> list[str]:
    """The provider types canarist implements."""
    return sorted(_FACTORIES)


def create_provider(spec: ProviderSpec, secret: Mapping[str, str] | None = None) -> MetricProvider:
    """Build the provider for ``spec.type`` with the decoded Secret data (or None without a secretRef).

    Raises :class:`ProviderConfigError` (including :class:`UnsupportedProviderError`) when it cannot.
    """
    factory = _FACTORIES.get(spec.type)
    if factory is None:
        if spec.type in FLAGGER_PROVIDER_TYPES:
            raise UnsupportedProviderError(f"provider type {spec.type} is not supported yet")
        log.warning("unknown metric provider type %r, using prometheus as Flagger does", spec.type)
        factory = _FACTORIES["prometheus"]
    return factory(spec, secret)
