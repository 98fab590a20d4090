"""A person's own manifests on the sandbox, end to end: `canarist sandbox up`, then only `kubectl` (and
`canarist sandbox exec` where the walkthrough execs into a pod).

One sandbox for the module, started as a user starts it (`canarist sandbox up` as a subprocess, no story,
its own state file), driven with the real `kubectl` against the kubeconfig it publishes:

* the operator is the `flagger` Deployment of `istio-system` (available 1/1, one Running pod) whose log
  (`kubectl -n istio-system logs deployment/flagger`) is the operator's, JSON lines with a `msg`;
* the walkthrough's manifests as written (`kubectl apply -f examples/podinfo/{namespace,deployment,hpa,
  loadtester,canary}.yaml`), then only the analysis' pace patched with `kubectl patch` (interval 2 s,
  metrics over 10 s, stepWeight 10: test time; nothing else changes), `kubectl -n test set image`, and the
  release promotes with the load test (`hey` on `http://podinfo-canary.test:9898/`) and the acceptance test's
  `curl` in the loadtester pod's log (`kubectl -n test logs deployment/flagger-loadtester`); meanwhile the
  walkthrough's tester pod runs (`kubectl -n test run tester ...`) and `canarist sandbox exec -n test -- curl
  http://podinfo-canary:9898/status/500` answers 500;
* a Canary whose acceptance test fails (`curl -sSf http://podinfo-canary.test:9898/status/500`) is rolled
  back with the loadtester's `exit status 22` in the Canary's events;
* a webhook naming a host that does not exist fails to resolve (curl's exit 6, `Could not resolve host`);
* a `skipAnalysis` Canary whose target runs `stefanprodan/potato:1.0.0` does not promote: the Deployment
  stays unready with an `ImageNotRunnable` event, the pod shows `ErrImagePull`, the progress deadline fails
  the release.

The mirroring Canary is not replayed here (time): tests/sandbox/test_cluster_sandbox.py promotes it on the
demo's sandbox. Every wait polls a condition with a bounded deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from canarist.sandbox import cluster_net
from canarist.sandbox.demo import EXAMPLES, missing_prerequisites
from tests.sandbox.stories import json_log

CANARIST = Path(sys.executable).parent / "canarist"
START_TIMEOUT_S = 120.0
RUN_TIMEOUT_S = 180.0
IMAGE = "quay.io/stefanprodan/podinfo"
HEY = "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
ACCEPTANCE = "curl -sd 'test' http://podinfo-canary.test:9898/token | grep token"
FAILING = "curl -sSf http://podinfo-canary.test:9898/status/500"
UNRESOLVABLE = "curl -sS http://nosuch-service.test:9898/"
#: The analysis' pace for the test (the walkthrough's 30 s interval and 5 % steps would take minutes).
PACE = [
    {"op": "replace", "path": "/spec/analysis/interval", "value": "2s"},
    {"op": "replace", "path": "/spec/analysis/stepWeight", "value": 10},
    {"op": "replace", "path": "/spec/analysis/metrics/0/interval", "value": "10s"},
    {"op": "replace", "path": "/spec/analysis/metrics/1/interval", "value": "10s"},
]

T = TypeVar("T")


@dataclass
class Up:
    """The running `canarist sandbox up` and how to reach it."""

    process: subprocess.Popen[bytes]
    state_file: Path
    state: dict[str, Any]
    env: dict[str, str]
    err: Path

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.kubectl(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def get(self, *args: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.ok("get", *args, "-o", "json"))
        return document

    def canary(self) -> dict[str, Any]:
        return self.get("-n", "test", "canary", "podinfo")

    def phase(self) -> str:
        return str((self.canary().get("status") or {}).get("phase") or "")

    def events(self, kind: str, name: str) -> list[str]:
        items = self.get("-n", "test", "events")["items"]
        mine = [
            e
            for e in items
            if (e.get("involvedObject") or {}).get("kind") == kind
            and (e.get("involvedObject") or {}).get("name") == name
        ]
        return [str(e.get("message") or "") for e in mine]

    def loadtester_log(self) -> list[tuple[str, str]]:
        return json_log(self.ok("-n", "test", "logs", "deployment/flagger-loadtester"))

    def sandbox_exec(self, *argv: str, namespace: str = "test") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(CANARIST), "sandbox", "exec", "-n", namespace, "--", *argv],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )

    def details(self) -> str:
        """What to print when a wait fails: the Canary's status and events, the loadtester's log."""
        status = self.kubectl("-n", "test", "get", "canary", "podinfo", "-o", "jsonpath={.status}").stdout
        events = self.kubectl("-n", "test", "get", "events").stdout
        loadtester = self.kubectl("-n", "test", "logs", "deployment/flagger-loadtester").stdout
        return f"status: {status}\nevents:\n{events[-4000:]}\nloadtester:\n{loadtester[-3000:]}"


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str, up: Up | None = None) -> T:
    """Poll ``check`` until it returns something truthy (returned), failing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}\n{up.details() if up else ''}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """`canarist sandbox up` as a subprocess with its own state file, stopped by `canarist sandbox down`."""
    why = cluster_net.available()
    assert why is None, f"cluster networking cannot work on this machine: {why}"
    missing = missing_prerequisites("istio")
    assert missing == [], f"the sandbox cannot run on this machine: {missing}"
    root = tmp_path_factory.mktemp("own-manifests")
    state_file = root / "state" / "sandbox.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CANARIST_")}
    env["CANARIST_SANDBOX_STATE"] = str(state_file)
    out, err = root / "up.out", root / "up.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [str(CANARIST), "sandbox", "up", "--workdir", str(root / "work")],
            env=env,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    try:

        def running() -> dict[str, Any] | None:
            if process.poll() is not None:
                pytest.fail(f"`sandbox up` exited with {process.returncode}:\n{err.read_text()}")
            try:
                state: dict[str, Any] = json.loads(state_file.read_text())
            except (FileNotFoundError, ValueError):
                return None
            return state if state.get("state") == "running" and state.get("pid") == process.pid else None

        state = wait_for(running, START_TIMEOUT_S, "`canarist sandbox up` to be running")
        env["KUBECONFIG"] = state["kubeconfig"]
        yield Up(process, state_file, state, env, err)
    finally:
        down = subprocess.run(
            [str(CANARIST), "sandbox", "down"], env=env, capture_output=True, text=True, timeout=150
        )
        if process.poll() is None:  # down failed: SIGTERM the process we started, then SIGKILL
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        assert down.returncode == 0, down


