"""MetricTemplate ``provider.type`` → provider implementation.

Unknown types: Flagger's factory silently builds a Prometheus provider for any type it does not know. The
CRD's enum rejects unknown types on a validating API server, so this only happens with a hand-installed
CRD. canarist keeps the fallback (a drop-in must not start failing analyses that pass under Flagger) but
logs a warning naming the type. Every type Flagger implements has a factory here; a Flagger type without
one (should one be removed) raises :class:`UnsupportedProviderError`, so that a check using it fails with a
clear message instead of querying the wrong backend.

Plugins: a type that is neither builtin nor registered is looked up among the ``canarist.metric_providers``
entry points (:mod:`canarist.plugins`, loaded once at the first such lookup). A plugin's factory is called
as the builtin ones; what it builds is wrapped so that an unexpected exception of the plugin becomes a
:class:`ProviderConfigError` or :class:`QueryError` (a failed check), never a crash. A type whose plugin is
installed but broken fails its checks with the plugin's error instead of falling back to Prometheus.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from canarist.metrics.providers._http import DEFAULT_INTERVAL
from canarist.metrics.providers.base import (
    MetricProvider,
    MetricsError,
    NoValuesError,
    ProviderConfigError,
    ProviderSpec,
    QueryError,
    UnsupportedProviderError,
)
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
from canarist.plugins import METRIC_PROVIDERS_GROUP, Plugin, PluginGroup

__all__ = ["FLAGGER_PROVIDER_TYPES", "PLUGINS", "create_provider", "register", "supported_types"]

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


#: the ``canarist.metric_providers`` entry points (builtin and registered types win over them)
PLUGINS: Final = PluginGroup(
    METRIC_PROVIDERS_GROUP, "metric provider", lambda: {*_FACTORIES, *FLAGGER_PROVIDER_TYPES}
)


class _PluginProvider:
    """A plugin's provider, with any exception other than a :class:`MetricsError` turned into a
    :class:`QueryError` and its answer checked to be a number (NaN is no value, as for the builtins)."""

    def __init__(self, plugin: Plugin, inner: Any) -> None:
        self._label = f"metric provider plugin {plugin.name} from {plugin.dist}"
        self._inner = inner

    async def query(self, q: str) -> float:
        try:
            value: object = await self._inner.query(q)
        except MetricsError:
            raise
        except Exception as err:
            raise QueryError(f"{self._label} failed: {type(err).__name__}: {err}") from err
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise QueryError(f"{self._label} returned {type(value).__name__}, not a number")
        if math.isnan(value):
            raise NoValuesError("NaN")
        return float(value)

    async def is_online(self) -> bool:
        """The plugin's ``is_online`` (True when it has none)."""
        if not callable(getattr(self._inner, "is_online", None)):
            return True
        try:
            return bool(await self._inner.is_online())
        except MetricsError:
            raise
        except Exception as err:
            raise QueryError(f"{self._label} failed: {type(err).__name__}: {err}") from err


def _from_plugin(plugin: Plugin, spec: ProviderSpec, secret: Mapping[str, str] | None) -> MetricProvider:
    label = f"metric provider plugin {plugin.name} from {plugin.dist}"
    try:
        built = plugin.target(spec, secret)
    except ProviderConfigError:
        raise
    except Exception as err:
        raise ProviderConfigError(f"{label} failed to build a provider: {type(err).__name__}: {err}") from err
    if not callable(getattr(built, "query", None)):
        raise ProviderConfigError(f"{label} built a {type(built).__name__} without a query method")
    return _PluginProvider(plugin, built)


def register(provider_type: str, factory: Factory) -> None:
    """Add (or replace) the implementation of a provider type."""
    _FACTORIES[provider_type] = factory


def supported_types() -> list[str]:
    """The provider types canarist implements (builtin and registered; the plugins' are ``PLUGINS.names()``)."""
    return sorted(_FACTORIES)


def create_provider(spec: ProviderSpec, secret: Mapping[str, str] | None = None) -> MetricProvider:
    """Build the provider for ``spec.type`` with the decoded Secret data (or None without a secretRef).

    Raises :class:`ProviderConfigError` (including :class:`UnsupportedProviderError`) when it cannot.
    """
    factory = _FACTORIES.get(spec.type)
    if factory is None:
        if spec.type in FLAGGER_PROVIDER_TYPES:
            raise UnsupportedProviderError(f"provider type {spec.type} is not supported yet")
        if spec.type:
            plugin = PLUGINS.get(spec.type)
            if plugin is not None:
                return _from_plugin(plugin, spec, secret)
            error = PLUGINS.error(spec.type)
            if error is not None:
                raise UnsupportedProviderError(error)
        log.warning("unknown metric provider type %r, using prometheus as Flagger does", spec.type)
        factory = _FACTORIES["prometheus"]
    return factory(spec, secret)
