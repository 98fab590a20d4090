"""canarist.metrics: metric providers, Flagger's builtin queries, the query-template renderer and the
evaluation of one analysis metric into a :class:`CheckResult`. No Kubernetes access: callers pass resolved
inputs. See docs/metrics.md."""

from canarist.metrics.builtin import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    Observer,
    builtin_query,
    is_builtin,
    metrics_provider_name,
    observer_for,
)
from canarist.metrics.checks import CheckResult, evaluate_metric, template_model
from canarist.metrics.providers import (
    MetricProvider,
    MetricsError,
    NoValuesError,
    PrometheusProvider,
    ProviderConfigError,
    ProviderSpec,
    QueryError,
    UnsupportedProviderError,
    create_provider,
    secret_data,
)
from canarist.metrics.template import RenderError, TemplateModel, collapse_whitespace, render

__all__ = [
    "REQUEST_DURATION",
    "REQUEST_SUCCESS_RATE",
    "CheckResult",
    "MetricProvider",
    "MetricsError",
    "NoValuesError",
    "Observer",
    "PrometheusProvider",
    "ProviderConfigError",
    "ProviderSpec",
    "QueryError",
    "RenderError",
    "TemplateModel",
    "UnsupportedProviderError",
    "builtin_query",
    "collapse_whitespace",
    "create_provider",
    "evaluate_metric",
    "is_builtin",
    "metrics_provider_name",
    "observer_for",
    "render",
    "secret_data",
    "template_model",
]
