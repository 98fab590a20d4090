"""Alerts from the engine to people: the canary's AlertProviders (from the caches) or the global notifier.

:meth:`AlertSender.send` routes the alert now (cache reads only) and hands each delivery to an
:class:`~canarist.notify.outbox.Outbox`, keyed by AlertProvider identity (``alert/global``,
``alert/<provider>.<namespace>``): the tick never waits for Slack. :meth:`AlertSender.close` drains the
outbox at shutdown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from canarist.api import AlertProvider, Canary
from canarist.kube import resources as kinds
from canarist.kube.resources import ResourceKind
from canarist.notify.alerts import PlannedAlert, plan_alert
from canarist.notify.factory import decode_secret_data, global_notifier_from_settings
from canarist.notify.outbox import DEFAULT_CLOSE_TIMEOUT_S, Delivery, Outbox
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry

ALERT_KIND = "alert"


class ObjectLookup(Protocol):
    """The one read the sender needs (an informer cache, the controller's ``get``)."""

    def get(self, kind: ResourceKind, namespace: str, name: str) -> dict[str, Any] | None: ...


class _NoObjects:
    def get(self, kind: Any, namespace: str, name: str) -> None:
        return None


class AlertSender:
    def __init__(
        self,
        store: ObjectLookup | None,
        settings: OperatorSettings,
        telemetry: Telemetry,
        outbox: Outbox | None = None,
    ) -> None:
        self.store: ObjectLookup = store if store is not None else _NoObjects()
        self._settings = settings
        self._telemetry = telemetry
        self._global = global_notifier_from_settings(settings, environ={})
        self.outbox = outbox if outbox is not None else Outbox()

    def _provider(self, namespace: str, name: str) -> AlertProvider | None:
        obj = self.store.get(kinds.ALERT_PROVIDER, namespace, name)
        return AlertProvider.model_validate(obj) if obj is not None else None

    def _secret(self, namespace: str, name: str) -> dict[str, str] | None:
        obj = self.store.get(kinds.SECRET, namespace, name)
        return decode_secret_data(obj) if obj is not None else None

    def _count(self, target: str, outcome: str) -> None:
        self._telemetry.notifications.labels(provider=target, outcome=outcome).inc()

    async def send(
        self,
        canary: Canary,
        message: str,
        severity: str,
        with_metadata: bool,
        fields: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Route the alert and queue its deliveries; returns without waiting for any HTTP call.

        ``fields`` come after Flagger's (Cluster, then the metadata): the evidence of the check that failed
        the run, from the decision ledger.

        ``canarist_notifications_total{provider, outcome}`` counts each delivery when it ends: ``ok``,
        ``failed`` (after retries; logged as before) or ``dropped`` (queue full or not sent at shutdown).
        """
        planned = await plan_alert(
            canary,
            message,
            with_metadata,
            severity,
            global_notifier=self._global,
            providers=self._provider,
            secrets=self._secret,
            cluster_name=self._settings.cluster_name,
        )
        for alert in planned:
            if fields:
                alert = dataclasses.replace(alert, fields=(*alert.fields, *fields))
            if alert.notifier is None:  # a missing provider or Secret, already logged
                self._count(alert.target, "failed")
                continue
            self.outbox.submit(
                alert.destination, alert.attempt, kind=ALERT_KIND, on_done=self._done_for(alert)
            )

    def _done_for(self, alert: PlannedAlert) -> Callable[[Delivery], None]:
        def done(delivery: Delivery) -> None:
            if delivery.outcome == "failed":
                alert.log_failure(delivery.error)
            self._count(alert.target, delivery.outcome)

        return done

    async def close(self, timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S) -> int:
        """Send what is queued for up to ``timeout_s``, then drop the rest; returns how many were dropped.
        Closes the outbox, also when it was passed in (share one only if it is closed once, here or there)."""
        return await self.outbox.close(timeout_s)
