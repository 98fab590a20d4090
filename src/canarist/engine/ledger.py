"""The decision ledger (``status.ledger``): every check of the current run, what came back, and the end.

The engine records each answered :class:`Check` as an :class:`Entry` (the step in force, the outcome, the
evidence), keeps the last :data:`MAX_ENTRIES` of them and a :class:`Summary` per check, and says how the run
ended (:class:`End`, with the evidence of the last failed check). The ledger is part of the status draft:
it is written with the status writes the engine makes anyway, so it survives a restart and ``kubectl get
canary -o yaml`` shows it (docs/engine.md, "The ledger").

>>> ledger = Ledger.of(canary.status.ledger)
>>> ledger.record(Check("metric", "request-success-rate"), result, at=now, weight=10, iteration=0)
True
>>> evidence_line(ledger.entries[-1])
'request-success-rate 71.2% < 99%'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from canarist.api.canary import CanaryLedger, LedgerEnd, LedgerEntry, LedgerSummary
from canarist.engine.model import Check, CheckResult, ResultKind

#: entries kept in ``status.ledger.entries`` (older ones are counted in ``dropped``).
MAX_ENTRIES = 50
#: summaries kept (one per check of the spec; a bound for a spec that keeps changing names mid-run).
MAX_SUMMARIES = 50
#: bounds of the recorded texts, in characters (the body excerpt in UTF-8 bytes).
MAX_QUERY = 1024
MAX_MESSAGE = 512
MAX_URL = 512
MAX_BODY_BYTES = 256

#: webhooks that are polled until they change their answer: an unchanged answer at the same step is
#: recorded once (a closed gate held for an hour is one entry, and no status write per interval).
POLLED_TYPES = frozenset({"confirm-rollout", "confirm-traffic-increase", "confirm-promotion", "rollback"})

Verdict = Literal["pass", "fail"]

#: the status spelling of each outcome.
RESULT_NAMES: dict[ResultKind, str] = {"value": "value", "no_data": "noData", "error": "error"}


def rfc3339(moment: datetime) -> str:
    """Kubernetes' metav1.Time text: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime | None:
    """A status or event timestamp (UTC when it has no zone), or None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- bounds


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in ``…`` when it was cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def cut_bytes(text: str, limit: int = MAX_BODY_BYTES) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes (never half a character), ending in ``…`` when it was cut."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= limit:
        return text
    return raw[: max(0, limit - 3)].decode("utf-8", errors="ignore") + "…"


def without_credentials(text: str) -> str:
    """``text`` (a URL, or words and URLs such as ``prometheus http://…``) without any ``user:password@``
    part: an address may carry one, the ledger never does."""
    return " ".join(_url_without_credentials(word) for word in text.split(" ")) if "@" in text else text


def _url_without_credentials(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _significant(value: float | None) -> float | None:
    """A p-value to four significant digits (fixed decimals would turn a tiny one into 0)."""
    finite = None if value is None or math.isnan(value) or math.isinf(value) else value
    return float(f"{finite:.4g}") if finite is not None else None


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those are recorded as no value (the message says what it was)."""
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(float(value), 6)


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Entry:
    """One answered check (``status.ledger.entries[]``)."""

    at: str
    check: str
    kind: str  # metric | webhook
    type: str = ""  # the webhook type as written ("" for an untyped rollout hook)
    weight: int = 0
    iteration: int = 0
    result: str = "value"  # value | noData | error
    verdict: str = "pass"  # pass | fail
    value: float | None = None
    unit: str = ""
    min: float | None = None
    max: float | None = None
    query: str = ""
    provider: str = ""
    url: str = ""
    http_status: int | None = None
    body: str = ""
    duration_seconds: float | None = None
    message: str = ""
    #: the answer of a dry-run metric (``dryRun: true``): recorded, but it never fails nor holds the run
    dry_run: bool = False
    #: a comparison with the primary (``compare``): the primary's value, the test, its p-value, the effect
    primary_value: float | None = None
    test: str = ""
    p_value: float | None = None
    effect: float | None = None

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    @property
    def decisive(self) -> bool:
        """A failure that counted for the run (a dry-run metric's failure never does)."""
        return self.failed and not self.dry_run

    @classmethod
    def of(cls, model: LedgerEntry) -> Entry:
        return cls(
            at=model.at or "",
            check=model.check,
            kind=model.kind,
            type=model.type,
            weight=model.weight,
            iteration=model.iteration,
            result=model.result or "value",
            verdict=model.verdict or "pass",
            value=model.value,
            unit=model.unit,
            min=model.min,
            max=model.max,
            query=model.query,
            provider=model.provider,
            url=model.url,
            http_status=model.http_status,
            body=model.body,
            duration_seconds=model.duration_seconds,
            message=model.message,
            dry_run=model.dry_run,
            primary_value=model.primary_value,
            test=model.test,
            p_value=model.p_value,
            effect=model.effect,
        )

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at,
            "check": self.check,
            "kind": self.kind,
            "weight": self.weight,
            "iteration": self.iteration,
            "result": self.result,
            "verdict": self.verdict,
        }
        optional: dict[str, Any] = {
            "type": self.type,
            "value": self.value,
            "unit": self.unit,
            "min": self.min,
            "max": self.max,
            "query": self.query,
            "provider": self.provider,
            "url": self.url,
            "httpStatus": self.http_status,
            "body": self.body,
            "durationSeconds": self.duration_seconds,
            "message": self.message,
            "primaryValue": self.primary_value,
            "test": self.test,
            "pValue": self.p_value,
            "effect": self.effect,
        }
        out.update({k: v for k, v in optional.items() if v is not None and v != ""})
        if self.dry_run:
            out["dryRun"] = True
        return out

    def same_answer(self, other: Entry) -> bool:
        """The same check gave the same answer at the same step (only the time differs)."""
        return replace(self, at="", duration_seconds=None) == replace(other, at="", duration_seconds=None)


