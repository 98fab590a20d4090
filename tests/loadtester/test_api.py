import pytest

from tests.loadtester.conftest import hook

pytestmark = pytest.mark.timeout(60)


async def test_healthz_and_metrics(loadtester):
    client = await loadtester()
    assert await client.get("/healthz") == (200, "OK")
    status, _ = await client.post("/gate/open", hook())
    assert status == 202
    status, text = await client.get("/metrics")
    assert status == 200
    assert 'canarist_loadtester_http_requests_total{code="202",path="/gate/open"} 1.0' in text


async def test_gate_approve_and_halt_ignore_the_body(loadtester):
    client = await loadtester()
    assert await client.post("/gate/approve", raw=b"not json") == (200, "OK")
    assert await client.post("/gate/halt", raw=b"") == (403, "Forbidden")


async def test_gate_open_check_close(loadtester):
    client = await loadtester()
    assert await client.post("/gate/check", hook()) == (403, "Forbidden")  # gates start closed
    assert await client.post("/gate/open", hook()) == (202, "gate podinfo.test opened")
    assert await client.post("/gate/check", hook()) == (200, "Approved")
    # gates are per canary
    assert (await client.post("/gate/check", hook("other", "test")))[0] == 403
    assert (await client.post("/gate/check", hook("podinfo", "prod")))[0] == 403
    assert await client.post("/gate/close", hook()) == (202, "gate podinfo.test closed")
    assert await client.post("/gate/check", hook()) == (403, "Forbidden")
    assert client.tester.gates == {"podinfo.test": False}


async def test_rollback_open_check_close(loadtester):
    client = await loadtester()
    assert (await client.post("/rollback/check", hook()))[0] == 403
    assert await client.post("/rollback/open", hook()) == (202, "rollback podinfo.test opened")
    assert await client.post("/rollback/check", hook()) == (200, "Approved")
    # the rollback switch and the gate are independent
    assert (await client.post("/gate/check", hook()))[0] == 403
    assert (await client.post("/rollback/close", hook()))[0] == 202
    assert (await client.post("/rollback/check", hook()))[0] == 403


async def test_bad_payloads(loadtester):
    client = await loadtester()
    status, text = await client.post("/", raw=b"{nope")
    assert status == 400
    assert text.startswith("error decoding payload")
    assert (await client.post("/gate/open", raw=b"[1]"))[0] == 400
    assert await client.post("/", hook()) == (400, "metadata not found in payload")
    status, text = await client.post("/", {**hook(), "metadata": {"cmd": 1}})
    assert status == 400
    assert "metadata must be a map of strings" in text


async def test_unknown_and_unsupported_task_types(loadtester):
    client = await loadtester()
    assert await client.post("/", hook(type="nope", cmd="hey x")) == (400, "unknown task type nope")
    for task_type in ("helm", "helmv3", "kubectl", "concord", "ngrinder"):
        assert await client.post("/", hook(type=task_type, cmd="version")) == (
            400,
            f"task type {task_type} is not supported by canarist loadtester",
        )
    assert await client.post("/", hook(type="cmd")) == (400, "cmd not found in payload metadata")


async def test_namespace_regexp(loadtester):
    client = await loadtester(namespace_regexp="^(test|staging)$")
    status, text = await client.post("/", hook(namespace="kube-system", cmd="hey -n 1 http://127.0.0.1:1/"))
    assert status == 403
    assert text.startswith("Forbidden")
    assert (await client.post("/gate/open", hook(namespace="prod")))[0] == 403
    assert (await client.post("/gate/open", hook(namespace="staging")))[0] == 202


async def test_bearer_token(loadtester):
    client = await loadtester(token="s3cret")
    status, text = await client.post("/gate/open", hook())
    assert status == 401
    assert "bearer token" in text
    assert (await client.post("/gate/open", hook(), token="wrong"))[0] == 401
    assert (await client.post("/gate/open", hook(), token="s3cret"))[0] == 202
    assert (await client.post("/gate/approve", {}, token=None))[0] == 401
    # liveness and metrics stay open
    assert (await client.get("/healthz"))[0] == 200
    assert (await client.get("/metrics"))[0] == 200


async def test_wrong_method(loadtester):
    client = await loadtester()
    assert (await client.get("/gate/check"))[0] == 405
