"""The images the sandbox can run, and what each one runs as a local process (docs/sandbox.md#pods).

An image is matched by its repository path, whatever the registry, tag or digest:

* ``[registry/]stefanprodan/podinfo[:tag|@digest]`` (``quay.io/...``, ``ghcr.io/...``, Docker Hub) runs
  podinfo: ``python -m canarist.sandbox.podinfo``, the demo app speaking podinfo's HTTP API;
* ``[registry/]fluxcd/flagger-loadtester`` and ``[registry/]weaveworks/flagger-loadtester`` run Flagger's
  loadtester: ``python -m canarist loadtester``;
* ``[registry/]canarist/canarist`` is the operator's image (``OPERATOR_IMAGE``): the sandbox runs its own
  operator and shows it as the ``flagger`` Deployment of ``istio-system`` (its template annotated with the
  PodManager's ``PROCESS_ANNOTATION``, one Pod standing for the operator process); it starts no other, so a
  pod of that image is refused (`image_check`) while the control plane's check for workloads
  (`workload_image_check`) accepts the image, so that the sandbox's own Deployment can be ready.

A container's effective argv is what a container runtime would run: its ``command`` (else the image's
entrypoint) followed by its ``args`` (else, when neither ``command`` nor ``args`` is set, the image's
``CMD``). Its first word must be the image's program (``./podinfo``, ``podinfo``, ``/home/app/podinfo``;
``./loadtester``...); the rest are the program's flags.

    program_for("ghcr.io/stefanprodan/podinfo:6.0.1")   # PODINFO
    program_for("stefanprodan/potato:1.0.0")            # None
    image_check("stefanprodan/potato:1.0.0")            # 'image "stefanprodan/potato:1.0.0" cannot run ...'
    image_check("ghcr.io/canarist/canarist:0.1.0")      # '... the sandbox runs its own operator; ...'
    workload_image_check("ghcr.io/canarist/canarist:0.1.0")  # None
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from canarist import __version__

__all__ = [
    "LOADTESTER",
    "OPERATOR_IMAGE",
    "OPERATOR_PATHS",
    "OPERATOR_REFUSAL",
    "PODINFO",
    "PROGRAMS",
    "ImageRef",
    "Program",
    "container_argv",
    "image_check",
    "image_tag",
    "is_operator_image",
    "local_argv",
    "parse_image",
    "program_for",
    "workload_image_check",
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
#: The operator's own image: the sandbox runs the operator itself (a process, shown as the `flagger`
#: Deployment and its Pod), never a pod of this image.
OPERATOR_PATHS: Final = ("canarist/canarist",)
OPERATOR_IMAGE: Final = f"ghcr.io/canarist/canarist:{__version__}"
OPERATOR_REFUSAL: Final = "the sandbox runs its own operator; it does not start another"

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


def is_operator_image(image: str) -> bool:
    """``image`` is the operator's (``[registry/]canarist/canarist``, any tag or digest)."""
    return bool(image.strip()) and parse_image(image).path in OPERATOR_PATHS


def image_check(image: str) -> str | None:
    """None when the sandbox can run a pod of ``image``, else why not (listing what it runs; for the
    operator's image: that the sandbox runs its own)."""
    if program_for(image) is not None:
        return None
    if is_operator_image(image):
        return f'image "{image}" cannot run in the sandbox: {OPERATOR_REFUSAL}'
    runs = " and ".join(p.describe() for p in PROGRAMS)
    shown = image if image.strip() else "(none)"
    return f'image "{shown}" cannot run in the sandbox: it runs {runs}'


def workload_image_check(image: str) -> str | None:
    """The control plane's check of a workload's images: `image_check`, except that the operator's image
    is accepted — the sandbox's own ``flagger`` Deployment is of it, ready through the Pod standing for the
    operator process. Another workload of that image is not started: the PodManager refuses its pods
    (``ErrImagePull``, with `image_check`'s reason), so it stays unready."""
    return None if is_operator_image(image) else image_check(image)


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
