"""Building notifiers: a registry keyed by AlertProvider ``type``, providers + Secrets, the global notifier.

Plugins: a type the registry does not know is looked up among the ``canarist.notifiers`` entry points
(:mod:`canarist.plugins`, loaded once at the first such lookup). An entry point names a :data:`Builder`
(``NotifierConfig -> Notifier``), the shape of the builtin ones. Builtin and registered types win. A broken
plugin, a builder that raises, or a notifier whose ``post`` raises something other than
:class:`NotifyError` gives a :class:`NotifyError` (the alert fails and is logged), never a crash.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from canarist.notify.base import NopNotifier, Notifier, NotifyError
from canarist.notify.discord import DiscordNotifier
from canarist.notify.gchat import GChatNotifier
from canarist.notify.msteams import MSTeamsNotifier
from canarist.notify.rocket import RocketNotifier
from canarist.notify.slack import SlackNotifier
from canarist.plugins import NOTIFIERS_GROUP, Plugin, PluginGroup

if TYPE_CHECKING:
    from canarist.api import AlertProvider
    from canarist.notify.base import Field

log = logging.getLogger("canarist.notify")

DEFAULT_USERNAME = "flagger"
DEFAULT_CHANNEL = "general"
GLOBAL_ENV_OVERRIDES = ("SLACK_URL", "SLACK_TOKEN", "SLACK_PROXY_URL", "MSTEAMS_URL", "MSTEAMS_PROXY_URL")


@dataclass(frozen=True)
class NotifierConfig:
    url: str
    token: str = ""
    proxy: str = ""
    username: str = DEFAULT_USERNAME
    channel: str = DEFAULT_CHANNEL


Builder = Callable[[NotifierConfig], Notifier]

REGISTRY: dict[str, Builder] = {
    "slack": lambda c: SlackNotifier(c.url, c.username, c.channel, token=c.token, proxy=c.proxy),
    "discord": lambda c: DiscordNotifier(c.url, c.username, c.channel, proxy=c.proxy),
    "rocket": lambda c: RocketNotifier(c.url, c.username, c.channel, proxy=c.proxy),
    "msteams": lambda c: MSTeamsNotifier(c.url, proxy=c.proxy),
    "gchat": lambda c: GChatNotifier(c.url, proxy=c.proxy),
}


#: the ``canarist.notifiers`` entry points (builtin and registered types win over them)
PLUGINS: Final = PluginGroup(NOTIFIERS_GROUP, "notifier", lambda: set(REGISTRY))


class _PluginNotifier:
    """A plugin's notifier, with any exception other than :class:`NotifyError` turned into one."""

    def __init__(self, plugin: Plugin, inner: Any) -> None:
        self._label = f"notifier plugin {plugin.name} from {plugin.dist}"
        self._inner = inner

    async def post(
        self, workload: str, namespace: str, message: str, fields: Sequence[Field], severity: str
    ) -> None:
        try:
            await self._inner.post(workload, namespace, message, fields, severity)
        except NotifyError:
            raise
        except Exception as err:
            raise NotifyError(f"{self._label} failed: {type(err).__name__}: {err}") from err


def _from_plugin(plugin: Plugin, config: NotifierConfig) -> Notifier:
    label = f"notifier plugin {plugin.name} from {plugin.dist}"
    try:
        built = plugin.target(config)
    except NotifyError:
        raise
    except Exception as err:
        raise NotifyError(f"{label} failed to build a notifier: {type(err).__name__}: {err}") from err
    if not callable(getattr(built, "post", None)):
        raise NotifyError(f"{label} built a {type(built).__name__} without a post method")
    return _PluginNotifier(plugin, built)


def register(provider_type: str, builder: Builder) -> None:
    """Add a notifier type (one module + one line here is all a new service needs)."""
    REGISTRY[provider_type] = builder


def build_notifier(provider_type: str, config: NotifierConfig) -> Notifier:
    """The notifier for ``provider_type``; a no-op when there is no URL. Raises :class:`NotifyError`."""
    if not config.url:
        return NopNotifier()
    builder = REGISTRY.get(provider_type)
    if builder is None and provider_type:
        plugin = PLUGINS.get(provider_type)
        if plugin is not None:
            return _from_plugin(plugin, config)
        error = PLUGINS.error(provider_type)
        if error is not None:
            raise NotifyError(error)
    if builder is None:
        raise NotifyError(f"provider {provider_type} not supported")
    return builder(config)


