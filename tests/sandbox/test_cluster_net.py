"""Cluster networking (`canarist.sandbox.cluster_net`) with real binaries: curl, getent, hey, Python.

Each process runs through `ClusterNetwork.command` (unshare + the helper) and reaches real HTTP servers
listening on ClusterIP addresses (127.96.x.y) by the names a pod would use.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import canarist
from canarist.sandbox import cluster_net
from canarist.sandbox.cluster_net import ClusterNetwork, ServiceAddress

NAMESERVER = "127.96.200.10"
SERVICES = {
    ("test", "podinfo"): "127.96.200.11",
    ("test", "podinfo-canary"): "127.96.200.12",
    ("other", "podinfo"): "127.96.200.13",
    ("other", "backend"): "127.96.200.14",
}
LATE = ("test", "late", "127.96.200.15")
TIMEOUT = 30.0


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.label.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Net:
    net: ClusterNetwork
    ports: dict[tuple[str, str], int]
    dns_queries: list[bytes] = field(default_factory=list)

    @property
    def services(self) -> list[ServiceAddress]:
        return [ServiceAddress(ns, name, ip) for (ns, name), ip in SERVICES.items()]

    def run(self, argv: list[str], namespace: str = "test", **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.net.command(argv, namespace),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            **kw,
        )

    def url(self, host: str, service: tuple[str, str] = ("test", "podinfo")) -> str:
        return f"http://{host}:{self.ports[service]}/"


def _serve(ip: str, label: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((ip, 0), _Answer)
    server.label = label  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def _listen_dns(record: list[bytes]) -> list[socket.socket]:
    """UDP and TCP on the nameserver's port 53 (root only): a query sent there would be recorded."""
    if os.geteuid() != 0:
        return []
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((NAMESERVER, 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((NAMESERVER, 53))
    tcp.listen()

    def udp_loop() -> None:
        while True:
            try:
                data, _ = udp.recvfrom(4096)
            except OSError:
                return
            record.append(data)

    def tcp_loop() -> None:
        while True:
            try:
                conn, _ = tcp.accept()
            except OSError:
                return
            record.append(b"tcp connection")
            conn.close()

    for loop in (udp_loop, tcp_loop):
        threading.Thread(target=loop, daemon=True).start()
    return [udp, tcp]


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    why = cluster_net.available()
    assert why is None, why
    # Under /tmp and world-readable, so that the normal-user test can read it too.
    workdir = Path(tempfile.mkdtemp(prefix="canarist-cluster-net-test-"))
    workdir.chmod(0o755)
    servers = {key: _serve(ip, f"{key[0]}/{key[1]}") for key, ip in SERVICES.items()}
    servers[LATE[:2]] = _serve(LATE[2], "test/late")
    handle = Net(
        ClusterNetwork(workdir / "cluster-net", nameserver=NAMESERVER),
        {key: server.server_address[1] for key, server in servers.items()},
    )
    sockets = _listen_dns(handle.dns_queries)
    handle.net.update(handle.services)
    try:
        yield handle
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()
        for sock in sockets:
            sock.close()
        shutil.rmtree(workdir, ignore_errors=True)


def test_files_hold_the_names_a_pod_sees(net):
    hosts = net.net.hosts_text("test").splitlines()
    fqdn, other = "podinfo.test.svc.cluster.local", "podinfo.other.svc.cluster.local"
    assert f"127.96.200.11\t{fqdn} podinfo.test.svc podinfo.test podinfo {fqdn}." in hosts
    assert f"127.96.200.13\t{other} podinfo.other.svc podinfo.other {other}." in hosts
    assert "127.0.0.1\tlocalhost" in hosts
    assert net.net.resolv_text("other").splitlines()[1:] == [
        "search other.svc.cluster.local svc.cluster.local cluster.local",
        f"nameserver {NAMESERVER}",
        "options ndots:5 timeout:1 attempts:1",
    ]
    assert (net.net.dir / "test" / "hosts").read_text() == net.net.hosts_text("test")
    objects = [
        {"metadata": {"name": "web", "namespace": "a"}, "spec": {"clusterIP": "127.96.0.20"}},
        {"metadata": {"name": "headless", "namespace": "a"}, "spec": {"clusterIP": "None"}},
        {
            "metadata": {"name": "ext", "namespace": "a"},
            "spec": {"type": "ExternalName", "externalName": "x.org"},
        },
    ]
    assert cluster_net.service_addresses(objects) == [ServiceAddress("a", "web", "127.96.0.20")]


def test_curl_reaches_a_clusterip_by_every_name_form(net):
    forms = ["podinfo", "podinfo.test", "podinfo.test.svc", "podinfo.test.svc.cluster.local"]
    forms.append("podinfo.test.svc.cluster.local.")  # absolute, as DNS allows
    urls = [net.url(host) for host in forms] + [net.url("podinfo.other", ("other", "podinfo"))]
    done = net.run(["curl", "-sS", "--max-time", "10", "-w", " %{remote_ip}\\n", *urls])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [*(["test/podinfo 127.96.200.11"] * 5), "other/podinfo 127.96.200.13"]


def test_short_names_are_those_of_the_process_namespace(net):
    backend = ("other", "backend")
    done = net.run(["curl", "-sS", "--max-time", "10", net.url("backend", backend)], namespace="test")
    assert done.returncode == 6, done
    assert "Could not resolve host: backend" in done.stderr
    done = net.run(["curl", "-sS", "--max-time", "10", net.url("podinfo", ("other", "podinfo"))], "other")
    assert (done.returncode, done.stdout) == (0, "other/podinfo"), done.stderr
    done = net.run(["curl", "-sS", "--max-time", "10", net.url("backend", backend)], "other")
    assert (done.returncode, done.stdout) == (0, "other/backend"), done.stderr


def test_an_unknown_name_fails_at_once_and_asks_nobody(net):
    done = net.run(["curl", "-sS", "--max-time", "10", "http://nosuch:9898/"])
    assert done.returncode == 6
    assert "Could not resolve host: nosuch" in done.stderr
    # Timed inside the process, around the lookup alone: well under the resolver's 1 s timeout.
    check = (
        "import json, socket, time\n"
        "out = {}\n"
        "for name in ('nosuch', 'nosuch.test.svc.cluster.local', 'podinfo.nowhere'):\n"
        "    start = time.monotonic()\n"
        "    try:\n"
        "        socket.getaddrinfo(name, 80)\n"
        "        out[name] = 'resolved'\n"
        "    except socket.gaierror as exc:\n"
        "        out[name] = [exc.errno, time.monotonic() - start]\n"
        "print(json.dumps(out))\n"
    )
    done = net.run([sys.executable, "-c", check])
    assert done.returncode == 0, done.stderr
    for name, (code, seconds) in json.loads(done.stdout).items():
        assert code == socket.EAI_NONAME, (name, code)  # "Name or service not known": NXDOMAIN, not a timeout
        assert seconds < 1.0, (name, seconds)
    if os.geteuid() == 0:  # the listener on the nameserver's port 53 heard nothing
        assert net.dns_queries == []


def test_getent_and_python_see_the_same_addresses(net):
    names = ["podinfo", "podinfo-canary.test", "podinfo.other.svc", "backend.other.svc.cluster.local."]
    done = net.run(["getent", "hosts", *names])
    assert done.returncode == 0, done.stderr
    getent = {line.split()[0] for line in done.stdout.splitlines()}
    assert getent == {"127.96.200.11", "127.96.200.12", "127.96.200.13", "127.96.200.14"}
    missing = net.run(["getent", "hosts", "nosuch"])
    assert (missing.returncode, missing.stdout) == (2, "")
    check = "import json, socket, sys; print(json.dumps([socket.gethostbyname(n) for n in sys.argv[1:]]))"
    done = net.run([sys.executable, "-c", check, *names])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["127.96.200.11", "127.96.200.12", "127.96.200.13", "127.96.200.14"]


@pytest.mark.skipif(shutil.which("hey") is None, reason="hey is not installed")
def test_hey_resolves_with_gos_resolver(net):
    done = net.run(["hey", "-n", "3", "-c", "1", net.url("podinfo-canary", ("test", "podinfo-canary"))])
    assert done.returncode == 0, done.stderr
    assert "[200]\t3 responses" in done.stdout
    done = net.run(["hey", "-n", "1", "-c", "1", "http://nosuch:9898/"])
    assert "http://nosuch:9898/" in done.stdout
    assert "[200]" not in done.stdout
    assert f"{NAMESERVER}:53" not in done.stdout
    if os.geteuid() == 0:
        assert net.dns_queries == []


def test_a_service_created_after_start_resolves_in_the_running_process(net):
    loop = (
        "import socket, sys\n"
        "for line in sys.stdin:\n"
        "    try:\n"
        "        print(socket.gethostbyname(line.strip()), flush=True)\n"
        "    except socket.gaierror:\n"
        "        print('unknown', flush=True)\n"
    )
    proc = subprocess.Popen(
        net.net.command([sys.executable, "-c", loop], "test"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None
    assert stdout is not None

    def ask(name: str) -> str:
        stdin.write(name + "\n")
        stdin.flush()
        return stdout.readline().strip()

    hosts = net.net.dir / "test" / "hosts"
    try:
        assert ask("podinfo") == "127.96.200.11"
        assert ask("late") == "unknown"
        before = hosts.stat().st_ino
        net.net.update([*net.services, ServiceAddress(*LATE)])
        assert hosts.stat().st_ino != before  # replaced by rename, not written in place
        assert ask("late") == "127.96.200.15"
        assert ask("late.test.svc.cluster.local") == "127.96.200.15"
        done = net.run(["curl", "-sS", "--max-time", "10", net.url("late", LATE[:2])])
        assert (done.returncode, done.stdout) == (0, "test/late"), done.stderr
        net.net.update(net.services)  # and gone again when the Service is
        assert ask("late") == "unknown"
    finally:
        net.net.update(net.services)
        stdin.close()
        proc.wait(TIMEOUT)
    assert proc.returncode == 0


@pytest.mark.parametrize("method", ["open-tree", "proc-fd"])
def test_each_mount_method_mounts_the_symlink(net, method):
    argv = cluster_net.wrap_command(
        ["readlink", "/etc/hosts", "/etc/resolv.conf"], "test", net.net.dir, method=method
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        str(net.net.dir / "test" / "hosts"),
        str(net.net.dir / "test" / "resolv.conf"),
    ]


def test_the_helper_refuses_to_mount_outside_a_new_mount_namespace(net):
    etc_hosts = Path("/etc/hosts").read_text()
    helper = [sys.executable, "-P", "-m", "canarist.sandbox.cluster_net", "exec"]
    here = cluster_net._mount_namespace_id()
    done = subprocess.run(
        [*helper, "--namespace", "test", "--dir", str(net.net.dir), "--outer-mntns", here, "--", "true"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == cluster_net.HELPER_FAILED
    assert "refusing to mount" in done.stderr
    assert Path("/etc/hosts").read_text() == etc_hosts
    argv = cluster_net.wrap_command(["true"], "nowhere", net.net.dir)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == cluster_net.HELPER_FAILED
    assert "no cluster network files for namespace 'nowhere'" in done.stderr
    done = net.run(["no-such-binary-here"])
    assert done.returncode == 127
    assert "no-such-binary-here" in done.stderr


def test_disabled_user_namespaces_are_named(tmp_path):
    kernel = tmp_path / "sys" / "kernel"
    kernel.mkdir(parents=True)
    (tmp_path / "sys" / "user").mkdir()
    (kernel / "apparmor_restrict_unprivileged_userns").write_text("1\n")
    (kernel / "unprivileged_userns_clone").write_text("1\n")
    (tmp_path / "sys" / "user" / "max_user_namespaces").write_text("63000\n")
    [why] = cluster_net.userns_restrictions(str(tmp_path))
    assert "kernel.apparmor_restrict_unprivileged_userns=1" in why
    assert "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in why
    (kernel / "apparmor_restrict_unprivileged_userns").write_text("0\n")
    assert cluster_net.userns_restrictions(str(tmp_path)) == []
    (tmp_path / "sys" / "user" / "max_user_namespaces").write_text("0\n")
    assert ["user.max_user_namespaces=0" in w for w in cluster_net.userns_restrictions(str(tmp_path))] == [
        True
    ]


def test_low_service_ports_are_named_for_a_normal_user(tmp_path, monkeypatch):
    (tmp_path / "sys" / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "sys" / "net" / "ipv4" / "ip_unprivileged_port_start").write_text("1024\n")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    why = cluster_net.port_restriction(80, str(tmp_path))
    assert why is not None
    assert "net.ipv4.ip_unprivileged_port_start=1024" in why
    assert cluster_net.port_restriction(9898, str(tmp_path)) is None
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert cluster_net.port_restriction(80, str(tmp_path)) is None


def _tester() -> tuple[str, str] | str:
    """(user, python) for running as a normal user, or why that cannot be done here."""
    if os.geteuid() != 0:
        return "needs root to switch to the user 'tester'"
    try:
        pwd.getpwnam("tester")
    except KeyError:
        return "no user 'tester' on this machine"
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None or shutil.which("runuser") is None:
        return "no /usr/bin/python3 or runuser for the user 'tester'"
    return "tester", python


def test_as_a_normal_user_through_an_unprivileged_user_namespace(net):
    found = _tester()
    if isinstance(found, str):
        pytest.skip(found)
    user, python = found
    # The helper needs only the standard library: the system Python runs it from the source tree.
    env = {**os.environ, "PYTHONPATH": str(Path(canarist.__file__).parents[1]), "HOME": "/tmp"}
    as_user = ["runuser", "-u", user, "--", python]
    probe = "from canarist.sandbox.cluster_net import probe; print(probe() or 'ok')"
    done = subprocess.run(
        [*as_user, "-c", probe], capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() != "ok":
        pytest.skip(f"unprivileged user namespaces are not usable here: {done.stdout.strip()}")
    run = [
        *as_user,
        "-P",
        "-m",
        "canarist.sandbox.cluster_net",
        "run",
        "--namespace",
        "test",
        "--dir",
        str(net.net.dir),
        "--",
    ]
    done = subprocess.run(
        [*run, "cat", "/proc/self/uid_map"],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", str(pwd.getpwnam(user).pw_uid), "1"]  # uid 0 mapped to the user
    curl = [
        "curl",
        "-sS",
        "--max-time",
        "10",
        "-w",
        " %{remote_ip}\\n",
        net.url("podinfo.test.svc"),
        "http://nosuch:9898/",
    ]
    done = subprocess.run(
        [*run, *curl], capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 6
    assert done.stdout.splitlines() == ["test/podinfo 127.96.200.11", " "]  # the failed transfer: no address
    assert "Could not resolve host: nosuch" in done.stderr
    assert Path("/etc/hosts").read_text().find("podinfo") == -1


def test_a_binary_with_cap_net_bind_service_listens_on_port_80_as_a_normal_user() -> None:
    """The alternative to the sysctl for a normal user's sandbox: `setcap cap_net_bind_service=+ep` on the
    program that listens (the Envoy binary). Played with a copy of the system Python as that program."""
    found = _tester()
    if isinstance(found, str):
        pytest.skip(found)
    user, python = found
    if shutil.which("setcap") is None:
        pytest.skip("no setcap (libcap2-bin) on this machine")
    if int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()) <= 80:
        pytest.skip("port 80 is not restricted for normal users here (net.ipv4.ip_unprivileged_port_start)")
    workdir = Path(tempfile.mkdtemp(prefix="canarist-setcap-"))
    try:
        workdir.chmod(0o755)
        copy = workdir / "listener"
        shutil.copy2(python, copy)
        env = {**os.environ, "PYTHONPATH": str(Path(canarist.__file__).parents[1]), "HOME": "/tmp"}
        check = (
            "import sys; from canarist.sandbox.cluster_net import port_restriction; "
            "print(port_restriction(80, binary=sys.argv[1]))"
        )
        listen = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 80)); print('bound')"

        def as_user(program: str, code: str) -> subprocess.CompletedProcess[str]:
            argv = ["runuser", "-u", user, "--", program, "-c", code, str(copy)]
            return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False)

        before = as_user(python, check)
        assert "below net.ipv4.ip_unprivileged_port_start" in before.stdout, before
        assert f"sudo setcap cap_net_bind_service=+ep {copy}" in before.stdout
        assert "PermissionError" in as_user(str(copy), listen).stderr
        subprocess.run(["setcap", "cap_net_bind_service=+ep", str(copy)], check=True, timeout=TIMEOUT)
        assert cluster_net.binds_low_ports(copy)
        assert not cluster_net.binds_low_ports(python)
        after = as_user(python, check)
        assert after.stdout.strip() == "None", after
        bound = as_user(str(copy), listen)
        assert bound.stdout.strip() == "bound", bound.stderr
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
