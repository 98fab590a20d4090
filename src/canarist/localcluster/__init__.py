"""canarist.localcluster: a Kubernetes-API-compatible control plane on 127.0.0.1 (plain HTTP, in memory).

See docs/localcluster.md. ``LocalCluster`` runs on the caller's event loop; ``LocalClusterThread`` runs one
on its own loop in a background thread. ``PROVIDER_CRDS`` holds the routing providers' CRDs
(``install_provider_crds=True`` installs them all).
"""

from canarist.localcluster.cluster import LocalCluster, LocalClusterThread
from canarist.localcluster.controllers import (
    NEVER_READY_ANNOTATION,
    NEVER_READY_TAG,
    READINESS_DELAY_ANNOTATION,
)
from canarist.localcluster.crds import PROVIDER_CRDS, provider_crds
from canarist.localcluster.errors import ApiError
from canarist.localcluster.faults import Faults
from canarist.localcluster.istio import istio_crds

__all__ = [
    "NEVER_READY_ANNOTATION",
    "NEVER_READY_TAG",
    "PROVIDER_CRDS",
    "READINESS_DELAY_ANNOTATION",
    "ApiError",
    "Faults",
    "LocalCluster",
    "LocalClusterThread",
    "istio_crds",
    "provider_crds",
]
