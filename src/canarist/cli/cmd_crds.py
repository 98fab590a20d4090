"""`canarist crds`: print the flagger.app CustomResourceDefinitions (generated from the models)."""

from __future__ import annotations

import argparse
import sys

from canarist.api.crds import crds_yaml


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "crds",
        help="print the Canary, MetricTemplate, AlertProvider and CanaryCommand CRDs as YAML",
        description="Print the three flagger.app CustomResourceDefinitions as a multi-document YAML stream, "
        "e.g. `canarist crds | kubectl apply -f -`.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(crds_yaml())
    return 0
