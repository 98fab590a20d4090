"""Alerts: the fields Flagger attaches (inventory §2.12), routing to providers, and never-raising delivery."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from canarist.notify.base import Field, Notifier, NotifyError, severity_matches
from canarist.notify.factory import notifier_for_provider

if TYPE_CHECKING:
    from canarist.api import AlertProvider, Canary

log = logging.getLogger("canarist.notify")

T = TypeVar("T")
ProviderLookup = Callable[[str, str], "AlertProvider | Awaitable[AlertProvider | None] | None"]
SecretLookup = Callable[[str, str], "Mapping[str, str] | Awaitable[Mapping[str, str] | None] | None"]


def traffic_routing(canary: Canary) -> str | None:
    """The "Traffic routing" field, in Flagger's order of precedence."""
    analysis = canary.analysis()
    if analysis is None:
        return None
    if analysis.step_weight > 0:
        return f"Weight step: {analysis.step_weight} max: {canary.max_weight()}"
    if analysis.step_weights:
        steps = ",".join(str(w) for w in analysis.step_weights)
        return f"Weight steps: {steps} max: {canary.max_weight()}"
    if analysis.match:
        return "A/B Testing"
    if analysis.iterations > 0:
        return "Blue/Green"
    return None


def alert_fields(canary: Canary, include_metadata: bool, cluster_name: str = "") -> list[Field]:
    """``Cluster`` (with ``--cluster-name``), then with metadata Target, Failed checks threshold,
    Progress deadline and Traffic routing."""
    fields: list[Field] = []
    if cluster_name:
        fields.append(("Cluster", cluster_name))
    if not include_metadata:
        return fields
    target = canary.spec.target_ref
    fields += [
        ("Target", f"{target.kind}/{target.name}.{canary.metadata.namespace}"),
        ("Failed checks threshold", str(canary.threshold())),
        ("Progress deadline", f"{canary.progress_deadline_seconds()}s"),
    ]
    routing = traffic_routing(canary)
    if routing is not None:
        fields.append(("Traffic routing", routing))
    return fields


async def notify_safely(
    notifier: Notifier,
    workload: str,
    namespace: str,
    message: str,
    fields: Sequence[Field],
    severity: str,
    *,
    label: str = "alert",
) -> bool:
    """Post, log any failure (with its HTTP status) and never raise; return whether it was delivered."""
    canary = f"{workload}.{namespace}"
    try:
        await notifier.post(workload, namespace, message, list(fields), severity)
    except NotifyError as err:
        status = f" (HTTP {err.status})" if err.status is not None else ""
        log.error("%s can't be sent%s: %s", label, status, err, extra={"canary": canary})
        return False
    except Exception as err:
        log.exception("%s can't be sent: %s", label, err, extra={"canary": canary})
        return False
    return True


async def _resolve(
    lookup: Callable[[str, str], T | Awaitable[T | None] | None], namespace: str, name: str
) -> T | None:
    """Call a sync or async lookup (informer cache, API read)."""
    value = lookup(namespace, name)
    if inspect.isawaitable(value):
        return cast("T | None", await value)
    return value


@dataclass(frozen=True)
class AlertDelivery:
    target: str  # "global" or the provider's "name.namespace"
    ok: bool
    error: str = ""


async def send_alert(
    canary: Canary,
    message: str,
    include_metadata: bool,
    severity: str,
    *,
    global_notifier: Notifier,
    providers: ProviderLookup,
    secrets: SecretLookup,
    cluster_name: str = "",
) -> list[AlertDelivery]:
    """Flagger's ``alert()``: without ``analysis.alerts`` the global notifier gets it; otherwise every alert
    whose severity accepts ``severity`` gets it through its provider, looked up with
    ``providers(namespace, name)`` (providerRef.namespace, default the canary's) and, for a secretRef,
    ``secrets(namespace, secret_name)`` returning decoded data. Never raises; failures are logged and
    returned.
    """
    fields = alert_fields(canary, include_metadata, cluster_name)
    name, namespace = canary.metadata.name, canary.metadata.namespace or ""
    analysis = canary.analysis()
    alerts = analysis.alerts if analysis is not None else []
    if not alerts:
        ok = await notify_safely(global_notifier, name, namespace, message, fields, severity)
        return [AlertDelivery("global", ok, "" if ok else "see log")]

    deliveries: list[AlertDelivery] = []
    extra = {"canary": canary.key}
    for alert in alerts:
        if not severity_matches(alert.severity, severity):
            continue
        provider_ns = alert.provider_ref.namespace_or(namespace)
        provider_key = f"{alert.provider_ref.name}.{provider_ns}"
        try:
            provider = await _resolve(providers, provider_ns, alert.provider_ref.name)
            if provider is None:
                raise NotifyError(f"alert provider {provider_key} not found")
            secret_data: Mapping[str, str] | None = None
            secret_ref = provider.spec.secret_ref
            if secret_ref is not None:
                secret_data = await _resolve(secrets, provider_ns, secret_ref.name)
            notifier = notifier_for_provider(provider, secret_data)
        except NotifyError as err:
            log.error("alert provider %s error: %s", provider_key, err, extra=extra)
            deliveries.append(AlertDelivery(provider_key, False, str(err)))
            continue
        except Exception as err:
            log.exception("alert provider %s error: %s", provider_key, err, extra=extra)
            deliveries.append(AlertDelivery(provider_key, False, str(err)))
            continue
        ok = await notify_safely(
            notifier, name, namespace, message, fields, severity, label=f"alert provider {provider_key}"
        )
        deliveries.append(AlertDelivery(provider_key, ok, "" if ok else "send error (see log)"))
    return deliveries
