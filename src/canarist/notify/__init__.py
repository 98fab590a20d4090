"""canarist.notify: Slack, MS Teams, Discord, Rocket.Chat and Google Chat notifiers with Flagger's payloads.

>>> notifier = notifier_for_provider(alert_provider, secret_data)      # or global_notifier(...)
>>> await notify_safely(notifier, "podinfo", "test", "New revision detected", fields, "info")
>>> outbox.submit("alert/on-call.flagger", send)       # off the caller's path (canarist.notify.outbox)
"""

from canarist.notify.alerts import (
    AlertDelivery,
    PlannedAlert,
    alert_fields,
    notify_safely,
    plan_alert,
    send_alert,
    traffic_routing,
)
from canarist.notify.base import (
    NOTIFY_TIMEOUT_S,
    SEVERITIES,
    Field,
    NopNotifier,
    Notifier,
    NotifyError,
    post_message,
    severity_matches,
)
from canarist.notify.discord import DiscordNotifier
from canarist.notify.events import submit_event
from canarist.notify.factory import (
    REGISTRY,
    NotifierConfig,
    build_notifier,
    decode_secret_data,
    global_notifier,
    global_notifier_from_settings,
    notifier_for_provider,
    register,
)
from canarist.notify.gchat import GChatNotifier
from canarist.notify.msteams import MSTeamsNotifier
from canarist.notify.outbox import Delivery, Outbox, SendResult, destination_label
from canarist.notify.rocket import RocketNotifier
from canarist.notify.slack import SlackNotifier, slack_body

__all__ = [
    "NOTIFY_TIMEOUT_S",
    "REGISTRY",
    "SEVERITIES",
    "AlertDelivery",
    "Delivery",
    "DiscordNotifier",
    "Field",
    "GChatNotifier",
    "MSTeamsNotifier",
    "NopNotifier",
    "Notifier",
    "NotifierConfig",
    "NotifyError",
    "Outbox",
    "PlannedAlert",
    "RocketNotifier",
    "SendResult",
    "SlackNotifier",
    "alert_fields",
    "build_notifier",
    "decode_secret_data",
    "destination_label",
    "global_notifier",
    "global_notifier_from_settings",
    "notifier_for_provider",
    "notify_safely",
    "plan_alert",
    "post_message",
    "register",
    "send_alert",
    "severity_matches",
    "slack_body",
    "submit_event",
    "traffic_routing",
]
