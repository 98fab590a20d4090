"""The operator's Prometheus metrics: Flagger's `flagger_*` series (same names, types and labels, so existing
dashboards and alerts keep working) plus canarist's own `canarist_*` series.

Each operator owns its registry, so two operators in one process (tests, the sandbox) never collide.
"""

from __future__ import annotations

from prometheus_client import (
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest

from canarist import __version__

STATUS_PROGRESSING = 0
STATUS_OK = 1
STATUS_FAILED = 2


def status_value(phase: str) -> int:
    """Flagger's `flagger_canary_status`: 0 while progressing, 2 when failed, 1 for anything else."""
    if phase == "Progressing":
        return STATUS_PROGRESSING
    if phase == "Failed":
        return STATUS_FAILED
    return STATUS_OK


class Telemetry:
    def __init__(self, mesh_provider: str) -> None:
        # Flagger's counters have no `_created` companions; keep the exposition identical.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(PROCESS_COLLECTOR)
        self.registry.register(PLATFORM_COLLECTOR)
        r = self.registry
        self.info = Gauge(
            "flagger_info",
            "Flagger version and mesh provider information",
            ["version", "mesh_provider"],
            registry=r,
        )
        self.info.labels(version=__version__, mesh_provider=mesh_provider).set(1)
        self.canary_total = Gauge(
            "flagger_canary_total", "Total number of canary object", ["namespace"], registry=r
        )
        self.status = Gauge(
            "flagger_canary_status",
            "Last canary analysis result (0 progressing, 1 ok, 2 failed)",
            ["name", "namespace"],
            registry=r,
        )
        self.weight = Gauge(
            "flagger_canary_weight",
            "The virtual service destination weight current value",
            ["workload", "namespace"],
            registry=r,
        )
        self.duration = Histogram(
            "flagger_canary_duration_seconds",
            "Seconds spent performing canary analysis.",
            ["name", "namespace"],
            registry=r,
        )
        self.metric_analysis = Gauge(
            "flagger_canary_metric_analysis",
            "Last canary analysis metric result",
            ["name", "namespace", "metric"],
            registry=r,
        )
        labels = ["name", "namespace", "deployment_strategy", "analysis_status"]
        # prometheus_client appends `_total` to counters itself.
        self.successes = Counter(
            "flagger_canary_successes", "Total number of canary successful promotions", labels, registry=r
        )
        self.failures = Counter(
            "flagger_canary_failures", "Total number of canary failed promotions", labels, registry=r
        )
        self.reconcile_seconds = Histogram(
            "canarist_reconcile_duration_seconds",
            "Wall time of one canary tick, observation to last write",
            ["namespace"],
            registry=r,
        )
        self.api_requests = Counter(
            "canarist_api_requests",
            "Kubernetes API requests made by the operator",
            ["verb", "resource", "code"],
            registry=r,
        )
        self.webhook_calls = Counter(
            "canarist_webhook_calls", "Webhook calls by type and outcome", ["type", "outcome"], registry=r
        )
        self.notifications = Counter(
            "canarist_notifications",
            "Notifications sent, by provider and outcome",
            ["provider", "outcome"],
            registry=r,
        )
        self.notifications_dropped = Counter(
            "canarist_notifications_dropped",
            "Notifications (alerts, event webhooks) dropped: queue full, or not sent at shutdown",
            ["kind", "destination"],
            registry=r,
        )
        self.leader = Gauge("canarist_leader", "1 while this replica holds the leader Lease", registry=r)
        self.ticks_skipped = Counter(
            "canarist_ticks_skipped",
            "Ticks of canaries at rest skipped because nothing they read had changed",
            registry=r,
        )
        self.shards = Gauge(
            "canarist_shards", "How many shards the canaries are split into (0: none)", registry=r
        )
        self.shard_held = Gauge(
            "canarist_shard_held",
            "1 while this replica holds the shard's Lease and runs its canaries",
            ["shard"],
            registry=r,
        )

    def set_weights(self, target: str, namespace: str, primary: int, canary: int) -> None:
        self.weight.labels(workload=f"{target}-primary", namespace=namespace).set(primary)
        self.weight.labels(workload=target, namespace=namespace).set(canary)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
