"""Alerts from the engine to people: the canary's AlertProviders (from the caches) or the global notifier."""

from __future__ import annotations

from typing import Any

from canarist.api import AlertProvider, Canary
from canarist.kube import resources as kinds
from canarist.notify.alerts import send_alert
from canarist.notify.factory import decode_secret_data, global_notifier_from_settings
from canarist.operator.observe import ObjectStore
from canarist.operator.settings import OperatorSettings
from canarist.operator.telemetry import Telemetry


class _NoObjects:
    def get(self, kind: Any, namespace: str, name: str) -> None:
        return None


class AlertSender:
    def __init__(self, store: ObjectStore | None, settings: OperatorSettings, telemetry: Telemetry) -> None:
        self.store: ObjectStore = store if store is not None else _NoObjects()
        self._settings = settings
        self._telemetry = telemetry
        self._global = global_notifier_from_settings(settings, environ={})

    def _provider(self, namespace: str, name: str) -> AlertProvider | None:
        obj = self.store.get(kinds.ALERT_PROVIDER, namespace, name)
        return AlertProvider.model_validate(obj) if obj is not None else None

    def _secret(self, namespace: str, name: str) -> dict[str, str] | None:
        obj = self.store.get(kinds.SECRET, namespace, name)
        return decode_secret_data(obj) if obj is not None else None

    async def send(self, canary: Canary, message: str, severity: str, with_metadata: bool) -> None:
        deliveries = await send_alert(
            canary,
            message,
            with_metadata,
            severity,
            global_notifier=self._global,
            providers=self._provider,
            secrets=self._secret,
            cluster_name=self._settings.cluster_name,
        )
        for delivery in deliveries:
            self._telemetry.notifications.labels(
                provider=delivery.target, outcome="ok" if delivery.ok else "failed"
            ).inc()
