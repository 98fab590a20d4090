"""Evaluate one ``analysis.metrics[]`` entry into a :class:`CheckResult` with Flagger's message.

The caller resolves every input first (this package never talks to Kubernetes): the Canary, the metric,
the MetricTemplate it references (or None when it does not exist), the Secret named by the template's
``provider.secretRef`` as a core/v1 JSON object (or None when it does not exist), and the default metrics
server URL (the operator's ``-metrics-server``; ``spec.metricsServer`` wins).

Which evaluation runs (a deliberate simplification of Flagger, documented in docs/metrics.md): a metric
with a ``templateRef`` is evaluated by its template; otherwise one with a ``query`` by that inline query
on the metrics server; otherwise ``request-success-rate``/``request-duration`` by the builtin query of the
mesh's observer. Flagger would evaluate a builtin-named metric that also has a templateRef or a query twice
(docs/flagger-parity.md#flagger-quirks); canarist evaluates it once, as its most specific definition says.

Thresholds: with ``thresholdRange`` a value fails when < min or > max. Without it the
legacy ``threshold`` applies: a success rate fails when it is *below* it, a duration or a custom value when
it is *above* it (an unset threshold is 0, as in Flagger, so a custom metric without any threshold fails on
any positive value). **No data (an empty result or NaN) is always a failed check** with its own message and
``no_data=True`` (docs/flagger-parity.md#checks-and-thresholds).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from canarist.api import Canary, CanaryMetric, MetricTemplate
from canarist.engine import model as engine
from canarist.metrics.builtin import (
    REQUEST_DURATION,
    REQUEST_SUCCESS_RATE,
    NotComparable,
    Observer,
    builtin_query,
    count_queries,
    duration_milliseconds,
    metrics_provider_name,
    observer_for,
)
from canarist.metrics.compare import compare_error_rates
from canarist.metrics.gofmt import go_duration_ms, go_float, go_percent2
from canarist.metrics.providers import (
    MetricProvider,
    MetricsError,
    NoValuesError,
    PrometheusProvider,
    ProviderConfigError,
    ProviderSpec,
    create_provider,
    secret_data,
)
from canarist.metrics.template import RenderError, TemplateModel, collapse_whitespace, render

__all__ = ["CheckResult", "ProviderFactory", "evaluate_metric", "template_model"]

log = logging.getLogger(__name__)

ProviderFactory = Callable[[ProviderSpec, Mapping[str, str] | None], MetricProvider]

Severity = Literal["info", "warning", "error"]

NO_USABLE_METRIC = "Metric query failed for no usable metrics template and query were configured"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one metric check.

    ``value`` is what was compared: percent for a success rate, whole milliseconds for a duration, the raw
    number for a custom metric; None when there was no value. ``metric_value`` is the number Flagger
    reports in ``flagger_canary_metric_analysis`` (a duration in seconds). ``severity`` is the event type
    Flagger uses for ``message``: ``warning`` for a threshold miss or no data, ``error`` for a failure to
    query. ``message`` is empty when the check passed.
    """

    ok: bool
    value: float | None
    message: str
    no_data: bool = False
    severity: Severity = "info"
    metric_value: float | None = None
    query: str = ""
    #: the evidence for the decision ledger: the provider (type and address, never credentials) and the
    #: accepted range of ``value`` in its ``unit`` ("%", "ms" or "").
    provider: str = ""
    threshold_min: float | None = None
    threshold_max: float | None = None
    unit: str = ""
    #: a comparison with the primary (``compare``): the primary's value in ``unit``, the test, its p-value
    #: and the effect (canary minus primary, in ``unit``)
    primary_value: float | None = None
    test: str = ""
    p_value: float | None = None
    effect: float | None = None

    def answer(self, *, duration_s: float | None = None) -> engine.CheckResult:
        """This outcome as the engine takes it (the decision ledger's evidence included)."""
        return engine.CheckResult(
            ok=self.ok,
            message=self.message,
            value=self.value,
            no_data=self.no_data,
            error=self.error,
            query=self.query,
            provider=self.provider,
            threshold_min=self.threshold_min,
            threshold_max=self.threshold_max,
            unit=self.unit,
            duration_s=duration_s,
            primary_value=self.primary_value,
            test=self.test,
            p_value=self.p_value,
            effect=self.effect,
        )

    @property
    def error(self) -> bool:
        """The check could not be answered (unreachable provider, HTTP error, invalid answer, a missing
        template or Secret): distinct from a value that misses its threshold and from no data."""
        return self.severity == "error" and not self.no_data


