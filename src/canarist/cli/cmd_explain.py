"""`canarist explain NAME [-n NS] [--kubeconfig PATH] [--context CTX] [-o text|json]`: the run of a canary, read in seconds.

Reads the Canary (its decision ledger, ``status.ledger``) and its Events and prints the run as a timeline:
a header that says where the run stands or how it ended (on a rolled-back canary: the failing check with
its value and threshold), then each step with its checks' values, the events in between, and a summary per
check. ``-o json`` prints the structured ledger with the canary's phase and events.

    $ canarist explain podinfo -n test
    podinfo.test: Failed at weight 10 — request-success-rate 71.2% < 99% (5 of 5 failed checks)
      why      Failed checks threshold reached 5
      query    sum(rate(istio_requests_total{...}[1m])) / ...
      provider prometheus http://prometheus.istio-system:9090
      run      revision 5f8bd6c7d4, started 12:00:00Z, ended after 2m30s; 15 checks, 5 failed
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from canarist.api import Canary
from canarist.cli.common import not_found, run_against_cluster, unreachable
from canarist.engine.ledger import End, Entry, Ledger, evidence_line, number, parse_time, step_text
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import ApiError, KubeError, NotFound

#: the width of a timeline line before its checks wrap.
WIDTH = 110


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain a canary's run: each step's checks, the failing one, and why the run ended",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("name", help="the Canary's name")
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the context's)")
    parser.add_argument("--kubeconfig", default=None, help="path to a kubeconfig (default: $KUBECONFIG)")
    parser.add_argument("--context", default=None, help="the kubeconfig context (default: its current)")
    parser.add_argument(
        "-o", "--output", choices=["text", "json"], default="text", help="text (default) or json"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Exit codes as for ``get`` and ``status`` (docs/cli.md): 3 no such canary, 4 no usable kubeconfig or an
    unreachable API server, 1 a refused request."""
    return run_against_cluster(
        args, lambda client, namespace: _explain(client, args.name, namespace, args.output)
    )


async def _explain(client: KubeClient, name: str, namespace: str, output: str) -> int:
    try:
        obj = await client.get(kinds.CANARY, name, namespace=namespace)
        listed = await client.list(kinds.EVENT, namespace=namespace)
    except NotFound:
        raise not_found(name, namespace) from None
    except ApiError as error:
        print(f"error: canary {name}.{namespace}: {error}", file=sys.stderr)
        return 1
    except KubeError as error:
        raise unreachable(error) from error
    finally:
        await client.close()
    try:
        canary = Canary.model_validate(obj)
    except ValueError as error:
        print(f"error: canary {name}.{namespace} cannot be read: {error}", file=sys.stderr)
        return 1
    events = events_of(listed.items, name)
    if output == "json":
        print(json.dumps(explain_json(canary, events), indent=2))
    else:
        print(explain_text(canary, events))
    return 0


# ---------------------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class RunEvent:
    """An Event about the canary: when it first and last happened, how often, what it said."""

    first: datetime | None
    last: datetime | None
    count: int
    type: str
    message: str


def events_of(items: Sequence[Mapping[str, Any]], name: str) -> list[RunEvent]:
    """The Events whose involvedObject is the Canary ``name``, oldest first."""
    out: list[RunEvent] = []
    for item in items:
        involved = item.get("involvedObject") or {}
        if involved.get("kind") != "Canary" or involved.get("name") != name:
            continue
        first = parse_time(item.get("firstTimestamp")) or parse_time(item.get("eventTime"))
        last = parse_time(item.get("lastTimestamp")) or first
        count = item.get("count")
        out.append(
            RunEvent(
                first=first,
                last=last,
                count=count if isinstance(count, int) and count > 0 else 1,
                type=str(item.get("type") or "Normal"),
                message=str(item.get("message") or ""),
            )
        )
    return sorted(out, key=lambda e: e.first or datetime.min.replace(tzinfo=UTC))


# ---------------------------------------------------------------------------------------------- text


def _duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, rest = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s" if rest else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _offset(moment: datetime | None, start: datetime | None) -> str:
    if moment is None or start is None:
        return "?"
    return "+" + _duration((moment - start).total_seconds())


