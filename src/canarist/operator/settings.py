"""Operator settings: Flagger's command-line flags, with the same names, defaults and env overrides.

Flagger is a Go program, so its manifests pass flags as ``-metrics-server=http://...``; every flag here
accepts that spelling as well as ``--metrics-server``. Settings are one explicit object passed down,
never read from globals.

>>> settings = parse_settings(["-metrics-server=http://prometheus:9090", "-enable-leader-election"])
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from canarist.api import parse_duration

#: the most shards a cluster may be split into (the RBAC Role names each shard's Lease).
MAX_SHARDS = 32

DEFAULT_SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")

# Flagger reads these from the environment; the environment wins over the flag.
ENV_OVERRIDES = {
    "SLACK_URL": "slack_url",
    "SLACK_TOKEN": "slack_token",
    "SLACK_PROXY_URL": "slack_proxy_url",
    "MSTEAMS_URL": "msteams_url",
    "MSTEAMS_PROXY_URL": "msteams_proxy_url",
    "EVENT_WEBHOOK_URL": "event_webhook",
}


@dataclass(frozen=True)
class OperatorSettings:
    kubeconfig: str = ""
    master: str = ""
    kubeconfig_qps: int = 100
    kubeconfig_burst: int = 250
    metrics_server: str = "http://prometheus:9090"
    control_loop_interval_s: float = 10.0
    log_level: str = "debug"
    log_format: str = "json"
    port: int = 8080
    slack_url: str = ""
    slack_token: str = ""
    slack_proxy_url: str = ""
    slack_user: str = "flagger"
    slack_channel: str = ""
    msteams_url: str = ""
    msteams_proxy_url: str = ""
    event_webhook: str = ""
    include_label_prefix: tuple[str, ...] = ()
    threadiness: int = 2
    namespace: str = ""
    mesh_provider: str = "istio"
    selector_labels: tuple[str, ...] = DEFAULT_SELECTOR_LABELS
    ingress_annotations_prefix: str = "nginx.ingress.kubernetes.io"
    ingress_class: str = ""
    enable_leader_election: bool = False
    leader_election_namespace: str = "kube-system"
    # Flagger holds its Lease 60 s; canarist defaults to 15 s so a standby takes over within 15 s of the
    # leader dying (a leader that stops cleanly releases the Lease and hands over at once).
    leader_election_lease_duration_s: float = 15.0
    leader_election_renew_deadline_s: float = 10.0
    leader_election_retry_period_s: float = 2.0
    enable_config_tracking: bool = True
    cluster_name: str = ""
    no_cross_namespace_refs: bool = False
    # canarist's own: the floor on spec.analysis.interval (Flagger: 10 s). Lower it for tests and the sandbox.
    min_analysis_interval_s: float = 10.0
    label_selector: str = ""
    # canarist's own: split the canaries into this many shards held by the replicas (0: one leader or none).
    shards: int = 0
    identity: str = ""  # this replica's name in Leases (default: <hostname>_<random uuid>)
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def leader_election_lease_namespace(self) -> str:
        """Flagger keeps its Lease in the watched namespace when one is set."""
        return self.namespace or self.leader_election_namespace


def parse_bool(value: str | bool) -> bool:
    """Go's flag package accepts these spellings for booleans."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "t", "true", "yes", "on"}:
        return True
    if lowered in {"0", "f", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r} (use true or false)")


