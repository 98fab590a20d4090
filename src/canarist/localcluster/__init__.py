"""canarist.localcluster: a Kubernetes-API-compatible control plane on 127.0.0.1 (plain HTTP, in memory).

See docs/localcluster.md. ``LocalCluster`` runs on the caller's event loop; ``LocalClusterThread`` runs one
on its own loop in a background thread. ``PROVIDER_CRDS`` holds the routing providers' CRDs
(``install_provider_crds=True`` installs them all). ``cluster.pod_logs`` (a ``PodLogs``) is where
pods' log files are registered for ``GET .../pods/{name}/log``.
"""

from canarist.localcluster.cluster import LocalCluster, LocalClusterThread
from canarist.localcluster.controllers import (
    IMAGE_NOT_RUNNABLE_REASON,
    NEVER_READY_ANNOTATION,
    NEVER_READY_TAG,
    READINESS_DELAY_ANNOTATION,
)
from canarist.localcluster.crds import PROVIDER_CRDS, provider_crds
from canarist.localcluster.errors import ApiError
from canarist.localcluster.faults import Faults
from canarist.localcluster.istio import istio_crds
from canarist.localcluster.podlogs import LogSource, PodLogs

__all__ = [
    "IMAGE_NOT_RUNNABLE_REASON",
    "NEVER_READY_ANNOTATION",
    "NEVER_READY_TAG",
    "PROVIDER_CRDS",
    "READINESS_DELAY_ANNOTATION",
    "ApiError",
    "Faults",
    "LocalCluster",
    "LocalClusterThread",
    "LogSource",
    "PodLogs",
    "istio_crds",
    "provider_crds",
]
