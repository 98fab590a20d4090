"""Third-party extensions through Python entry points (``importlib.metadata``).

A distribution adds a MetricTemplate ``provider.type`` or an AlertProvider ``type`` by declaring an entry
point in one of two groups (the entry point's name is the type):

- ``canarist.metric_providers``: a factory ``(ProviderSpec, secret: Mapping[str, str] | None) ->
  MetricProvider`` (see :mod:`canarist.metrics.providers.registry`);
- ``canarist.notifiers``: a builder ``(NotifierConfig) -> Notifier`` (see :mod:`canarist.notify.factory`).

One :class:`PluginGroup` per group loads its entry points once, lazily, at the first lookup of a type the
builtin registry does not know (never at import). Each plugin loaded is logged on one line. A broken plugin
(its module does not import, its object is not callable, its name is a builtin type, or two distributions
claim its name) is logged as one warning and remembered: :meth:`PluginGroup.error` gives the text the
registries turn into the error of the checks (or alerts) that use that type. Nothing here raises.
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass

__all__ = [
    "METRIC_PROVIDERS_GROUP",
    "NOTIFIERS_GROUP",
    "Plugin",
    "PluginGroup",
    "installed_names",
]

log = logging.getLogger("canarist.plugins")

METRIC_PROVIDERS_GROUP = "canarist.metric_providers"
NOTIFIERS_GROUP = "canarist.notifiers"


@dataclass(frozen=True)
class Plugin:
    """One loaded entry point: its name (the type), its distribution and the callable it names."""

    name: str
    dist: str
    value: str
    target: Callable[..., object]


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    try:
        return list(importlib.metadata.entry_points(group=group))
    except Exception as err:  # malformed metadata of some installed distribution
        log.warning("cannot list the %s entry points: %s: %s", group, type(err).__name__, err)
        return []


def _dist_name(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return str(name) if name else "an unknown distribution"


def installed_names(group: str) -> set[str]:
    """The names of the entry points installed in ``group``, without importing any of them."""
    return {entry_point.name for entry_point in _entry_points(group)}


class PluginGroup:
    """The plugins of one entry point group.

    ``what`` names a plugin in messages (``metric provider``, ``notifier``); ``builtins`` returns the
    builtin type names at load time (a plugin with one of those names is ignored: builtins win).
    """

    def __init__(self, group: str, what: str, builtins: Callable[[], Collection[str]]) -> None:
        self.group = group
        self.what = what
        self._builtins = builtins
        self._lock = threading.Lock()
        self._plugins: dict[str, Plugin] | None = None
        self._errors: dict[str, str] = {}

    def get(self, name: str) -> Plugin | None:
        """The plugin for type ``name`` (loading the group on the first call), None without a usable one."""
        return self._load().get(name)

    def error(self, name: str) -> str | None:
        """Why a plugin named ``name`` is installed but unusable (None when there is no such problem)."""
        self._load()
        return self._errors.get(name)

    def names(self) -> list[str]:
        """The types the usable plugins add."""
        return sorted(self._load())

    def _load(self) -> dict[str, Plugin]:
        with self._lock:
            if self._plugins is None:
                self._plugins = self._load_all()
            return self._plugins

    def _load_all(self) -> dict[str, Plugin]:
        builtins = set(self._builtins())
        by_name: dict[str, list[importlib.metadata.EntryPoint]] = {}
        for entry_point in _entry_points(self.group):
            by_name.setdefault(entry_point.name, []).append(entry_point)
        plugins: dict[str, Plugin] = {}
        for name, entry_points in by_name.items():
            dists = sorted({_dist_name(entry_point) for entry_point in entry_points})
            label = f"{self.what} plugin {name} from {', '.join(dists)}"
            if name in builtins:
                log.warning("%s ignored: %s is a builtin %s type", label, name, self.what)
                continue
            if len(dists) > 1:
                self._broken(name, f"{label} cannot be loaded: {len(dists)} distributions provide {name}")
                continue
            entry_point = entry_points[0]
            try:
                target = entry_point.load()
            except Exception as err:
                self._broken(
                    name, f"{label} cannot be loaded ({entry_point.value}): {type(err).__name__}: {err}"
                )
                continue
            if not callable(target):
                self._broken(
                    name,
                    f"{label} cannot be loaded: {entry_point.value} is a {type(target).__name__}, not a callable",
                )
                continue
            plugins[name] = Plugin(name, dists[0], entry_point.value, target)
            log.info("%s loaded", label)
        return plugins

    def _broken(self, name: str, message: str) -> None:
        log.warning("%s", message)
        self._errors[name] = message
