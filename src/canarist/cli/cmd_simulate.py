"""`canarist simulate`: what would this analysis have decided on these metric values?

Exit codes: 0 the simulated canary was promoted (Succeeded); 1 it ended Failed or did not finish within
the scenario's duration; 2 bad input (a manifest or scenario that cannot be read, said in one sentence).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pydantic
import yaml

from canarist.simulate import Scenario, SimulationResult, run


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a Canary's analysis in virtual time on scripted metric values",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-f", "--filename", required=True, help="the Canary manifest (MetricTemplates may follow)"
    )
    parser.add_argument("--scenario", required=True, help="the scenario YAML file")
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


def _simulate(path: str, scenario: Scenario) -> SimulationResult:
    canary, templates = _load(path)
    try:
        return run(canary, scenario, templates=templates)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: {where}: {first['msg']}") from None


def handle(args: argparse.Namespace) -> int:
    try:
        scenario = Scenario.load(args.scenario)
        results = [_simulate(args.filename, scenario)]
        if args.compare:
            results.append(_simulate(args.compare, scenario))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    names = [args.filename] + ([args.compare] if args.compare else [])
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
