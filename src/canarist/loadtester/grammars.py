"""The option grammar of every program the loadtester runs without ``--allow-any-command``.

Each grammar is an allow-list: an option that is not listed is refused, whatever it does. The parsers
follow each program's own rules, so the check sees the options the program will see:

* ``curl`` — short clusters (``-sS``, ``-sd test``, ``-XPOST``: an option taking a value eats the rest of the
  cluster or the next word), long options by their **exact** name (curl would also take an unambiguous
  prefix such as ``--trace-a``; canarist refuses every abbreviation), ``--no-NAME`` for listed booleans,
  no ``--name=value`` (curl does not parse it) and no ``--``; every other word is a URL.
* ``gnu`` (``wrk``, ``ghz``, ``grep``, ``head``, ``tail``, ``wc``, ``jq``) — getopt_long: short clusters and
  glued values (``-t2``, ``-c10``), ``--name value`` and ``--name=value`` with the exact name (getopt also
  takes prefixes; refused), options anywhere, ``--`` ends them where the program supports it.
* ``go`` (``hey``, ``grpc_health_probe``, Go's ``flag`` package) — ``-name``/``--name``, ``-name=value`` or
  ``-name value``, booleans only as ``-name`` or ``-name=true|false``; parsing stops at the first word that
  is not a flag (or after ``--``) and the rest are positional.

Value checks refuse what reads or writes a local file (curl ``-d @file``, ``-F f=<file``, ``-w @file``,
``-b file``, hey ``-D``…) by not listing the option at all or by refusing the value. URLs must be
``http://`` or ``https://`` and free of curl's ``[..]``/``{..}`` globbing; curl also takes a scheme-less
``host[:port][/path]``, which it sends over HTTP, except for host names from which it guesses another
protocol (``ftp.``, ``dict.``, ``ldap.``, ``imap.``, ``smtp.``, ``pop3.``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal


class CommandRejected(ValueError):
    """The command is not allowed; the message says why and names the program, option or construct."""


ValueCheck = Callable[[str], str | None]  # returns the reason for a refusal, or None
PositionalCheck = Callable[[Sequence[str], frozenset[str]], str | None]  # (words, options seen)


@dataclass(frozen=True)
class Opt:
    takes_value: bool = False
    check: ValueCheck | None = None
    canonical: str = ""  # the name the positional check sees (e.g. "-e" and "--regexp" → "regexp")


@dataclass(frozen=True)
class Grammar:
    program: str
    style: Literal["curl", "gnu", "go"]
    options: Mapping[str, Opt]  # "-s", "--silent"; go style: the bare name ("n", "disable-keepalive")
    positional: PositionalCheck
    double_dash: bool = True  # "--" ends the options (gnu, go)
    negatable: bool = False  # "--no-NAME" for a listed boolean (curl, kingpin)
    no_at_words: bool = False  # kingpin reads arguments from "@file": refuse every word starting with "@"
    summary: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


# -- value checks ------------------------------------------------------------------------------------

_URL_RE = re.compile(r"^https?://[^\s\[\]{}]+$", re.IGNORECASE)


def http_url(value: str) -> str | None:
    if _URL_RE.match(value):
        return None
    if re.match(r"^https?://", value, re.IGNORECASE):
        return f"URL {value!r} contains whitespace or curl glob characters [ ] {{ }}"
    return f"{value!r} is not an http:// or https:// URL"


# A URL without a scheme, as curl takes it: host[:port][/path...]. curl then speaks HTTP, unless the host
# name starts with one of the prefixes it guesses another protocol from (its documentation: "ftp." means FTP,
# and so on), which are refused.
_SCHEMELESS_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/[^\s\[\]{}]*)?$")
_CURL_GUESSED_PREFIXES = ("ftp.", "dict.", "ldap.", "imap.", "smtp.", "pop3.")


def curl_url(value: str) -> str | None:
    """An ``http(s)://`` URL, or a scheme-less ``host[:port][/path]`` that curl sends over HTTP (the
    walkthrough's ``curl -sd 't' podinfo-canary:9898/token``)."""
    if "://" in value or not _SCHEMELESS_RE.match(value):
        return http_url(value)
    host = value.split("/", 1)[0].split(":", 1)[0].lower()
    if host.startswith(_CURL_GUESSED_PREFIXES):
        return f"{value!r} has no scheme and curl would guess a protocol other than HTTP from its host name"
    return None


