import asyncio
import socket

from canarist.hooks import MAX_ERROR_BYTES, build_payload, call_webhook, cut_text
from tests.fixtures.capture import CaptureServer

PAYLOAD = build_payload("podinfo", "test", "Progressing", "abc", {"cmd": "hey"})


async def test_post_json_success(capture_server):
    srv = await capture_server(statuses=[200], bodies=["fine"])
    result = await call_webhook(srv.url + "hook", PAYLOAD)
    assert result.ok
    assert result.status == 200
    assert result.body == "fine"
    assert result.error is None
    assert result.attempts == 1
    assert result.elapsed_s >= 0
    [request] = srv.requests
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.headers["content-type"] == "application/json"
    assert request.json == PAYLOAD


async def test_202_is_success_and_203_is_failure_with_body_as_error(capture_server):
    srv = await capture_server(statuses=[202, 203], bodies=["queued", "not quite"])
    first = await call_webhook(srv.url, PAYLOAD)
    second = await call_webhook(srv.url, PAYLOAD)
    assert first.ok
    assert first.status == 202
    assert not second.ok
    assert second.status == 203
    assert second.error == "not quite"


async def test_4xx_is_not_retried(capture_server):
    srv = await capture_server(statuses=[403], bodies=["Forbidden"])
    result = await call_webhook(srv.url, PAYLOAD, retries=3, backoff_s=0.01)
    assert not result.ok
    assert result.error == "Forbidden"
    assert len(srv.requests) == 1


async def test_empty_error_body_gets_a_status_message(capture_server):
    srv = await capture_server(statuses=[404])
    result = await call_webhook(srv.url, PAYLOAD)
    assert result.error == "webhook returned status 404"


async def test_retries_after_500_then_succeeds(capture_server):
    srv = await capture_server(statuses=[500, 429, 200], bodies=["boom", "slow down", "ok"])
    result = await call_webhook(srv.url, PAYLOAD, retries=2, backoff_s=0.01)
    assert result.ok
    assert result.status == 200
    assert result.attempts == 3
    assert len(srv.requests) == 3
    assert all(r.json == PAYLOAD for r in srv.requests)


async def test_retries_exhausted_returns_last_failure(capture_server):
    srv = await capture_server(statuses=[503], bodies=["unavailable"])
    result = await call_webhook(srv.url, PAYLOAD, retries=1, backoff_s=0.01)
    assert not result.ok
    assert result.status == 503
    assert result.error == "unavailable"
    assert len(srv.requests) == 2


async def test_no_retry_by_default(capture_server):
    srv = await capture_server(statuses=[500, 200])
    result = await call_webhook(srv.url, PAYLOAD)
    assert not result.ok
    assert len(srv.requests) == 1


async def test_timeout(capture_server):
    srv = await capture_server(statuses=[200], delay_s=5)
    result = await call_webhook(srv.url, PAYLOAD, timeout_s=0.2)
    assert not result.ok
    assert result.status is None
    assert result.error == f"timeout after 0.2s: {srv.url}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused():
    url = f"http://127.0.0.1:{_closed_port()}/"
    result = await call_webhook(url, PAYLOAD)
    assert not result.ok
    assert result.status is None
    assert result.error == f"connection refused: {url}"


async def test_connection_refused_is_retried_then_reported():
    url = f"http://127.0.0.1:{_closed_port()}/"
    result = await call_webhook(url, PAYLOAD, retries=2, backoff_s=0.01)
    assert not result.ok
    assert result.attempts == 3
    assert result.error == f"connection refused: {url} (giving up after 3 attempts)"


async def test_connection_refused_then_server_appears(capture_server):
    # The first attempt hits a closed port; the retry reaches the capture server on the same port.
    srv = await capture_server(statuses=[200])
    port = srv.port
    await srv.stop()
    url = f"http://127.0.0.1:{port}/"

    async def restart_later() -> CaptureServer:
        await asyncio.sleep(0.05)
        again = CaptureServer(statuses=[200])
        await again.start(port)
        return again

    task = asyncio.create_task(restart_later())
    result = await call_webhook(url, PAYLOAD, retries=6, backoff_s=0.05, backoff_max_s=0.2)
    again = await task
    try:
        assert result.ok, result.error
        assert result.attempts >= 2
        assert len(again.requests) == 1
    finally:
        await again.stop()


