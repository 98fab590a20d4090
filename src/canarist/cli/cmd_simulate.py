"""`canarist simulate`: what would this analysis have decided on these metric values?

The Canary comes from a file (``-f``, MetricTemplates may follow it) or from the cluster (``--canary NAME
-n NAMESPACE``, with the MetricTemplates its metrics name; its status is left out: the simulation starts a
run from the spec). The values come from a scenario file (``--scenario``), or from what a Prometheus
recorded over a past window (``--prometheus URL --from T --to T``: the release happened at ``--from``; each
check is the instant query the operator would have sent then). Times are RFC 3339 with a zone (``2026-12-03T14:00:00Z``) or Unix
seconds.

Exit codes: 0 the simulated canary was promoted (Succeeded); 1 it ended Failed or did not finish within
the scenario's duration; 2 bad input (a manifest or scenario that cannot be read, said in one sentence); with
``--canary``, 3 no such Canary or MetricTemplate, 4 no usable kubeconfig or an unreachable API server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic
import yaml

from canarist.cli.common import EXIT_NOT_FOUND, CliError, connect, not_found, unreachable
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.kube.errors import KubeError, NotFound
from canarist.operator.settings import parse_seconds
from canarist.simulate import Replay, Scenario, SimulationResult, run


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a Canary's analysis in virtual time on scripted metric values",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("-f", "--filename", help="the Canary manifest (MetricTemplates may follow)")
    source.add_argument(
        "--canary", help="the name of a Canary in the cluster (with the MetricTemplates it names)"
    )
    parser.add_argument("-n", "--namespace", default=None, help="with --canary: its namespace")
    parser.add_argument(
        "--kubeconfig", default=None, help="with --canary: a kubeconfig (default: $KUBECONFIG)"
    )
    parser.add_argument("--context", default=None, help="with --canary: the kubeconfig context")
    parser.add_argument(
        "--scenario",
        help="the scenario YAML file (with --prometheus: only its webhooks, rollout and release time count)",
    )
    parser.add_argument("--prometheus", help="replay what this Prometheus recorded (needs --from and --to)")
    parser.add_argument(
        "--from", dest="start", help="the release: RFC 3339 time with a zone, or Unix seconds"
    )
    parser.add_argument("--to", dest="end", help="the end of the replayed window")
    parser.add_argument(
        "--min-analysis-interval",
        type=parse_seconds,
        default=10.0,
        help="the operator's floor on spec.analysis.interval (default 10s, as Flagger's)",
    )
    parser.add_argument("--compare", help="a second Canary manifest to run on the same scenario")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=handle)


def _load(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read the manifest: {err}") from None
    canaries = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Canary"]
    templates = [d for d in docs if isinstance(d, dict) and d.get("kind") == "MetricTemplate"]
    if len(canaries) != 1:
        raise ValueError(f"{path}: expected exactly one Canary, found {len(canaries)}")
    return canaries[0], templates


def _time(flag: str, value: str | None) -> datetime:
    if not value:
        raise ValueError(f"--prometheus needs {flag}")
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag}: {value!r} is neither an RFC 3339 time nor Unix seconds") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{flag}: {value!r} has no time zone (add Z or +00:00)")
    return parsed


def _replay(args: argparse.Namespace) -> Replay | None:
    if not args.prometheus:
        if args.start or args.end:
            raise ValueError("--from and --to need --prometheus")
        if not args.scenario:
            raise ValueError("give --scenario, or --prometheus with --from and --to")
        return None
    return Replay(args.prometheus, _time("--from", args.start), _time("--to", args.end))


Source = tuple[dict[str, Any], list[dict[str, Any]]]


def _from_cluster(args: argparse.Namespace) -> Source:
    """The Canary ``--canary`` and the MetricTemplates its metrics name, read from the cluster; raises
    `CliError` (exit 3 not found, 4 unreachable)."""

    async def read(client: KubeClient, namespace: str) -> Source:
        try:
            try:
                canary = await client.get(kinds.CANARY, args.canary, namespace=namespace)
            except NotFound:
                raise not_found(args.canary, namespace) from None
            templates = []
            metrics = ((canary.get("spec") or {}).get("analysis") or {}).get("metrics") or []
            for metric in metrics:
                ref = metric.get("templateRef") or {}
                if ref.get("name"):
                    where = ref.get("namespace") or namespace
                    try:
                        templates.append(
                            await client.get(kinds.METRIC_TEMPLATE, ref["name"], namespace=where)
                        )
                    except NotFound:
                        raise CliError(
                            f'metric template "{ref["name"]}" (of metric {metric.get("name")!r}) not found in '
                            f'namespace "{where}"',
                            EXIT_NOT_FOUND,
                        ) from None
        except KubeError as error:
            raise unreachable(error) from error
        finally:
            await client.close()
        # what a run starts from: the spec, not the status of the run the cluster is in
        canary.pop("status", None)
        return canary, templates

    client = connect(args.kubeconfig, args.context)
    namespace = args.namespace or str(getattr(client, "namespace", "") or "default")
    return asyncio.run(read(client, namespace))


def _simulate(
    path: str,
    scenario: Scenario,
    replay: Replay | None = None,
    min_interval_s: float = 10.0,
    source: Source | None = None,
) -> SimulationResult:
    canary, templates = source if source is not None else _load(path)
    try:
        return run(canary, scenario, templates=templates, replay=replay, min_interval_s=min_interval_s)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None


def handle(args: argparse.Namespace) -> int:
    try:
        replay = _replay(args)
        scenario = Scenario.load(args.scenario) if args.scenario else Scenario()
        floor = args.min_analysis_interval
        source = _from_cluster(args) if args.canary else None
        first = args.filename or f"canary {args.canary}"
        results = [_simulate(first, scenario, replay, floor, source)]
        if args.compare:
            results.append(_simulate(args.compare, scenario, replay, floor))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    names = [first] + ([args.compare] if args.compare else [])
    if args.output == "json":
        print(json.dumps({name: r.to_json() for name, r in zip(names, results, strict=True)}, indent=2))
    elif len(results) == 1:
        print(results[0].timeline())
    else:
        # the ends on one row, at the bottom
        bodies = [[name, *r.timeline().splitlines()] for name, r in zip(names, results, strict=True)]
        rows = max(len(b) for b in bodies)
        columns = [b[:-1] + [""] * (rows - len(b)) + b[-1:] for b in bodies]
        width = max(len(line) for line in columns[0])
        for left, right in zip(*columns, strict=True):
            print(f"{left:<{width}}  ||  {right}")
    return 0 if results[0].phase == "Succeeded" else 1