def canary_with_webhook(cmd: str, threshold: int = 2) -> str:
    """examples/podinfo/canary.yaml at the test's pace with its acceptance test's command replaced."""
    canary: dict[str, Any] = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    analysis = canary["spec"]["analysis"]
    analysis["interval"], analysis["stepWeight"], analysis["threshold"] = "2s", 10, threshold
    for metric in analysis["metrics"]:
        metric["interval"] = "10s"
    [acceptance] = [hook for hook in analysis["webhooks"] if hook["name"] == "acceptance-test"]
    acceptance["metadata"]["cmd"] = cmd
    return yaml.safe_dump(canary)


def primary_image(up: Up) -> str:
    deployment = up.get("-n", "test", "deployment", "podinfo-primary")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def finished(up: Up) -> str | None:
    phase = up.phase()
    return phase if phase in ("Succeeded", "Failed") else None


# ------------------------------------------------------------------------------------------------ tests


def test_nothing_is_applied_and_no_loadtester_runs(up: Up) -> None:
    """`sandbox up` applies nothing of a person's: no namespace test, no loadtester."""
    namespaces = up.ok("get", "ns", "-o", "name").split()
    assert "namespace/test" not in namespaces, namespaces
    assert up.state["loadtester_url"] == "", up.state


def test_the_operator_is_the_flagger_deployment_of_istio_system(up: Up) -> None:
    """`kubectl -n istio-system get deploy,pods` shows the operator, and the walkthrough's `kubectl -n
    istio-system logs deployment/flagger -f | jq .msg` reads its log: JSON lines with a `msg`."""

    def available() -> str | None:
        listed = up.ok("-n", "istio-system", "get", "deployment", "flagger")
        rows = [line.split() for line in listed.splitlines()[1:]]
        return listed if rows and rows[0][:2] == ["flagger", "1/1"] and rows[0][3] == "1" else None

    wait_for(available, 60, "the flagger Deployment to be available 1/1", up)
    deployment = up.get("-n", "istio-system", "deployment", "flagger")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "flagger", container
    assert container["image"].startswith("ghcr.io/canarist/canarist:"), container
    assert container["args"][1:4] == ["-m", "canarist", "operator"], container
    assert "-mesh-provider=istio" in container["args"], container

    [pod] = up.get("-n", "istio-system", "pods", "-l", "app=flagger")["items"]
    assert pod["status"]["phase"] == "Running", pod
    assert pod["status"]["podIP"] == "127.0.0.1", pod
    [owner] = pod["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Deployment",
        "flagger",
        deployment["metadata"]["uid"],
    ), owner
    template_hash = pod["metadata"]["labels"]["pod-template-hash"]
    assert pod["metadata"]["name"].startswith(f"flagger-{template_hash}-"), pod["metadata"]
    listed = up.ok("-n", "istio-system", "get", "pods", "-l", "app=flagger")
    [row] = [line.split() for line in listed.splitlines()[1:]]
    assert row[1:3] == ["1/1", "Running"], listed

    log = up.ok("-n", "istio-system", "logs", "deployment/flagger")
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines, "kubectl logs deployment/flagger printed nothing"
    entries = [json.loads(line) for line in lines]  # `| jq .msg`: every line is a JSON object with a msg
    assert all(isinstance(e, dict) and isinstance(e.get("msg"), str) for e in entries), lines[:5]
    messages = [e["msg"] for e in entries]
    assert any(
        m.startswith("Starting canarist version ") and m.endswith("mesh provider istio") for m in messages
    ), messages[:10]
    assert "Started operator workers" in messages, messages[:10]


