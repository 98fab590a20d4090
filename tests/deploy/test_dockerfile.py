"""deploy/Dockerfile: no container engine runs here, so the image cannot be built in the tests; this parses
the Dockerfile and checks what matters: a pinned slim base, a non-root numeric USER, the `canarist`
entry point serving both `operator` and `loadtester`, hey and curl installed, and COPY sources that exist
and are not excluded by the build context's ignore file."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass

from canarist.cli.main import build_parser
from tests.deploy.support import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions, with backslash continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, value = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
    assert not pending, "dangling line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    out: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    args: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, _, default = instruction.value.partition("=")
            args[name] = default
    return args


def resolve(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], value)


INSTRUCTIONS = parse(DOCKERFILE.read_text())
STAGES = stages(INSTRUCTIONS)
FINAL = STAGES[-1]


def last(keyword: str) -> Instruction:
    found = [i for i in FINAL if i.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def test_every_base_image_is_pinned_slim_python_311() -> None:
    args = build_args(INSTRUCTIONS)
    assert len(STAGES) == 2  # build, runtime
    for stage in STAGES:
        image = resolve(stage[0].value.split()[0], args)
        name, _, digest = image.partition("@")
        repository, _, tag = name.partition(":")
        assert repository == "python", image
        # Either a sha256 digest or an exact patch release: never `latest` or a floating `3.11-slim`.
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest) or re.fullmatch(
            r"3\.11\.\d+-slim-bookworm", tag
        ), image


def test_runs_as_a_numeric_non_root_user() -> None:
    user = last("USER").value
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), user
    assert int(uid) > 0, user
    assert gid.isdigit(), user
    assert int(gid) > 0, user
    # The deployments' runAsUser matches, so runAsNonRoot holds with either source of truth.
    for path in (
        DEPLOY / "base" / "operator" / "deployment.yaml",
        DEPLOY / "base" / "loadtester" / "deployment.yaml",
    ):
        assert f"runAsUser: {uid}" in path.read_text(), path
    # Nothing runs as root after the USER switch.
    index = FINAL.index(last("USER"))
    assert not [i for i in FINAL[index:] if i.keyword == "RUN"]


def test_entrypoint_is_canarist_and_serves_both_commands() -> None:
    entrypoint = json.loads(last("ENTRYPOINT").value)  # exec form, so signals reach the process
    command = json.loads(last("CMD").value)
    assert entrypoint == ["canarist"]
    assert command == ["operator"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["canarist"] == "canarist.cli.main:main"
    parser = build_parser()
    assert parser.parse_args(["operator"]).command == "operator"
    assert parser.parse_args(["loadtester"]).command == "loadtester"
    environment = " ".join(i.value for i in FINAL if i.keyword == "ENV")
    assert "PATH=/opt/canarist/bin:$PATH" in environment


def test_loadtester_tools_are_installed_without_recommends() -> None:
    runs = " ".join(i.value for i in FINAL if i.keyword == "RUN")
    install = re.search(r"apt-get install ([^&]+)", runs)
    assert install, runs
    words = install.group(1).split()
    assert "--no-install-recommends" in words
    assert {"hey", "curl"} <= set(words)
    assert "rm -rf /var/lib/apt/lists/*" in runs


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's ignore-file semantics for the patterns used here: last match wins, `!` re-includes."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes) or fnmatch.fnmatchcase(path, pattern):
            result = not negate
    return result


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    patterns = [
        line.strip() for line in IGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    copied: set[str] = set()
    for stage in STAGES:
        for instruction in stage:
            if instruction.keyword == "COPY" and "--from=" not in instruction.value:
                *sources, _destination = instruction.value.split()
                copied.update(sources)
    assert copied == {"pyproject.toml", readme, "src"}
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not ignored(source, patterns), source
    assert not ignored("src/canarist/cli/main.py", patterns)
    assert ignored(".venv/bin/python", patterns)
    assert ignored("tests/conftest.py", patterns)
