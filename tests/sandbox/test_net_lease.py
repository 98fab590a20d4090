"""Each sandbox's own address range (`cluster_net.lease_network`): a lease is an flock on a lock file, held
for the sandbox's lifetime and released on `release()` and on the holder's death however it dies.

Every test uses a lock directory of its own, so the sandboxes other test modules run at the same time (with
the machine-wide directory) neither see nor disturb these leases; the tests of the locks say that nothing
listens (``listening=()``), since those sandboxes do listen on their own ranges. The probe of what listens
is tested for real, on a range held in the machine-wide directory.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from canarist.sandbox import cluster_net
from canarist.sandbox.cluster_net import LeaseError, NetworkLease, lease_network

NOTHING: tuple[int, ...] = ()  # nothing listens (the lock tests)

HOLDER = """
import sys
from canarist.sandbox.cluster_net import lease_network
lease = lease_network(sys.argv[1], listening=())
print(lease.index, flush=True)
sys.stdin.read()  # hold it until the parent closes our stdin (or kills us)
"""


def test_two_leases_in_one_process_differ_and_a_released_one_is_free_again(tmp_path: Path) -> None:
    first = lease_network(tmp_path, listening=NOTHING)
    second = lease_network(tmp_path, listening=NOTHING)
    try:
        assert first.index != second.index
        for lease in (first, second):
            assert lease.service_cidr == f"127.{96 + lease.index}.0.0/16"
            assert lease.pod_cidr == f"127.{112 + lease.index}.0.0/16"
            assert lease.nameserver == f"127.{96 + lease.index}.0.10"
            assert ipaddress.ip_address(lease.nameserver) in ipaddress.ip_network(lease.service_cidr)
        ranges = [
            ipaddress.ip_network(c) for lease in (first, second) for c in (lease.service_cidr, lease.pod_cidr)
        ]
        assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])
        taken = first.index
        first.release()
        assert not first.held
        again = lease_network(tmp_path, listening=NOTHING)
        assert again.index == taken
        again.release()
    finally:
        first.release()
        second.release()


def test_a_lease_held_by_a_child_is_free_once_the_child_dies(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        held_by_child = int(child.stdout.readline())
        mine = lease_network(tmp_path, listening=NOTHING)
        assert mine.index != held_by_child
        mine.release()
        child.send_signal(signal.SIGKILL)  # no cleanup: the kernel drops the flock with the process
        assert child.wait(timeout=30) == -signal.SIGKILL
        with lease_network(tmp_path, listening=NOTHING) as after:
            assert after.index == held_by_child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_subprocesses_do_not_inherit_the_lease(tmp_path: Path) -> None:
    """The sandbox's Envoy, Prometheus and operator do not keep its range leased after it is gone."""
    with lease_network(tmp_path, listening=NOTHING) as lease:
        sleeper = subprocess.Popen(["sleep", "300"])
        try:
            lease.release()
            with lease_network(tmp_path, listening=NOTHING) as again:
                assert again.index == lease.index
        finally:
            sleeper.kill()
            sleeper.wait()


def test_all_ranges_taken_is_a_clear_error(tmp_path: Path) -> None:
    held = [
        lease_network(tmp_path, range(2), listening=NOTHING),
        lease_network(tmp_path, range(2), listening=NOTHING),
    ]
    try:
        with pytest.raises(LeaseError) as caught:
            lease_network(tmp_path, range(2), listening=NOTHING)
        message = str(caught.value)
        assert message.startswith("all 2 sandbox address ranges are taken (0: held; 1: held)"), message
        assert "canarist sandbox down" in message
        assert str(tmp_path) in message
    finally:
        for lease in held:
            lease.release()
    with pytest.raises(ValueError, match=r"a lease index is in 0\.\.15, not 16"):
        lease_network(tmp_path, [16])


def test_a_range_something_listens_on_is_skipped(tmp_path: Path) -> None:
    """A range whose addresses are in use without a lease (an Envoy left behind by a killed sandbox, a
    sandbox with another lock directory) is not handed out. The range is held in the machine-wide directory
    meanwhile, so no sandbox of another test listens on it."""
    with lease_network() as real:
        index = real.index
        assert cluster_net.POD_BASE + index not in cluster_net.listening_ranges()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((f"127.{cluster_net.POD_BASE + index}.250.1", 0))
            listener.listen()
            assert cluster_net.POD_BASE + index in cluster_net.listening_ranges()
            with pytest.raises(LeaseError, match="addresses in use by a process that holds no lease"):
                lease_network(tmp_path, [index])
        finally:
            listener.close()
        with lease_network(tmp_path, [index]) as free:
            assert free.index == index


def test_the_lock_files_are_never_followed_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (tmp_path / "net-0.lock").symlink_to(target)
    with lease_network(tmp_path, range(2), listening=NOTHING) as lease:
        assert lease.index == 1  # net-0 could not be opened (O_NOFOLLOW)
    assert target.read_text() == "keep"


def test_the_default_directory_is_machine_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cluster_net.LEASE_DIR_ENV, raising=False)
    monkeypatch.setenv("TMPDIR", "/nonexistent")
    assert cluster_net.lease_directory() == Path("/tmp/canarist-net-leases")
    monkeypatch.setenv(cluster_net.LEASE_DIR_ENV, "/somewhere")
    assert cluster_net.lease_directory() == Path("/somewhere")


def test_a_lease_reads_well() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)
    lease = NetworkLease(3, Path("/x/net-3.lock"), fd)
    assert repr(lease) == "NetworkLease(3, services 127.99.0.0/16, pods 127.115.0.0/16, held)"
    lease.release()
    assert repr(lease).endswith("released)")