def entry_of(check: Check, result: CheckResult, *, at: str, weight: int, iteration: int) -> Entry:
    """The ledger entry of one answer (texts bounded, no credentials, no NaN)."""
    message = "" if result.passed else result.message
    return Entry(
        at=at,
        check=check.name,
        kind=check.kind,
        type=check.webhook_type,
        weight=weight,
        iteration=iteration,
        result=RESULT_NAMES[result.outcome],
        verdict="pass" if result.passed else "fail",
        value=_finite(result.value) if result.outcome == "value" else None,
        unit=result.unit,
        min=_finite(result.threshold_min),
        max=_finite(result.threshold_max),
        query=cut(result.query.strip(), MAX_QUERY),
        provider=cut(without_credentials(result.provider), MAX_URL),
        url=cut(without_credentials(result.url), MAX_URL),
        http_status=result.http_status,
        body=cut_bytes(result.body),
        duration_seconds=round(result.duration_s, 3) if result.duration_s is not None else None,
        message=cut(message, MAX_MESSAGE),
        primary_value=_finite(result.primary_value),
        test=cut(result.test, MAX_MESSAGE),
        p_value=_significant(result.p_value),
        effect=_finite(result.effect),
    )


@dataclass(frozen=True)
class Summary:
    """Per check of the run (``status.ledger.summary[]``)."""

    check: str
    kind: str
    type: str = ""
    count: int = 0
    failures: int = 0
    no_data: int = 0
    errors: int = 0
    last_at: str = ""
    last_result: str = ""
    last_verdict: str = ""
    last_value: float | None = None
    unit: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.type, self.check)

    @classmethod
    def of(cls, model: LedgerSummary) -> Summary:
        return cls(
            check=model.check,
            kind=model.kind,
            type=model.type,
            count=model.count,
            failures=model.failures,
            no_data=model.no_data,
            errors=model.errors,
            last_at=model.last_at or "",
            last_result=model.last_result,
            last_verdict=model.last_verdict,
            last_value=model.last_value,
            unit=model.unit,
        )

    def add(self, entry: Entry) -> Summary:
        return replace(
            self,
            count=self.count + 1,
            failures=self.failures + (1 if entry.failed else 0),
            no_data=self.no_data + (1 if entry.result == "noData" else 0),
            errors=self.errors + (1 if entry.result == "error" else 0),
            last_at=entry.at,
            last_result=entry.result,
            last_verdict=entry.verdict,
            last_value=entry.value if entry.value is not None else self.last_value,
            unit=entry.unit or self.unit,
        )

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "kind": self.kind,
            "count": self.count,
            "failures": self.failures,
            "noData": self.no_data,
            "errors": self.errors,
        }
        optional: dict[str, Any] = {
            "type": self.type,
            "lastAt": self.last_at,
            "lastResult": self.last_result,
            "lastVerdict": self.last_verdict,
            "lastValue": self.last_value,
            "unit": self.unit,
        }
        out.update({k: v for k, v in optional.items() if v is not None and v != ""})
        return out


