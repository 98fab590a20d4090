"""Metric backends behind one Protocol, picked by MetricTemplate ``provider.type``."""

from canarist.metrics.providers.base import (
    MetricProvider,
    MetricsError,
    NoValuesError,
    ProviderConfigError,
    ProviderSpec,
    QueryError,
    UnsupportedProviderError,
    secret_data,
)
from canarist.metrics.providers.prometheus import DEFAULT_TIMEOUT_SECONDS, PrometheusProvider
from canarist.metrics.providers.registry import (
    FLAGGER_PROVIDER_TYPES,
    create_provider,
    register,
    supported_types,
)

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "FLAGGER_PROVIDER_TYPES",
    "MetricProvider",
    "MetricsError",
    "NoValuesError",
    "PrometheusProvider",
    "ProviderConfigError",
    "ProviderSpec",
    "QueryError",
    "UnsupportedProviderError",
    "create_provider",
    "register",
    "secret_data",
    "supported_types",
]
