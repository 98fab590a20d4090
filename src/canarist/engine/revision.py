"""Has the target or its configuration changed since the last run?

Flagger's rules: docs/flagger-parity.md#revision-and-config-tracking.

>>> target_changed("abc", last_applied="xyz", last_promoted="abc")   # reverted to the promoted spec
False
"""

from __future__ import annotations

from collections.abc import Mapping


def target_changed(revision: str, *, last_applied: str, last_promoted: str) -> bool:
    """True when there is nothing applied yet, or the revision is neither the applied nor the promoted one.

    Going back to the promoted revision (a manual rollback) is not a new revision.
    """
    if not last_applied:
        return True
    return revision not in (last_applied, last_promoted)


def configs_changed(current: Mapping[str, str], tracked: Mapping[str, str] | None) -> bool:
    """True when a tracked ConfigMap/Secret was added, removed or changed its checksum."""
    tracked = tracked or {}
    if len(current) != len(tracked):
        return True
    return any(tracked.get(name) != checksum for name, checksum in current.items())


def revision_changed(
    revision: str,
    configs: Mapping[str, str],
    *,
    last_applied: str,
    last_promoted: str,
    tracked: Mapping[str, str] | None,
) -> bool:
    """The target or its tracked configs changed: a new revision to analyse."""
    return target_changed(revision, last_applied=last_applied, last_promoted=last_promoted) or (
        configs_changed(configs, tracked)
    )
