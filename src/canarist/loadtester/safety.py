"""What a loadtester command may run.

Flagger's loadtester runs any ``cmd`` through ``sh -c``: whoever can reach it (or create a Canary) gets a
shell. canarist refuses that by default. A command is split with :mod:`shlex` into pipeline segments (at
``|``, ``||``, ``&&``, ``;``, ``&`` and newlines) and the program of every segment (its first word) must be
on the allow-list (``hey``, ``curl``, ``ghz``, ``wrk`` by default). A segment after a pipe may also be one
of a few read-only filters (``grep``, ``jq``, ``head``, ``tail``, ``wc``), so ``curl -s URL | grep token``
works while ``curl URL | sh`` does not. Refused everywhere:

* command substitution ``$(...)`` and backticks, process substitution ``<(...)``/``>(...)``;
* subshells and groups ``( )``, here-documents, redirections from or to files (only ``/dev/null`` and
  descriptor duplication such as ``2>&1`` are allowed);
* arguments that read or write local files: a ``file:`` URL, an ``@file`` argument (curl ``-d @x``,
  ``-F f=@x``), and the file options of the default programs (curl ``-o/-O/-D/-c/-K/-T`` and friends,
  hey ``-D``, wrk ``-s``, ghz ``-o/-D/--config``).

The check is deliberately stricter than the shell (a quoted ``;`` is treated as a separator, a ``#`` is not
a comment), so it can only refuse too much, never too little. ``--allow-any-command`` turns it off.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_ALLOWED_COMMANDS: tuple[str, ...] = ("hey", "curl", "ghz", "wrk")
PIPE_FILTERS: tuple[str, ...] = ("grep", "jq", "head", "tail", "wc")

_PUNCTUATION = "();<>|&\n"
_FORBIDDEN_SUBSTRINGS = {
    "$(": "command substitution $(...)",
    "`": "command substitution with backticks",
    "<(": "process substitution",
    ">(": "process substitution",
}
_SAFE_REDIRECT_TARGETS = {"/dev/null"}

# Per-program options that read or write local files (exact flag, or "--flag=value").
_FILE_OPTIONS: dict[str, frozenset[str]] = {
    "curl": frozenset(
        [
            "-o",
            "--output",
            "-O",
            "--remote-name",
            "--remote-name-all",
            "--output-dir",
            "--create-dirs",
            "-D",
            "--dump-header",
            "-c",
            "--cookie-jar",
            "-K",
            "--config",
            "-T",
            "--upload-file",
            "--trace",
            "--trace-ascii",
            "--libcurl",
            "--stderr",
            "--etag-save",
            "--etag-compare",
            "--hsts",
            "--alt-svc",
            "--netrc-file",
        ]
    ),
    "hey": frozenset({"-D", "--D"}),
    "wrk": frozenset({"-s", "--script"}),
    "ghz": frozenset({"-o", "--output", "-D", "--data-file", "--config", "-B", "--binary-file"}),
}
# curl accepts clustered short options (-sSo file); these letters take or make a file.
_CURL_FILE_LETTERS = frozenset("oODcKT")


class CommandRejected(ValueError):
    """The command is not allowed; the message says why and names the program or construct."""


@dataclass(frozen=True)
class CommandPolicy:
    allowed: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_ALLOWED_COMMANDS))
    allow_any: bool = False
    pipe_filters: frozenset[str] = field(default_factory=lambda: frozenset(PIPE_FILTERS))

    @classmethod
    def from_options(cls, allowed: Iterable[str] | None, allow_any: bool = False) -> CommandPolicy:
        names = DEFAULT_ALLOWED_COMMANDS if not allowed else tuple(allowed)
        return cls(allowed=frozenset(n.strip() for n in names if n.strip()), allow_any=allow_any)

    def check(self, command: str) -> None:
        """Raise :class:`CommandRejected` unless ``command`` may run."""
        if self.allow_any:
            return
        check_command(command, self.allowed, self.pipe_filters)


def _is_punctuation(token: str) -> bool:
    return bool(token) and all(ch in _PUNCTUATION for ch in token)


def _split(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=_PUNCTUATION)
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as err:  # unbalanced quotes
        raise CommandRejected(f"cannot parse command: {err}") from err


def _check_arguments(program: str, args: list[str]) -> None:
    options = _FILE_OPTIONS.get(program, frozenset())
    for arg in args:
        lowered = arg.lower()
        if "file:" in lowered:
            raise CommandRejected(f"{program}: file: URLs are not allowed ({arg})")
        if arg.startswith("@") or "=@" in arg:
            raise CommandRejected(f"{program}: reading local files with @ is not allowed ({arg})")
        flag = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if flag in options:
            raise CommandRejected(f"{program}: option {flag} reads or writes local files and is not allowed")
        if program == "curl" and arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
            letters = set(arg[1:])
            if letters & _CURL_FILE_LETTERS and arg[1:].isalpha():
                raise CommandRejected(f"curl: option {arg} reads or writes local files and is not allowed")
        if len(arg) > 2 and arg[:2] in options and not arg.startswith("--"):
            # a short option glued to its value, e.g. curl -o/tmp/x or wrk -sscript.lua
            raise CommandRejected(
                f"{program}: option {arg[:2]} reads or writes local files and is not allowed"
            )


def check_command(command: str, allowed: Iterable[str], pipe_filters: Iterable[str] = PIPE_FILTERS) -> None:
    """Raise :class:`CommandRejected` unless every program in ``command`` is allowed (see module doc)."""
    allowed_set = set(allowed)
    filters = set(pipe_filters)
    if not command.strip():
        raise CommandRejected("empty command")
    for needle, what in _FORBIDDEN_SUBSTRINGS.items():
        if needle in command:
            raise CommandRejected(f"{what} is not allowed")

    tokens = _split(command)
    segments: list[tuple[str, list[str]]] = []  # (separator before it, words)
    current: list[str] = []
    before = ""
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if _is_punctuation(token):
            if "(" in token or ")" in token:
                raise CommandRejected("subshells and ( ) groups are not allowed")
            if "<" in token or ">" in token:
                target = tokens[index + 1] if index + 1 < len(tokens) else ""
                if token in (">&", "<&") and (target.isdigit() or target == "-"):
                    index += 2
                    continue
                if token in (">", ">>", "&>", "&>>", ">&", "<") and target in _SAFE_REDIRECT_TARGETS:
                    index += 2
                    continue
                raise CommandRejected(
                    f"redirection {token} {target}".rstrip() + " is not allowed (only /dev/null and 2>&1)"
                )
            separator = token.replace("\n", ";").strip(";") if token.strip("\n") != ";" else ";"
            if separator not in ("", ";", "&&", "|", "||", "|&"):
                if separator.endswith("&"):
                    raise CommandRejected("background jobs (&) are not allowed")
                raise CommandRejected(f"unexpected {token.strip()!r} in command")
            if current:
                segments.append((before, current))
            elif token.strip("\n"):  # two separators in a row, or a leading separator
                raise CommandRejected(f"unexpected {token.strip()!r} in command")
            current = []
            before = token
            index += 1
            continue
        current.append(token)
        index += 1
    if current:
        segments.append((before, current))
    if not segments:
        raise CommandRejected("empty command")

    for separator, words in segments:
        program = words[0]
        piped = separator.strip("\n") in ("|", "|&")
        if program in allowed_set or (piped and program in filters):
            _check_arguments(program, words[1:])
            continue
        allowed_text = ", ".join(sorted(allowed_set)) or "none"
        raise CommandRejected(
            f"program {program!r} is not allowed (allowed: {allowed_text}; start the loadtester with "
            f"--allow-command {program} to allow it)"
        )