def header(canary: Canary, book: Ledger) -> list[str]:
    """The first lines: where the run stands or how it ended, and the evidence that decided it."""
    status = canary.status
    phase = str(status.phase or "Initializing")
    threshold = canary.threshold()
    end: End | None = book.end
    lines: list[str] = []
    if end is not None and end.phase == "Failed":
        evidence = end.evidence
        where = f" at {step_text(evidence)}" if evidence is not None else ""
        why = evidence_line(evidence) if evidence is not None else end.reason
        failed = f" ({end.failed_checks} of {end.threshold or threshold} failed checks)"
        lines.append(f"{canary.key}: Failed{where} — {why}{failed}")
        cause = f" [{end.cause}]" if end.cause else ""
        lines.append(f"  why      {end.reason}{cause}")
        if evidence is not None:
            lines += _evidence_details(evidence)
    elif end is not None:
        cause = f" [{end.cause}]" if end.cause and end.phase != "Succeeded" else ""
        lines.append(f"{canary.key}: {end.phase} — {end.reason}{cause}")
    else:
        step = (
            f" at iteration {status.iterations}"
            if status.iterations
            else f" at weight {status.canary_weight}"
        )
        running = phase in ("Progressing", "Waiting", "WaitingPromotion", "Promoting", "Finalising")
        failed = f" ({status.failed_checks} of {threshold} failed checks)" if running else ""
        last = next((e for e in reversed(book.entries) if e.decisive), None)
        detail = f" — last failure {evidence_line(last)}" if last is not None and running else ""
        lines.append(f"{canary.key}: {phase}{step if running else ''}{detail}{failed}")
        if last is not None and running:
            lines += _evidence_details(last)
    wait = status.wait
    if wait is not None and wait.reason and end is None:
        on = f" on {wait.check}" if wait.check else ""
        until = f", deadline {wait.deadline}" if wait.deadline else ""
        message = f": {wait.message}" if wait.message else ""
        lines.append(f"  waiting  {wait.reason}{on} since {wait.since or '?'}{until}{message}")
    hold = status.hold
    if hold is not None and hold.action:
        weight = f" at weight {hold.weight}" if hold.weight is not None else ""
        lines.append(
            f"  held     {hold.action}{weight} by {_who(hold.requested_by, hold.reason)} since {hold.since or '?'}"
        )
    lines.append("  run      " + _run_line(book))
    return lines


def _who(user: str, reason: str) -> str:
    who = user or "an unknown user"
    return f"{who} ({reason})" if reason else who


def commands(canary: Canary, book: Ledger) -> list[str]:
    """The runtime commands consumed during the run (``status.commands``), each with its outcome."""
    start = parse_time(book.started_at) if book.started_at else None
    lines: list[str] = []
    for record in canary.status.commands:
        at = parse_time(record.at) if record.at else None
        if start is not None and at is not None and at < start:
            continue  # a command of an earlier run
        weight = f" {record.weight}" if record.weight is not None else ""
        lines.append(
            f"  {_offset(at, start):>8}  {record.action}{weight} {record.outcome.lower()}, "
            f"by {_who(record.requested_by, record.reason)}: {record.message}"
        )
    return lines


def _evidence_details(entry: Entry) -> list[str]:
    lines: list[str] = []
    if entry.query:
        lines.append(f"  query    {' '.join(entry.query.split())}")
    if entry.provider:
        lines.append(f"  provider {entry.provider}")
    if entry.url:
        status = f" (HTTP {entry.http_status})" if entry.http_status is not None else ""
        lines.append(f"  url      {entry.url}{status}")
    return lines


def _run_line(book: Ledger) -> str:
    if not book.active:
        return "no decision ledger yet (no run under canarist since this canary was created)"
    answered = sum(s.count for s in book.summary)
    dry = dry_run_checks(book)
    failed = sum(s.failures for s in book.summary if s.key not in dry)
    failed_dry = sum(s.failures for s in book.summary if s.key in dry)
    started = parse_time(book.started_at)
    parts = [f"revision {book.revision or '?'}"]
    if started is not None:
        parts.append(f"started {started.strftime('%Y-%m-%d %H:%M:%SZ')}")
    ended = parse_time(book.end.at) if book.end is not None else None
    if started is not None and ended is not None:
        parts.append(f"ended after {_duration((ended - started).total_seconds())}")
    dry_failures = f", {failed_dry} failed dry-run" if failed_dry else ""
    return ", ".join(parts) + f"; {answered} checks, {failed} failed{dry_failures}"


def dry_run_checks(book: Ledger) -> set[tuple[str, str, str]]:
    """The checks of the run answered as dry-run metrics (their failures never counted for the run)."""
    return {(e.kind, e.type, e.check) for e in book.entries if e.dry_run}


