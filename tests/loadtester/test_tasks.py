import asyncio
import contextlib
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.loadtester.conftest import hook

pytestmark = pytest.mark.timeout(60)

TEST_PROGRAMS = ("hey", "curl", "echo", "false", "sleep", "true", "printf")


async def test_bash_success_and_exit_codes(loadtester):
    client = await loadtester(allowed_commands=TEST_PROGRAMS)
    assert await client.post("/", hook(type="bash", cmd="true")) == (200, "")
    status, text = await client.post("/", hook(type="bash", cmd="sleep oops"))
    assert status == 500
    assert text.startswith("command sleep oops failed: exit status 1: ")
    assert "oops" in text.removeprefix("command sleep oops failed")
    # a pipeline's status is its last stage's, as in sh
    assert (await client.post("/", hook(type="bash", cmd="false | grep -c x")))[0] == 500


async def test_bash_return_cmd_output(loadtester):
    client = await loadtester(allowed_commands=TEST_PROGRAMS)
    assert await client.post("/", hook(type="bash", cmd="echo hello world", returnCmdOutput="true")) == (
        200,
        "hello world\n",
    )
    # without returnCmdOutput the output is not echoed
    assert await client.post("/", hook(type="bash", cmd="echo hello world")) == (200, "")


async def test_bash_timeout_returns_500(loadtester):
    client = await loadtester(allowed_commands=TEST_PROGRAMS, timeout_s=0.3)
    status, text = await client.post("/", hook(type="bash", cmd="sleep 30"))
    assert status == 500
    assert text == "command sleep 30 timed out after 0.3s"


async def test_cmd_is_async_and_deduplicated_while_running(loadtester):
    client = await loadtester(allowed_commands=TEST_PROGRAMS)
    tester = client.tester
    assert await client.post("/", hook(cmd="sleep 30")) == (202, "task accepted")
    assert await client.post("/", hook(cmd="sleep 30")) == (
        202,
        "command skipped sleep 30 is already running",
    )
    # another canary, or another command, is a different task
    assert await client.post("/", hook("other", cmd="sleep 30")) == (202, "task accepted")
    assert await client.post("/", hook(type="cmd", cmd="sleep 29")) == (202, "task accepted")
    assert set(tester.running) == {
        ("podinfo.test", "sleep 30"),
        ("other.test", "sleep 30"),
        ("podinfo.test", "sleep 29"),
    }
    _, metrics = await client.get("/metrics")
    assert 'canarist_loadtester_tasks_total{result="skipped",type="cmd"} 1.0' in metrics
    assert "canarist_loadtester_tasks_running 3.0" in metrics
    await tester.cancel_tasks()
    assert tester.running == {}


async def test_cmd_can_run_again_after_it_finished(loadtester):
    client = await loadtester(allowed_commands=TEST_PROGRAMS)
    assert (await client.post("/", hook(cmd="echo one", logCmdOutput="true")))[0] == 202
    await client.tester.wait_idle()
    assert (await client.post("/", hook(cmd="echo one", logCmdOutput="true")))[1] == "task accepted"
    await client.tester.wait_idle()
    outcomes = client.tester.completed
    assert [o.stdout for o in outcomes] == ["one\n", "one\n"]
    assert all(o.ok for o in outcomes)


async def test_cmd_output_is_logged_when_asked(loadtester, caplog):
    client = await loadtester(allowed_commands=TEST_PROGRAMS)
    caplog.set_level("INFO", logger="canarist.loadtester")
    await client.post("/", hook(cmd="printf %s-%s visible output", logCmdOutput="true"))
    await client.post("/", hook(cmd="printf %s-%s hidden output"))
    await client.tester.wait_idle()
    assert "visible-output" in caplog.text
    assert "hidden-output" not in caplog.text


def _process_alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        state = next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    return " Z " not in state and "zombie" not in state


async def test_timeout_kills_the_task_and_its_children(loadtester, tmp_path):
    pid_file = tmp_path / "pid"
    client = await loadtester(allow_any_command=True, timeout_s=0.5)
    command = f"sleep 30 & echo $! > {pid_file}; wait"
    assert (await client.post("/", hook(cmd=command)))[0] == 202
    await client.tester.wait_idle(timeout_s=20)
    [outcome] = client.tester.completed
    assert outcome.timed_out
    assert outcome.exit_code is None
    child = int(pid_file.read_text())
    for _ in range(100):
        if not _process_alive(child):
            break
        await asyncio.sleep(0.05)
    assert not _process_alive(child), f"sleep {child} survived the task timeout"
    _, metrics = await client.get("/metrics")
    assert 'canarist_loadtester_tasks_total{result="timeout",type="cmd"} 1.0' in metrics


def _gone(pid: int, *argvs: list[str]) -> bool:
    """The process is dead and reaped (or its PID now belongs to a program other than ``argvs``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except FileNotFoundError:
        return True
    return all([part.decode() for part in cmdline[1:]] != argv[1:] for argv in argvs)


async def _stop_bounded(tester, what: str) -> None:
    try:
        async with asyncio.timeout(10):  # a bound against hanging, not a timing assertion
            await tester.stop()
    except TimeoutError:
        pytest.fail(f"stop() waited for {what} instead of killing it")


async def test_stop_kills_running_tasks(loadtester):
    # issue #10: sleep 600 cannot finish during the test, so "gone" means killed.
    client = await loadtester(allowed_commands=TEST_PROGRAMS)
    tester = client.tester
    assert await client.post("/", hook(cmd="sleep 600")) == (202, "task accepted")
    assert await client.post("/", hook(cmd="sleep 601 | grep x")) == (202, "task accepted")
    async with asyncio.timeout(10):
        while len(tester.started_pids) < 3:  # noqa: ASYNC110 - waits for the spawns, a condition
            await asyncio.sleep(0.01)
    pids = list(tester.started_pids)
    for pid in pids:
        os.kill(pid, 0)  # alive before the stop
    await _stop_bounded(tester, "sleep 600")
    assert tester.running == {}
    for pid in pids:
        assert _gone(pid, ["sleep", "600"], ["sleep", "601"], ["grep", "x"])


def _processes_with(marker: str) -> list[int]:
    """Live (not zombie) processes whose argv contains ``marker``, wherever they were reparented."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if marker.encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("any_command", [False, True], ids=["exec", "allow-any-shell"])
