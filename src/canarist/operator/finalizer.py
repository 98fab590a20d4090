"""`spec.revertOnDeletion`: the finalizer that puts the world back when a Canary is deleted.

Only a canary that asks for it gets the finalizer; removing the flag removes it. On deletion the target is
scaled back up, an apex Service the canary took over gets its selector back, a taken-over route object its
original spec, and then the finalizer goes so garbage collection removes what canarist generated.
Flagger: ``pkg/controller/finalizer.go`` (docs/flagger-parity.md#finalizer-and-revertondeletion).
"""

from __future__ import annotations

import logging
from typing import Any

from canarist.api import Canary
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import KubeError, NotFound
from canarist.operator.executor import ActionFailed, Executor
from canarist.operator.observe import ObjectStore, Observed
from canarist.routers.base import RevertError

log = logging.getLogger("canarist")

FINALIZER = "finalizer.flagger.app"
TERMINATING = "Terminating"

Obj = dict[str, Any]


def _finalizers(obj: Obj) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


class Finalizer:
    def __init__(self, client: KubeClient, store: ObjectStore, executor: Executor) -> None:
        self._client = client
        self._store = store
        self._executor = executor

    async def sync_finalizer(self, obj: Obj, canary: Canary) -> None:
        """Add the finalizer when revertOnDeletion asks for it, remove it when it no longer does."""
        present = FINALIZER in _finalizers(obj)
        wanted = bool(canary.spec.revert_on_deletion)
        if present == wanted or is_deleting(obj):
            return
        finalizers = [f for f in _finalizers(obj) if f != FINALIZER] + ([FINALIZER] if wanted else [])
        await self._set_finalizers(canary, finalizers)

    async def finalize(self, canary: Canary, observed: Observed) -> bool:
        """One step of the revert; True when it is done and the finalizer is gone."""
        phase = canary.status.phase or ""
        if phase != TERMINATING:
            await self._executor.event(canary, "Normal", f"Terminating canary {canary.key}", TERMINATING)
            await self._write_phase(canary)
        await self._executor.revert(canary, observed)
        if not observed.observation.canary.ready and observed.target is not None:
            # The target is scaling back up; the next wake-up (its status changing) continues from here.
            return False
        obj = self._store.get(kinds.CANARY, canary.metadata.namespace or "", canary.metadata.name or "") or {}
        await self._set_finalizers(canary, [f for f in _finalizers(obj) if f != FINALIZER])
        await self._executor.event(canary, "Normal", f"Terminated canary {canary.key}", TERMINATING)
        return True

    async def _write_phase(self, canary: Canary) -> None:
        status = canary.status.to_dict()
        status["phase"] = TERMINATING
        try:
            await self._executor.write_status(canary, status)
        except ActionFailed as error:
            log.warning("%s", error, extra={"canary": canary.key})

    async def _set_finalizers(self, canary: Canary, finalizers: list[str]) -> None:
        patch = {"metadata": {"finalizers": finalizers or None}}
        try:
            await self._client.patch(
                kinds.CANARY, canary.metadata.name or "", patch, namespace=canary.metadata.namespace
            )
        except NotFound:
            return
        except KubeError as error:
            raise ActionFailed(f"updating the finalizers of canary {canary.key}: {error}") from error


__all__ = ["FINALIZER", "Finalizer", "RevertError", "is_deleting"]