def _mark(entry: Entry) -> str:
    dry_run = " (dry-run)" if entry.dry_run else ""
    return ("✗ " if entry.failed else "✓ ") + evidence_line(entry) + dry_run


def timeline(book: Ledger, events: Sequence[RunEvent]) -> list[str]:
    """One line per step (its checks), the run's events in between, oldest first."""
    start = parse_time(book.started_at)
    checked = {e.message for e in book.entries if e.message}
    rows: list[tuple[datetime, int, str]] = []
    ticks: dict[str, list[Entry]] = {}
    for entry in book.entries:
        ticks.setdefault(entry.at, []).append(entry)
    for at, entries in ticks.items():
        moment = parse_time(at)
        if moment is None:
            continue
        step = step_text(entries[0])
        marks = [_mark(e) for e in entries]
        rows.append((moment, 0, _wrap(f"{_offset(moment, start):>7}  {step:<13}", marks)))
    for event in events:
        moment = event.last if (start and event.first and event.first < start) else event.first
        if moment is None or (start is not None and moment < start) or event.message in checked:
            continue
        repeats = f" (x{event.count}, last {_offset(event.last, start)})" if event.count > 1 else ""
        kind = "!" if event.type == "Warning" else "·"
        rows.append((moment, 1, f"{_offset(moment, start):>7}  {kind} {event.message}{repeats}"))
    rows.sort(key=lambda row: (row[0], row[1]))
    lines = [text for _, _, text in rows]
    if book.dropped:
        lines.insert(0, f"     …  {book.dropped} earlier checks not kept (counted in the summary)")
    return lines


def _wrap(prefix: str, marks: list[str]) -> str:
    lines = [prefix]
    for mark in marks:
        if len(lines[-1]) + len(mark) + 3 > WIDTH and lines[-1].strip() != prefix.strip():
            lines.append(" " * len(prefix))
        lines[-1] += ("   " if lines[-1].strip() != prefix.strip() else "") + mark
    return "\n".join(lines)


def summary(book: Ledger) -> list[str]:
    lines = []
    dry = dry_run_checks(book)
    for s in book.summary:
        name = s.check if s.kind == "metric" else f"{s.check} ({s.type or 'rollout'})"
        if s.key in dry:
            name += " (dry-run)"
        fresh = s.last_value is not None and s.last_result == "value"
        value = f"{number(s.last_value)}{s.unit} " if fresh and s.last_value is not None else ""
        outcome = {"noData": "no data ", "error": "error "}.get(s.last_result, "")
        extra = "".join(f", {n} {label}" for n, label in ((s.no_data, "no data"), (s.errors, "errors")) if n)
        counts = f"{s.count:>4} checks, {s.failures} failed{extra}"
        lines.append(f"  {name:<32} {counts}; last {value}{outcome}{s.last_verdict}")
    return lines


def explain_text(canary: Canary, events: Sequence[RunEvent]) -> str:
    book = Ledger.of(canary.status.ledger)
    lines = header(canary, book)
    if book.active:
        lines += ["", "timeline", *timeline(book, events)]
        if book.summary:
            lines += ["", "checks", *summary(book)]
    run_commands = commands(canary, book)
    if run_commands:
        lines += ["", "commands", *run_commands]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- json


def explain_json(canary: Canary, events: Sequence[RunEvent]) -> dict[str, Any]:
    book = Ledger.of(canary.status.ledger)
    ledger = canary.status.ledger.to_dict() if canary.status.ledger is not None else None
    return {
        "canary": canary.key,
        "phase": str(canary.status.phase),
        "canaryWeight": canary.status.canary_weight,
        "iterations": canary.status.iterations,
        "failedChecks": canary.status.failed_checks,
        "threshold": canary.threshold(),
        "headline": header(canary, book)[0],
        "ledger": ledger,
        "hold": canary.status.hold.to_dict() if canary.status.hold is not None else None,
        "commands": [c.to_dict() for c in canary.status.commands],
        "events": [
            {
                "first": e.first.strftime("%Y-%m-%dT%H:%M:%SZ") if e.first else None,
                "last": e.last.strftime("%Y-%m-%dT%H:%M:%SZ") if e.last else None,
                "count": e.count,
                "type": e.type,
                "message": e.message,
            }
            for e in events
        ],
    }
