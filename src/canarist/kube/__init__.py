"""canarist.kube: the one async access layer to the Kubernetes API (see docs/kube.md).

Objects are plain JSON dicts; `ResourceKind` descriptors say where a kind lives.
"""

from .client import (
    EnsureResult,
    KubeClient,
    Obj,
    ObjectList,
    PatchType,
    RequestHook,
    RequestLog,
    RequestRecord,
    WatchEvent,
)
from .errors import (
    AlreadyExists,
    ApiError,
    Cause,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    TransportError,
)
from .events import EventRecorder
from .informer import ADDED, DELETED, MODIFIED, Informer
from .leader import LeaderElection
from .resources import ResourceKind, kind_of, lookup, register

__all__ = [
    "ADDED",
    "DELETED",
    "MODIFIED",
    "AlreadyExists",
    "ApiError",
    "Cause",
    "Conflict",
    "EnsureResult",
    "EventRecorder",
    "Forbidden",
    "Gone",
    "Informer",
    "Invalid",
    "KubeClient",
    "KubeError",
    "LeaderElection",
    "NotFound",
    "Obj",
    "ObjectList",
    "PatchType",
    "RequestHook",
    "RequestLog",
    "RequestRecord",
    "ResourceKind",
    "TransportError",
    "WatchEvent",
    "kind_of",
    "lookup",
    "register",
]