async def test_tls_verification_fails_for_self_signed(capture_server):
    srv = await capture_server(statuses=[200], tls=True)
    assert srv.url.startswith("https://")
    result = await call_webhook(srv.url, PAYLOAD)
    assert not result.ok
    assert result.error is not None
    assert result.error.startswith("TLS certificate verification failed: " + srv.url)
    assert srv.requests == []


async def test_disable_tls_skips_verification(capture_server):
    srv = await capture_server(statuses=[200], tls=True)
    result = await call_webhook(srv.url, PAYLOAD, disable_tls=True)
    assert result.ok, result.error
    assert srv.requests[0].json == PAYLOAD


async def test_invalid_url_does_not_raise():
    result = await call_webhook("not a url", PAYLOAD)
    assert not result.ok
    assert result.error == "invalid webhook URL 'not a url'"
    result = await call_webhook("ftp://host/x", PAYLOAD)
    assert result.error == "invalid webhook URL 'ftp://host/x'"


async def test_unresolvable_host_does_not_raise():
    result = await call_webhook("http://canarist-no-such-host.invalid/", PAYLOAD, timeout_s=5)
    assert not result.ok
    assert result.status is None
    assert result.error == "cannot resolve host: http://canarist-no-such-host.invalid/"


# ---------------------------------------------------------------------- error bodies are cut


BIG = 128 * 1024


async def test_a_128_kib_error_body_is_cut_to_1_kib(capture_server):
    srv = await capture_server(statuses=[500], bodies=["x" * BIG])
    result = await call_webhook(srv.url, PAYLOAD)
    assert not result.ok
    assert result.status == 500
    expected = "x" * MAX_ERROR_BYTES + f"… ({BIG - MAX_ERROR_BYTES} bytes cut)"
    assert MAX_ERROR_BYTES == 1024
    assert result.error == expected
    assert result.body == expected  # a failed result never carries the whole body
    assert str(result) == expected


async def test_a_success_body_is_not_cut(capture_server):
    srv = await capture_server(statuses=[200], bodies=["y" * BIG])
    result = await call_webhook(srv.url, PAYLOAD)
    assert result.ok
    assert result.body == "y" * BIG  # e.g. a bash task's returnCmdOutput


async def test_a_short_error_body_is_kept_whole(capture_server):
    srv = await capture_server(statuses=[400], bodies=["z" * MAX_ERROR_BYTES])
    result = await call_webhook(srv.url, PAYLOAD)
    assert result.error == "z" * MAX_ERROR_BYTES


def test_cut_text_never_splits_a_character():
    assert cut_text("é" * 1000) == "é" * 512 + "… (976 bytes cut)"
    assert cut_text("€" * 1000) == "€" * 341 + f"… ({3000 - 1023} bytes cut)"
    assert cut_text("abcdef", limit=4) == "abcd… (2 bytes cut)"
    assert cut_text("") == ""


async def test_retry_safe_and_timed_out_say_whether_sending_again_can_duplicate(capture_server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = await call_webhook(f"http://127.0.0.1:{port}/", PAYLOAD)
    assert (refused.ok, refused.retry_safe, refused.timed_out) == (False, True, False)
    busy = await capture_server(statuses=[503, 429, 500, 200])
    results = [await call_webhook(busy.url, PAYLOAD) for _ in range(4)]
    assert [r.retry_safe for r in results] == [True, True, False, False]
    slow = await capture_server(statuses=[200], delay_s=5)
    timed_out = await call_webhook(slow.url, PAYLOAD, timeout_s=0.2)
    assert (timed_out.ok, timed_out.retry_safe, timed_out.timed_out) == (False, False, True)
