"""Alerts (docs/flagger-parity.md#notifications): Flagger's fields, routing, never-raising delivery."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar, cast

from canarist.notify.base import Field, Notifier, NotifyError, severity_matches
from canarist.notify.factory import notifier_for_provider
from canarist.notify.outbox import SendResult

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


@dataclass(frozen=True)
class PlannedAlert:
    """One alert ready to go: its target and notifier, or why it cannot be sent (already logged)."""

    target: str  # "global" or the provider's "name.namespace"
    notifier: Notifier | None
    workload: str
    namespace: str
    message: str
    fields: tuple[Field, ...]
    severity: str
    error: str = ""

    @property
    def destination(self) -> str:
        """The outbox key: ``alert/global`` or ``alert/<provider>.<namespace>``, never the (secret) URL."""
        return f"alert/{self.target}"

    @property
    def label(self) -> str:
        return "alert" if self.target == "global" else f"alert provider {self.target}"

    async def attempt(self) -> SendResult:
        """One POST, never raising: ``transient`` when it can be tried again without posting twice.
        Failures are not logged here (see :meth:`log_failure`); unexpected exceptions are."""
        if self.notifier is None:
            return SendResult(False, False, f"{self.label} can't be sent: {self.error}")
        try:
            await self.notifier.post(
                self.workload, self.namespace, self.message, list(self.fields), self.severity
            )
        except NotifyError as err:
            status = f" (HTTP {err.status})" if err.status is not None else ""
            return SendResult(False, err.transient, f"{self.label} can't be sent{status}: {err}")
        except Exception as err:
            log.exception("%s can't be sent: %s", self.label, err, extra={"canary": self.canary})
            return SendResult(False, False, f"{self.label} can't be sent: {err}")
        return SendResult(True)

    @property
    def canary(self) -> str:
        return f"{self.workload}.{self.namespace}"

    def log_failure(self, error: str) -> None:
        """Log the error :meth:`attempt` returned (``alert provider on-call.flagger can't be sent (HTTP
        500): …``, the line :func:`notify_safely` logs)."""
        log.error("%s", error, extra={"canary": self.canary})


async def plan_alert(
    canary: Canary,
    message: str,
    include_metadata: bool,
    severity: str,
    *,
    global_notifier: Notifier,
    providers: ProviderLookup,
    secrets: SecretLookup,
    cluster_name: str = "",
) -> list[PlannedAlert]:
    """Flagger's ``alert()`` routing without the sending: without ``analysis.alerts`` the global notifier
    gets it; otherwise every alert whose severity accepts ``severity`` gets it through its provider, looked
    up with ``providers(namespace, name)`` (providerRef.namespace, default the canary's) and, for a
    secretRef, ``secrets(namespace, secret_name)`` returning decoded data. A provider that cannot be built
    is logged and planned with ``notifier=None``. Never raises.
    """
    fields = tuple(alert_fields(canary, include_metadata, cluster_name))
    name, namespace = canary.metadata.name, canary.metadata.namespace or ""
    analysis = canary.analysis()
    alerts = analysis.alerts if analysis is not None else []
    if not alerts:
        return [PlannedAlert("global", global_notifier, name, namespace, message, fields, severity)]

    planned: list[PlannedAlert] = []
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
            planned.append(
                PlannedAlert(provider_key, None, name, namespace, message, fields, severity, str(err))
            )
            continue
        except Exception as err:
            log.exception("alert provider %s error: %s", provider_key, err, extra=extra)
            planned.append(
                PlannedAlert(provider_key, None, name, namespace, message, fields, severity, str(err))
            )
            continue
        planned.append(PlannedAlert(provider_key, notifier, name, namespace, message, fields, severity))
    return planned


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
    """:func:`plan_alert`, then each alert sent in turn, awaited (the operator queues them instead: see
    ``canarist.operator.alerts.AlertSender``). Never raises; failures are logged and returned.
    """
    planned = await plan_alert(
        canary, message, include_metadata, severity,
        global_notifier=global_notifier, providers=providers, secrets=secrets, cluster_name=cluster_name,
    )  # fmt: skip
    deliveries: list[AlertDelivery] = []
    for alert in planned:
        if alert.notifier is None:
            deliveries.append(AlertDelivery(alert.target, False, alert.error))
            continue
        ok = await notify_safely(
            alert.notifier,
            alert.workload,
            alert.namespace,
            message,
            alert.fields,
            severity,
            label=alert.label,
        )
        failed = "see log" if alert.target == "global" else "send error (see log)"
        deliveries.append(AlertDelivery(alert.target, ok, "" if ok else failed))
    return deliveries
