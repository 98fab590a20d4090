import asyncio
import socket
import subprocess
import sys

import pytest

from canarist.cli.main import main
from canarist.loadtester import LoadTester, LoadTesterConfig


@pytest.fixture
async def tester():
    lt = LoadTester(LoadTesterConfig(host="127.0.0.1", port=0, token=""))
    await lt.start()
    yield lt
    await lt.stop()


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_gate_open_check_close(tester, capsys):
    url = tester.url
    assert await cli("gate", "check", "podinfo.test", "--url", url) == 1
    assert capsys.readouterr().out == "podinfo.test: closed\n"
    assert await cli("gate", "open", "podinfo.test", "--url", url) == 0
    assert capsys.readouterr().out == "gate podinfo.test opened\n"
    assert tester.gates == {"podinfo.test": True}
    assert await cli("gate", "check", "podinfo.test", "--url", url) == 0
    assert capsys.readouterr().out == "podinfo.test: open\n"
    assert await cli("gate", "close", "podinfo.test", "--url", url) == 0
    assert tester.gates == {"podinfo.test": False}


async def test_gate_approve_opens_the_gate_and_names_with_dots(tester):
    assert await cli("gate", "approve", "my.app.prod", "--url", tester.url) == 0
    assert tester.gates == {"my.app.prod": True}


async def test_rollback_open_close(tester, capsys):
    assert await cli("rollback", "open", "podinfo.test", "--url", tester.url) == 0
    assert capsys.readouterr().out == "rollback podinfo.test opened\n"
    assert tester.rollbacks == {"podinfo.test": True}
    assert await cli("rollback", "check", "podinfo.test", "--url", tester.url) == 0
    assert await cli("rollback", "close", "podinfo.test", "--url", tester.url) == 0
    assert tester.rollbacks == {"podinfo.test": False}


async def test_token():
    lt = LoadTester(LoadTesterConfig(host="127.0.0.1", port=0, token="abc"))
    await lt.start()
    try:
        assert await cli("gate", "open", "podinfo.test", "--url", lt.url) == 2
        assert await cli("gate", "open", "podinfo.test", "--url", lt.url, "--token", "abc") == 0
        assert lt.gates == {"podinfo.test": True}
    finally:
        await lt.stop()


def test_unreachable_loadtester_is_a_clear_error_without_traceback():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "canarist",
            "gate",
            "open",
            "podinfo.test",
            "--url",
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"error: cannot reach the loadtester: connection refused: http://127.0.0.1:{port}/gate/open\n"
    )
    assert "Traceback" not in done.stderr


def test_bad_canary_name(capsys):
    with pytest.raises(SystemExit) as info:
        main(["rollback", "open", "podinfo", "--url", "http://127.0.0.1:1"])
    assert info.value.code == 2
    assert "expected NAME.NAMESPACE" in capsys.readouterr().err
