"""Value types shared by the engine and the pure builders (workloads/, routers/).

These are plain frozen dataclasses: facts the runtime observed, or what the engine wants.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Readiness:
    """Whether a workload finished rolling out.

    ``retriable`` is False when waiting longer cannot help (the progress deadline passed):
    the engine then rolls back instead of waiting.

    >>> Readiness(ready=False, message="waiting for rollout to finish: 0 out of 1 new replicas have been updated")
    """

    ready: bool
    retriable: bool = True
    message: str = ""

    @classmethod
    def ok(cls) -> Readiness:
        return cls(ready=True)


@dataclass(frozen=True)
class Routes:
    """Traffic split between the primary and the canary, in percent, and whether the canary gets a mirror.

    >>> Routes(primary=95, canary=5)
    """

    primary: int
    canary: int
    mirrored: bool = False
