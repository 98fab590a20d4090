"""Fault injection (Python API and HTTP endpoint) and the `canarist localcluster` command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from canarist.localcluster import LocalCluster, LocalClusterThread
from canarist.localcluster.faults import Faults, parse_error_spec
from tests.fixtures.localcluster import kubectl_path
from tests.localcluster.helpers import configmap, request, watch_events

CMS = "/api/v1/namespaces/default/configmaps"
FAULTS = "/localcluster.canarist.dev/v1/faults"


async def test_deterministic_failures_per_verb(local_cluster):
    base = local_cluster.url + CMS
    faults = local_cluster.server.faults
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", base, configmap("f"))
        faults.fail("get", 500)
        faults.fail("patch", 409, times=2)
        faults.fail("list", 429)
        status, body = await request(session, "GET", f"{base}/f")
        assert (status, body["reason"], body["code"]) == (500, "InternalError", 500)
        status, _ = await request(session, "GET", f"{base}/f")
        assert status == 200
        for _ in range(2):
            status, body = await request(
                session, "PATCH", f"{base}/f", {"data": {"a": "1"}}, "application/merge-patch+json"
            )
            assert (status, body["reason"]) == (409, "Conflict")
        async with session.get(base) as response:
            assert response.status == 429
            assert response.headers["Retry-After"] == "1"
            assert (await response.json())["details"]["retryAfterSeconds"] == 1
        status, _ = await request(
            session, "PATCH", f"{base}/f", {"data": {"a": "1"}}, "application/merge-patch+json"
        )
        assert status == 200
        assert faults.injected == 4


async def test_error_rates_through_the_http_endpoint(local_cluster):
    url = local_cluster.url
    async with aiohttp.ClientSession() as session:
        status, settings = await request(
            session,
            "PUT",
            url + FAULTS,
            {"seed": 7, "errors": [{"verb": "get", "code": 503, "rate": 0.5}], "latency": 0.001},
        )
        assert status == 200
        assert settings["errors"] == [{"verb": "get", "code": 503, "rate": 0.5}]
        await request(session, "POST", url + CMS, configmap("r"))
        codes = [(await request(session, "GET", f"{url}{CMS}/r"))[0] for _ in range(40)]
        assert set(codes) == {200, 503}
        status, cleared = await request(session, "DELETE", url + FAULTS)
        assert cleared["errors"] == []
        assert cleared["latency"] == 0.0
        codes = [(await request(session, "GET", f"{url}{CMS}/r"))[0] for _ in range(10)]
        assert set(codes) == {200}
        status, _bad = await request(
            session, "PUT", url + FAULTS, {"errors": [{"verb": "get", "code": 418, "rate": 1}]}
        )
        assert status == 400


async def test_watch_streams_are_dropped_after_n_events(local_cluster):
    base = local_cluster.url + CMS
    local_cluster.server.faults.drop_watch_after_events = 2
    async with aiohttp.ClientSession() as session:
        for n in range(5):
            await request(session, "POST", base, configmap(f"d{n}"))
        events = await watch_events(session, f"{base}?watch=true", 100)
        assert len(events) == 2


async def test_watch_streams_are_dropped_after_seconds(local_cluster):
    local_cluster.server.faults.drop_watch_after_seconds = 0.3
    async with aiohttp.ClientSession() as session:
        events = await watch_events(session, f"{local_cluster.url}{CMS}?watch=true", 100)
        assert events == []


def test_kubectl_sees_injected_errors(local_cluster):
    local_cluster.server.faults.fail("list", 500)
    done = local_cluster.kubectl("get", "configmaps")
    assert done.returncode != 0
    assert "injected failure" in done.stderr


def test_error_spec_parsing():
    assert parse_error_spec("patch:409:0.2").to_dict() == {"verb": "patch", "code": 409, "rate": 0.2}
    for bad, why in (
        ("patch:409", "VERB:CODE:RATE"),
        ("fly:500:0.1", "unknown verb"),
        ("get:404:0.1", "unsupported fault code"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_error_spec(bad)
    with pytest.raises(ValueError, match="rate must be between 0 and 1"):
        Faults().add_error("get", 500, 1.5)


async def test_python_api_on_the_callers_loop(tmp_path):
    cluster = LocalCluster(install_istio_crds=True)
    url = await cluster.start(port=0)
    try:
        assert url == cluster.url
        assert url.startswith("http://127.0.0.1:")
        path = cluster.write_kubeconfig(tmp_path / "nested" / "kubeconfig")
        assert path.exists()
        assert url in path.read_text()
        async with aiohttp.ClientSession() as session:
            status, listed = await request(
                session, "GET", f"{url}/apis/networking.istio.io/v1alpha3/gateways"
            )
            assert status == 200
            assert listed["kind"] == "GatewayList"
    finally:
        await cluster.stop()
    assert not cluster.running


def test_thread_runner_context_manager(tmp_path):
    with LocalClusterThread(readiness_delay=0.01) as running:
        kubeconfig = running.write_kubeconfig(tmp_path / "kubeconfig")
        done = subprocess.run(
            [
                kubectl_path(),
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                str(tmp_path / "cache"),
                "get",
                "ns",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert "namespace/default" in done.stdout.split()
    assert not running.cluster.running


def test_cli_serves_writes_kubeconfig_and_stops_on_ctrl_c(tmp_path):
    kubeconfig = tmp_path / "cfg" / "kubeconfig"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "canarist",
            "localcluster",
            "--kubeconfig",
            str(kubeconfig),
            "--readiness-delay",
            "0.01",
            "--no-istio-crds",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "serving the Kubernetes API at http://127.0.0.1:" in first, process.stderr
        banner = "".join(process.stdout.readline() for _ in range(5))
        assert str(kubeconfig.resolve()) in banner
        assert "kubectl" in banner
        done = subprocess.run(
            [
                kubectl_path(),
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                str(tmp_path / "cache"),
                "apply",
                "-f",
                "-",
            ],
            input=json.dumps(configmap("cli")),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        crds = subprocess.run(
            [
                kubectl_path(),
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                str(tmp_path / "cache"),
                "get",
                "crd",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert crds.stdout.strip() == ""
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
        assert process.returncode == 0, err
        assert "stopped" in out
    finally:
        process.kill()


@pytest.mark.parametrize("entry", [["-m", "canarist", "localcluster"], ["-m", "canarist.localcluster"]])
def test_cli_rejects_bad_fault_flags(tmp_path, entry):
    done = subprocess.run(
        [sys.executable, *entry, "--error-rate", "get:999:1", "--kubeconfig", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "unsupported fault code" in done.stderr
    assert not Path(tmp_path / "k").exists()
