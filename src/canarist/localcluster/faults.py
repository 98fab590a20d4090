"""Fault injection for reliability tests: latency, error answers per verb, dropped watch streams."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
FAULT_CODES = (403, 409, 429, 500, 503)


@dataclass
class ErrorRule:
    """Answer `code` to a fraction `rate` of the requests with this verb ("*" for any verb)."""

    verb: str
    code: int
    rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"verb": self.verb, "code": self.code, "rate": self.rate}


@dataclass
class Faults:
    """Mutable fault settings, read by the server on every resource request.

    Set attributes directly, call the helpers, or PUT the JSON form to
    ``/localcluster.canarist.dev/v1/faults`` (GET shows it, DELETE clears it).
    """

    latency: float = 0.0
    verb_latency: dict[str, float] = field(default_factory=dict)
    errors: list[ErrorRule] = field(default_factory=list)
    fail_next: list[tuple[str, int]] = field(default_factory=list)
    drop_watch_after_events: int | None = None
    drop_watch_after_seconds: float | None = None
    seed: int | None = None
    injected: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def add_error(self, verb: str, code: int, rate: float) -> None:
        _check(verb, code)
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate}")
        self.errors.append(ErrorRule(verb, code, rate))

    def fail(self, verb: str, code: int, times: int = 1) -> None:
        """Answer `code` to the next `times` requests with this verb (deterministic)."""
        _check(verb, code)
        self.fail_next.extend([(verb, code)] * times)

    def clear(self) -> None:
        self.latency = 0.0
        self.verb_latency.clear()
        self.errors.clear()
        self.fail_next.clear()
        self.drop_watch_after_events = None
        self.drop_watch_after_seconds = None

    def delay_for(self, verb: str) -> float:
        return self.latency + self.verb_latency.get(verb, 0.0)

    def pick_error(self, verb: str) -> int | None:
        for n, (want, code) in enumerate(self.fail_next):
            if want in (verb, "*"):
                del self.fail_next[n]
                self.injected += 1
                return code
        for rule in self.errors:
            if rule.verb in (verb, "*") and self._random.random() < rule.rate:
                self.injected += 1
                return rule.code
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "verbLatency": dict(self.verb_latency),
            "errors": [r.to_dict() for r in self.errors],
            "failNext": [{"verb": v, "code": c} for v, c in self.fail_next],
            "dropWatchAfterEvents": self.drop_watch_after_events,
            "dropWatchAfterSeconds": self.drop_watch_after_seconds,
            "injected": self.injected,
        }

    def update(self, data: dict[str, Any]) -> None:
        """Replace the settings named in `data` (the to_dict() spelling)."""
        if "seed" in data and data["seed"] is not None:
            self._random.seed(int(data["seed"]))
        if "latency" in data:
            self.latency = float(data["latency"] or 0.0)
        if "verbLatency" in data:
            self.verb_latency = {str(k): float(v) for k, v in (data["verbLatency"] or {}).items()}
        if "errors" in data:
            self.errors = []
            for rule in data["errors"] or []:
                self.add_error(str(rule["verb"]), int(rule["code"]), float(rule["rate"]))
        if "failNext" in data:
            self.fail_next = []
            for item in data["failNext"] or []:
                self.fail(str(item["verb"]), int(item["code"]), int(item.get("times", 1)))
        if "dropWatchAfterEvents" in data:
            value = data["dropWatchAfterEvents"]
            self.drop_watch_after_events = None if value is None else int(value)
        if "dropWatchAfterSeconds" in data:
            value = data["dropWatchAfterSeconds"]
            self.drop_watch_after_seconds = None if value is None else float(value)


def _check(verb: str, code: int) -> None:
    if verb != "*" and verb not in VERBS:
        raise ValueError(f"unknown verb {verb!r}; one of {', '.join(VERBS)} or *")
    if code not in FAULT_CODES:
        raise ValueError(f"unsupported fault code {code}; one of {FAULT_CODES}")


def parse_error_spec(spec: str) -> ErrorRule:
    """`VERB:CODE:RATE`, e.g. `patch:409:0.2` or `*:500:0.05`."""
    try:
        verb, code, rate = spec.split(":")
        rule = ErrorRule(verb.strip(), int(code), float(rate))
    except ValueError as exc:
        raise ValueError(f"expected VERB:CODE:RATE, got {spec!r}") from exc
    _check(rule.verb, rule.code)
    return rule


FAULT_STATUS: dict[int, tuple[str, str]] = {
    403: ("Forbidden", "forbidden: the user may not do this (localcluster fault injection)"),
    409: ("Conflict", "Operation cannot be fulfilled: injected conflict (localcluster fault injection)"),
    429: ("TooManyRequests", "Too many requests, please try again later (localcluster fault injection)"),
    500: ("InternalError", "Internal error occurred: injected failure (localcluster fault injection)"),
    503: (
        "ServiceUnavailable",
        "The server is currently unable to handle the request (localcluster fault injection)",
    ),
}
