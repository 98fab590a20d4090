"""The CloudWatch provider against a local server implementing CloudWatch's documented ``GetMetricData``
action over the AWS Query protocol (form POST, XML ``GetMetricDataResponse`` / ``ErrorResponse``) that
verifies AWS Signature Version 4 as documented in the AWS General Reference (with its own code, not the
provider's); the signer is also checked against the worked example of that document (IAM ``ListUsers``,
``AKIDEXAMPLE``, 20150830T123600Z)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

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
from canarist.metrics.providers.cloudwatch import (
    CloudWatchProvider,
    Credentials,
    flatten,
    load_credentials,
    sign_v4,
)
from tests.metrics.providers.conftest import VendorServer

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDS = Credentials("AKIDEXAMPLE", SECRET, "session-1")
NOW = 1_700_000_000.0
NS = "http://monitoring.amazonaws.com/doc/2010-08-01/"


def test_sigv4_documented_example() -> None:
    headers = sign_v4(
        Credentials("AKIDEXAMPLE", SECRET),
        method="GET",
        url=URL("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        payload=b"",
        region="us-east-1",
        service="iam",
        when=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
    )
    assert headers["X-Amz-Date"] == "20150830T123600Z"
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


def verify(request: web.Request, body: bytes) -> str | None:
    """An independent SigV4 check of a received request; the reason it fails, or None."""
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "MissingAuthenticationToken"
    fields = dict(part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(","))
    access, day, region, service, _ = fields["Credential"].split("/")
    if access != "AKIDEXAMPLE" or region != "eu-west-1" or service != "monitoring":
        return "InvalidClientTokenId"
    signed = fields["SignedHeaders"].split(";")
    if not {"host", "x-amz-date", "x-amz-security-token"} <= set(signed):
        return "IncompleteSignature"
    lines = [f"{name}:{' '.join(request.headers[name].split())}\n" for name in signed]
    creq = "\n".join(
        ["POST", request.path, "", "".join(lines), ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    amz = request.headers["X-Amz-Date"]
    scope = f"{day}/{region}/{service}/aws4_request"
    sts = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    key = ("AWS4" + SECRET).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    if hmac.new(key, sts.encode(), hashlib.sha256).hexdigest() != fields["Signature"]:
        return "SignatureDoesNotMatch"
    return None


def error(status: int, code: str, message: str) -> web.Response:
    xml = (
        f'<ErrorResponse xmlns="{NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
        f"<Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    )
    return web.Response(status=status, text=xml, content_type="text/xml")


def result_xml(*results: list[float]) -> str:
    members = "".join(
        f"<member><Id>q{i}</Id><Label>l</Label><StatusCode>Complete</StatusCode>"
        f"<Timestamps>{''.join('<member>2026-01-01T00:00:00Z</member>' for _ in values)}</Timestamps>"
        f"<Values>{''.join(f'<member>{v}</member>' for v in values)}</Values></member>"
        for i, values in enumerate(results)
    )
    return (
        f'<GetMetricDataResponse xmlns="{NS}"><GetMetricDataResult><MetricDataResults>{members}'
        "</MetricDataResults><Messages/></GetMetricDataResult>"
        "<ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetMetricDataResponse>"
    )


class FakeCloudWatch:
    def __init__(self, never: asyncio.Event) -> None:
        self.never = never
        self.body = result_xml([4.5, 9.0], [7.0])
        self.hang = False
        self.forms: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.hang:
            await self.never.wait()
        if (reason := verify(request, body)) is not None:
            return error(403, reason, "The request signature we calculated does not match")
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        self.forms.append(form)
        if form.get("Action") != "GetMetricData" or form.get("Version") != "2010-08-01":
            return error(400, "InvalidAction", "unknown action")
        if "MetricDataQueries.member.1.Id" not in form:
            return error(400, "ValidationError", "The parameter MetricDataQueries must be specified.")
        return web.Response(text=self.body, content_type="text/xml")


@pytest.fixture
async def cloudwatch(vendor_server: VendorServer, never: asyncio.Event) -> tuple[FakeCloudWatch, str]:
    fake = FakeCloudWatch(never)
    return fake, await vendor_server({("POST", "/"): fake.handle})


def client(url: str, creds: Credentials = CREDS, **kw: Any) -> CloudWatchProvider:
    spec = ProviderSpec(type="cloudwatch", address=url, region="eu-west-1")
    return CloudWatchProvider(spec, None, clock=lambda: NOW, credentials=creds, **kw)


QUERY = json.dumps(
    [
        {"Id": "e", "Expression": "errors / requests * 100", "Label": "error rate"},
        {
            "Id": "errors",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/ApplicationELB",
                    "MetricName": "HTTPCode_Target_5XX_Count",
                    "Dimensions": [{"Name": "LoadBalancer", "Value": "app/web/1"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        },
    ]
)


async def test_request_signature_and_first_value(cloudwatch: tuple[FakeCloudWatch, str]) -> None:
    fake, url = cloudwatch
    assert await client(url, interval="1m").query(QUERY) == 4.5
    (form,) = fake.forms
    assert form == {
        "Action": "GetMetricData",
        "Version": "2010-08-01",
        "StartTime": "2023-11-14T22:03:20Z",  # NOW - 10 x 1m
        "EndTime": "2023-11-14T22:13:20Z",
        "MaxDatapoints": "20",
        "MetricDataQueries.member.1.Id": "e",
        "MetricDataQueries.member.1.Expression": "errors / requests * 100",
        "MetricDataQueries.member.1.Label": "error rate",
        "MetricDataQueries.member.2.Id": "errors",
        "MetricDataQueries.member.2.MetricStat.Metric.Namespace": "AWS/ApplicationELB",
        "MetricDataQueries.member.2.MetricStat.Metric.MetricName": "HTTPCode_Target_5XX_Count",
        "MetricDataQueries.member.2.MetricStat.Metric.Dimensions.member.1.Name": "LoadBalancer",
        "MetricDataQueries.member.2.MetricStat.Metric.Dimensions.member.1.Value": "app/web/1",
        "MetricDataQueries.member.2.MetricStat.Period": "60",
        "MetricDataQueries.member.2.MetricStat.Stat": "Sum",
        "MetricDataQueries.member.2.ReturnData": "false",
    }


@pytest.mark.parametrize("body", [result_xml(), result_xml([])])
async def test_no_values(cloudwatch: tuple[FakeCloudWatch, str], body: str) -> None:
    fake, url = cloudwatch
    fake.body = body
    with pytest.raises(NoValuesError, match=r"^no values found$"):
        await client(url).query(QUERY)


async def test_error_status(cloudwatch: tuple[FakeCloudWatch, str]) -> None:
    _, url = cloudwatch
    with pytest.raises(QueryError, match=r"error response 403: SignatureDoesNotMatch"):
        await client(url, Credentials("AKIDEXAMPLE", "wrong-secret", "s")).query(QUERY)


@pytest.mark.parametrize(
    ("body", "query", "message"),
    [
        ("<GetMetricDataResponse", QUERY, "unmarshaling result failed"),
        ("<Other/>", QUERY, "no MetricDataResults"),
        (result_xml([]).replace("<Values>", "<Values><member>x</member>"), QUERY, "is not a number"),
        (result_xml([1.0]), "{not json", "not JSON"),
        (result_xml([1.0]), '{"Id": "a"}', "JSON array of MetricDataQuery"),
    ],
)
async def test_malformed(cloudwatch: tuple[FakeCloudWatch, str], body: str, query: str, message: str) -> None:
    fake, url = cloudwatch
    fake.body = body
    with pytest.raises(QueryError, match=message):
        await client(url).query(query)


async def test_timeout(cloudwatch: tuple[FakeCloudWatch, str]) -> None:
    fake, url = cloudwatch
    fake.hang = True
    with pytest.raises(QueryError, match=r"timed out after 0\.2s"):
        await client(url, timeout=0.2).query(QUERY)


async def test_is_online(cloudwatch: tuple[FakeCloudWatch, str]) -> None:
    _, url = cloudwatch
    assert await client(url).is_online() is True  # the empty request is refused with 400 ValidationError
    with pytest.raises(QueryError, match="error response 403"):
        await client(url, Credentials("AKIDEXAMPLE", "bad", "s")).is_online()


def test_flatten() -> None:
    assert flatten([{"a": [1, True], "b": {"c": None}}], "X") == [
        ("X.member.1.a.member.1", "1"),
        ("X.member.1.a.member.2", "true"),
    ]


def test_credentials(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "T"}
    assert load_credentials(env) == Credentials("AK", "SK", "T")
    shared = tmp_path / "credentials"
    shared.write_text(
        "[default]\naws_access_key_id = AK1\naws_secret_access_key = SK1\n[ci]\naws_access_key_id = AK2\naws_secret_access_key = SK2\n"
    )
    assert load_credentials({"AWS_SHARED_CREDENTIALS_FILE": str(shared)}) == Credentials("AK1", "SK1")
    assert load_credentials({"AWS_SHARED_CREDENTIALS_FILE": str(shared), "AWS_PROFILE": "ci"}) == Credentials(
        "AK2", "SK2"
    )
    with pytest.raises(ProviderConfigError, match="no AWS credentials"):
        load_credentials({"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")})


def test_config(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ProviderConfigError, match="cloudwatch region is not set"):
        CloudWatchProvider(ProviderSpec(type="cloudwatch"), None, credentials=CREDS)
    made = CloudWatchProvider(ProviderSpec(type="cloudwatch", region="us-east-2"), None, credentials=CREDS)
    assert made.address == "https://monitoring.us-east-2.amazonaws.com"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SK")
    assert isinstance(
        create_provider(ProviderSpec(type="cloudwatch", region="us-east-2")), CloudWatchProvider
    )