def test_the_walkthrough_promotes_with_its_load_and_acceptance_tests(up: Up) -> None:
    manifests = [f"-f{EXAMPLES / name}" for name in ("namespace.yaml", "deployment.yaml", "hpa.yaml")]
    up.ok("apply", *manifests, f"-f{EXAMPLES / 'loadtester.yaml'}")

    def loadtester_available() -> bool:
        status = up.get("-n", "test", "deployment", "flagger-loadtester").get("status") or {}
        return int(status.get("availableReplicas") or 0) >= 1

    wait_for(loadtester_available, 60, "the loadtester Deployment to be available", up)
    [pod] = up.get("-n", "test", "pods", "-l", "app=flagger-loadtester")["items"]
    assert pod["spec"]["containers"][0]["image"].startswith("ghcr.io/fluxcd/flagger-loadtester:")
    # The state file (what `canarist gate` reads) now names the loadtester's Service address.
    service_ip = up.get("-n", "test", "svc", "flagger-loadtester")["spec"]["clusterIP"]
    wait_for(
        lambda: json.loads(up.state_file.read_text()).get("loadtester_url") == f"http://{service_ip}",
        30,
        "the state file to name the loadtester",
        up,
    )

    up.ok("apply", f"-f{EXAMPLES / 'canary.yaml'}")
    up.ok("-n", "test", "patch", "canary", "podinfo", "--type", "json", "-p", json.dumps(PACE))
    wait_for(lambda: up.phase() == "Initialized", 90, "the canary to be Initialized", up)

    # The walkthrough's tester pod.
    up.ok(
        "-n",
        "test",
        "run",
        "tester",
        "--image=quay.io/stefanprodan/podinfo:1.2.1",
        "--",
        "./podinfo",
        "--port=9898",
    )

    def tester_running() -> dict[str, Any] | None:
        pod = up.get("-n", "test", "pod", "tester")
        status = pod.get("status") or {}
        return pod if status.get("phase") == "Running" and status.get("podIP") else None

    tester = wait_for(tester_running, 60, "the tester pod to run", up)
    assert tester["spec"]["containers"][0]["args"] == ["./podinfo", "--port=9898"]
    listed = up.ok("-n", "test", "get", "pod", "tester")
    assert "Running" in listed, listed

    up.ok("-n", "test", "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:3.1.1")

    def progressing() -> bool:
        status = up.canary().get("status") or {}
        if status.get("phase") in ("Failed", "Succeeded"):
            pytest.fail(f"the release ended ({status.get('phase')}) before it progressed\n{up.details()}")
        return status.get("phase") == "Progressing" and int(status.get("canaryWeight") or 0) > 0

    wait_for(progressing, 90, "the canary to take traffic", up)
    # From inside the cluster's names, as the walkthrough's `kubectl exec -it tester` then curl does.
    curl = up.sandbox_exec(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://podinfo-canary:9898/status/500"
    )
    assert (curl.returncode, curl.stdout) == (0, "500"), curl

    phase = wait_for(lambda: finished(up), RUN_TIMEOUT_S, "the release to finish", up)
    assert phase == "Succeeded", up.details()
    assert primary_image(up) == f"{IMAGE}:3.1.1"
    listed = up.ok("get", "canaries", "--all-namespaces")
    assert [line.split()[:3] for line in listed.splitlines()[1:]] == [["test", "podinfo", "Succeeded"]], (
        listed
    )
    described = up.ok("-n", "test", "describe", "canary/podinfo")
    assert "Promotion completed!" in described, described
    # The load test and the acceptance test really ran, in the loadtester pod, against the canary's name.
    messages = [msg for _, msg in up.loadtester_log()]
    assert f"command finished {ACCEPTANCE}" in messages, messages[-30:]
    assert f"command starting {HEY}" in messages, messages[-30:]
    assert not [m for m in messages if "Could not resolve host" in m], messages[-30:]


