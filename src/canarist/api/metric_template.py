"""The MetricTemplate resource (``metrictemplates.flagger.app``)."""

from __future__ import annotations

from typing import ClassVar

from canarist.api import defaults
from canarist.api._base import FlaggerModel, field
from canarist.api.canary import CanaryCondition, SecretRef
from canarist.api.enums import MetricProviderType, values
from canarist.api.meta import FlaggerObject


class MetricTemplateProvider(FlaggerModel):
    type: str = field("", crd={"required": True, "enum": values(MetricProviderType)})
    address: str = field("", description="API address of this provider")
    headers: dict[str, list[str]] = field(factory=dict, description="Headers to add to HTTP(S) requests")
    secret_ref: SecretRef | None = field()
    region: str = field("")
    insecure_skip_verify: bool = field(False)

    def type_or_default(self) -> str:
        """The provider type; unknown or empty types fall back to ``prometheus`` as in Flagger."""
        return self.type if self.type in values(MetricProviderType) else defaults.METRIC_PROVIDER


class MetricTemplateSpec(FlaggerModel):
    provider: MetricTemplateProvider = field(factory=MetricTemplateProvider, crd={"required": True})
    query: str = field("", crd={"required": True}, description="Query of this metric template")


class ResourceStatus(FlaggerModel):
    """``status`` of MetricTemplate and AlertProvider (conditions only, nothing writes them)."""

    conditions: list[CanaryCondition] = field(factory=list)


class MetricTemplate(FlaggerObject):
    KIND: ClassVar[str] = "MetricTemplate"

    kind: str = field("MetricTemplate")
    spec: MetricTemplateSpec = field(factory=MetricTemplateSpec)
    status: ResourceStatus = field(factory=ResourceStatus)