def _passed(value: float, metric_value: float, query: str) -> CheckResult:
    return CheckResult(ok=True, value=value, message="", metric_value=metric_value, query=query)


def _failed(
    message: str,
    value: float | None = None,
    *,
    query: str = "",
    severity: Severity = "warning",
    metric_value: float | None = None,
) -> CheckResult:
    """``metric_value`` defaults to ``value``; a duration passes it in seconds, as the gauge reports."""
    return CheckResult(
        ok=False,
        value=value,
        message=message,
        severity=severity,
        metric_value=value if metric_value is None else metric_value,
        query=query,
    )


def _no_data(message: str, query: str = "") -> CheckResult:
    return CheckResult(ok=False, value=None, message=message, no_data=True, severity="warning", query=query)


def template_model(canary: Canary, metric: CanaryMetric, *, route: str = "") -> TemplateModel:
    """The template model of a metric: names from the canary, ``interval`` from the metric (default 1m),
    ``variables`` from ``templateVariables``. ``route`` overrides the route (Knative: the latest created
    revision)."""
    spec = canary.spec
    target = spec.target_ref.name
    return TemplateModel(
        name=canary.metadata.name or "",
        namespace=canary.metadata.namespace or "",
        target=target,
        service=canary.apex_name(),
        ingress=spec.ingress_ref.name if spec.ingress_ref is not None and spec.ingress_ref.name else target,
        route=route
        or (spec.route_ref.name if spec.route_ref is not None and spec.route_ref.name else target),
        interval=metric.interval_or_default(),
        variables=dict(metric.template_variables),
    )


def _range_failure(value: float, metric: CanaryMetric) -> tuple[str, float] | None:
    """("<" | ">", bound) for a thresholdRange miss."""
    threshold_range = metric.threshold_range
    if threshold_range is None:
        return None
    if threshold_range.min is not None and value < threshold_range.min:
        return "<", threshold_range.min
    if threshold_range.max is not None and value > threshold_range.max:
        return ">", threshold_range.max
    return None


def _legacy_threshold(metric: CanaryMetric) -> float:
    return metric.threshold if metric.threshold is not None else 0.0


def _threshold_verdict(
    metric: CanaryMetric,
    value: float,
    query: str,
    legacy_op: Literal["<", ">"],
    halt_message: Callable[[str, float], str],
) -> CheckResult:
    """Passed, or failed on the ``thresholdRange``; without a range, failed when ``value legacy_op
    threshold`` (the legacy threshold). ``halt_message(op, bound)`` words the failure."""
    failure = _range_failure(value, metric)
    if failure is None and metric.threshold_range is None:
        legacy = _legacy_threshold(metric)
        if value > legacy if legacy_op == ">" else value < legacy:
            failure = (legacy_op, legacy)
    if failure is not None:
        op, bound = failure
        return _failed(halt_message(op, bound), value, query=query)
    return _passed(value, value, query)


def _custom_verdict(canary: Canary, metric: CanaryMetric, value: float, query: str) -> CheckResult:
    return _threshold_verdict(
        metric,
        value,
        query,
        ">",
        lambda op, bound: (
            f"Halt {canary.key} advancement {metric.name} {go_percent2(value)} {op} {go_float(bound)}"
        ),
    )