def _not_at_file(value: str) -> str | None:
    return f"{value!r} reads a local file (@file)" if value.startswith("@") else None


def _curl_form(value: str) -> str | None:
    if "@" in value or "<" in value:
        return f"{value!r} may read a local file (@ or < in a form field; use --form-string)"
    return None


def _curl_urlencode(value: str) -> str | None:
    # content | =content | name=content | @file | name@file: a file when "@" comes before any "="
    at, eq = value.find("@"), value.find("=")
    if at != -1 and (eq == -1 or at < eq):
        return f"{value!r} reads a local file (name@file)"
    return None


def _curl_cookie(value: str) -> str | None:
    return None if "=" in value else f"{value!r} is a cookie file name (only NAME=VALUE cookies)"


def _curl_write_out(value: str) -> str | None:
    if value.startswith("@"):
        return f"{value!r} reads the format from a local file"
    if "%output" in value.lower():
        return f"{value!r} writes to a file (%output{{...}})"
    return None


def _curl_header(value: str) -> str | None:
    return f"{value!r} reads headers from a local file" if value.startswith("@") else None


def _exactly(*allowed: str) -> ValueCheck:
    def check(value: str) -> str | None:
        return None if value in allowed else f"{value!r} is not one of {', '.join(allowed)}"

    return check


_GO_BOOL = frozenset({"1", "0", "t", "f", "T", "F", "true", "false", "TRUE", "FALSE", "True", "False"})

_JQ_FORBIDDEN = re.compile(
    r"(?<![A-Za-z0-9_$])(import|include|env|\$ENV|input_filename|modulemeta|get_search_list"
    r"|get_jq_origin|get_prog_origin|\$__loc__|\$__prog_args)(?![A-Za-z0-9_])"
)


# -- positional checks -------------------------------------------------------------------------------


def _urls(minimum: int, maximum: int | None, url: ValueCheck = http_url) -> PositionalCheck:
    def check(words: Sequence[str], seen: frozenset[str]) -> str | None:
        if len(words) < minimum:
            return "a URL is required"
        if maximum is not None and len(words) > maximum:
            extra = " ".join(words[maximum:])
            return f"unexpected arguments after the URL: {extra!r}"
        for word in words:
            reason = url(word)
            if reason:
                return reason
        return None

    return check


def _none(words: Sequence[str], seen: frozenset[str]) -> str | None:
    if words:
        return f"no file or other arguments are allowed (reads stdin only), got {' '.join(words)!r}"
    return None


def _grep_positional(words: Sequence[str], seen: frozenset[str]) -> str | None:
    wanted = 0 if "regexp" in seen else 1
    if len(words) != wanted:
        return f"exactly one pattern and no file arguments (grep reads stdin only), got {list(words)}"
    return None


def _jq_positional(words: Sequence[str], seen: frozenset[str]) -> str | None:
    if len(words) != 1:
        return f"exactly one filter and no file arguments (jq reads stdin only), got {list(words)}"
    found = _JQ_FORBIDDEN.search(words[0])
    if found:
        return f"the filter uses {found.group(1)!r} (modules, files and the environment are off limits)"
    return None


def _ghz_positional(words: Sequence[str], seen: frozenset[str]) -> str | None:
    if len(words) != 1:
        return f"exactly one host:port is required, got {list(words)}"
    if words[0].startswith("-"):
        return f"{words[0]!r} is not a host"
    return None


# -- the grammars ------------------------------------------------------------------------------------


