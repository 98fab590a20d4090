"""Which webhooks and metrics a canary has, in the order Flagger runs them, as :class:`Check` questions.

>>> [hook.name for hook in webhooks(canary, WebhookType.PRE_ROLLOUT)]
['conformance-test']
"""

from __future__ import annotations

from canarist.api import Canary, CanaryMetric, CanaryWebhook, WebhookType
from canarist.engine.model import Check

PROVIDERS = Check("providers")


def webhooks(canary: Canary, kind: WebhookType) -> list[CanaryWebhook]:
    """The webhooks of ``kind`` in spec order (an untyped webhook is a ``rollout`` hook)."""
    analysis = canary.analysis()
    if analysis is None:
        return []
    return [hook for hook in analysis.webhooks if hook.hook_type() == kind]


def webhook_check(hook: CanaryWebhook, phase: str) -> Check:
    """Call ``hook`` with ``phase`` in the payload. ``webhook_type`` is the type as written in the spec."""
    return Check("webhook", name=hook.name, webhook_type=str(hook.type), phase=phase)


def metrics(canary: Canary) -> list[CanaryMetric]:
    """The metrics in Flagger's order: builtin and inline-query metrics first, then template metrics.

    Each metric is asked once (Flagger evaluates a builtin-named metric with a templateRef twice).
    """
    analysis = canary.analysis()
    if analysis is None:
        return []
    builtin = [metric for metric in analysis.metrics if metric.template_ref is None]
    templated = [metric for metric in analysis.metrics if metric.template_ref is not None]
    return builtin + templated


def metric_check(metric: CanaryMetric) -> Check:
    return Check("metric", name=metric.name)