@dataclass(frozen=True)
class End:
    """How the run ended (``status.ledger.end``)."""

    at: str
    phase: str
    reason: str
    failed_checks: int = 0
    threshold: int = 0
    evidence: Entry | None = None
    #: the typed cause (FailedChecks, NoData, GateClosed…, docs/engine.md "Waits and the progress deadline")
    cause: str = ""
    #: when the wait that ran out started (an expired wait only)
    since: str = ""

    @classmethod
    def of(cls, model: LedgerEnd) -> End:
        return cls(
            at=model.at or "",
            phase=model.phase,
            reason=model.reason,
            failed_checks=model.failed_checks,
            threshold=model.threshold,
            evidence=Entry.of(model.evidence) if model.evidence is not None else None,
            cause=model.cause,
            since=model.since or "",
        )

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "at": self.at,
            "phase": self.phase,
            "reason": self.reason,
            "failedChecks": self.failed_checks,
            "threshold": self.threshold,
        }
        if self.cause:
            out["cause"] = self.cause
        if self.since:
            out["since"] = self.since
        if self.evidence is not None:
            out["evidence"] = self.evidence.render()
        return out


@dataclass
class Ledger:
    """The ledger of the run, as the engine changes it during one decision."""

    revision: str = ""
    started_at: str = ""
    entries: list[Entry] = field(default_factory=list)
    dropped: int = 0
    summary: list[Summary] = field(default_factory=list)
    end: End | None = None

    @classmethod
    def of(cls, model: CanaryLedger | None) -> Ledger:
        if model is None:
            return cls()
        return cls(
            revision=model.revision,
            started_at=model.started_at or "",
            entries=[Entry.of(e) for e in model.entries][-MAX_ENTRIES:],
            dropped=model.dropped,
            summary=[Summary.of(s) for s in model.summary][:MAX_SUMMARIES],
            end=End.of(model.end) if model.end is not None else None,
        )

    @property
    def active(self) -> bool:
        """Whether there is a ledger to write (a run started, or a status that already had one)."""
        return bool(self.revision or self.started_at or self.entries or self.summary or self.end)

    def restart(self, revision: str, at: str = "") -> None:
        """A new run: nothing of the last one applies to it."""
        self.revision = revision
        self.started_at = at
        self.entries = []
        self.dropped = 0
        self.summary = []
        self.end = None

    def record(self, check: Check, result: CheckResult, *, at: datetime, weight: int, iteration: int) -> bool:
        """Add the answer to ``check``; returns whether the ledger changed (a repeated answer of a polled
        gate at the same step does not change it)."""
        entry = entry_of(check, result, at=rfc3339(at), weight=weight, iteration=iteration)
        if check.webhook_type in POLLED_TYPES and check.kind == "webhook":
            previous = next(
                (
                    e
                    for e in reversed(self.entries)
                    if (e.kind, e.type, e.check) == (entry.kind, entry.type, entry.check)
                ),
                None,
            )
            if previous is not None and previous.same_answer(entry):
                return False
        if not self.started_at:
            self.started_at = entry.at
        self.entries.append(entry)
        if len(self.entries) > MAX_ENTRIES:
            self.dropped += len(self.entries) - MAX_ENTRIES
            self.entries = self.entries[-MAX_ENTRIES:]
        key = (entry.kind, entry.type, entry.check)
        for index, summary in enumerate(self.summary):
            if summary.key == key:
                self.summary[index] = summary.add(entry)
                break
        else:
            if len(self.summary) < MAX_SUMMARIES:
                self.summary.append(Summary(check=entry.check, kind=entry.kind, type=entry.type).add(entry))
        return True

    def last_failure(self) -> Entry | None:
        """The last failed check of the run still in the ledger (a rollback hook that asked for the
        rollback counts: it is the reason)."""
        for entry in reversed(self.entries):
            if entry.decisive or (entry.type == "rollback" and entry.verdict == "pass"):
                return entry
        return None

    def mark_dry_run(self, check: Check) -> None:
        """The last answer to ``check`` (just recorded) came from a dry-run metric: say so in its entry."""
        for index in range(len(self.entries) - 1, -1, -1):
            entry = self.entries[index]
            if (entry.kind, entry.type, entry.check) == (check.kind, check.webhook_type, check.name):
                if not entry.dry_run:
                    self.entries[index] = replace(entry, dry_run=True)
                return

    def finish(
        self,
        phase: str,
        reason: str,
        *,
        at: datetime,
        failed_checks: int,
        threshold: int,
        cause: str = "",
        since: datetime | None = None,
        check: str = "",
    ) -> End:
        """The run ended: record why (``cause``, and ``since`` for a wait that ran out), with the evidence of
        the last failed check (of ``check`` when the run ended waiting on it)."""
        evidence = None
        if phase != "Succeeded":
            evidence = self.last_answer(check) if check else None
            evidence = evidence or self.last_failure()
        self.end = End(
            at=rfc3339(at),
            phase=phase,
            reason=reason,
            failed_checks=failed_checks,
            threshold=threshold,
            evidence=evidence,
            cause=cause,
            since=rfc3339(since) if since is not None else "",
        )
        return self.end

    def last_answer(self, check: str) -> Entry | None:
        """The last entry of ``check`` that did not pass (a held metric, a closed gate, an error)."""
        for entry in reversed(self.entries):
            if entry.check == check and entry.decisive:
                return entry
        return None

    def render(self, now: datetime) -> dict[str, Any]:
        out: dict[str, Any] = {
            "revision": self.revision,
            "startedAt": self.started_at or rfc3339(now),
            "entries": [e.render() for e in self.entries],
            "dropped": self.dropped,
            "summary": [s.render() for s in self.summary],
        }
        if self.end is not None:
            out["end"] = self.end.render()
        return out


