"""Every reference that the code and the docs make can be followed inside the repository.

* No tracked file under src/ or docs/ (nor README.md) points at a document outside the repository: no
  "inventory §…" section numbers, no bare "§N" numbers of such documents, no paths under ../shared/.
* Every ``docs/<file>.md#anchor`` reference (and every relative Markdown link in the docs) names an
  existing file and, when it has one, an existing heading anchor, with GitHub's slugs.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = [
    (re.compile(r"inventory\s*§", re.IGNORECASE), 'an "inventory §" reference'),
    (re.compile(r"§\s*\d"), "a numbered section (§N) of a document outside the repository"),
    (re.compile(r"\.\./shared/|shared/reference/"), "a path under ../shared/"),
]

# docs/engine.md#the-phases anywhere in any scanned file.
DOCS_REFERENCE = re.compile(r"(?<![\w/.-])docs/([\w./-]+?\.md)#([\w-]+)")
# [text](target) in a Markdown file; the target is resolved relative to that file.
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def tracked_files() -> list[Path]:
    """src/, docs/ and README.md as git tracks them (the working-tree content is what is read)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--", "src", "docs", "README.md"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout.decode()
        names = [name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        names = [str(p.relative_to(ROOT)) for p in [*ROOT.glob("src/**/*"), *ROOT.glob("docs/**/*")]]
        names.append("README.md")
    return sorted(path for path in (ROOT / name for name in names) if path.is_file())


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped, spaces → hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The heading anchors of a Markdown file, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    in_fence = False
    for line in read(path).splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match is None:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(out)


def references(path: Path) -> list[tuple[int, Path, str | None, str]]:
    """(line, target file, anchor or None, as written) for every docs reference made by ``path``."""
    out: list[tuple[int, Path, str | None, str]] = []
    in_fence = False
    for number, line in enumerate(read(path).splitlines(), start=1):
        for match in DOCS_REFERENCE.finditer(line):
            out.append((number, ROOT / "docs" / match.group(1), match.group(2), match.group(0)))
        if path.suffix != ".md":
            continue
        if FENCE.match(line):
            in_fence = not in_fence
        if in_fence:
            continue
        for match in MARKDOWN_LINK.finditer(line):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # http:, mailto: ...
            file_part, _, anchor = target.partition("#")
            if file_part and not file_part.endswith(".md"):
                continue
            resolved = (path.parent / file_part).resolve() if file_part else path
            out.append((number, resolved, anchor or None, target))
    return out


FILES = tracked_files()


def test_the_scan_sees_the_sources_and_the_docs() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert "README.md" in names
    assert "docs/flagger-parity.md" in names or (ROOT / "docs" / "flagger-parity.md").is_file()
    assert any(name.startswith("src/canarist/") for name in names)


def test_no_reference_points_outside_the_repository() -> None:
    problems = []
    for path in FILES:
        for number, line in enumerate(read(path).splitlines(), start=1):
            for pattern, what in FORBIDDEN:
                if pattern.search(line):
                    problems.append(f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()}")
                    break
    assert not problems, "references that cannot be followed inside the repository:\n" + "\n".join(problems)


def test_docs_references_resolve() -> None:
    problems = []
    for path in FILES:
        for number, target, anchor, written in references(path):
            where = f"{path.relative_to(ROOT)}:{number}: {written}"
            if not target.is_file():
                problems.append(f"{where}: no such file")
            elif anchor is not None and target.suffix == ".md" and anchor not in anchors(target):
                problems.append(f"{where}: no heading with anchor #{anchor} in {target.relative_to(ROOT)}")
    assert not problems, "broken documentation references:\n" + "\n".join(problems)


def test_the_parity_page_has_the_topic_anchors() -> None:
    page = anchors(ROOT / "docs" / "flagger-parity.md")
    for anchor in [
        "resources-and-fields",
        "the-state-machine-and-phases",
        "events-and-log-messages",
        "webhooks-and-payloads",
        "the-loadtester-api",
        "builtin-metrics",
        "metric-providers",
        "routers",
        "notifications",
        "operator-metrics",
        "operator-flags",
    ]:
        assert anchor in page, anchor


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Builtin metrics", "builtin-metrics"),
        ("Defaults (`canarist/api/defaults.py`)", "defaults-canaristapidefaultspy"),
        ("Webhooks (`analysis.webhooks[]`)", "webhooks-analysiswebhooks"),
        ("skipAnalysis and suspend", "skipanalysis-and-suspend"),
        ("Pacing (our improvement over Flagger)", "pacing-our-improvement-over-flagger"),
        ("`flagger_*` metrics", "flagger_-metrics"),
    ],
)
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug
