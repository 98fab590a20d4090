"""What a loadtester command may run, and how it is turned into processes.

Flagger's loadtester runs any ``cmd`` through ``sh -c``: whoever can reach it (or create a Canary) gets a
shell. canarist does not run a shell at all (unless ``--allow-any-command``):

1. **Parse, never interpret.** :func:`split_pipeline` reads the command with the POSIX shell's quoting
   rules (whitespace separates words; ``'…'`` is literal; ``"…"`` is literal except that ``\\`` escapes
   ``$ ` " \\``; an unquoted ``\\`` escapes the next character) and splits it at unquoted ``|`` into
   pipeline stages. Everything a shell would *expand or interpret* is refused: ``$`` (variables,
   ``$IFS``, ``${…}``, ``$(…)``, ``$'…'``) and backticks, unquoted or inside double quotes; unquoted
   ``; & < > ( ) { }`` (lists, background jobs, redirections, subshells, brace expansion), ``||``,
   newlines, a word starting with ``#`` (a comment). Glob characters ``* ? [`` and ``~`` are passed
   literally (nothing is expanded; curl's own URL globbing is refused by the URL check). So for every
   accepted command the argv is exactly the argv ``sh -c`` would have built (when no file matches a glob).
2. **Allow-list of programs.** The first word of every stage must be an allowed program (default:
   ``hey``, ``curl``, ``ghz``, ``wrk``, ``grpc_health_probe``), or, after a ``|``, one of the filters
   ``grep``, ``jq``, ``head``, ``tail``, ``wc``. Each is resolved **once**, when the loadtester starts,
   to an absolute path from ``PATH``; a command naming a path is refused unless it is exactly that path.
3. **Allow-list of options.** Each known program's arguments are parsed with its own option grammar
   (:mod:`canarist.loadtester.grammars`) and only listed options are accepted; none of them reads or
   writes a local file. Programs added with ``--allow-command`` that have no built-in grammar get their
   arguments unchecked (still without a shell).
4. **Executed directly.** Every stage is exec'ed (no shell), its stdout connected to the next stage's
   stdin by an OS pipe.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from canarist.loadtester.grammars import CommandRejected, Grammar, grammars, validate_args

__all__ = [
    "DEFAULT_ALLOWED_COMMANDS",
    "PIPE_FILTERS",
    "CommandPolicy",
    "CommandRejected",
    "CommandUnrunnable",
    "Stage",
    "check_command",
    "split_pipeline",
]

DEFAULT_ALLOWED_COMMANDS: tuple[str, ...] = ("hey", "curl", "ghz", "wrk", "grpc_health_probe")
PIPE_FILTERS: tuple[str, ...] = ("grep", "jq", "head", "tail", "wc")

MAX_ARG_BYTES = 32 * 4096  # Linux MAX_ARG_STRLEN: one argument, with its terminating NUL


class CommandUnrunnable(ValueError):
    """The command is allowed but cannot be executed (e.g. longer than the kernel's argument limit)."""


_REFUSED_UNQUOTED = {
    ";": "';' separates commands (one pipeline per task; use one webhook per command)",
    "&": "'&' (background jobs, && lists) is shell syntax",
    "<": "'<' redirections are shell syntax (commands read nothing but their pipe)",
    ">": "'>' redirections are shell syntax (output is captured, never written to files)",
    "(": "'(' subshells are shell syntax",
    ")": "')' subshells are shell syntax",
    "{": "'{' brace expansion and groups are shell syntax (quote it to pass it literally)",
    "}": "'}' brace expansion and groups are shell syntax (quote it to pass it literally)",
    "$": "'$' expansions ($VAR, $IFS, ${...}, $(...), $'...') are shell syntax (quote it with '...')",
    "`": "backtick command substitution is shell syntax",
    "\n": "newlines separate commands (one pipeline per task)",
}


def split_pipeline(command: str) -> list[list[str]]:
    """Split ``command`` into pipeline stages of words, as a POSIX shell would, refusing what it would expand.

    Raises :class:`CommandRejected` for shell syntax that is not plain words and ``|``.
    """
    if "\0" in command:
        raise CommandRejected("NUL characters are not allowed")
    stages: list[list[str]] = [[]]
    word: list[str] = []
    in_word = False
    index = 0
    length = len(command)

    def end_word() -> None:
        nonlocal in_word
        if in_word:
            stages[-1].append("".join(word))
            word.clear()
            in_word = False

    while index < length:
        char = command[index]
        if char in " \t":
            end_word()
            index += 1
        elif char == "'":
            close = command.find("'", index + 1)
            if close == -1:
                raise CommandRejected("cannot parse command: unbalanced single quote")
            word.append(command[index + 1 : close])
            in_word = True
            index = close + 1
        elif char == '"':
            index += 1
            in_word = True
            while True:
                if index >= length:
                    raise CommandRejected("cannot parse command: unbalanced double quote")
                inner = command[index]
                if inner == '"':
                    index += 1
                    break
                if inner in "$`":
                    raise CommandRejected(
                        f"{inner!r} inside double quotes is expanded by a shell; use single quotes "
                        "to pass it literally"
                    )
                if inner == "\\" and index + 1 < length and command[index + 1] in '$`"\\\n':
                    if command[index + 1] != "\n":
                        word.append(command[index + 1])
                    index += 2
                    continue
                word.append(inner)
                index += 1
        elif char == "\\":
            if index + 1 >= length:
                raise CommandRejected("cannot parse command: trailing backslash")
            if command[index + 1] != "\n":  # backslash-newline is a line continuation
                word.append(command[index + 1])
                in_word = True
            index += 2
        elif char == "|":
            end_word()
            if index + 1 < length and command[index + 1] == "|":
                raise CommandRejected("'||' lists are shell syntax (one pipeline per task)")
            if not stages[-1]:
                raise CommandRejected("'|' needs a command on both sides")
            stages.append([])
            index += 1
        elif char in _REFUSED_UNQUOTED:
            raise CommandRejected(_REFUSED_UNQUOTED[char])
        elif char == "#" and not in_word:
            raise CommandRejected("'#' starts a shell comment (quote it to pass it literally)")
        else:
            word.append(char)
            in_word = True
            index += 1
    end_word()
    if not stages[-1]:
        raise CommandRejected("empty command" if len(stages) == 1 else "'|' needs a command on both sides")
    return stages


@dataclass(frozen=True)
class Stage:
    program: str  # the allow-listed name
    argv: tuple[str, ...]  # argv[0] is the absolute path resolved at start-up


def _check_length(argv: Sequence[str]) -> None:
    total = 0
    for position, word in enumerate(argv):
        size = len(word.encode(errors="surrogateescape")) + 1
        if size > MAX_ARG_BYTES:
            raise CommandUnrunnable(
                f"argument {position} is {size - 1} bytes; the kernel refuses arguments over "
                f"{MAX_ARG_BYTES - 1} bytes (E2BIG)"
            )
        total += size + 8
    try:
        limit = os.sysconf("SC_ARG_MAX")
    except (OSError, ValueError):  # pragma: no cover - every Linux has it
        return
    environment = sum(len(k) + len(v) + 10 for k, v in os.environ.items())
    if total + environment > limit:
        raise CommandUnrunnable(
            f"the arguments are {total} bytes; with the environment that exceeds the kernel's "
            f"limit of {limit} bytes (E2BIG)"
        )


class CommandPolicy:
    """The allow-list: programs resolved at construction, their grammars, and :meth:`plan`."""

    def __init__(
        self,
        allowed: Iterable[str] = DEFAULT_ALLOWED_COMMANDS,
        allow_any: bool = False,
        pipe_filters: Iterable[str] = PIPE_FILTERS,
        proto_dirs: Sequence[str] = (),
        search_path: str | None = None,
    ) -> None:
        self.allowed = frozenset(n.strip() for n in allowed if n.strip())
        self.allow_any = allow_any
        self.pipe_filters = frozenset(pipe_filters)
        self.proto_dirs = tuple(proto_dirs)
        self.grammars: dict[str, Grammar] = grammars(self.proto_dirs)
        path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
        self.paths: dict[str, str | None] = {}
        for name in sorted(self.allowed | self.pipe_filters):
            found = shutil.which(name, path=path) if "/" not in name else None
            self.paths[name] = os.path.abspath(found) if found else None

    @classmethod
    def from_options(
        cls, allowed: Iterable[str] | None, allow_any: bool = False, proto_dirs: Sequence[str] = ()
    ) -> CommandPolicy:
        names = DEFAULT_ALLOWED_COMMANDS if not allowed else tuple(allowed)
        return cls(allowed=names, allow_any=allow_any, proto_dirs=proto_dirs)

    @property
    def unchecked(self) -> list[str]:
        """Allowed programs without a built-in grammar: their arguments are not checked."""
        return sorted(name for name in self.allowed if name not in self.grammars)

    @property
    def missing(self) -> list[str]:
        """Allowed programs that were not found on PATH at start-up."""
        return sorted(name for name in self.allowed if self.paths.get(name) is None)

    def check(self, command: str) -> None:
        """Raise :class:`CommandRejected` (or :class:`CommandUnrunnable`) unless ``command`` may run."""
        if not self.allow_any:
            self.plan(command)

    def _name(self, word: str, piped: bool) -> str:
        if "/" in word:
            for name, path in self.paths.items():
                if path == word and (name in self.allowed or (piped and name in self.pipe_filters)):
                    return name
            raise CommandRejected(
                f"program path {word!r} is not allowed: name the program (e.g. "
                f"{os.path.basename(word)!r}); only the exact path resolved at start-up is accepted"
            )
        if word not in self.allowed and not (piped and word in self.pipe_filters):
            if word in self.pipe_filters:
                raise CommandRejected(f"{word!r} is only allowed after a pipe (curl ... | {word} ...)")
            allowed_text = ", ".join(sorted(self.allowed)) or "none"
            raise CommandRejected(
                f"program {word!r} is not allowed (allowed: {allowed_text}; start the loadtester with "
                f"--allow-command {word} to allow it)"
            )
        return word

    def validate(self, command: str) -> list[tuple[str, list[str]]]:
        """``(program name, arguments)`` per stage, checked; does not need the programs to be installed."""
        checked: list[tuple[str, list[str]]] = []
        for position, words in enumerate(split_pipeline(command)):
            name = self._name(words[0], piped=position > 0)
            grammar = self.grammars.get(name)
            if grammar is not None:
                validate_args(grammar, words[1:])
            checked.append((name, words[1:]))
        return checked

    def plan(self, command: str) -> tuple[Stage, ...]:
        """The stages to exec for ``command``; raises :class:`CommandRejected` or :class:`CommandUnrunnable`."""
        stages: list[Stage] = []
        for name, args in self.validate(command):
            path = self.paths.get(name)
            if path is None:
                raise CommandRejected(
                    f"program {name!r} is allowed but not installed (not found on PATH when the "
                    "loadtester started)"
                )
            argv = (path, *args)
            _check_length(argv)
            stages.append(Stage(name, argv))
        return tuple(stages)


def check_command(
    command: str,
    allowed: Iterable[str] = DEFAULT_ALLOWED_COMMANDS,
    pipe_filters: Iterable[str] = PIPE_FILTERS,
    proto_dirs: Sequence[str] = (),
) -> None:
    """Raise :class:`CommandRejected` unless ``command`` passes the allow-list and the option grammars.

    A pure check: it does not need the programs to be installed (the loadtester also refuses those).
    """
    CommandPolicy(allowed, pipe_filters=pipe_filters, proto_dirs=proto_dirs).validate(command)
