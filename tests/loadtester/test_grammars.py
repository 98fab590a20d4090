"""The parser and the option grammars, as pure functions (ghz, wrk and grpc_health_probe need not be installed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from canarist.loadtester import CommandRejected, check_command, split_pipeline

ALLOWED = [
    # the walkthrough and Flagger's docs
    "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/",
    "hey -z 1m -q 5 -c 2 -m POST -d '{\"test\": true}' http://podinfo-canary.test:9898/echo",
    "curl -sd 'test' http://podinfo-canary:9898/token | grep token",
    # the walkthrough's mirroring acceptance test: no scheme, which curl sends over HTTP
    "curl -sd 't' podinfo-canary:9898/token | grep token",
    "curl -s podinfo-canary.test.svc.cluster.local/ --url localhost:9898",
    "grpc_health_probe -connect-timeout=1s -addr=podinfo-canary:9999",
    "ghz -z 1m -c 2 --insecure --call grpc.health.v1.Health/Check podinfo-canary.test:9999",
    "wrk -t2 -c10 -d30s http://podinfo-canary.test:9898/",
    # more spellings of the same options
    "hey -n=10 --c 2 -disable-keepalive -h2=false -H 'Accept: text/html' -o csv https://a.example/",
    "hey -- http://a/",
    "curl -XPOST -sSf --retry 3 --connect-timeout 2 -H 'Content-Type: application/json' http://a/b",
    "curl --no-buffer --no-progress-meter -w '%{http_code}' -b 'session=1' https://a/ http://b/",
    "curl -u user:pass --url http://a/ | jq -r '.items[] | .name' | head -n 1",
    "curl -s http://a/ | grep -iE 'ok|ready' | wc -l",
    "curl -s http://a/ | grep -c -e ok -e ready",
    "curl -s http://a/ | tail -n 2",
    "wrk --threads 2 --connections=10 --duration 30s --latency -H 'Host: x' --timeout=2s http://a/",
    'ghz --insecure --no-skipTLS --no-async -n10 -c 2 --rps 5 -d \'{"name":"x"}\' -m \'{"k":"v"}\' a:1',
    "grpc_health_probe --addr localhost:9999 -service foo -tls -tls-no-verify -rpc-timeout 2s",
    "grpc_health_probe -tls=true -addr=a:1",
]

REFUSED = [
    ("curl -so/tmp/x http://a/", "option -o (in -so/tmp/x)"),
    ("curl --trace-a /tmp/x http://a/", "--trace-a is not allowed"),
    ("curl --da @x http://a/", "abbreviated options are refused"),
    ("curl --data=@x http://a/", "curl does not split at ="),
    ("curl -- http://a/", "'--' is not allowed"),
    ("curl -d@/secret http://a/", "reads a local file"),
    ("curl --data-binary @/s http://a/", "reads a local file"),
    ("curl -F 'f=</secret' http://a/", "may read a local file"),
    ("curl -F 'a=b;headers=@/s' http://a/", "may read a local file"),
    ("curl -w@/secret http://a/", "reads the format from a local file"),
    ("curl -w '%output{/tmp/x}' http://a/", "writes to a file"),
    ("curl '[f-f]ile:///secret'", "not an http:// or https:// URL"),
    ("curl 'http://a/[1-9]'", "glob characters"),
    ("curl 'http://a/{x,y}'", "glob characters"),
    ("curl ftp://a/", "not an http"),
    ("curl ftp.example.com/x", "curl would guess a protocol other than HTTP"),
    ("curl DICT.example.com:2628/d:x", "curl would guess a protocol other than HTTP"),
    ("curl file:/etc/passwd", "not an http"),
    ("curl user@podinfo:9898/", "not an http"),
    ("curl 'podinfo:9898/[1-2]'", "not an http"),
    ("curl --url file:///etc/passwd", "not an http"),
    ("curl -x http://proxy:1 http://a/", "option -x is not allowed"),
    ("curl --unix-socket /var/run/docker.sock http://a/", "--unix-socket is not allowed"),
    ("curl --cacert /s https://a/", "--cacert is not allowed"),
    ("curl -n http://a/", "option -n is not allowed"),
    ("curl --next http://a/", "--next is not allowed"),
    ("curl --no-url http://a/", "--no-url is not allowed"),  # --no- only for booleans
    ("hey -D /secret http://a/", "option -D is not allowed"),
    ("hey -o /tmp/x http://a/", "is not one of csv"),
    ("hey http://a/ http://b/", "unexpected arguments after the URL"),
    ("hey -n 1", "a URL is required"),
    ("hey ---n 1 http://a/", "bad flag syntax"),
    ("hey -h2=maybe http://a/", "takes true or false"),
    ("hey file:///etc/passwd", "not an http"),
    ("wrk -s /tmp/x.lua http://a/", "option -s is not allowed"),
    ("wrk --script=/tmp/x.lua http://a/", "--script is not allowed"),
    ("wrk -t2 http://a/ extra", "unexpected arguments"),
    ("wrk --lat http://a/", "abbreviated"),
    ("ghz --proto /tmp/x.proto --call a.B/C a:1", "--proto-dir"),
    ("ghz --config=/tmp/ghz.json a:1", "--config is not allowed"),
    ("ghz -D /secret a:1", "option -D is not allowed"),
    ("ghz -o /tmp/out a:1", "option -o is not allowed"),
    ("ghz --debug /tmp/log a:1", "--debug is not allowed"),
    ("ghz -d @/secret a:1", "arguments starting with @"),
    ("ghz -d@ a:1", "reads a local file"),
    ("ghz --cacert /secret a:1", "--cacert is not allowed"),
    ("ghz a:1 b:2", "exactly one host"),
    ("grpc_health_probe -tls-ca-cert=/secret -addr=a:1", "-tls-ca-cert is not allowed"),
    ("grpc_health_probe -tls-client-key /secret -addr=a:1", "-tls-client-key is not allowed"),
    ("grpc_health_probe -addr=a:1 extra", "no file or other arguments"),
    ("curl http://a/ | grep x /etc/passwd", "no file arguments"),
    ("curl http://a/ | grep -r x", "option -r is not allowed"),
    ("curl http://a/ | grep -e x /etc/passwd", "no file arguments"),
    ("curl http://a/ | jq -f /s", "option -f is not allowed"),
    ("curl http://a/ | jq --rawfile a /s .", "--rawfile is not allowed"),
    ("curl http://a/ | jq -L /tmp 'import \"x\" as x; .'", "option -L is not allowed"),
    ("curl http://a/ | jq 'include \"x\"; .'", "'include'"),
    ("curl http://a/ | jq 'env.HOME'", "'env'"),
    ("curl http://a/ | head /etc/passwd", "no file"),
    ("curl http://a/ | tail -f", "option -f is not allowed"),
    ("curl http://a/ | wc --files0-from=/s", "--files0-from is not allowed"),
    ("grep x", "only allowed after a pipe"),
    ("rm -rf /", "program 'rm' is not allowed"),
    ("/usr/bin/env hey http://a/", "program path"),
    ("FOO=1 hey http://a/", "program 'FOO=1' is not allowed"),
]

SHELL_SYNTAX = [
    ("curl -s${IFS}-o${IFS}/tmp/x http://a/", "'$' expansions"),
    ("curl -s {-o,/tmp/x} http://a/", "brace expansion"),
    ("curl $'\\x2do' /tmp/x http://a/", "'$' expansions"),
    ('curl "$HOME" http://a/', "inside double quotes"),
    ('curl "`id`" http://a/', "inside double quotes"),
    ("curl http://a/ ; id", "';' separates commands"),
    ("curl http://a/ & id", "'&'"),
    ("curl http://a/ > /tmp/x", "redirections"),
    ("curl http://a/ < /etc/passwd", "redirections"),
    ("(curl http://a/)", "subshells"),
    ("curl http://a/ || id", "'||'"),
    ("curl http://a/ | | grep x", "both sides"),
    ("| grep x", "both sides"),
    ("curl http://a/ |", "both sides"),
    ("curl http://a/\nid", "newlines"),
    ("curl http://a/ # comment", "comment"),
    ("curl 'http://a/", "unbalanced single quote"),
    ('curl "http://a/', "unbalanced double quote"),
    ("curl http://a/ \\", "trailing backslash"),
    ("curl http://a/\0", "NUL"),
    ("   ", "empty command"),
]


@pytest.mark.parametrize("command", ALLOWED)
def test_allowed_commands(command):
    check_command(command)


@pytest.mark.parametrize(
    ("command", "reason"), REFUSED + SHELL_SYNTAX, ids=[c for c, _ in REFUSED + SHELL_SYNTAX]
)
def test_refused_commands_say_why(command, reason):
    with pytest.raises(CommandRejected) as refused:
        check_command(command)
    assert reason in str(refused.value)


def test_ghz_reads_proto_files_only_from_proto_dirs(tmp_path: Path):
    protos = tmp_path / "protos"
    protos.mkdir()
    (protos / "hello.proto").write_text('syntax = "proto3";\n')
    (tmp_path / "outside.proto").write_text("")
    inside = f"ghz --insecure --proto {protos}/hello.proto -i {protos},{protos}/sub --call a.B/C a:1"
    check_command(inside, proto_dirs=[str(protos)])
    for outside in (f"{tmp_path}/outside.proto", f"{protos}/../outside.proto", "/etc/passwd"):
        with pytest.raises(CommandRejected, match="outside the --proto-dir"):
            check_command(f"ghz --proto={outside} --call a.B/C a:1", proto_dirs=[str(protos)])
    (protos / "link.proto").symlink_to(tmp_path / "outside.proto")
    with pytest.raises(CommandRejected, match="outside the --proto-dir"):
        check_command(f"ghz --protoset {protos}/link.proto a:1", proto_dirs=[str(protos)])


WORDS = [
    "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/",
    "hey -m POST -d '{\"a\": [1, 2]}' http://a/",
    "curl -H \"X-Quoted: a \\\"b\\\" \\\\ c\" http://a/'it'\\''s'",
    "curl -d 'it'\"'\"'s' --data-raw 'a  b' http://a/",
    "curl -H X-Esc:\\ a\\ b http://a/ ''",
    "curl -d 'x\ty' 'http://a/?q=*&r=?'",
    'curl -H "tab\tin double" http://a/~user',
    "curl http://a/\\\nb",
]


@pytest.mark.parametrize("command", WORDS)
def test_words_are_exactly_what_sh_would_pass(command):
    # For every accepted command the argv is the one `sh -c` would build: nothing lost, nothing expanded.
    [words] = split_pipeline(command)
    script = f"set -- {command.split(' ', 1)[1]}\nprintf '%s\\0' \"$@\""
    shell = subprocess.run(["sh", "-c", script], capture_output=True, check=True)
    assert words[1:] == shell.stdout.decode().split("\0")[:-1]


def test_pipeline_stages():
    assert split_pipeline("curl -s 'http://a/|b' | grep 'x|y' |head -n 1") == [
        ["curl", "-s", "http://a/|b"],
        ["grep", "x|y"],
        ["head", "-n", "1"],
    ]
