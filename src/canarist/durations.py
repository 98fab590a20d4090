"""Go duration strings (``time.ParseDuration``) to seconds and back.

Dependency-free (like `canarist.podnames`): the operator's API and the local control plane both use it.
"""

from __future__ import annotations

import math
import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
# the largest Go duration, about 292 years
_MAX_SECONDS = (2**63 - 1) / 1e9


def parse_duration(text: str) -> float:
    """Parse a Go duration such as ``30s``, ``1m30s``, ``1.5h`` or ``-2ms`` into seconds.

    Raises ``ValueError`` with a message naming the input when it is not a valid duration.
    ``"0"`` is accepted (as in Go); any other number needs a unit.
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: not a string")
    original = text
    sign = 1.0
    if text[:1] in "+-" and text:
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'invalid duration "{original}"')
    total = 0.0
    position = 0
    while position < len(text):
        match = _PART.match(text, position)
        if match is None or match.group(1) in ("", "."):
            if match is None and re.match(r"[0-9.]+$", text[position:]):
                raise ValueError(f'invalid duration "{original}": missing unit (one of ns, us, ms, s, m, h)')
            raise ValueError(f'invalid duration "{original}": expected a number and a unit like 30s or 1m')
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not math.isfinite(total) or total > _MAX_SECONDS:
        raise ValueError(f'invalid duration "{original}": out of range')
    return sign * total


def format_seconds(seconds: float) -> str:
    """A compact Go-style rendering of whole or fractional seconds, e.g. ``60`` → ``1m0s``."""
    if seconds == int(seconds):
        whole = int(seconds)
        hours, rest = divmod(whole, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours}h{minutes}m{secs}s"
        if minutes:
            return f"{minutes}m{secs}s"
        return f"{secs}s"
    return f"{seconds:g}s"
