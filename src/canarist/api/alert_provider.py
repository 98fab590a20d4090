"""The AlertProvider resource (``alertproviders.flagger.app``)."""

from __future__ import annotations

from typing import Any, ClassVar

from canarist.api import defaults
from canarist.api._base import FlaggerModel, field
from canarist.api.canary import SecretRef
from canarist.api.enums import AlertProviderType, values
from canarist.api.meta import FlaggerObject
from canarist.api.metric_template import ResourceStatus


class AlertProviderSpec(FlaggerModel):
    crd_schema: ClassVar[dict[str, Any]] = {
        "oneOf": [{"required": ["type", "address"]}, {"required": ["type", "secretRef"]}]
    }

    type: str = field("", crd={"enum": values(AlertProviderType)}, description="Type of this provider")
    channel: str = field("", description="Alert channel for this provider")
    username: str = field("", description="Bot username for this provider")
    address: str = field("", description="Hook URL address of this provider")
    proxy: str = field("", description="Http/s proxy of this provider")
    secret_ref: SecretRef | None = field()

    def channel_or_default(self) -> str:
        return self.channel or defaults.ALERT_CHANNEL

    def username_or_default(self) -> str:
        return self.username or defaults.ALERT_USERNAME


class AlertProvider(FlaggerObject):
    KIND: ClassVar[str] = "AlertProvider"

    kind: str = field("AlertProvider")
    spec: AlertProviderSpec = field(factory=AlertProviderSpec)
    status: ResourceStatus = field(factory=ResourceStatus)
