"""`pods/{name}/log`: log files registered in process, read with the real kubectl and raw HTTP."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canarist.localcluster import LocalClusterThread, PodLogs
from tests.fixtures.localcluster import LocalClusterHandle

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (.*)$")


def _http(cluster: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        cluster.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, raw, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, raw, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    return status, (json.loads(raw) if kind.startswith("application/json") else raw.decode())


def _pod(name: str, containers: list[str], init: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": f"example/{c}:1"} for c in containers]}
    if init:
        spec["initContainers"] = [{"name": c, "image": f"example/{c}:1"} for c in init]
    spec["nodeName"] = "canarist-local"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": spec,
    }


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            },
        },
    }


@pytest.fixture
def web_pod(local_cluster: Any, tmp_path: Path) -> Path:
    """Pod `web-1` (container `app`) with a registered log of three lines, and Deployment `web` over it."""
    assert _http(local_cluster, "POST", PODS, _pod("web-1", ["app"]))[0] == 201
    assert _http(local_cluster, "POST", DEPLOYMENTS, _deployment())[0] == 201
    log = tmp_path / "web-1.log"
    log.write_text("one\ntwo\nthree\n")
    local_cluster.thread.pod_logs.register("default", "web-1", "app", log)
    return log


def _failed(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    return done.stderr


def test_discovery_advertises_pods_log(local_cluster: LocalClusterHandle) -> None:
    status, body = _http(local_cluster, "GET", "/api/v1")
    assert status == 200
    entry = next(r for r in body["resources"] if r["name"] == "pods/log")
    assert entry == {
        "name": "pods/log",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get"],
    }


def test_kubectl_logs_pod_and_deployment(local_cluster: LocalClusterHandle, web_pod: Path) -> None:
    done = local_cluster.kubectl("logs", "web-1", check=True)
    assert done.stdout == "one\ntwo\nthree\n"
    done = local_cluster.kubectl("logs", "deployment/web", check=True)
    assert done.stdout == "one\ntwo\nthree\n"
    done = local_cluster.kubectl("logs", "web-1", "--tail=2", check=True)
    assert done.stdout == "two\nthree\n"
    done = local_cluster.kubectl("logs", "web-1", "--tail=0", check=True)
    assert done.stdout == ""
    done = local_cluster.kubectl("logs", "web-1", "--limit-bytes=6", check=True)
    assert done.stdout == "one\ntw"
    done = local_cluster.kubectl("logs", "web-1", "-c", "app", "--since=1h", check=True)
    assert done.stdout == "one\ntwo\nthree\n"
    done = local_cluster.kubectl("logs", "web-1", "--timestamps", "--tail=2", check=True)
    lines = done.stdout.splitlines()
    assert [STAMPED.match(line).group(1) for line in lines] == ["two", "three"], done.stdout  # type: ignore[union-attr]


def test_since_skips_content_written_before_it(local_cluster: LocalClusterHandle, web_pod: Path) -> None:
    old = web_pod.stat().st_mtime - 7200
    os.utime(web_pod, (old, old))  # the file last changed two hours ago
    assert local_cluster.kubectl("logs", "web-1", "--since=1h", check=True).stdout == ""
    assert local_cluster.kubectl("logs", "web-1", "--since=3h", check=True).stdout == "one\ntwo\nthree\n"
    after = datetime.fromtimestamp(old + 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = datetime.fromtimestamp(old - 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert local_cluster.kubectl("logs", "web-1", f"--since-time={after}", check=True).stdout == ""
    done = local_cluster.kubectl("logs", "web-1", f"--since-time={before}", check=True)
    assert done.stdout == "one\ntwo\nthree\n"


def test_a_log_without_a_final_newline_and_a_missing_file(
    local_cluster: LocalClusterHandle, tmp_path: Path
) -> None:
    assert _http(local_cluster, "POST", PODS, _pod("p", ["app"]))[0] == 201
    log = tmp_path / "p.log"
    local_cluster.thread.pod_logs.register("default", "p", "app", log)
    assert local_cluster.kubectl("logs", "p", check=True).stdout == ""  # not written yet: empty
    log.write_text("a\nb\npartial")
    assert local_cluster.kubectl("logs", "p", "--tail=1", check=True).stdout == "partial"
    done = local_cluster.kubectl("logs", "p", "--timestamps", check=True)
    assert [STAMPED.match(line).group(1) for line in done.stdout.splitlines()] == ["a", "b", "partial"]  # type: ignore[union-attr]


def test_kubectl_logs_errors(local_cluster: LocalClusterHandle, web_pod: Path) -> None:
    assert 'pods "nosuch" not found' in _failed(local_cluster.kubectl("logs", "nosuch"))
    stderr = _failed(local_cluster.kubectl("logs", "web-1", "-c", "nosuch"))
    assert "container nosuch is not valid for pod web-1" in stderr
    assert _http(local_cluster, "POST", PODS, _pod("web-2", ["app"]))[0] == 201
    stderr = _failed(local_cluster.kubectl("logs", "web-2"))
    assert 'container "app" in pod "web-2" is waiting to start: ContainerCreating' in stderr
    stderr = _failed(local_cluster.kubectl("logs", "web-1", "--previous"))
    assert 'previous terminated container "app" in pod "web-1" not found' in stderr


def test_http_errors_are_status_objects(local_cluster: LocalClusterHandle, web_pod: Path) -> None:
    assert _http(local_cluster, "POST", PODS, _pod("multi", ["a", "b"], init=["setup"]))[0] == 201
    status, body = _http(local_cluster, "GET", f"{PODS}/multi/log")
    assert (status, body["kind"], body["reason"]) == (400, "Status", "BadRequest")
    assert body["message"] == "a container name must be specified for pod multi, choose one of: [setup a b]"
    status, body = _http(local_cluster, "GET", f"{PODS}/nosuch/log")
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'pods "nosuch" not found')
    status, body = _http(local_cluster, "GET", f"{PODS}/web-1/log?tailLines=-1")
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"] == (
        'PodLogOptions "web-1" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'
    )
    status, body = _http(local_cluster, "GET", f"{PODS}/web-1/log?follow=perhaps")
    assert (status, body["reason"]) == (400, "BadRequest")
    status, body = _http(local_cluster, "POST", f"{PODS}/web-1/log", {})
    assert (status, body["reason"]) == (405, "MethodNotAllowed")
    status, body = _http(local_cluster, "GET", "/apis/apps/v1/namespaces/default/deployments/web/log")
    assert status == 404
    # kubectl names a container itself when a pod has several (the first one, with a notice)
    log = web_pod.parent / "multi-b.log"
    log.write_text("from b\n")
    local_cluster.thread.pod_logs.register("default", "multi", "b", log)
    assert local_cluster.kubectl("logs", "multi", "-c", "b", check=True).stdout == "from b\n"
    stderr = _failed(local_cluster.kubectl("logs", "multi"))
    assert 'container "a" in pod "multi" is waiting to start: ContainerCreating' in stderr


def test_a_restart_keeps_the_previous_log(local_cluster: LocalClusterHandle, web_pod: Path) -> None:
    second = web_pod.parent / "web-1.restart.log"
    second.write_text("again\n")
    local_cluster.thread.pod_logs.register("default", "web-1", "app", second)
    assert local_cluster.kubectl("logs", "web-1", check=True).stdout == "again\n"
    assert local_cluster.kubectl("logs", "web-1", "-p", check=True).stdout == "one\ntwo\nthree\n"


def _follow(local_cluster: Any, *args: str) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
    process = subprocess.Popen(
        [
            local_cluster.kubectl_bin,
            "--kubeconfig",
            str(local_cluster.kubeconfig),
            "--cache-dir",
            str(local_cluster.cache_dir),
            "logs",
            "-f",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(local_cluster.cache_dir.parent)},
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def test_kubectl_logs_follow_sees_new_lines_and_ends_when_the_pod_is_deleted(
    local_cluster: LocalClusterHandle, web_pod: Path
) -> None:
    process, lines = _follow(local_cluster, "web-1", "--tail=1")
    try:
        assert lines.get(timeout=30) == "three\n"
        with web_pod.open("a") as out:
            out.write("four\n")
        assert lines.get(timeout=30) == "four\n"
        assert local_cluster.thread.pod_logs.active_streams == 1
        assert _http(local_cluster, "DELETE", f"{PODS}/web-1")[0] == 200
        assert lines.get(timeout=30) is None
        assert process.wait(timeout=30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
        process.wait()
    assert local_cluster.thread.pod_logs.wait_for_streams(0, timeout=30)
    assert local_cluster.thread.pod_logs.lookup("default", "web-1", "app") is None  # forgotten with the pod


def test_kubectl_logs_follow_a_deployment_ends_when_the_log_is_unregistered(
    local_cluster: LocalClusterHandle, web_pod: Path
) -> None:
    process, lines = _follow(local_cluster, "deployment/web")
    try:
        assert [lines.get(timeout=30) for _ in range(3)] == ["one\n", "two\n", "three\n"]
        with web_pod.open("a") as out:
            out.write("last words\n")
        local_cluster.thread.pod_logs.unregister("default", "web-1")
        assert lines.get(timeout=30) == "last words\n"  # what was written before the end is still sent
        assert lines.get(timeout=30) is None
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()


async def test_a_follower_that_disconnects_is_released(
    local_cluster: LocalClusterHandle, web_pod: Path
) -> None:
    logs: PodLogs = local_cluster.thread.pod_logs
    timeout = aiohttp.ClientTimeout(total=60)
    url = f"{local_cluster.url}{PODS}/web-1/log?follow=true&timestamps=true"
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        first = await response.content.readline()
        assert STAMPED.match(first.decode().rstrip("\n")).group(1) == "one"  # type: ignore[union-attr]
        assert logs.active_streams == 1
    # leaving the block closes the connection: the server notices and ends the stream
    assert logs.wait_for_streams(0, timeout=30)


async def test_limit_bytes_ends_a_follow(local_cluster: LocalClusterHandle, web_pod: Path) -> None:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session,
        session.get(f"{local_cluster.url}{PODS}/web-1/log?follow=true&limitBytes=20") as response,
    ):
        assert response.status == 200
        first = await response.content.readexactly(len("one\ntwo\nthree\n"))
        with web_pod.open("a") as out:
            out.write("four five six\n")
        rest = await response.content.read()  # the stream ends when the limit is reached
    assert first + rest == b"one\ntwo\nthree\nfour f"


def test_the_cluster_stopping_ends_a_follow(tmp_path: Path) -> None:
    thread = LocalClusterThread(readiness_delay=0.05).start()
    try:
        assert _http(thread, "POST", PODS, _pod("p", ["app"]))[0] == 201
        log = tmp_path / "p.log"
        log.write_text("x\n")
        thread.pod_logs.register("default", "p", "app", log)
        done: queue.Queue[bytes] = queue.Queue()

        def read() -> None:
            with urllib.request.urlopen(f"{thread.url}{PODS}/p/log?follow=1", timeout=60) as response:
                done.put(response.read())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert thread.pod_logs.wait_for_streams(1, timeout=30)
    finally:
        thread.stop()
    assert done.get(timeout=30) == b"x\n"