async def evaluate_metric(
    canary: Canary,
    metric: CanaryMetric,
    *,
    metrics_server: str,
    template: MetricTemplate | None = None,
    secret: Mapping[str, Any] | None = None,
    mesh_provider: str = "istio",
    route: str = "",
    provider_factory: ProviderFactory = create_provider,
) -> CheckResult:
    """Run one metric check.

    ``metrics_server`` is the operator's default Prometheus URL (``canary.spec.metricsServer`` wins);
    ``template`` the MetricTemplate named by ``metric.templateRef`` or None when it was not found;
    ``secret`` the Secret named by the template's ``provider.secretRef`` (a JSON dict) or None when it was
    not found; ``mesh_provider`` the operator's ``-mesh-provider``; ``route`` the Knative revision name.
    """
    model = template_model(canary, metric, route=route)
    server = canary.spec.metrics_server or metrics_server
    if metric.template_ref is not None:
        result = await _template_check(canary, metric, model, template, secret, provider_factory)
        provider = template.spec.provider if template is not None else None
        where = (
            _provider_text(provider.type or "prometheus", provider.address) if provider is not None else ""
        )
        return _with_evidence(result, metric, where, "")
    if metric.query:
        result = await _inline_check(canary, metric, model, server)
        return _with_evidence(result, metric, _provider_text("prometheus", server), "")
    if metric.compare is not None and not (metric.name == REQUEST_SUCCESS_RATE and metric.is_builtin()):
        return _failed(
            f"Metric {metric.name} compare: only the builtin request-success-rate can be compared with the "
            "primary yet",
            severity="error",
        )
    if metric.name in (REQUEST_SUCCESS_RATE, REQUEST_DURATION):
        result = await _builtin_check(canary, metric, model, server, mesh_provider)
        unit = "%" if metric.name == REQUEST_SUCCESS_RATE else "ms"
        return _with_evidence(result, metric, _provider_text("prometheus", server), unit)
    return _failed(NO_USABLE_METRIC, severity="error")


def provider_spec(template: MetricTemplate, interval: str = "") -> ProviderSpec:
    """A MetricTemplate's ``spec.provider`` as the providers take it, with the metric's ``interval``."""
    provider = template.spec.provider
    return ProviderSpec(
        interval=interval,
        type=provider.type,
        address=provider.address,
        headers=dict(provider.headers),
        secret_name=provider.secret_ref.name if provider.secret_ref is not None else "",
        region=provider.region,
        insecure_skip_verify=provider.insecure_skip_verify,
    )


def _provider_text(provider_type: str, address: str) -> str:
    """``prometheus http://prometheus:9090``: the provider's type and address (the decision ledger drops
    any ``user:password@`` of the address; credentials from Secrets are never part of it)."""
    return f"{provider_type} {address}".strip()


def _with_evidence(result: CheckResult, metric: CanaryMetric, provider: str, unit: str) -> CheckResult:
    """``result`` with the provider and the accepted range (the legacy ``threshold`` is a minimum for a
    success rate, a maximum otherwise; a duration's bounds are whole milliseconds, as compared)."""
    low: float | None = None
    high: float | None = None
    threshold_range = metric.threshold_range
    if threshold_range is not None:
        low, high = threshold_range.min, threshold_range.max
    elif unit == "%":
        low = _legacy_threshold(metric)
    else:
        high = _legacy_threshold(metric)
    if unit == "ms":
        low = float(int(low)) if low is not None else None
        high = float(int(high)) if high is not None else None
    return replace(result, provider=provider, threshold_min=low, threshold_max=high, unit=unit)


def _prometheus(server: str) -> PrometheusProvider:
    return PrometheusProvider(ProviderSpec(type="prometheus", address=server))