def _table(
    flags: str = "", valued: Mapping[str, ValueCheck | None] | None = None, prefix: str = "-"
) -> dict[str, Opt]:
    """``flags``: space-separated boolean names; ``valued``: name → value check (None: any value).

    A name is written ``s|silent`` for a short and a long spelling of one option.
    """
    table: dict[str, Opt] = {}

    def add(spec: str, takes_value: bool, check: ValueCheck | None) -> None:
        names = spec.split("|")
        opt = Opt(takes_value, check, names[-1])
        for name in names:
            key = name if prefix == "" else (f"-{name}" if len(name) == 1 else f"--{name}")
            table[key] = opt

    for spec in flags.split():
        add(spec, False, None)
    for spec, check in (valued or {}).items():
        add(spec, True, check)
    return table


CURL = Grammar(
    "curl",
    "curl",
    _table(
        "s|silent S|show-error L|location k|insecure f|fail fail-with-body v|verbose i|include I|head "
        "G|get g|globoff N|buffer 0|http1.0 http1.1 http2 http2-prior-knowledge 4|ipv4 6|ipv6 compressed "
        "retry-connrefused retry-all-errors keepalive progress-meter #|progress-bar Z|parallel basic digest "
        "anyauth tcp-nodelay path-as-is raw h|help V|version M|manual",
        {
            "d|data": _not_at_file,
            "data-ascii": _not_at_file,
            "data-binary": _not_at_file,
            "data-raw": None,
            "data-urlencode": _curl_urlencode,
            "json": _not_at_file,
            "F|form": _curl_form,
            "form-string": None,
            "H|header": _curl_header,
            "X|request": None,
            "A|user-agent": None,
            "e|referer": None,
            "u|user": None,
            "oauth2-bearer": None,
            "m|max-time": None,
            "connect-timeout": None,
            "retry": None,
            "retry-delay": None,
            "retry-max-time": None,
            "max-redirs": None,
            "w|write-out": _curl_write_out,
            "b|cookie": _curl_cookie,
            "url": curl_url,
            "resolve": None,
            "connect-to": None,
            "limit-rate": None,
            "r|range": None,
            "Y|speed-limit": None,
            "y|speed-time": None,
            "parallel-max": None,
            "expect100-timeout": None,
            "keepalive-time": None,
        },
    ),
    _urls(0, None, curl_url),
    double_dash=False,
    negatable=True,
    summary="HTTP(S) requests; output to stdout only",
)

HEY = Grammar(
    "hey",
    "go",
    _table(
        "h2 disable-compression disable-keepalive disable-redirects",
        {
            "n": None,
            "c": None,
            "q": None,
            "z": None,
            "o": _exactly("csv"),
            "m": None,
            "H": None,
            "t": None,
            "A": None,
            "d": None,
            "T": None,
            "a": None,
            "x": None,
            "host": None,
            "cpus": None,
        },
        prefix="",
    ),
    _urls(1, 1),
    summary="HTTP load; exactly one URL",
)

GRPC_HEALTH_PROBE = Grammar(
    "grpc_health_probe",
    "go",
    _table(
        "tls tls-no-verify gzip v alts",
        {
            "addr": None,
            "service": None,
            "connect-timeout": None,
            "rpc-timeout": None,
            "tls-server-name": None,
            "user-agent": None,
            "rpc-header": None,
        },
        prefix="",
    ),
    _none,
    summary="gRPC health check; no certificate files",
)

WRK = Grammar(
    "wrk",
    "gnu",
    _table(
        "L|latency v|version",
        {"t|threads": None, "c|connections": None, "d|duration": None, "H|header": None, "T|timeout": None},
    ),
    _urls(1, 1),
    summary="HTTP load; exactly one URL, no Lua script",
)


def _grep() -> Grammar:
    return Grammar(
        "grep",
        "gnu",
        _table(
            "i|ignore-case y v|invert-match c|count q|quiet s|no-messages silent E|extended-regexp "
            "F|fixed-strings G|basic-regexp P|perl-regexp w|word-regexp x|line-regexp o|only-matching "
            "n|line-number b|byte-offset a|text z|null-data",
            {"e|regexp": None, "m|max-count": None, "A|after-context": None, "B|before-context": None,
             "C|context": None},
        ),
        _grep_positional,
    )  # fmt: skip