@pytest.mark.parametrize("yields", range(0, 24, 2))
async def test_stop_kills_a_command_that_is_being_spawned(loadtester, yields, any_command):
    # issue #10: the stop lands `yields` loop turns after the request was sent: before, during or after
    # the spawn of one of the pipeline's stages. Whatever was started must be gone when stop() returns.
    options = {"allow_any_command": True} if any_command else {"allowed_commands": TEST_PROGRAMS}
    client = await loadtester(**options)
    tester = client.tester
    marker = f"issue10-{yields}-{any_command}-{os.getpid()}"
    command = "sleep 603 | " + " | ".join([f"grep {marker}"] * 4)
    post = asyncio.create_task(client.post("/", hook(cmd=command)))
    for _ in range(yields):
        await asyncio.sleep(0)
    await _stop_bounded(tester, "a command being spawned")
    with contextlib.suppress(aiohttp.ClientError):
        await post
    assert tester.running == {}
    assert _processes_with(marker) == []
    for pid in tester.started_pids:
        assert _gone(pid, ["sleep", "603"], ["grep", marker])


@pytest.mark.parametrize(
    ("command", "named"),
    [
        ("rm -rf {victim}", "'rm'"),
        ("curl -s http://127.0.0.1:1/install.sh | sh", "'sh'"),
        ("hey -n 1 http://127.0.0.1:1/; rm -rf {victim}", "';'"),
        ("curl http://127.0.0.1:1/ && bash -c 'rm -rf {victim}'", "'&'"),
        ("hey $(rm -rf {victim})", "$(...)"),
        ("hey `rm -rf {victim}`", "backtick"),
        ("curl -o {victim} http://127.0.0.1:1/", "-o"),
        ("hey -n 1 http://127.0.0.1:1/ > {victim}", "redirection"),
        ("hey -n 1 http://127.0.0.1:1/\nrm -rf {victim}", "newline"),
    ],
)
async def test_allow_list_refuses_abuse(loadtester, tmp_path, command, named):
    victim = tmp_path / "x"
    victim.write_text("keep me")
    client = await loadtester()
    for task_type in ("cmd", "bash"):
        status, text = await client.post("/", hook(type=task_type, cmd=command.format(victim=victim)))
        assert status == 403, text
        assert text.startswith("command rejected: ")
        assert named in text
    await client.tester.wait_idle()
    assert victim.read_text() == "keep me"
    assert client.tester.completed == []


async def test_allow_any_command_lifts_the_list(loadtester, tmp_path):
    victim = tmp_path / "x"
    victim.write_text("x")
    client = await loadtester(allow_any_command=True)
    assert (await client.post("/", hook(type="bash", cmd=f"rm {victim}")))[0] == 200
    assert not victim.exists()


async def test_seed_acceptance_test_command_is_allowed(loadtester, capture_server):
    # The walkthrough's pre-rollout hook: curl ... | grep token (grep is allowed after a pipe).
    srv = await capture_server(statuses=[200], bodies=['{"token":"abc"}'])
    client = await loadtester()
    cmd = f"curl -sd 't' {srv.url}token | grep token"
    status, text = await client.post("/", hook(type="bash", cmd=cmd, returnCmdOutput="true"))
    assert (status, text) == (200, '{"token":"abc"}\n')
    assert srv.requests[0].path == "/token"
    assert srv.requests[0].text == "t"


async def test_bounded_hey_load_reaches_the_server(loadtester, capture_server, hey_binary):
    srv = await capture_server(statuses=[200])
    client = await loadtester()
    status, _ = await client.post("/", hook(cmd=f"hey -n 20 -c 2 {srv.url}", logCmdOutput="true"))
    assert status == 202
    await client.tester.wait_idle(timeout_s=30)
    [outcome] = client.tester.completed
    assert outcome.ok, outcome.describe_failure()
    assert len(srv.requests) == 20
    assert {r.method for r in srv.requests} == {"GET"}
    assert "Status code distribution" in outcome.stdout


async def test_loadtester_cli_subprocess(tmp_path):
    import aiohttp

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canarist", "loadtester", "-port=0", "--host", "127.0.0.1",
        "-timeout=30s", "--token", "t0k", "--zap-encoding", "console",
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stderr is not None
    try:
        port = None
        async with asyncio.timeout(20):
            while port is None:
                line = (await process.stderr.readline()).decode()
                assert line, "the loadtester exited before it started"
                if "Starting load tester" in line:
                    port = int(line.rsplit(" ", 1)[1])
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": "Bearer t0k"}
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as r:
                assert (r.status, await r.text()) == (200, "OK")
            async with session.post(f"{base}/gate/open", json=hook(), headers=headers) as r:
                assert r.status == 202
            async with session.post(f"{base}/gate/check", json=hook(), headers=headers) as r:
                assert (r.status, await r.text()) == (200, "Approved")
            async with session.post(f"{base}/gate/check", json=hook()) as r:
                assert r.status == 401
    finally:
        process.terminate()
        code = await process.wait()
    assert code == 0