async def _builtin_check(
    canary: Canary, metric: CanaryMetric, model: TemplateModel, server: str, mesh_provider: str
) -> CheckResult:
    target_ref = canary.spec.target_ref
    provider_name = metrics_provider_name(
        mesh_provider, canary.spec.provider, target_ref.kind, target_ref.api_version
    )
    observer = observer_for(provider_name)
    if observer.fallback:
        log.info("canary %s: no builtin observer for %r, using the istio queries", canary.key, provider_name)
    try:
        client = _prometheus(server)
    except ProviderConfigError as err:
        return _failed(f"Error building Prometheus client for {server} {err}", severity="error")
    if metric.compare is not None:
        return await _compare_check(canary, metric, model, client, observer)
    try:
        query = builtin_query(observer, metric.name, model)
    except RenderError as err:
        return _failed(f"Prometheus query failed: rendering query failed: {err}", severity="error")
    try:
        value = await client.query(query)
    except NoValuesError as err:
        text = (
            f"Halt advancement no values found for {provider_name} metric {metric.name} "
            f"probably {target_ref.name}.{canary.metadata.namespace} is not receiving traffic"
        )
        if metric.name == REQUEST_SUCCESS_RATE:
            text += f": running query failed: {err}"
        return _no_data(text, query)
    except MetricsError as err:
        return _failed(f"Prometheus query failed: running query failed: {err}", query=query, severity="error")

    if metric.name == REQUEST_SUCCESS_RATE:
        return _success_rate_verdict(canary, metric, value, query)
    return _duration_verdict(canary, metric, observer, value, query)


async def _count(client: PrometheusProvider, query: str) -> float:
    """A count over the interval; no series is no request (0)."""
    try:
        return await client.query(query)
    except NoValuesError:
        return 0.0


async def _compare_check(
    canary: Canary, metric: CanaryMetric, model: TemplateModel, client: PrometheusProvider, observer: Observer
) -> CheckResult:
    """``compare`` on request-success-rate: the canary's and the primary's error counts over the same
    window, an exact one-sided test (``metrics.compare.compare_error_rates``), then the thresholds if any."""
    compare = metric.compare
    assert compare is not None
    primary_model = replace(model, target=f"{model.target}-primary")
    try:
        canary_ok_q, canary_all_q = count_queries(observer, model)
        primary_ok_q, primary_all_q = count_queries(observer, primary_model)
    except (NotComparable, RenderError) as err:
        return _failed(f"Metric {metric.name} compare: {err}", severity="error")
    try:
        canary_ok, canary_all, primary_ok, primary_all = [
            await _count(client, q) for q in (canary_ok_q, canary_all_q, primary_ok_q, primary_all_q)
        ]
    except MetricsError as err:
        return _failed(
            f"Prometheus query failed: running query failed: {err}", query=canary_all_q, severity="error"
        )
    evidence = f"canary {canary_ok_q} of {canary_all_q}; primary {primary_ok_q} of {primary_all_q}"
    try:
        result = compare_error_rates(
            max(canary_all - canary_ok, 0.0),
            canary_all,
            max(primary_all - primary_ok, 0.0),
            primary_all,
            alpha=compare.alpha,
            min_effect=compare.min_effect / 100,
            min_samples=int(compare.min_samples),
        )
    except ValueError as err:
        return _failed(f"Metric {metric.name} compare: {err}", query=evidence, severity="error")
    canary_rate = 100 * (1 - result.canary)
    primary_rate = 100 * (1 - result.primary)
    said = result.sentence("error rate", percent=True)
    if result.verdict == "inconclusive":
        text = f"Halt advancement not enough requests to compare {canary.key} with its primary: {said}"
        verdict = _no_data(text, evidence)
    elif result.verdict == "fail":
        text = f"Halt {canary.key} advancement success rate vs primary: {said}"
        verdict = _failed(text, canary_rate, query=evidence)
    elif metric.threshold_range is not None or metric.threshold is not None:
        verdict = _success_rate_verdict(canary, metric, canary_rate, evidence)
    else:
        verdict = _passed(canary_rate, canary_rate, evidence)
    return replace(
        verdict,
        primary_value=primary_rate if result.primary_samples else None,
        test=result.test,
        p_value=result.p_value,
        effect=canary_rate - primary_rate,
    )


def _success_rate_verdict(canary: Canary, metric: CanaryMetric, value: float, query: str) -> CheckResult:
    return _threshold_verdict(
        metric,
        value,
        query,
        "<",
        lambda op, bound: (
            f"Halt {canary.key} advancement success rate {go_percent2(value)}% {op} {go_float(bound)}%"
        ),
    )


