"""The Splunk (SignalFx) provider against a local server implementing the documented SignalFlow REST
execute endpoint of Splunk Observability Cloud (``POST /v2/signalflow/execute?start=&stop=&immediate=true``
with a ``text/plain`` SignalFlow program and the ``X-SF-Token`` header, answering a Server-Sent Events
stream of ``control-message``, ``metadata``, ``data`` and ``error`` events whose JSON spans several
``data:`` lines)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from canarist.metrics.providers import (
    NoValuesError,
    ProviderConfigError,
    ProviderSpec,
    QueryError,
    create_provider,
)
from canarist.metrics.providers.splunk import ONLINE_PROGRAM, SplunkProvider, stream_address
from tests.metrics.providers.conftest import VendorServer

KEYS = {"sf_token_key": "sf-tok"}
NOW = 1_700_000_000.0


def event(kind: str, payload: Any) -> str:
    """One SSE event, its JSON pretty-printed over several ``data:`` lines as SignalFlow sends it."""
    lines = json.dumps(payload, indent=2).splitlines()
    return f"event: {kind}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def control(name: str) -> str:
    return event("control-message", {"event": name, "timestampMs": 1})


def data(*points: tuple[str, Any], ts: int = 1) -> str:
    return event("data", {"data": [{"tsId": t, "value": v} for t, v in points], "logicalTimestampMs": ts})


def stream(*events: str) -> str:
    meta = event("metadata", {"tsId": "AAAA", "properties": {"sf_streamLabel": "errors"}})
    return control("STREAM_START") + control("JOB_START") + meta + "".join(events) + control("END_OF_CHANNEL")


class FakeSignalFlow:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.events = stream(data(("AAAA", 1.0)))
        self.hang = False
        self.requests: list[tuple[web.Request, str]] = []

    async def execute(self, request: web.Request) -> web.StreamResponse:
        program = await request.text()
        self.requests.append((request, program))
        if request.headers.get("X-SF-Token") != "sf-tok":
            return web.json_response({"code": 401, "message": "Unauthorized"}, status=401)
        if request.content_type != "text/plain" or not program.strip():
            return web.json_response({"code": 400, "message": "Empty program"}, status=400)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(control("STREAM_START").encode())
        if self.hang:
            await self.never.wait()
        for chunk in self.events.split("\n\n"):  # one write per event, as a stream arrives
            if chunk:
                await response.write((chunk + "\n\n").encode())
        await response.write_eof()
        return response


@pytest.fixture
async def signalflow(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeSignalFlow, str]:
    fake = FakeSignalFlow(never)
    url = await vendor_server({("POST", "/v2/signalflow/execute"): fake.execute})
    return fake, url


def client(url: str, secret: dict[str, str] | None = None, **kw: Any) -> SplunkProvider:
    return SplunkProvider(
        ProviderSpec(type="splunk", address=url), KEYS if secret is None else secret, clock=lambda: NOW, **kw
    )


PROGRAM = "data('requests.count', filter=filter('sf_service', 'podinfo')).sum().publish()\n"


async def test_request_and_last_value(signalflow: tuple[FakeSignalFlow, str]) -> None:
    fake, url = signalflow
    fake.events = stream(
        data(("AAAA", 3.0), ts=1),
        event("message", {"message": {"messageCode": "JOB_RUNNING_RESOLUTION"}}),
        data(("AAAA", 7.5), ts=2),
        data(("AAAA", None), ts=3),
    )
    assert await client(url, interval="30s").query(PROGRAM) == 7.5
    ((request, program),) = fake.requests
    assert request.method == "POST"
    assert request.path == "/v2/signalflow/execute"
    assert dict(request.query) == {
        "start": str(int(NOW * 1000) - 300_000),
        "stop": str(int(NOW * 1000)),
        "immediate": "true",
    }
    assert request.headers["X-SF-Token"] == "sf-tok"
    assert program == PROGRAM


@pytest.mark.parametrize(
    "events",
    [stream(), stream(data()), stream(data(("AAAA", None))), stream(data(("AAAA", "NaN")))],
)
async def test_no_values(signalflow: tuple[FakeSignalFlow, str], events: str) -> None:
    fake, url = signalflow
    fake.events = events
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query(PROGRAM)


async def test_error_status(signalflow: tuple[FakeSignalFlow, str]) -> None:
    _, url = signalflow
    with pytest.raises(QueryError, match=r"error response 401: .*Unauthorized"):
        await client(url, {"sf_token_key": "bad"}).query(PROGRAM)
    with pytest.raises(QueryError, match=r"error response 400: .*Empty program"):
        await client(url).query("  ")


@pytest.mark.parametrize(
    ("events", "message"),
    [
        (stream(data(("AAAA", 1.0), ("BBBB", 2.0))), "more than one time series"),
        (stream(data(("AAAA", 1.0)), data(("BBBB", 2.0))), "more than one time series"),
        (
            event(
                "error", {"error": 400, "errorType": "ANALYTICS_PROGRAM_NAME_ERROR", "message": "bad name"}
            ),
            'signalflow error: "bad name"',
        ),
        ('event: data\ndata: {"data": [\n\n', "malformed data event"),
        ("garbage line\n\n", "malformed event stream line"),
        (stream(event("data", {"data": {"AAAA": 1}})), "unexpected data event"),
    ],
)
async def test_malformed(signalflow: tuple[FakeSignalFlow, str], events: str, message: str) -> None:
    fake, url = signalflow
    fake.events = events
    with pytest.raises(QueryError, match=message):
        await client(url).query(PROGRAM)


async def test_timeout_mid_stream(signalflow: tuple[FakeSignalFlow, str]) -> None:
    fake, url = signalflow
    fake.hang = True  # the stream starts, then never ends
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query(PROGRAM)


async def test_is_online(signalflow: tuple[FakeSignalFlow, str]) -> None:
    fake, url = signalflow
    assert await client(url).is_online() is True
    fake.events = stream()
    assert await client(url).is_online() is True  # ran, no data in the window
    assert [program for _, program in fake.requests] == [ONLINE_PROGRAM, ONLINE_PROGRAM]
    with pytest.raises(QueryError, match="error response 401"):
        await client(url, {"sf_token_key": "bad"}).is_online()


def test_stream_address_and_config() -> None:
    assert stream_address(URL("https://api.us1.signalfx.com")) == URL("https://stream.us1.signalfx.com")
    assert stream_address(URL("http://127.0.0.1:8080/x")) == URL("http://127.0.0.1:8080/x")
    assert (
        str(client("https://api.eu0.signalfx.com").url)
        == "https://stream.eu0.signalfx.com/v2/signalflow/execute"
    )
    with pytest.raises(ProviderConfigError, match="splunk address is not set"):
        client("")
    with pytest.raises(ProviderConfigError, match="splunk secret does not contain sf_token_key"):
        client("https://api.us1.signalfx.com", {})
    made = create_provider(ProviderSpec(type="splunk", address="https://api.us1.signalfx.com"), KEYS)
    assert isinstance(made, SplunkProvider)
