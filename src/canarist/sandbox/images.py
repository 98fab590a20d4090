"""The images the sandbox can run, and what each one runs as a local process (docs/sandbox.md#pods).

An image is matched by its repository path, whatever the registry, tag or digest:

* ``[registry/]stefanprodan/podinfo[:tag|@digest]`` (``quay.io/...``, ``ghcr.io/...``, Docker Hub) runs
  podinfo: ``python -m canarist.sandbox.podinfo``, the demo app speaking podinfo's HTTP API;
* ``[registry/]fluxcd/flagger-loadtester`` and ``[registry/]weaveworks/flagger-loadtester`` run Flagger's
  loadtester: ``python -m canarist loadtester``.

A container's effective argv is what a container runtime would run: its ``command`` (else the image's
entrypoint) followed by its ``args`` (else, when neither ``command`` nor ``args`` is set, the image's
``CMD``). Its first word must be the image's program (``./podinfo``, ``podinfo``, ``/home/app/podinfo``;
``./loadtester``...); the rest are the program's flags.

    program_for("ghcr.io/stefanprodan/podinfo:6.0.1")   # PODINFO
    program_for("stefanprodan/potato:1.0.0")            # None
    image_check("stefanprodan/potato:1.0.0")            # 'image "stefanprodan/potato:1.0.0" cannot run ...'
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

__all__ = [
    "LOADTESTER",
    "PODINFO",
    "PROGRAMS",
    "ImageRef",
    "Program",
    "container_argv",
    "image_check",
    "image_tag",
    "local_argv",
    "parse_image",
    "program_for",
]


class ImageRef(NamedTuple):
    """An image reference split as a container runtime reads it."""

    registry: str  # "docker.io" when the reference names none
    path: str  # the repository path without the registry: "stefanprodan/podinfo"
    tag: str  # "" when none
    digest: str  # "" when none


@dataclass(frozen=True)
class Program:
    """What the sandbox runs for the images of one repository path."""

    name: str
    #: repository paths (without registry) of the images that run this program
    paths: tuple[str, ...]
    #: the image's ENTRYPOINT and CMD
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    #: the first words of argv that name the program (the image's binary, relative or absolute)
    executables: tuple[str, ...]
    #: the Python module the program is, and flags it gets after the container's own
    module: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.name} ({', '.join(f'[registry/]{p}' for p in self.paths)})"


PODINFO: Final = Program(
    name="podinfo",
    paths=("stefanprodan/podinfo",),
    entrypoint=(),
    cmd=("./podinfo",),
    executables=("./podinfo", "podinfo", "/home/app/podinfo"),
    module=("-m", "canarist.sandbox.podinfo"),
)
LOADTESTER: Final = Program(
    name="loadtester",
    paths=("fluxcd/flagger-loadtester", "weaveworks/flagger-loadtester"),
    entrypoint=("./loadtester",),
    cmd=(),
    executables=("./loadtester", "loadtester", "/home/app/loadtester"),
    module=("-m", "canarist", "loadtester"),
)
PROGRAMS: Final = (PODINFO, LOADTESTER)

_DEFAULT_REGISTRY = "docker.io"
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


def parse_image(image: str) -> ImageRef:
    """``[registry/]path[:tag][@digest]``: the first component is a registry when it has a ``.`` or a ``:``
    or is ``localhost`` (as Docker reads it)."""
    rest, _, digest = image.strip().partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, remainder
    else:
        registry, path = _DEFAULT_REGISTRY, rest
    tag = ""
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
    if registry in _DOCKER_HUB and path.startswith("library/"):
        path = path.removeprefix("library/")
    return ImageRef(registry, path, tag, digest)


def image_tag(image: str) -> str:
    """The image's tag (``latest`` when it names none): the version a pod of it reports."""
    return parse_image(image).tag or "latest"


def program_for(image: str) -> Program | None:
    """The program the sandbox runs for ``image``, or None when it cannot run it."""
    if not image.strip():
        return None
    path = parse_image(image).path
    return next((p for p in PROGRAMS if path in p.paths), None)


def image_check(image: str) -> str | None:
    """None when the sandbox can run ``image``, else why not (listing what it runs)."""
    if program_for(image) is not None:
        return None
    runs = " and ".join(p.describe() for p in PROGRAMS)
    shown = image if image.strip() else "(none)"
    return f'image "{shown}" cannot run in the sandbox: it runs {runs}'


def container_argv(container: Mapping[str, Any], program: Program) -> list[str]:
    """The argv a runtime runs for this container of ``program``'s image: ``command`` (else the image's
    entrypoint) + ``args`` (else, when neither is set, the image's CMD)."""
    command = [str(word) for word in container.get("command") or []]
    args = [str(word) for word in container.get("args") or []]
    if command:
        return command + args
    if args:
        return [*program.entrypoint, *args]
    return [*program.entrypoint, *program.cmd]


def local_argv(argv: Sequence[str], program: Program, python: str | None = None) -> list[str]:
    """``argv`` as a local process: its program replaced by the Python module that plays it. Raises
    ValueError (with the reason) when argv does not start with the program."""
    if not argv:
        raise ValueError(f"no command to run (the {program.name} image runs {program.executables[0]})")
    if argv[0] not in program.executables:
        raise ValueError(
            f'exec: "{argv[0]}": executable file not found in $PATH '
            f"(the sandbox runs {' or '.join(program.executables)} in the {program.name} image)"
        )
    return [python or sys.executable, *program.module, *argv[1:]]
