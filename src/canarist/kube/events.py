"""`EventRecorder`: core/v1 Events about an object, with repeats folded into one Event.

Like client-go's recorder, an Event that repeats an earlier one about the same object (same type, reason and
message) is not created again: the earlier Event gets ``count + 1`` and a new ``lastTimestamp``. So a
warning that fires on every tick of a failing analysis stays a single, counting Event. Recording never raises;
failures are logged.

Transient failures (429, 5xx, transport errors) are retried with the recorder's `RetryPolicy` (bounded
exponential backoff with jitter); one warning is logged when it finally gives up. A create is retried with
the same Event name, so a retry after an answer that was lost finds the Event it already made
(`AlreadyExists`, then the same involvedObject/reason/message) and counts it as written, not as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .client import DEFAULT_RETRY, NO_RETRY, KubeClient, Obj, RetryPolicy
from .errors import AlreadyExists, KubeError, NotFound, is_transient, not_applied
from .resources import EVENT

__all__ = ["EventRecorder", "EventType", "object_reference"]

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
_Key = tuple[str, str, str, str, str, str, str, str]


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: Mapping[str, Any]) -> dict[str, str]:
    """The ``involvedObject`` for a manifest: kind, namespace, name, uid, apiVersion, resourceVersion
    (only the fields that are set)."""
    meta = obj.get("metadata") or {}
    ref = {
        "kind": obj.get("kind"),
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "apiVersion": obj.get("apiVersion"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    return {k: str(v) for k, v in ref.items() if v}


@dataclass(slots=True)
class _Seen:
    name: str
    namespace: str
    count: int


class EventRecorder:
    """Write Events as ``component`` (Flagger's is ``flagger``).

    ``cache_size`` bounds how many distinct (object, type, reason, message) series are remembered for
    aggregation (least recently used first out). ``retry`` bounds the retries of transient failures.
    """

    def __init__(
        self,
        client: KubeClient,
        component: str = "flagger",
        *,
        host: str | None = None,
        cache_size: int = 4096,
        clock: Callable[[], datetime] = _now,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.client = client
        self.component = component
        self.host = socket.gethostname() if host is None else host
        self._cache_size = cache_size
        self._clock = clock
        self.retry = retry
        self._seen: OrderedDict[_Key, _Seen] = OrderedDict()
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[Obj | None]] = set()
        self.failures = 0

    async def record(
        self, involved_obj: Mapping[str, Any], type_: EventType | str, reason: str, message: str
    ) -> Obj | None:
        """Record an Event about ``involved_obj`` (a manifest with apiVersion, kind and metadata).

        Returns the Event as written, or ``None`` when writing failed: after retrying transient errors
        within `retry`, or at once for other errors (including `Fenced`). Logged once, never raised."""
        try:
            async with self._lock:
                return await self._record(involved_obj, str(type_), reason, message)
        except asyncio.CancelledError:
            raise
        except KubeError as e:
            self.failures += 1
            notes = "; ".join(getattr(e, "__notes__", ()))
            log.warning(
                "could not record event %s %s: %s%s", reason, message, e, f" ({notes})" if notes else ""
            )
        except Exception:
            self.failures += 1
            log.exception("could not record event %s %s", reason, message)
        return None

    def record_nowait(
        self, involved_obj: Mapping[str, Any], type_: EventType | str, reason: str, message: str
    ) -> None:
        """`record` in the background, for callers that must not wait; `flush` waits for those writes."""
        task = asyncio.get_running_loop().create_task(self.record(involved_obj, type_, reason, message))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _retrying(self, op: Callable[[], Awaitable[Obj]]) -> Obj:
        return await self.retry.run(op, is_transient, "event write")

    async def _record(self, involved: Mapping[str, Any], type_: str, reason: str, message: str) -> Obj:
        ref = object_reference(involved)
        if "name" not in ref or "kind" not in ref:
            raise ValueError("the involved object needs kind and metadata.name")
        namespace = ref.get("namespace") or "default"
        key: _Key = (
            ref.get("apiVersion", ""),
            ref["kind"],
            ref.get("namespace", ""),
            ref["name"],
            ref.get("uid", ""),
            type_,
            reason,
            message,
        )
        now = self._clock()
        seen = self._seen.get(key)
        if seen is not None:
            self._seen.move_to_end(key)
            patch = {"count": seen.count + 1, "lastTimestamp": _timestamp(now)}
            try:
                # An absolute count: repeating the patch after a lost answer is harmless.
                event = await self._retrying(
                    lambda: self.client.patch(
                        EVENT, seen.name, patch, namespace=seen.namespace, retry=NO_RETRY
                    )
                )
            except NotFound:
                # The earlier Event expired (events have a TTL): start a new series.
                del self._seen[key]
            else:
                seen.count += 1
                return event
        event_name = f"{ref['name']}.{time.time_ns():x}"
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": _timestamp(now),
            "lastTimestamp": _timestamp(now),
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        maybe_applied = False

        async def create() -> Obj:
            nonlocal maybe_applied
            try:
                return await self.client.create(body, kind=EVENT, namespace=namespace, retry=NO_RETRY)
            except AlreadyExists:
                if maybe_applied:  # an earlier try may have made it and lost the answer: is it ours?
                    existing = await self.client.get(EVENT, event_name, namespace=namespace)
                    if all(
                        existing.get(k) == body[k] for k in ("involvedObject", "reason", "message", "type")
                    ):
                        return existing
                raise
            except KubeError as e:
                maybe_applied = maybe_applied or not not_applied(e)
                raise

        event = await self._retrying(create)
        meta = event.get("metadata") or {}
        self._seen[key] = _Seen(str(meta.get("name") or event_name), namespace, 1)
        while len(self._seen) > self._cache_size:
            self._seen.popitem(last=False)
        return event