def parse_seconds(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_shards(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shards: {value!r} is not a whole number") from None
    if not 0 <= count <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(
            f"--shards: {count} is out of range (0 to {MAX_SHARDS}; 0 means none)"
        )
    return count


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def add_flag(parser: argparse.ArgumentParser, name: str, **kwargs: object) -> None:
    """Register ``-name`` and ``--name`` for one flag."""
    parser.add_argument(f"-{name}", f"--{name}", **kwargs)  # type: ignore[arg-type]


def add_bool_flag(parser: argparse.ArgumentParser, name: str, default: bool, help_text: str) -> None:
    add_flag(
        parser, name, nargs="?", const=True, default=default, type=parse_bool, metavar="BOOL", help=help_text
    )


def add_operator_flags(parser: argparse.ArgumentParser) -> None:
    d = OperatorSettings()
    add_flag(parser, "kubeconfig", default=d.kubeconfig, help="path to a kubeconfig (default: in-cluster)")
    add_flag(parser, "master", default=d.master, help="API server address, overrides the kubeconfig")
    add_flag(parser, "kubeconfig-qps", type=int, default=d.kubeconfig_qps, help="accepted for compatibility")
    add_flag(
        parser, "kubeconfig-burst", type=int, default=d.kubeconfig_burst, help="accepted for compatibility"
    )
    add_flag(parser, "metrics-server", default=d.metrics_server, help="Prometheus URL for builtin metrics")
    add_flag(
        parser,
        "control-loop-interval",
        type=parse_seconds,
        default=d.control_loop_interval_s,
        help="how often canary jobs are reconciled (default 10s)",
    )
    add_flag(parser, "log-level", default=d.log_level, help="debug, info, warn, error")
    parser.add_argument(
        "-zap-encoding",
        "--zap-encoding",
        "-log-format",
        "--log-format",
        dest="log_format",
        default=d.log_format,
        choices=["json", "console"],
        help="log format: json or console",
    )
    add_bool_flag(parser, "zap-replace-globals", False, "accepted for compatibility")
    add_flag(parser, "port", type=int, default=d.port, help="port of /metrics, /healthz and /readyz")
    add_flag(parser, "slack-url", default="", help="Slack incoming webhook URL")
    add_flag(parser, "slack-token", default="", help="Slack bot token")
    add_flag(parser, "slack-proxy-url", default="", help="proxy for Slack")
    add_flag(parser, "slack-user", default=d.slack_user, help="Slack user name")
    add_flag(parser, "slack-channel", default="", help="Slack channel")
    add_flag(parser, "msteams-url", default="", help="MS Teams incoming webhook URL")
    add_flag(parser, "msteams-proxy-url", default="", help="proxy for MS Teams")
    add_flag(parser, "event-webhook", default="", help="webhook receiving every canary event")
    add_flag(
        parser, "include-label-prefix", default="", help="comma list of label prefixes copied to the primary"
    )
    add_flag(parser, "threadiness", type=int, default=d.threadiness, help="accepted for compatibility")
    add_flag(parser, "namespace", default="", help="watch only this namespace")
    add_flag(parser, "mesh-provider", default=d.mesh_provider, help="default routing provider")
    add_flag(
        parser,
        "selector-labels",
        default=",".join(d.selector_labels),
        help="labels tried, in order, to select the target's pods",
    )
    add_flag(parser, "ingress-annotations-prefix", default=d.ingress_annotations_prefix, help="NGINX prefix")
    add_flag(parser, "ingress-class", default="", help="Contour ingress class")
    add_bool_flag(parser, "enable-leader-election", False, "run with a Lease so only one replica acts")
    add_flag(parser, "leader-election-namespace", default=d.leader_election_namespace, help="Lease namespace")
    add_flag(
        parser,
        "leader-election-lease-duration",
        type=parse_seconds,
        default=d.leader_election_lease_duration_s,
        help="how long a Lease is valid without renewal (default 15s): the longest a dead leader blocks",
    )
    add_flag(
        parser,
        "leader-election-renew-deadline",
        type=parse_seconds,
        default=d.leader_election_renew_deadline_s,
        help="the leader steps down when it could not renew for this long (default 10s)",
    )
    add_flag(
        parser,
        "leader-election-retry-period",
        type=parse_seconds,
        default=d.leader_election_retry_period_s,
        help="how often candidates try to acquire or renew (default 2s)",
    )
    add_bool_flag(parser, "enable-config-tracking", True, "track ConfigMaps and Secrets used by the target")
    add_flag(parser, "cluster-name", default="", help="added to alerts as the Cluster field")
    add_bool_flag(parser, "no-cross-namespace-refs", False, "reject references to other namespaces")
    add_flag(
        parser,
        "min-analysis-interval",
        type=parse_seconds,
        default=d.min_analysis_interval_s,
        help="floor on spec.analysis.interval (default 10s, as Flagger); lower it for tests",
    )
    add_flag(parser, "label-selector", default="", help="only handle canaries matching this label selector")
    add_flag(
        parser,
        "shards",
        type=parse_shards,
        default=d.shards,
        help=f"split the canaries into N shards (1..{MAX_SHARDS}) shared by the replicas, one Lease each, "
        "in the leader election namespace and with its timings (default 0: no shards)",
    )
    add_flag(parser, "identity", default="", help="this replica's identity in Leases (default hostname_uuid)")


def settings_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> OperatorSettings:
    env = os.environ if environ is None else environ
    values: dict[str, object] = {
        "kubeconfig": args.kubeconfig,
        "master": args.master,
        "kubeconfig_qps": args.kubeconfig_qps,
        "kubeconfig_burst": args.kubeconfig_burst,
        "metrics_server": args.metrics_server,
        "control_loop_interval_s": args.control_loop_interval,
        "log_level": args.log_level,
        "log_format": args.log_format,
        "port": args.port,
        "slack_url": args.slack_url,
        "slack_token": args.slack_token,
        "slack_proxy_url": args.slack_proxy_url,
        "slack_user": args.slack_user,
        "slack_channel": args.slack_channel,
        "msteams_url": args.msteams_url,
        "msteams_proxy_url": args.msteams_proxy_url,
        "event_webhook": args.event_webhook,
        "include_label_prefix": _comma_list(args.include_label_prefix),
        "threadiness": args.threadiness,
        "namespace": args.namespace,
        "mesh_provider": args.mesh_provider,
        "selector_labels": _comma_list(args.selector_labels),
        "ingress_annotations_prefix": args.ingress_annotations_prefix,
        "ingress_class": args.ingress_class,
        "enable_leader_election": args.enable_leader_election,
        "leader_election_namespace": args.leader_election_namespace,
        "leader_election_lease_duration_s": args.leader_election_lease_duration,
        "leader_election_renew_deadline_s": args.leader_election_renew_deadline,
        "leader_election_retry_period_s": args.leader_election_retry_period,
        "enable_config_tracking": args.enable_config_tracking,
        "cluster_name": args.cluster_name,
        "no_cross_namespace_refs": args.no_cross_namespace_refs,
        "min_analysis_interval_s": args.min_analysis_interval,
        "label_selector": args.label_selector,
        "shards": args.shards,
        "identity": args.identity,
    }
    for env_name, attribute in ENV_OVERRIDES.items():
        if env.get(env_name):
            values[attribute] = env[env_name]
    return OperatorSettings(**values)  # type: ignore[arg-type]


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> OperatorSettings:
    parser = argparse.ArgumentParser(prog="canarist operator", allow_abbrev=False)
    add_operator_flags(parser)
    return settings_from_args(parser.parse_args(list(argv)), environ)
