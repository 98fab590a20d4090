"""The viewer ClusterRole (deploy/base/operator/people.yaml) is enough for every read-only command.

The local control plane has no authorizer, so the commands run as real subprocesses through a recording HTTP
proxy on 127.0.0.1 in front of it: every request they make (verb, group, resource, namespace, name) must be
granted by ``canarist-viewer``, and every grant of the role must be used by one of them (least privilege).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.cli.kube_helpers import COMMAND_TIMEOUT_S, NAMESPACE, Cluster, env, start_cluster
from tests.deploy.support import OPERATOR_BASE, load_roles
from tests.fixtures.localcluster import LocalClusterHandle

PEOPLE_YAML = OPERATOR_BASE / "people.yaml"
#: paths every authenticated user may read (the system:discovery ClusterRole).
DISCOVERY = ("/api", "/apis", "/version", "/openapi")


@dataclass(frozen=True)
class Request:
    verb: str
    group: str
    resource: str
    namespace: str
    name: str


def parse(method: str, path: str, query: dict[str, str]) -> Request | None:
    """The RBAC attributes of a resource request (None for a discovery path)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        assert path.startswith(DISCOVERY), f"unexpected non-resource request {method} {path}"
        return None
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else ""
    if len(rest) > 2:
        resource = f"{resource}/{rest[2]}"
    verbs = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
    if method in verbs:
        verb = verbs[method]
    elif query.get("watch") in ("1", "true"):
        verb = "watch"
    else:
        verb = "get" if name else "list"
    return Request(verb, group, resource, namespace, name)


@dataclass
class Proxy:
    kubeconfig: Path
    requests: list[Request]


@pytest.fixture
async def proxied(local_cluster: LocalClusterHandle, tmp_path: Path) -> AsyncIterator[tuple[Cluster, Proxy]]:
    cluster = await start_cluster(local_cluster)
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    upstream = str(config["clusters"][0]["cluster"]["server"]).rstrip("/")
    assert upstream.startswith("http://127."), upstream
    requests: list[Request] = []
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.StreamResponse:
        seen = parse(request.method, request.path, dict(request.query))
        if seen is not None:
            requests.append(seen)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with session.request(
            request.method, upstream + request.path_qs, headers=headers, data=await request.read()
        ) as answer:
            response = web.StreamResponse(status=answer.status)
            for key in ("Content-Type",):
                if key in answer.headers:
                    response.headers[key] = answer.headers[key]
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
    kubeconfig = tmp_path / "proxied-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    try:
        yield cluster, Proxy(kubeconfig, requests)
    finally:
        await runner.cleanup()
        await session.close()
        await cluster.client.close()


async def run(proxy: Proxy, *argv: str, stop_after_line: bool = False) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        *CANARIST,
        *argv,
        "--kubeconfig",
        str(proxy.kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env(),
    )
    assert process.stdout is not None
    if stop_after_line:  # a watch: its first table line means the list and the watch were made
        line = await asyncio.wait_for(process.stdout.readline(), COMMAND_TIMEOUT_S)
        process.terminate()
        await asyncio.wait_for(process.wait(), COMMAND_TIMEOUT_S)
        return None, line.decode()
    out, err = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    return process.returncode, out.decode() + err.decode()


CANARIST = (sys.executable, "-m", "canarist")