def _ghz(proto_dirs: Sequence[str]) -> Grammar:
    roots = tuple(os.path.realpath(d) for d in proto_dirs)

    def in_proto_dirs(value: str) -> str | None:
        if not roots:
            return (
                f"{value!r}: reading .proto files is off unless the loadtester runs with --proto-dir DIR "
                "(use server reflection, or --proto-dir)"
            )
        for part in value.split(","):
            real = os.path.realpath(part)
            if not any(real == root or real.startswith(root.rstrip("/") + "/") for root in roots):
                return f"{part!r} is outside the --proto-dir directories ({', '.join(roots)})"
        return None

    return Grammar(
        "ghz",
        "gnu",
        _table(
            "insecure skipTLS async count-errors e|enable-compression h|help v|version",
            {
                "proto": in_proto_dirs,
                "protoset": in_proto_dirs,
                "i|import-paths": in_proto_dirs,
                "call": None,
                "authority": None,
                "cname": None,
                "c|concurrency": None,
                "n|total": None,
                "r|rps": None,
                "q|qps": None,
                "t|timeout": None,
                "z|duration": None,
                "x|max-duration": None,
                "duration-stop": None,
                "d|data": _not_at_file,
                "m|metadata": _not_at_file,
                "O|format": None,
                "connections": None,
                "connect-timeout": None,
                "keepalive": None,
                "name": None,
                "cpus": None,
                "stream-interval": None,
                "lb-strategy": None,
                "skipFirst": None,
            },
        ),
        _ghz_positional,
        negatable=True,
        no_at_words=True,
        summary="gRPC load; one host, .proto files only from --proto-dir",
    )


HEAD = Grammar("head", "gnu", _table("q|quiet", {"n|lines": None, "c|bytes": None}), _none)
TAIL = Grammar("tail", "gnu", _table("q|quiet", {"n|lines": None, "c|bytes": None}), _none)
WC = Grammar("wc", "gnu", _table("l|lines c|bytes w|words m|chars L|max-line-length"), _none)
JQ = Grammar(
    "jq",
    "gnu",
    _table(
        "r|raw-output j|join-output c|compact-output e|exit-status M|monochrome-output C|color-output "
        "S|sort-keys s|slurp n|null-input a|ascii-output tab",
        {"indent": None},
    ),
    _jq_positional,
    double_dash=False,
)

PIPE_FILTER_GRAMMARS: dict[str, Grammar] = {"grep": _grep(), "jq": JQ, "head": HEAD, "tail": TAIL, "wc": WC}


def grammars(proto_dirs: Sequence[str] = ()) -> dict[str, Grammar]:
    """Every known grammar by program name (``ghz`` depends on the ``--proto-dir`` directories)."""
    table = {"curl": CURL, "hey": HEY, "wrk": WRK, "grpc_health_probe": GRPC_HEALTH_PROBE}
    table["ghz"] = _ghz(proto_dirs)
    table.update(PIPE_FILTER_GRAMMARS)
    return table


# -- the parser --------------------------------------------------------------------------------------


def _refuse(grammar: Grammar, text: str) -> CommandRejected:
    return CommandRejected(f"{grammar.program}: {text}")


def _value(grammar: Grammar, name: str, opt: Opt, value: str) -> None:
    if opt.check is not None:
        reason = opt.check(value)
        if reason:
            raise _refuse(grammar, f"option {name}: {reason}")


def _long_hint(grammar: Grammar, name: str) -> str:
    known = [key for key in grammar.options if key.startswith("--")]
    if any(key.startswith(f"--{name}") for key in known):
        return " (abbreviated options are refused: write the full name)"
    return ""


def validate_args(grammar: Grammar, args: Sequence[str]) -> None:
    """Raise :class:`CommandRejected` unless every word of ``args`` (argv without the program) is allowed."""
    if grammar.no_at_words:
        for word in args:
            if word.startswith("@"):
                raise _refuse(grammar, f"{word!r}: arguments starting with @ are read from a file")
    if grammar.style == "go":
        _validate_go(grammar, args)
    else:
        _validate_getopt(grammar, args)


