"""The outbox with real HTTP destinations on 127.0.0.1: a held request stands for a hanging webhook."""

import logging
import socket

import pytest

from canarist.hooks import build_event_payload, call_webhook
from canarist.notify import Delivery, Outbox, SendResult, destination_label, submit_event


def poster(url, n, *, retry_5xx=True):
    """A send callable POSTing ``{"n": n}``; a 5xx or no answer is transient."""

    async def send():
        result = await call_webhook(url, {"n": n}, timeout_s=10)
        transient = result.status is None or (retry_5xx and result.status >= 500)
        return SendResult(result.ok, transient, result.error or "")

    return send


def numbers(srv):
    return [r.json["n"] for r in srv.requests]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_hanging_destination_delays_neither_submit_nor_other_destinations(
    gated_server, capture_server
):
    hanging = await gated_server()
    other = await capture_server()
    outbox = Outbox()
    assert outbox.submit(hanging.url, poster(hanging.url, 1))
    await hanging.arrived(1)
    # The first request is held by the server; more submits for it return at once, queued behind it.
    assert outbox.submit(hanging.url, poster(hanging.url, 2))
    assert outbox.submit(hanging.url, poster(hanging.url, 3))
    assert hanging.holding == 1
    assert outbox.pending(hanging.url) == 3
    # Another destination gets all its messages while the first still hangs.
    for n in range(1, 4):
        assert outbox.submit(other.url, poster(other.url, n))
    await other.wait_for(3)
    assert numbers(other) == [1, 2, 3]
    assert hanging.holding == 1
    assert [b["n"] for b in hanging.bodies] == [1]

    hanging.release()
    await outbox.wait_idle()
    assert [b["n"] for b in hanging.bodies] == [1, 2, 3]
    assert outbox.pending() == 0
    assert await outbox.close(timeout_s=5) == 0


async def test_order_is_preserved_per_destination(capture_server):
    first, second = await capture_server(), await capture_server()
    outbox = Outbox()
    for n in range(30):
        outbox.submit(first.url, poster(first.url, n))
        outbox.submit(second.url, poster(second.url, 100 + n))
    await outbox.wait_idle()
    assert numbers(first) == list(range(30))
    assert numbers(second) == [100 + n for n in range(30)]


async def test_a_500_is_retried_then_succeeds_and_holds_back_the_next_item(capture_server):
    srv = await capture_server(statuses=[500, 200], bodies=["boom", "ok"])
    done: list[Delivery] = []
    outbox = Outbox(backoff_s=0.01)
    outbox.submit(srv.url, poster(srv.url, 1), kind="event", on_done=done.append)
    outbox.submit(srv.url, poster(srv.url, 2), kind="event", on_done=done.append)
    await outbox.wait_idle()
    assert numbers(srv) == [1, 1, 2]  # the retry comes before the next item
    label = destination_label(srv.url)
    assert done == [Delivery("event", label, "ok", 2), Delivery("event", label, "ok", 1)]


async def test_retries_stop_after_max_attempts_and_permanent_failures_are_not_retried(capture_server):
    srv = await capture_server(statuses=[500], bodies=["still broken"])
    done: list[Delivery] = []
    outbox = Outbox(max_attempts=3, backoff_s=0.01)
    outbox.submit(srv.url, poster(srv.url, 1), on_done=done.append)
    outbox.submit(srv.url, poster(srv.url, 2, retry_5xx=False), on_done=done.append)
    outbox.submit(srv.url, poster(srv.url, 3), max_attempts=1, on_done=done.append)
    await outbox.wait_idle()
    assert numbers(srv) == [1, 1, 1, 2, 3]
    assert [(d.outcome, d.attempts, d.error) for d in done] == [
        ("failed", 3, "still broken"),
        ("failed", 1, "still broken"),
        ("failed", 1, "still broken"),
    ]


async def test_false_and_exceptions_are_transient(capture_server):
    srv = await capture_server()
    calls: list[str] = []
    done: list[Delivery] = []

    async def flaky():
        calls.append("flaky")
        if len(calls) == 1:
            return False
        if len(calls) == 2:
            raise RuntimeError("kaput")
        await call_webhook(srv.url, {"n": 1})
        return None

    outbox = Outbox(backoff_s=0.01)
    outbox.submit("alert/on-call.flagger", flaky, kind="alert", on_done=done.append)
    await outbox.wait_idle()
    assert calls == ["flaky"] * 3
    assert numbers(srv) == [1]
    assert done == [Delivery("alert", "alert/on-call.flagger", "ok", 3)]


async def test_a_full_queue_drops_and_counts(gated_server, caplog):
    srv = await gated_server()
    seen: list[tuple[str, str]] = []
    done: list[Delivery] = []
    outbox = Outbox(queue_size=2, on_drop=lambda kind, dest: seen.append((kind, dest)))
    assert outbox.submit(srv.url, poster(srv.url, 1), kind="event")
    await srv.arrived(1)  # in flight: no longer in the queue
    assert outbox.submit(srv.url, poster(srv.url, 2), kind="event")
    assert outbox.submit(srv.url, poster(srv.url, 3), kind="event")
    assert not outbox.submit(srv.url, poster(srv.url, 4), kind="event", on_done=done.append)
    assert not outbox.submit(srv.url, poster(srv.url, 5), kind="alert")

    label = f"http://127.0.0.1:{srv.port}/…"
    assert seen == [("event", label), ("alert", label)]
    assert outbox.dropped == {("event", label): 1, ("alert", label): 1}
    assert outbox.dropped_for(srv.url) == 2
    assert outbox.dropped_for(srv.url, "event") == 1
    assert [(d.outcome, d.destination) for d in done] == [("dropped", label)]
    assert f"event to {label} dropped: its queue is full (2 waiting)" in caplog.text
    assert "s3cr3t" not in caplog.text  # the URL's path never reaches the log

    srv.release()
    await outbox.wait_idle()
    assert [b["n"] for b in srv.bodies] == [1, 2, 3]