async def test_the_viewer_role_grants_every_read_command_and_nothing_more(
    proxied: tuple[Cluster, Proxy],
) -> None:
    cluster, proxy = proxied
    revision = await cluster.revision()
    await cluster.write_status(
        {"phase": "Succeeded", "canaryWeight": 0, "failedChecks": 0, "lastAppliedSpec": revision}
    )
    commands: list[tuple[str, ...]] = [
        ("get", "canaries", "-n", NAMESPACE),
        ("get", "canary", "podinfo", "-n", NAMESPACE, "-o", "json"),
        ("status", "podinfo", "-n", NAMESPACE),
        ("status", "podinfo", "-n", NAMESPACE, "--wait", "--for-revision", revision, "--timeout", "60s"),
        ("explain", "podinfo", "-n", NAMESPACE),
    ]
    for argv in commands:
        code, output = await run(proxy, *argv)
        assert code == 0, (argv, output)
    _, first_line = await run(proxy, "get", "canaries", "-n", NAMESPACE, "--watch", stop_after_line=True)
    assert first_line.strip(), "the watch printed nothing"

    viewer = load_roles(PEOPLE_YAML)["ClusterRole/canarist-viewer"]
    refused = [
        r for r in proxy.requests if not viewer.allows(r.group, r.resource, r.verb, r.namespace, r.name)
    ]
    assert refused == [], f"canarist-viewer does not grant: {refused}"
    used = {(r.group, r.resource, r.verb) for r in proxy.requests}
    unused = viewer.grants() - used
    # Reading what a canary refers to is part of viewing it, though no command reads them yet.
    justified = {
        ("flagger.app", kind, verb)
        for kind in ("metrictemplates", "alertproviders")
        for verb in ("get", "list", "watch")
    } | {
        ("flagger.app", "canaries", "watch"),
        ("", "events", "watch"),
        ("apps", "daemonsets", "get"),
        ("", "services", "get"),
    }
    assert unused - justified == set(), f"grants no command uses: {sorted(unused - justified)}"
    # the proxy saw the commands' real reads: the live view watches canaries, explain lists events
    assert {
        ("flagger.app", "canaries", "watch"),
        ("", "events", "list"),
        ("flagger.app", "canaries", "get"),
    } <= used


async def _answer_commands(cluster: Cluster) -> None:
    """Stand in for the operator: mark every new CanaryCommand Applied (the CLI waits for that)."""
    from canarist.kube import resources as kinds

    while True:
        listed = await cluster.client.list(kinds.CANARY_COMMAND, namespace=NAMESPACE)
        for obj in listed.items:
            if not (obj.get("status") or {}).get("phase"):
                obj["status"] = {"phase": "Applied", "message": "held at weight 0 until resumed"}
                await cluster.client.replace_status(obj, kind=kinds.CANARY_COMMAND)
        await asyncio.sleep(0.05)


async def test_the_release_operator_role_grants_the_commands_and_the_viewer_role_does_not(
    proxied: tuple[Cluster, Proxy],
) -> None:
    cluster, proxy = proxied
    answering = asyncio.create_task(_answer_commands(cluster))
    try:
        code, output = await run(
            proxy, "pause", "podinfo", "-n", NAMESPACE, "--reason", "a look at the dashboards"
        )
        assert code == 0, output
        assert "podinfo.test: pause applied: held at weight 0 until resumed" in output
    finally:
        answering.cancel()
    for argv in (
        ("set-weight", "podinfo", "30", "-n", NAMESPACE, "--no-wait"),
        ("promote", "podinfo", "-n", NAMESPACE, "--force", "--no-wait"),
        ("abort", "podinfo", "-n", NAMESPACE, "--no-wait"),
    ):
        code, output = await run(proxy, *argv)
        assert code == 0, (argv, output)

    roles = load_roles(PEOPLE_YAML)
    releaser, viewer = roles["ClusterRole/canarist-release-operator"], roles["ClusterRole/canarist-viewer"]
    refused = [
        r for r in proxy.requests if not releaser.allows(r.group, r.resource, r.verb, r.namespace, r.name)
    ]
    assert refused == [], f"canarist-release-operator does not grant: {refused}"
    used = {(r.group, r.resource, r.verb) for r in proxy.requests}
    assert ("canarist.dev", "canarycommands", "create") in used
    assert ("canarist.dev", "canarycommands", "watch") in used  # waiting for the operator's answer
    assert ("authentication.k8s.io", "selfsubjectreviews", "create") in used  # who asks
    # the viewer cannot send a command
    assert not viewer.allows("canarist.dev", "canarycommands", "create", NAMESPACE, "")
    # everything the viewer may do, the release operator may do too
    assert viewer.grants() <= releaser.grants()