def _duration_verdict(
    canary: Canary, metric: CanaryMetric, observer: Observer, value: float, query: str
) -> CheckResult:
    """request-duration: whole milliseconds, bounds truncated to whole milliseconds (Go's Duration)."""
    if math.isinf(value):
        return _failed(
            f"Halt {canary.key} advancement request duration {go_float(value)} is not a finite duration",
            value,
            query=query,
        )
    ms = duration_milliseconds(observer, value)
    # Go converts the float bounds to whole milliseconds (truncating) before comparing
    miss: tuple[str, int] | None = None
    threshold_range = metric.threshold_range
    if threshold_range is not None:
        if threshold_range.min is not None and ms < int(threshold_range.min):
            miss = ("<", int(threshold_range.min))
        elif threshold_range.max is not None and ms > int(threshold_range.max):
            miss = (">", int(threshold_range.max))
    elif ms > int(_legacy_threshold(metric)):
        miss = (">", int(_legacy_threshold(metric)))
    if miss is not None:
        op, bound_ms = miss
        return _failed(
            f"Halt {canary.key} advancement request duration {go_duration_ms(ms)} {op} {go_duration_ms(bound_ms)}",
            float(ms),
            query=query,
            metric_value=ms / 1000,
        )
    return CheckResult(ok=True, value=float(ms), message="", metric_value=ms / 1000, query=query)


async def _inline_check(
    canary: Canary, metric: CanaryMetric, model: TemplateModel, server: str
) -> CheckResult:
    try:
        client = _prometheus(server)
    except ProviderConfigError as err:
        return _failed(f"Error building Prometheus client for {server} {err}", severity="error")
    try:
        query = collapse_whitespace(render(metric.query, model))
    except RenderError as err:
        return _failed(f"Prometheus query failed for {metric.name}: {err}", severity="error")
    try:
        value = await client.query(query)
    except NoValuesError:
        return _no_data(f"Halt advancement no values found for metric: {metric.name}", query)
    except MetricsError as err:
        return _failed(f"Prometheus query failed for {metric.name}: {err}", query=query, severity="error")
    return _custom_verdict(canary, metric, value, query)


async def _template_check(
    canary: Canary,
    metric: CanaryMetric,
    model: TemplateModel,
    template: MetricTemplate | None,
    secret: Mapping[str, Any] | None,
    provider_factory: ProviderFactory,
) -> CheckResult:
    ref = metric.template_ref
    assert ref is not None
    namespace = ref.namespace_or(canary.metadata.namespace or "")
    where = f"{ref.name}.{namespace}"
    if template is None:
        return _failed(
            f'Metric template {where} error: metrictemplate.flagger.app "{ref.name}" not found',
            severity="error",
        )
    provider = template.spec.provider
    credentials: dict[str, str] | None = None
    if provider.secret_ref is not None:
        if secret is None:
            return _failed(
                f'Metric template {where} secret {provider.secret_ref.name} error: secret "{provider.secret_ref.name}" not found',
                severity="error",
            )
        try:
            credentials = secret_data(secret)
        except ProviderConfigError as err:
            return _failed(
                f"Metric template {where} secret {provider.secret_ref.name} error: {err}", severity="error"
            )
    spec = provider_spec(template, metric.interval or "")
    try:
        client = provider_factory(spec, credentials)
    except ProviderConfigError as err:
        return _failed(f"Metric template {where} provider {provider.type} error: {err}", severity="error")
    try:
        query = collapse_whitespace(render(template.spec.query, model))
    except RenderError as err:
        return _failed(f"Metric template {where} query render error: {err}", severity="error")
    try:
        value = await client.query(query)
    except NoValuesError as err:
        return _no_data(f"Halt advancement no values found for custom metric: {metric.name}: {err}", query)
    except MetricsError as err:
        return _failed(f"Metric query failed for {metric.name}: {err}", query=query, severity="error")
    return _custom_verdict(canary, metric, value, query)
