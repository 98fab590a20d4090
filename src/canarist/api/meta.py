"""Kubernetes ObjectMeta, the part canarist reads and writes (everything else is kept as extra fields)."""

from __future__ import annotations

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