async def test_close_drains_what_is_queued(capture_server):
    srv = await capture_server()
    done: list[Delivery] = []
    outbox = Outbox()
    for n in range(5):
        outbox.submit(srv.url, poster(srv.url, n), on_done=done.append)
    assert await outbox.close(timeout_s=10) == 0
    assert numbers(srv) == [0, 1, 2, 3, 4]
    assert [d.outcome for d in done] == ["ok"] * 5
    # closed: later submits are dropped and counted
    assert not outbox.submit(srv.url, poster(srv.url, 9))
    assert outbox.dropped_for(srv.url) == 1
    assert await outbox.close(timeout_s=1) == 0  # idempotent


async def test_close_gives_up_on_a_hanging_destination_and_reports_the_drops(gated_server, capture_server):
    hanging = await gated_server()
    fine = await capture_server()
    done: list[Delivery] = []
    outbox = Outbox()
    for n in range(3):
        outbox.submit(hanging.url, poster(hanging.url, n), on_done=done.append)
        outbox.submit(fine.url, poster(fine.url, n), on_done=done.append)
    await hanging.arrived(1)
    # The hanging server never answers before close() gives up: 1 in flight + 2 queued are dropped.
    assert await outbox.close(timeout_s=0.2) == 3
    assert numbers(fine) == [0, 1, 2]
    assert outbox.dropped_for(hanging.url) == 3
    assert outbox.dropped_for(fine.url) == 0
    assert sorted(d.outcome for d in done) == ["dropped"] * 3 + ["ok"] * 3
    assert outbox.pending() == 0


async def test_idle_destinations_release_their_task_and_come_back(capture_server):
    srv = await capture_server()
    outbox = Outbox()
    outbox.submit(srv.url, poster(srv.url, 1))
    await outbox.wait_idle()
    assert outbox.pending() == 0
    assert not outbox._lanes  # the sender task exited with its empty queue
    outbox.submit(srv.url, poster(srv.url, 2))
    await outbox.wait_idle()
    assert numbers(srv) == [1, 2]


@pytest.mark.parametrize(
    ("destination", "label"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com/…"),
        ("http://127.0.0.1:8080/hook?token=x", "http://127.0.0.1:8080/…"),
        ("https://user:pw@example.com/x", "https://example.com/…"),
        ("http://[::1]:9/x", "http://[::1]:9/…"),
        ("alert/on-call.flagger", "alert/on-call.flagger"),
        ("alert/global", "alert/global"),
    ],
)
def test_destination_labels_hide_secrets(destination, label):
    assert destination_label(destination) == label


# ---------------------------------------------------------------------- the event-webhook helper


def event(message, n):
    return build_event_payload("podinfo", "test", "Progressing", "abc", message, "Normal", timestamp_ms=n)


async def test_submit_event_returns_while_the_webhook_hangs_and_keeps_the_order(gated_server):
    srv = await gated_server()
    outbox = Outbox()
    messages = [f"event {n}" for n in range(5)]
    for n, message in enumerate(messages):
        assert submit_event(outbox, srv.url, event(message, n), 10.0, "podinfo.test") is True
    await srv.arrived(1)
    assert srv.holding == 1
    assert outbox.pending(srv.url) == 5
    srv.release()
    await outbox.wait_idle()
    assert [b["metadata"]["eventMessage"] for b in srv.bodies] == messages
    assert srv.bodies[0] == event("event 0", 0)


async def test_submit_event_retries_503_not_500_and_logs_the_final_error(capture_server, caplog):
    busy = await capture_server(statuses=[503, 200], bodies=["busy", ""])
    broken = await capture_server(statuses=[500], bodies=["x" * (128 * 1024)])
    outbox = Outbox(backoff_s=0.01)
    submit_event(outbox, busy.url, event("a", 1), 10.0, "podinfo.test")
    submit_event(outbox, broken.url, event("b", 2), 10.0, "podinfo.test")
    with caplog.at_level(logging.WARNING, logger="canarist"):
        await outbox.wait_idle()
    assert len(busy.requests) == 2  # 503: nothing was done, safe to send again
    assert len(broken.requests) == 1  # 500: maybe processed; Flagger never retries events
    [record] = [r for r in caplog.records if "error sending event to webhook" in r.getMessage()]
    assert record.canary == "podinfo.test"
    assert record.getMessage() == "error sending event to webhook: " + "x" * 1024 + "… (130048 bytes cut)"


async def test_submit_event_retries_a_refused_connection_but_not_forever(caplog):
    url = f"http://127.0.0.1:{free_port()}/events"
    done: list[Delivery] = []
    outbox = Outbox(max_attempts=2, backoff_s=0.01, on_drop=lambda kind, dest: done.append(dest))
    submit_event(outbox, url, event("a", 1), 10.0, "podinfo.test")
    with caplog.at_level(logging.INFO, logger="canarist"):
        await outbox.wait_idle()
    assert done == []
    assert f"error sending event to webhook: connection refused: {url}" in caplog.text
    assert "(attempt 1 of 2), retrying" in caplog.text