def _option_value(
    grammar: Grammar, args: Sequence[str], index: int, key: str, eq: str, glued: str
) -> tuple[str, int]:
    """The value of option ``key``: ``glued`` after its ``=``, else the word at ``index`` (and the index
    past it); refused when there is none."""
    if eq:
        return glued, index
    if index >= len(args):
        raise _refuse(grammar, f"option {key} needs a value")
    return args[index], index + 1


def _validate_getopt(grammar: Grammar, args: Sequence[str]) -> None:
    positional: list[str] = []
    seen: set[str] = set()
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == "--":
            if not grammar.double_dash:
                raise _refuse(grammar, "'--' is not allowed")
            positional.extend(args[index:])
            break
        if word.startswith("--"):
            name, eq, glued = word[2:].partition("=")
            key = f"--{name}"
            opt = grammar.options.get(key)
            if opt is None and grammar.negatable and name.startswith("no-"):
                negated = grammar.options.get(f"--{name[3:]}")
                if negated is not None and not negated.takes_value:
                    opt = negated
            if opt is None:
                raise _refuse(grammar, f"option {key} is not allowed{_long_hint(grammar, name)}")
            seen.add(opt.canonical)
            if not opt.takes_value:
                if eq:
                    raise _refuse(grammar, f"option {key} takes no value")
                continue
            if eq and grammar.style == "curl":
                raise _refuse(grammar, f"write {key} VALUE, not {key}=VALUE (curl does not split at =)")
            value, index = _option_value(grammar, args, index, key, eq, glued)
            _value(grammar, key, opt, value)
            continue
        if word.startswith("-") and word != "-":
            position = 1
            while position < len(word):
                letter = word[position]
                key = f"-{letter}"
                opt = grammar.options.get(key)
                if opt is None:
                    where = f" (in {word})" if len(word) > 2 else ""
                    raise _refuse(grammar, f"option {key}{where} is not allowed")
                seen.add(opt.canonical)
                position += 1
                if opt.takes_value:
                    if position < len(word):
                        value = word[position:]
                    elif index < len(args):
                        value = args[index]
                        index += 1
                    else:
                        raise _refuse(grammar, f"option {key} needs a value")
                    _value(grammar, key, opt, value)
                    break
            continue
        if word == "-":
            raise _refuse(grammar, "'-' (stdin or stdout as a file) is not allowed")
        positional.append(word)
    reason = grammar.positional(positional, frozenset(seen))
    if reason:
        raise _refuse(grammar, reason)


def _validate_go(grammar: Grammar, args: Sequence[str]) -> None:
    seen: set[str] = set()
    index = 0
    while index < len(args):
        word = args[index]
        if len(word) < 2 or not word.startswith("-"):
            break  # Go's flag package stops at the first non-flag word
        index += 1
        if word == "--":
            break
        body = word[2:] if word.startswith("--") else word[1:]
        if not body or body.startswith(("-", "=")):
            raise _refuse(grammar, f"bad flag syntax: {word}")
        name, eq, glued = body.partition("=")
        opt = grammar.options.get(name)
        if opt is None:
            raise _refuse(grammar, f"option -{name} is not allowed")
        seen.add(opt.canonical)
        if not opt.takes_value:
            if eq and glued not in _GO_BOOL:
                raise _refuse(grammar, f"option -{name} takes true or false, got {glued!r}")
            continue
        value, index = _option_value(grammar, args, index, f"-{name}", eq, glued)
        _value(grammar, f"-{name}", opt, value)
    reason = grammar.positional(list(args[index:]), frozenset(seen))
    if reason:
        raise _refuse(grammar, reason)


def describe(grammar: Grammar) -> str:
    """The allowed options, for the docs and error messages."""
    names = sorted(grammar.options, key=lambda key: (key.lstrip("-").lower(), key))
    return " ".join(
        (f"-{n}" if grammar.style == "go" else n) + (" V" if grammar.options[n].takes_value else "")
        for n in names
    )
