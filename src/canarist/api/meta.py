"""Kubernetes ObjectMeta, the part canarist reads and writes (everything else is kept as extra fields)."""

from __future__ import annotations

from typing import Any

from canarist.api import defaults
from canarist.api._base import FlaggerModel, field


class OwnerReference(FlaggerModel):
    api_version: str = field("")
    kind: str = field("")
    name: str = field("")
    uid: str = field("")
    controller: bool | None = field()
    block_owner_deletion: bool | None = field()


class ObjectMeta(FlaggerModel):
    name: str = field("")
    generate_name: str | None = field()
    namespace: str = field("")
    uid: str = field("")
    resource_version: str = field("")
    generation: int = field(0)
    creation_timestamp: str | None = field()
    deletion_timestamp: str | None = field()
    labels: dict[str, str] = field(factory=dict)
    annotations: dict[str, str] = field(factory=dict)
    owner_references: list[OwnerReference] = field(factory=list)
    finalizers: list[str] = field(factory=list)


class FlaggerObject(FlaggerModel):
    """What the three flagger.app kinds share: identity, and the way back to a manifest. Subclasses set
    ``kind``'s default and add ``spec`` and ``status`` (pydantic keeps a redefined field in its place, so the
    manifest reads apiVersion, kind, metadata, spec, status)."""

    api_version: str = field(defaults.API_VERSION)
    kind: str = field("")
    metadata: ObjectMeta = field(factory=ObjectMeta)

    @property
    def key(self) -> str:
        """``name.namespace``, how Flagger names an object in logs and messages."""
        return f"{self.metadata.name}.{self.metadata.namespace}"

    def to_manifest(self) -> dict[str, Any]:
        """The manifest in camelCase, without invented defaults, keeping unknown fields."""
        return self.to_dict()

    def reference(self) -> dict[str, Any]:
        """Just enough of the manifest to name the object (for an Event's involvedObject): dumping the
        whole object for every event was the largest cost of a busy operator."""
        meta = self.metadata
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {
                "name": meta.name,
                "namespace": meta.namespace,
                "uid": meta.uid,
                "resourceVersion": meta.resource_version,
            },
        }
