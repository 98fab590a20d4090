"""Answer the engine's checks: call a webhook, evaluate a metric, probe the metric providers.

Every answer is a `CheckResult`; nothing here raises into the tick. References (MetricTemplates, their
Secrets) are read from the informer caches.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from canarist.api import Canary, CanaryMetric, CanaryWebhook, MetricTemplate
from canarist.engine.model import Check, CheckResult
from canarist.hooks.client import call_webhook, cut_text
from canarist.hooks.payload import build_payload
from canarist.kube import resources as kinds
from canarist.metrics.checks import evaluate_metric, provider_spec, template_model
from canarist.metrics.gofmt import go_float
from canarist.metrics.providers.base import (
    MetricProvider,
    MetricsError,
    NoValuesError,
    ProviderConfigError,
    ProviderSpec,
    secret_data,
)
from canarist.metrics.providers.registry import create_provider
from canarist.metrics.template import RenderError, collapse_whitespace, render
from canarist.operator.observe import ObjectStore
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry
from canarist.workloads import knative
from canarist.workloads.revision import run_checksum

log = logging.getLogger("canarist.checks")

Obj = dict[str, Any]


class CheckRunner:
    def __init__(self, store: ObjectStore, settings: OperatorSettings, telemetry: Telemetry) -> None:
        self._store = store
        self._settings = settings
        self._telemetry = telemetry

    async def run(self, canary: Canary, check: Check) -> CheckResult:
        if check.kind == "webhook":
            return await self._webhook(canary, check)
        if check.kind == "metric":
            return await self._metric(canary, check)
        return await self._providers(canary)

    # ------------------------------------------------------------------ webhooks

    def _find_webhook(self, canary: Canary, check: Check) -> CanaryWebhook | None:
        analysis = canary.analysis()
        for hook in analysis.webhooks if analysis is not None and analysis.webhooks else []:
            if hook.name == check.name and str(hook.type or "") == check.webhook_type:
                return hook
        return None

    async def _webhook(self, canary: Canary, check: Check) -> CheckResult:
        hook = self._find_webhook(canary, check)
        if hook is None:
            return CheckResult(
                ok=False, message=f"webhook {check.name} not found in spec.analysis.webhooks", error=True
            )
        payload = build_payload(
            canary.metadata.name or "",
            canary.metadata.namespace or "",
            check.phase,
            self.checksum(canary),
            hook.metadata,
        )
        result = await call_webhook(
            hook.url,
            payload,
            timeout_s=hook.timeout_seconds(),
            retries=hook.retries or 0,
            disable_tls=bool(hook.disable_tls),
        )
        self._telemetry.webhook_calls.labels(
            type=check.webhook_type or "rollout", outcome="ok" if result.ok else "failed"
        ).inc()
        log.info(
            "webhook %s (%s) answered %s in %.3fs",
            hook.name,
            check.webhook_type or "rollout",
            result.status if result.status is not None else result.error,
            result.elapsed_s,
            extra={"canary": canary.key},
        )
        return CheckResult(
            ok=result.ok,
            message=str(result) if result.ok else result.error or result.body or f"status {result.status}",
            # no HTTP answer at all (unreachable, timeout, invalid URL): the webhook could not be asked
            error=result.status is None and not result.ok,
            url=hook.url,
            http_status=result.status,
            body=cut_text(result.body),
            duration_s=result.elapsed_s,
        )

    checksum = staticmethod(run_checksum)

    # ------------------------------------------------------------------ metrics

    def _find_metric(self, canary: Canary, name: str) -> CanaryMetric | None:
        analysis = canary.analysis()
        for metric in analysis.metrics if analysis is not None and analysis.metrics else []:
            if metric.name == name:
                return metric
        return None

    def _template(self, canary: Canary, metric: CanaryMetric) -> MetricTemplate | None:
        ref = metric.template_ref
        if ref is None:
            return None
        namespace = ref.namespace or canary.metadata.namespace or ""
        obj = self._store.get(kinds.METRIC_TEMPLATE, namespace, ref.name)
        if obj is None:
            return None
        try:
            return MetricTemplate.model_validate(obj)
        except ValueError as error:
            log.warning("metric template %s.%s is invalid: %s", ref.name, namespace, error)
            return None

    def _template_secret(self, template: MetricTemplate | None, namespace: str) -> Obj | None:
        if template is None or template.spec.provider.secret_ref is None:
            return None
        template_ns = template.metadata.namespace or namespace
        return self._store.get(kinds.SECRET, template_ns, template.spec.provider.secret_ref.name)

    async def _metric(self, canary: Canary, check: Check) -> CheckResult:
        metric = self._find_metric(canary, check.name)
        if metric is None:
            return CheckResult(
                ok=False, message=f"metric {check.name} not found in spec.analysis.metrics", error=True
            )
        template = self._template(canary, metric)
        secret = self._template_secret(template, canary.metadata.namespace or "")
        started = time.monotonic()
        guarded = await self._min_samples(canary, metric, template, secret)
        if guarded is not None:
            return guarded
        result = await evaluate_metric(
            canary,
            metric,
            metrics_server=self._settings.metrics_server,
            template=template,
            secret=secret,
            mesh_provider=self._settings.mesh_provider,
            route=self._route(canary),
        )
        if result.metric_value is not None:
            self._telemetry.metric_analysis.labels(
                name=canary.spec.target_ref.name,
                namespace=canary.metadata.namespace or "",
                metric=metric.name,
            ).set(result.metric_value)
        return result.answer(duration_s=time.monotonic() - started)

    def _route(self, canary: Canary) -> str:
        """The ``{{ route }}`` of a Knative Service target: its latest created revision (else the default)."""
        ref = canary.spec.target_ref
        if not ref.is_knative():
            return ""
        return knative.latest_revision(
            self._store.get(knative.SERVICE, canary.metadata.namespace or "", ref.name)
        )

    async def _min_samples(
        self,
        canary: Canary,
        metric: CanaryMetric,
        template: MetricTemplate | None,
        secret: Obj | None,
    ) -> CheckResult | None:
        """``minSamples``: the guard query, on the metric's provider, rendered like the metric's query.

        None when the metric has no guard or enough samples (the metric is then evaluated); else the
        answer: no data when the count is below ``count`` (or the query has no values), an error when the
        provider cannot answer. A templateRef metric whose template or Secret is missing skips the guard:
        the metric's own evaluation reports that.
        """
        guard = metric.min_samples
        if guard is None:
            return None
        started = time.monotonic()
        located = self._guard_provider(canary, metric, template, secret)
        if located is None:
            return None
        provider, where = located
        base = CheckResult(ok=False, provider=where)
        try:
            query = collapse_whitespace(
                render(guard.query, template_model(canary, metric, route=self._route(canary)))
            )
        except RenderError as error:
            return _guard(base, error=True, message=f"minSamples query of {metric.name}: {error}")
        base = _guard(base, query=query)
        try:
            count = await provider.query(query)
        except NoValuesError:
            count = 0.0
        except MetricsError as error:
            return _guard(
                base,
                error=True,
                message=f"Metric query failed for {metric.name} minSamples: {error}",
                duration_s=time.monotonic() - started,
            )
        if math.isnan(count) or count < guard.count:
            shown = "no samples" if math.isnan(count) else f"{go_float(count)} samples"
            return _guard(
                base,
                no_data=True,
                message=(
                    f"Halt advancement too few samples for metric {metric.name}: {shown} "
                    f"< minSamples {go_float(guard.count)}"
                ),
                duration_s=time.monotonic() - started,
            )
        return None

    def _guard_provider(
        self,
        canary: Canary,
        metric: CanaryMetric,
        template: MetricTemplate | None,
        secret: Obj | None,
    ) -> tuple[MetricProvider, str] | None:
        """The provider the guard query runs on, and its type and address for the ledger."""
        if metric.template_ref is None:
            server = canary.spec.metrics_server or self._settings.metrics_server
            spec = ProviderSpec(type="prometheus", address=server)
            credentials: dict[str, str] | None = None
        else:
            if template is None:
                return None
            provider = template.spec.provider
            if provider.secret_ref is not None and secret is None:
                return None
            spec = provider_spec(template)
            try:
                credentials = secret_data(secret) if secret is not None else None
            except ProviderConfigError:
                return None
        try:
            client = create_provider(spec, credentials)
        except ProviderConfigError:
            return None  # the metric's own evaluation says why
        return client, f"{spec.type or 'prometheus'} {spec.address}".strip()

    # ------------------------------------------------------------------ provider availability

    async def _providers(self, canary: Canary) -> CheckResult:
        analysis = canary.analysis()
        metrics = list(analysis.metrics or []) if analysis is not None else []
        server = canary.spec.metrics_server or self._settings.metrics_server
        problems: list[str] = []
        if any(m.template_ref is None for m in metrics):
            problem = await self._probe(ProviderSpec(type="prometheus", address=server), None)
            if problem:
                problems.append(f"prometheus not avaiable: {problem}")
        for metric in metrics:
            if metric.template_ref is None:
                continue
            namespace = metric.template_ref.namespace or canary.metadata.namespace or ""
            template = self._template(canary, metric)
            if template is None:
                problems.append(f"metric template {metric.template_ref.name}.{namespace} error: not found")
                continue
            provider = template.spec.provider
            spec = ProviderSpec(
                type=provider.type,
                address=provider.address or "",
                headers=dict(provider.headers or {}),
                region=provider.region or "",
                insecure_skip_verify=bool(provider.insecure_skip_verify),
            )
            secret = self._template_secret(template, namespace)
            problem = await self._probe(spec, secret)
            if problem:
                problems.append(
                    f"{spec.type} in metric template {metric.template_ref.name}.{namespace} not avaiable: {problem}"
                )
        if problems:
            return CheckResult(ok=False, message="; ".join(problems))
        return CheckResult(ok=True)

    @staticmethod
    async def _probe(spec: ProviderSpec, secret: Mapping[str, Any] | None) -> str:
        try:
            provider = create_provider(spec, secret_data(secret) if secret is not None else None)
            online = await provider.is_online()
        except MetricsError as error:
            return str(error)
        return "" if online else "not online"


def _guard(base: CheckResult, **changes: Any) -> CheckResult:
    """``base`` (the guard's evidence so far) with ``changes``."""
    return dataclasses.replace(base, **changes)
