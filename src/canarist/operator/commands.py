"""The runtime side of CanaryCommands (docs/control.md): which commands a canary has pending, and their
status once the engine consumed them.

Exactly once: the engine records a consumed command's uid in the Canary's ``status.commands`` in the same
status write as its effect. Only then is the command's own status written (Applied or Refused), here; an
operator that dies between the two writes finds the uid in the Canary's status on its next tick and only
finishes the command's status. A command whose status is written is no longer pending.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from canarist.engine.model import Command
from canarist.kube import resources as kinds
from canarist.kube.cache import ObjectStore
from canarist.kube.client import KubeClient
from canarist.kube.errors import Conflict, KubeError, NotFound

log = logging.getLogger("canarist")

Obj = dict[str, Any]

#: index of CanaryCommands by ``<namespace>/<spec.canary>``
BY_CANARY = "canary"


def canary_key(obj: Mapping[str, Any]) -> Iterable[str]:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if isinstance(spec, Mapping) and spec.get("canary"):
        yield f"{meta.get('namespace', '')}/{spec['canary']}"


def _pending(obj: Mapping[str, Any]) -> bool:
    status = obj.get("status") or {}
    return not (isinstance(status, Mapping) and status.get("phase"))


def pending_objects(store: ObjectStore, namespace: str, name: str) -> list[Obj]:
    """The canary's commands without a status yet, oldest first (creation time, then name)."""
    found = [o for o in store.by_index(kinds.CANARY_COMMAND, BY_CANARY, f"{namespace}/{name}") if _pending(o)]
    return sorted(
        found,
        key=lambda o: (str((o.get("metadata") or {}).get("creationTimestamp") or ""), _name(o)),
    )


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def command_of(obj: Mapping[str, Any]) -> Command:
    """The engine's view of one CanaryCommand object (a malformed field reads as absent: the engine refuses
    what it cannot apply, with a message)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        spec = {}
    return Command(
        uid=str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"),
        name=_name(obj),
        action=str(spec.get("action") or ""),
        weight=_int_or_none(spec.get("weight")),
        force=spec.get("force") is True,
        reason=str(spec.get("reason") or ""),
        requested_by=str(spec.get("requestedBy") or ""),
        revision=str(spec.get("revision") or ""),
    )


async def finish(client: KubeClient, records: Iterable[Mapping[str, Any]], pending: Iterable[Obj]) -> None:
    """Write the status of every pending command that the Canary's status records as consumed."""
    by_uid = {str(r.get("uid")): r for r in records if r.get("uid")}
    for obj in pending:
        record = by_uid.get(command_of(obj).uid)
        if record is None:
            continue
        meta = obj.get("metadata") or {}
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        status = {
            "phase": record.get("outcome", ""),
            "message": record.get("message", ""),
            "appliedAt": record.get("at"),
        }

        try:
            # over the cached version (no read, so no `get` grant): a conflict means the cache is behind,
            # and the next tick writes it over the newer version
            await client.replace_status({**obj, "status": status}, kind=kinds.CANARY_COMMAND)
        except NotFound:
            pass  # deleted meanwhile: the Canary's status keeps the record
        except Conflict:
            log.debug("status of canarycommand %s.%s: conflict, written on the next tick", name, namespace)
        except KubeError as error:
            # the next tick tries again (the record stays in the Canary's status)
            log.warning("status of canarycommand %s.%s: %s", name, namespace, error)