# ---------------------------------------------------------------------------------------------- words


def number(value: float) -> str:
    """A value for people: at most two decimals, no trailing zeros (71.2, 99, 0.05)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def step_text(entry: Entry) -> str:
    return (
        f"iteration {entry.iteration}" if entry.iteration and not entry.weight else f"weight {entry.weight}"
    )


def evidence_line(entry: Entry) -> str:
    """One line of evidence: ``request-success-rate 71.2% < 99%``, ``request-duration: no data``,
    ``load-test (rollout) HTTP 500: internal error``, ``gate (confirm-promotion): error: connection
    refused: http://…``."""
    if entry.kind == "webhook":
        name = f"{entry.check} ({entry.type or 'rollout'})"
        if entry.result == "error":
            return f"{name}: error: {cut(entry.message, 160)}"
        line = f"{name} HTTP {entry.http_status}" if entry.http_status is not None else name
        detail = entry.body or entry.message
        if entry.failed and detail:
            line += f": {cut(' '.join(detail.split()), 160)}"
        return line
    if entry.result == "noData":
        return f"{entry.check}: no data"
    if entry.result == "error":
        return f"{entry.check}: error: {cut(entry.message, 160)}"
    if entry.value is None:
        return f"{entry.check}: {cut(entry.message, 160)}" if entry.message else entry.check
    line = f"{entry.check} {number(entry.value)}{entry.unit}"
    if entry.primary_value is not None:
        p = f", p={entry.p_value:.3g}" if entry.p_value is not None else ""
        line += f" vs primary {number(entry.primary_value)}{entry.unit}{p}"
    if entry.failed:
        if entry.min is not None and entry.value < entry.min:
            line += f" < {number(entry.min)}{entry.unit}"
        elif entry.max is not None and entry.value > entry.max:
            line += f" > {number(entry.max)}{entry.unit}"
    return line


def alert_fields(entry: Entry) -> tuple[tuple[str, str], ...]:
    """The evidence of a failed check as alert fields (Failed check, Step, Query, Provider, URL…)."""
    fields: list[tuple[str, str]] = [("Failed check", evidence_line(entry)), ("Step", step_text(entry))]
    optional: Mapping[str, str] = {
        "Query": entry.query,
        "Provider": entry.provider,
        "URL": entry.url,
        "HTTP status": str(entry.http_status) if entry.http_status is not None else "",
        "Response": entry.body,
    }
    fields += [(title, value) for title, value in optional.items() if value]
    return tuple(fields)