def decode_secret_data(secret: Mapping[str, Any]) -> dict[str, str]:
    """A core/v1 Secret's ``data`` (base64) merged with ``stringData``, as text."""
    result: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            result[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as err:
            raise NotifyError(f"secret key {key} is not valid base64 text: {err}") from err
    for key, value in (secret.get("stringData") or {}).items():
        result[str(key)] = str(value)
    return result


def notifier_for_provider(provider: AlertProvider, secret_data: Mapping[str, str] | None = None) -> Notifier:
    """The notifier an AlertProvider describes.

    With ``spec.secretRef`` the resolved Secret data must be passed: its ``address`` overrides
    ``spec.address`` (and is required) and its optional ``token`` becomes Slack's bearer token.
    """
    spec = provider.spec
    url = spec.address
    token = ""
    if spec.secret_ref is not None:
        name = f"{provider.metadata.name}.{provider.metadata.namespace}"
        if secret_data is None:
            raise NotifyError(f"alert provider {name} secret {spec.secret_ref.name} not found")
        if not secret_data.get("address"):
            raise NotifyError(
                f"alert provider {name} secret {spec.secret_ref.name} does not contain an address"
            )
        url = secret_data["address"]
        token = secret_data.get("token", "")
    config = NotifierConfig(
        url=url,
        token=token,
        proxy=spec.proxy,
        username=spec.username or DEFAULT_USERNAME,
        channel=spec.channel or DEFAULT_CHANNEL,
    )
    return build_notifier(spec.type, config)


class GlobalNotifierSettings(Protocol):
    """The operator settings the global notifier reads (``canarist.operator.settings.OperatorSettings``)."""

    @property
    def slack_url(self) -> str: ...
    @property
    def slack_token(self) -> str: ...
    @property
    def slack_proxy_url(self) -> str: ...
    @property
    def slack_user(self) -> str: ...
    @property
    def slack_channel(self) -> str: ...
    @property
    def msteams_url(self) -> str: ...
    @property
    def msteams_proxy_url(self) -> str: ...


def global_notifier(
    slack_url: str = "",
    slack_token: str = "",
    slack_proxy_url: str = "",
    slack_user: str = DEFAULT_USERNAME,
    slack_channel: str = "",
    msteams_url: str = "",
    msteams_proxy_url: str = "",
    environ: Mapping[str, str] | None = None,
) -> Notifier:
    """The notifier for canaries without ``analysis.alerts``, from the ``--slack-*``/``--msteams-*`` flags.

    The environment wins over the flags (``SLACK_URL``, ``SLACK_TOKEN``, ``SLACK_PROXY_URL``,
    ``MSTEAMS_URL``, ``MSTEAMS_PROXY_URL``). An MS Teams URL selects MS Teams. Slack needs a channel: without
    one (or without any URL) this is a no-op. A bad configuration is logged and also gives a no-op.
    """
    env = os.environ if environ is None else environ
    slack_url = env.get("SLACK_URL") or slack_url
    slack_token = env.get("SLACK_TOKEN") or slack_token
    slack_proxy_url = env.get("SLACK_PROXY_URL") or slack_proxy_url
    msteams_url = env.get("MSTEAMS_URL") or msteams_url
    msteams_proxy_url = env.get("MSTEAMS_PROXY_URL") or msteams_proxy_url
    try:
        if msteams_url:
            notifier = build_notifier("msteams", NotifierConfig(url=msteams_url, proxy=msteams_proxy_url))
        elif slack_url:
            if not slack_channel:
                log.warning("Slack notifications disabled: --slack-channel is empty")
                return NopNotifier()
            notifier = build_notifier(
                "slack",
                NotifierConfig(
                    url=slack_url,
                    token=slack_token,
                    proxy=slack_proxy_url,
                    username=slack_user or DEFAULT_USERNAME,
                    channel=slack_channel,
                ),
            )
        else:
            return NopNotifier()
    except NotifyError as err:
        log.error("Notifier %s", err)
        return NopNotifier()
    log.info("Notifications enabled for %s", (msteams_url or slack_url)[:30])
    return notifier


def global_notifier_from_settings(
    settings: GlobalNotifierSettings, environ: Mapping[str, str] | None = None
) -> Notifier:
    return global_notifier(
        slack_url=settings.slack_url,
        slack_token=settings.slack_token,
        slack_proxy_url=settings.slack_proxy_url,
        slack_user=settings.slack_user,
        slack_channel=settings.slack_channel,
        msteams_url=settings.msteams_url,
        msteams_proxy_url=settings.msteams_proxy_url,
        environ=environ,
    )
