"""`canarist validate FILE|DIR... | -`: check flagger.app manifests and print path-qualified problems.

A directory is read as ``kubectl apply -f DIR`` reads it: its ``*.json``, ``*.yaml`` and ``*.yml`` files in
name order, without its subdirectories unless ``-R``/``--recursive`` is given. Each problem is one line, ``<name>: <path>: <message>`` (prefixed with the file name when several files
are given). Objects of other kinds are listed as skipped. The exit status is 1 when anything is wrong
(a problem, unreadable input, malformed YAML), 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml

from canarist.api import Canary
from canarist.api.validation import describe, is_flagger_document, parse_document, validate_document
from canarist.routers import registry as routers


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate Canary, MetricTemplate and AlertProvider manifests",
        description=(
            "Validate flagger.app manifests (multi-document YAML or JSON). Use - to read stdin. A directory "
            "is read as kubectl apply -f DIR reads it: its .json, .yaml and .yml files, subdirectories only "
            "with -R."
        ),
    )
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="manifest files or directories, or - for stdin"
    )
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        default=[],
        metavar="FILE",
        help="a manifest file or directory, as kubectl's -f (repeatable)",
    )
    parser.add_argument(
        "-R",
        "--recursive",
        action="store_true",
        help="also read the subdirectories of directories, as kubectl's -R",
    )
    parser.add_argument(
        "--mesh-provider",
        default="istio",
        help="the operator's -mesh-provider, for canaries without spec.provider (default: istio)",
    )
    parser.set_defaults(handler=run)


@dataclass
class Report:
    mesh_provider: str = "istio"
    lines: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    checked: int = 0
    failed: bool = False


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    with open(name, "rb") as handle:
        return handle.read()


def _documents(text: str) -> Iterator[object]:
    yield from yaml.safe_load_all(text)


def _label(doc: object, index: int) -> str:
    if isinstance(doc, dict):
        metadata = doc.get("metadata")
        if isinstance(metadata, dict):
            name = metadata.get("name")
            if isinstance(name, str) and name:
                return name
    return f"document {index}"


def check_text(text: str, report: Report, prefix: str) -> None:
    """Validate every document of one YAML stream into ``report``."""
    documents = _documents(text)
    index = 0
    while True:
        try:
            doc = next(documents)
        except StopIteration:
            return
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            reason = getattr(error, "problem", None) or (str(error).splitlines() or ["malformed"])[0]
            report.failed = True
            report.lines.append(f"{prefix}invalid YAML in document {index + 1}{where}: {reason}")
            return
        except RecursionError:
            report.failed = True
            report.lines.append(f"{prefix}invalid YAML in document {index + 1}: nested too deeply")
            return
        except (ValueError, OverflowError) as error:  # e.g. an integer literal with too many digits
            report.failed = True
            report.lines.append(f"{prefix}invalid YAML in document {index + 1}: {error}")
            return
        index += 1
        _check_document(doc, index, report, prefix)


def _check_document(doc: object, index: int, report: Report, prefix: str) -> None:
    if doc is None:
        return
    if isinstance(doc, dict) and not is_flagger_document(doc):
        kind = doc.get("kind")
        kind_text = kind if isinstance(kind, str) and kind else "object"
        report.skipped.append(f"{prefix}{kind_text}/{_label(doc, index)}")
        return
    report.checked += 1
    label = _label(doc, index)
    problems = [str(problem) for problem in validate_document(doc)]
    if not problems and isinstance(doc, dict) and doc.get("kind") == "Canary":
        # Valid as a resource: can its router run it?
        _, model = parse_document(doc)
        if isinstance(model, Canary):
            problems = routers.provider_problems(model, report.mesh_provider)
    for problem in problems:
        report.failed = True
        report.lines.append(f"{prefix}{label}: {problem}")


def check_file(name: str, report: Report, prefix: str) -> None:
    try:
        data = _read(name)
    except OSError as error:
        report.failed = True
        report.lines.append(f"{prefix}cannot read {name}: {error.strerror or error}")
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        report.failed = True
        report.lines.append(f"{prefix}not UTF-8 text (byte {error.start}): cannot be YAML")
        return
    if "\x00" in text:
        report.failed = True
        report.lines.append(f"{prefix}binary data (NUL byte): cannot be YAML")
        return
    check_text(text, report, prefix)


#: the file name endings kubectl reads in a directory given to -f
MANIFEST_EXTENSIONS = (".json", ".yaml", ".yml")


def expand_paths(names: list[str], recursive: bool = False) -> tuple[list[str], list[str]]:
    """The files to read for ``names`` (directories expanded as kubectl does) and, for a directory that
    holds no manifest file, one problem line for each."""
    files: list[str] = []
    problems: list[str] = []
    for name in names:
        if name == "-" or not os.path.isdir(name):
            files.append(name)
            continue
        found: list[str] = []
        for root, dirs, entries in os.walk(name):
            dirs.sort()
            if not recursive:
                dirs.clear()
            found.extend(
                os.path.join(root, entry)
                for entry in sorted(entries)
                if entry.endswith(MANIFEST_EXTENSIONS) and os.path.isfile(os.path.join(root, entry))
            )
        if not found:
            deeper = "" if recursive else " (add -R to read its subdirectories)"
            problems.append(f"{name}: no .json, .yaml or .yml file in this directory{deeper}")
        files.extend(found)
    return files, problems


def run(args: argparse.Namespace) -> int:
    names: list[str] = list(args.files) + list(args.filename)
    if not names:
        print("canarist validate: give a manifest file, a directory, or - for stdin", file=sys.stderr)
        return 2
    files, problems = expand_paths(names, args.recursive)
    report = Report(mesh_provider=args.mesh_provider)
    if problems:
        report.failed = True
        report.lines.extend(problems)
    several = len(files) > 1
    for name in files:
        prefix = f"{'<stdin>' if name == '-' else name}: " if several else ""
        try:
            check_file(name, report, prefix)
        except Exception as error:  # a bug in canarist must not hide the other files' results
            report.failed = True
            report.lines.append(f"{prefix}internal error while validating: {describe(error)} {error}")
    for line in report.lines:
        print(line)
    for skipped in report.skipped:
        print(f"skipped {skipped} (not a flagger.app object)")
    status = "invalid" if report.failed else "valid"
    print(
        f"{report.checked} flagger.app object(s) checked, {len(report.skipped)} skipped: {status}",
        file=sys.stderr,
    )
    return 1 if report.failed else 0