def test_a_failing_acceptance_test_rolls_back_with_the_loadtesters_error(up: Up) -> None:
    assert finished(up), "the previous release has not finished"
    up.ok("apply", "-f", "-", stdin=canary_with_webhook(FAILING))
    up.ok("-n", "test", "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:3.1.2")
    wait_for(lambda: up.phase() == "Progressing", 60, "the release to start", up)
    phase = wait_for(lambda: finished(up), RUN_TIMEOUT_S, "the rollback", up)
    assert phase == "Failed", up.details()
    assert primary_image(up) == f"{IMAGE}:3.1.1"
    events = up.events("Canary", "podinfo")
    failed = [e for e in events if f"pre-rollout check acceptance-test failed command {FAILING} failed" in e]
    assert failed, events
    assert "exit status 22" in failed[-1], failed
    assert "returned error: 500" in failed[-1], failed
    assert any(e.startswith("Rolling back podinfo.test failed checks threshold reached 2") for e in events), (
        events
    )
    warnings = [msg for level, msg in up.loadtester_log() if level == "warn"]
    assert any(f"command {FAILING} failed: exit status 22" in w for w in warnings), warnings[-10:]


def test_a_webhook_naming_an_unknown_host_fails_to_resolve(up: Up) -> None:
    assert finished(up), "the previous release has not finished"
    up.ok("apply", "-f", "-", stdin=canary_with_webhook(UNRESOLVABLE))
    up.ok("-n", "test", "set", "image", "deployment/podinfo", f"podinfod={IMAGE}:3.1.3")
    wait_for(lambda: up.phase() == "Progressing", 60, "the release to start", up)
    phase = wait_for(lambda: finished(up), RUN_TIMEOUT_S, "the rollback", up)
    assert phase == "Failed", up.details()
    events = up.events("Canary", "podinfo")
    failed = [e for e in events if f"command {UNRESOLVABLE} failed: exit status 6" in e]
    assert failed, events
    assert "Could not resolve host: nosuch-service.test" in failed[-1], failed


def test_a_skip_analysis_canary_of_an_image_that_cannot_run_does_not_promote(up: Up) -> None:
    assert finished(up), "the previous release has not finished"
    canary: dict[str, Any] = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    canary["spec"]["skipAnalysis"] = True
    canary["spec"]["progressDeadlineSeconds"] = 10
    canary["spec"]["analysis"]["interval"] = "2s"
    up.ok("apply", "-f", "-", stdin=yaml.safe_dump(canary))
    # The Deployment's own deadline, which its status reports (ProgressDeadlineExceeded) — test time.
    up.ok("-n", "test", "patch", "deployment", "podinfo", "-p", '{"spec":{"progressDeadlineSeconds":10}}')
    up.ok("-n", "test", "set", "image", "deployment/podinfo", "podinfod=stefanprodan/potato:1.0.0")

    def not_runnable() -> list[str]:
        return [e for e in up.events("Deployment", "podinfo") if "stefanprodan/potato:1.0.0" in e]

    [event] = wait_for(not_runnable, 60, "the Deployment's ImageNotRunnable event", up)
    assert "cannot run in the sandbox" in event, event
    reasons = [
        e.get("reason")
        for e in up.get("-n", "test", "events")["items"]
        if (e.get("involvedObject") or {}).get("name") == "podinfo"
        and (e.get("involvedObject") or {}).get("kind") == "Deployment"
    ]
    assert "ImageNotRunnable" in reasons, reasons

    def pulling() -> list[dict[str, Any]]:
        pods = up.get("-n", "test", "pods", "-l", "app=podinfo")["items"]
        return [
            p
            for p in pods
            for s in (p.get("status") or {}).get("containerStatuses") or []
            if ((s.get("state") or {}).get("waiting") or {}).get("reason") == "ErrImagePull"
        ]

    pods = wait_for(pulling, 60, "the potato pods to show ErrImagePull", up)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"stefanprodan/potato:1.0.0"}, pods
    listed = up.ok("-n", "test", "get", "pods", "-l", "app=podinfo")
    assert "ErrImagePull" in listed, listed
    status = up.get("-n", "test", "deployment", "podinfo").get("status") or {}
    assert int(status.get("availableReplicas") or 0) < int(status.get("replicas") or 1), status
    assert up.phase() != "Succeeded", up.details()

    phase = wait_for(lambda: finished(up), RUN_TIMEOUT_S, "the release to end", up)
    assert phase == "Failed", up.details()
    assert primary_image(up) == f"{IMAGE}:3.1.1"
