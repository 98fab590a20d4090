"""canarist.kube: the one async access layer to the Kubernetes API (see docs/kube.md).

Objects are plain JSON dicts; `ResourceKind` descriptors say where a kind lives.
"""

from .client import (
    DEFAULT_RETRY,
    NO_RETRY,
    EnsureResult,
    KubeClient,
    Obj,
    ObjectList,
    PatchType,
    RequestHook,
    RequestLog,
    RequestRecord,
    RetryPolicy,
    WatchEvent,
    WriteFence,
)
from .crds import wait_for_crds
from .errors import (
    AlreadyExists,
    ApiError,
    ApiUnavailable,
    Cause,
    Conflict,
    CrdsMissing,
    Fenced,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotAKubeconfig,
    NotFound,
    TransportError,
    is_transient,
    not_applied,
)
from .events import EventRecorder
from .informer import ADDED, DELETED, MODIFIED, Informer
from .leader import LeaderElection
from .resources import ResourceKind, kind_of, lookup, register

__all__ = [
    "ADDED",
    "DEFAULT_RETRY",
    "DELETED",
    "MODIFIED",
    "NO_RETRY",
    "AlreadyExists",
    "ApiError",
    "ApiUnavailable",
    "Cause",
    "Conflict",
    "CrdsMissing",
    "EnsureResult",
    "EventRecorder",
    "Fenced",
    "Forbidden",
    "Gone",
    "Informer",
    "Invalid",
    "KubeClient",
    "KubeError",
    "LeaderElection",
    "NotAKubeconfig",
    "NotFound",
    "Obj",
    "ObjectList",
    "PatchType",
    "RequestHook",
    "RequestLog",
    "RequestRecord",
    "ResourceKind",
    "RetryPolicy",
    "TransportError",
    "WatchEvent",
    "WriteFence",
    "is_transient",
    "kind_of",
    "lookup",
    "not_applied",
    "register",
    "wait_for_crds",
]
