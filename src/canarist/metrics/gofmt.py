"""Go's ``fmt``/``time`` renderings that appear in Flagger's metric messages."""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = ["go_duration_ms", "go_float", "go_percent2"]


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64 (``strconv`` ``'g'`` with the shortest precision).

    The digits are the shortest that round-trip; the exponent form is used when the decimal exponent is
    < -4 or >= 6, so ``99``, ``99.5``, ``100000`` but ``1e+06`` and ``1e-05``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digit_tuple)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    count = len(digits)
    point = count + exponent  # position of the decimal point from the left of ``digits``
    exp = point - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if count > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= count:
        return f"{prefix}{digits}{'0' * (point - count)}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def go_percent2(value: float) -> str:
    """Go's ``%.2f``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.2f}"


def go_duration_ms(milliseconds: int) -> str:
    """``time.Duration(ms) * time.Millisecond`` formatted by Go's ``Duration.String``.

    ``0`` → ``0s``, ``500`` → ``500ms``, ``1515`` → ``1.515s``, ``61500`` → ``1m1.5s``, ``3600000`` →
    ``1h0m0s``.
    """
    if milliseconds == 0:
        return "0s"
    sign = "-" if milliseconds < 0 else ""
    ms = abs(milliseconds)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = str(seconds)
    if millis:
        text += "." + f"{millis:03d}".rstrip("0")
    text += "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text
