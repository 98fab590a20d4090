"""The local control plane's audit log: every request that changes something, in the order it was answered.

A real API server's audit log records the same facts (verb, request URI, user agent, response code); the
operator puts its replica identity into its User-Agent, so a test can ask *who* wrote a Canary's status and
in what order (``GET /localcluster.canarist.dev/v1/audit?since=N``, or `AuditLog.entries` in process).
Bounded: the oldest entries are dropped beyond ``capacity``; ``seq`` keeps counting so a gap is visible.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    method: str
    path: str
    user_agent: str
    code: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class AuditLog:
    def __init__(self, capacity: int = 200_000) -> None:
        self._entries: deque[AuditEntry] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()  # read from a test's thread while the cluster's loop appends

    def record(self, method: str, path: str, user_agent: str, code: int) -> None:
        if method not in MUTATING:
            return
        with self._lock:
            self._seq += 1
            self._entries.append(AuditEntry(self._seq, method, path, user_agent, code))

    def entries(self, since: int = 0) -> list[AuditEntry]:
        """The entries after sequence number ``since``, oldest first."""
        with self._lock:
            return [entry for entry in self._entries if entry.seq > since]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
