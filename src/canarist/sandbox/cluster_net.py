"""Cluster networking for the sandbox's processes: Services' DNS names resolve to their ClusterIPs.

A pod resolves `svc` (its own namespace), `svc.ns`, `svc.ns.svc` and `svc.ns.svc.cluster.local` to the
Service's ClusterIP, and nothing else. The sandbox gives every process it runs the same view without touching
the machine: the process starts in a private mount namespace in which `/etc/hosts`, `/etc/resolv.conf` and
`/etc/nsswitch.conf` are generated files of the sandbox's work directory.

    net = ClusterNetwork(workdir / "cluster-net")
    net.update([ServiceAddress("test", "podinfo", "127.96.0.11"), ...])   # or service_addresses(objects)
    subprocess.Popen(net.command(["curl", "http://podinfo:9898/"], namespace="test"))

* `command()` wraps argv as `unshare --mount --propagation private -- PYTHON -P -m canarist.sandbox.cluster_net
  exec --namespace N --dir D --outer-mntns ID -- argv...` (a normal user adds `--map-root-user`: an
  unprivileged user namespace, in which the process is uid 0 mapped to the user). The helper is plain Python
  with no shell: it refuses to mount anything unless it really is in a new mount namespace, mounts the three
  files, checks what it mounted and execs argv (same PID, same environment).
* What is mounted over `/etc/hosts` is a *symlink* to the namespace's generated file (a bind mount of the
  symlink itself, via `open_tree(2)` or an `O_PATH` descriptor). Path lookups follow it to the file by name,
  so `update()` replaces the files by atomic rename and every running process sees a Service created after it
  started on its next lookup; a bind mount of the file would keep the old inode.
* `nsswitch.conf` is the machine's with `hosts: files`: glibc (and Go's resolver, which reads the same file)
  answers from the hosts file alone, so a name that is no Service fails at once with "Name or service not
  known" (the NXDOMAIN a cluster gives) and no query leaves the process. `resolv.conf` carries the pod's search
  path and `ndots:5`, and a nameserver on which nothing answers, for resolvers that skip nsswitch (musl,
  c-ares): they fail too, never reaching a DNS server of the host.

Each sandbox takes its own address ranges with `lease_network()`: index i in 0..15, held by an flock on a lock
file of a machine-wide directory for the sandbox's lifetime, gives the Service CIDR 127.(96+i).0.0/16 (its
nameserver the .10) and the pod CIDR 127.(112+i).0.0/16, so sandboxes run side by side. `port_restriction()`
says why a normal user's Envoy cannot listen on a port below 1024 (and how to allow it).

Only the standard library is imported here: the helper runs once per process the sandbox starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import ipaddress
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

CLUSTER_DOMAIN = "cluster.local"
# The first lease's ClusterIPs (LocalCluster(service_cidr=...)): all of 127.0.0.0/8 is loopback on Linux.
SERVICE_CIDR = "127.96.0.0/16"
# kube-dns' place in the range (.10, as kubeadm puts it); the local cluster never allocates it and nothing
# of the sandbox listens there, so a DNS query sent to it is refused on the spot.
NAMESERVER = "127.96.0.10"
ETC_FILES = ("hosts", "resolv.conf", "nsswitch.conf")
LINKS = ".links"
SERVICES_INDEX = "services.json"  # the Services of the last update(), for `canarist sandbox exec`
HELPER_FAILED = 125  # the helper's own failures (as env(1) and chroot(1) report theirs)
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

# Mount syscalls. open_tree/move_mount have these numbers on the architectures of the unified syscall table.
_SYSCALLS = {"x86_64": (428, 429), "aarch64": (428, 429), "arm64": (428, 429)}
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_OPEN_TREE_CLONE = 1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOVE_MOUNT_T_SYMLINKS = 0x10
_MS_BIND = 4096
METHODS = ("auto", "open-tree", "proc-fd")


class ServiceAddress(NamedTuple):
    """A Service that has a ClusterIP."""

    namespace: str
    name: str
    cluster_ip: str


class ClusterNetError(RuntimeError):
    """The helper cannot give the process the cluster's names (why is in the message)."""


def service_addresses(services: Iterable[Mapping[str, Any]]) -> list[ServiceAddress]:
    """The (namespace, name, ClusterIP) of Service objects that have a ClusterIP.

    Headless Services (`clusterIP: None`, resolved to pod addresses in a cluster) and ExternalName Services (a
    CNAME, which a hosts file cannot express) are left out: their names do not resolve here.
    """
    out: list[ServiceAddress] = []
    for svc in services:
        meta = svc.get("metadata") or {}
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if spec.get("type") == "ExternalName" or not isinstance(ip, str) or ip in ("", "None"):
            continue
        out.append(ServiceAddress(str(meta.get("namespace") or "default"), str(meta.get("name")), ip))
    return out


def nsswitch_text(machine: str) -> str:
    """The machine's nsswitch.conf with hosts looked up in the hosts file only."""
    lines = [line for line in machine.splitlines() if not line.strip().startswith("hosts:")]
    lines.append("hosts:          files")
    header = "# canarist cluster networking: the machine's nsswitch.conf, names from the hosts file only"
    return "\n".join([header, *lines]) + "\n"


def _check_namespace(namespace: str) -> str:
    if not _NAMESPACE_RE.match(namespace):
        raise ValueError(f"not a namespace name (a DNS label): {namespace!r}")
    return namespace


def _write_atomic(path: Path, text: str) -> bool:
    """Replace path's content by rename (readers see the old file or the new one, never a mix)."""
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
        os.fchmod(fd, 0o644)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return True


def _link(link: Path, target: Path) -> None:
    with contextlib.suppress(OSError):
        if os.readlink(link) == str(target):
            return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _mount_namespace_id(pid: str = "self") -> str:
    st = os.stat(f"/proc/{pid}/ns/mnt")
    return f"{st.st_dev}:{st.st_ino}"


class ClusterNetwork:
    """The Services' names as each namespace sees them, as files, and the command that runs a process with them.

    Files under `workdir`: `<ns>/hosts`, `<ns>/resolv.conf`, the shared `nsswitch.conf`, and the symlinks the
    helper mounts (`<ns>/.links/*`, absolute, pointing at those files). A namespace gets its files when a
    Service of it is known or a command is made for it; `update()` rewrites them all.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        nameserver: str = NAMESERVER,
        cluster_domain: str = CLUSTER_DOMAIN,
        python: str | None = None,
    ) -> None:
        self.dir = Path(workdir).absolute()
        self.nameserver = str(ipaddress.ip_address(nameserver))
        self.cluster_domain = cluster_domain
        self.python = python or sys.executable
        self._services: tuple[ServiceAddress, ...] = ()
        self._namespaces: set[str] = set()
        self._lock = threading.Lock()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        try:
            machine = Path("/etc/nsswitch.conf").read_text()
        except OSError:
            machine = ""
        _write_atomic(self.dir / "nsswitch.conf", nsswitch_text(machine))

    @property
    def services(self) -> tuple[ServiceAddress, ...]:
        return self._services

    @property
    def namespaces(self) -> list[str]:
        with self._lock:
            return sorted(self._namespaces)

    def names(self, service: ServiceAddress, namespace: str) -> list[str]:
        """The names of a Service as a process in `namespace` resolves them, the canonical one first.

        The fully qualified name also with its trailing dot (absolute, as DNS takes it; the hosts file
        matches names literally, without search domains, so every form is listed).
        """
        svc, ns = service.name, service.namespace
        fqdn = f"{svc}.{ns}.svc.{self.cluster_domain}"
        names = [fqdn, f"{svc}.{ns}.svc", f"{svc}.{ns}"]
        return [*names, svc, f"{fqdn}."] if ns == namespace else [*names, f"{fqdn}."]

    def hosts_text(self, namespace: str) -> str:
        _check_namespace(namespace)
        lines = [
            f"# canarist cluster networking: the Services as a pod in namespace {namespace!r} resolves them.",
            "# Generated; rewritten whenever a Service changes.",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
        ]
        lines += [f"{s.cluster_ip}\t{' '.join(self.names(s, namespace))}" for s in self._services]
        hostname = socket.gethostname()
        if hostname and hostname != "localhost":
            lines.append(f"127.0.0.1\t{hostname}")
        return "\n".join(lines) + "\n"

    def resolv_text(self, namespace: str) -> str:
        _check_namespace(namespace)
        domain = self.cluster_domain
        return (
            "# canarist cluster networking: a pod's resolver settings; nothing answers on the nameserver.\n"
            f"search {namespace}.svc.{domain} svc.{domain} {domain}\n"
            f"nameserver {self.nameserver}\n"
            "options ndots:5 timeout:1 attempts:1\n"
        )

    def update(self, services: Iterable[ServiceAddress | tuple[str, str, str]]) -> None:
        """Make these the Services; every namespace's files are rewritten (by rename) where they changed."""
        records: set[ServiceAddress] = set()
        for item in services:
            record = ServiceAddress(*item)
            _check_namespace(record.namespace)
            ipaddress.ip_address(record.cluster_ip)
            records.add(record)
        with self._lock:
            self._services = tuple(sorted(records))
            self._namespaces |= {r.namespace for r in records}
            for namespace in sorted(self._namespaces):
                self._write(namespace)
            index = [dict(r._asdict()) for r in self._services]
            _write_atomic(self.dir / SERVICES_INDEX, json.dumps(index, indent=1) + "\n")

    def ensure_namespace(self, namespace: str) -> Path:
        """The directory of a namespace's files, written if it is new."""
        _check_namespace(namespace)
        with self._lock:
            if namespace not in self._namespaces:
                self._namespaces.add(namespace)
                self._write(namespace)
        return self.dir / namespace

    def _write(self, namespace: str) -> None:
        where = self.dir / namespace
        links = where / LINKS
        links.mkdir(parents=True, exist_ok=True)
        where.chmod(0o755)
        links.chmod(0o755)
        _write_atomic(where / "hosts", self.hosts_text(namespace))
        _write_atomic(where / "resolv.conf", self.resolv_text(namespace))
        for name in ETC_FILES:
            _link(links / name, self.dir / name if name == "nsswitch.conf" else where / name)

    def command(self, argv: Sequence[str], namespace: str) -> list[str]:
        """argv, run with the names a pod in `namespace` sees (see the module's description)."""
        self.ensure_namespace(namespace)
        return wrap_command(argv, namespace, self.dir, python=self.python)


def read_services(directory: str | os.PathLike[str]) -> list[ServiceAddress]:
    """The Services a running sandbox's network last wrote (``services.json`` of its directory)."""
    path = Path(directory) / SERVICES_INDEX
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ClusterNetError(f"cannot read {path}: {exc}") from None
    out: list[ServiceAddress] = []
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict):
            with contextlib.suppress(KeyError, TypeError):
                out.append(
                    ServiceAddress(str(record["namespace"]), str(record["name"]), str(record["cluster_ip"]))
                )
    return out


def wrap_command(
    argv: Sequence[str],
    namespace: str,
    directory: str | os.PathLike[str],
    *,
    python: str | None = None,
    userns: bool | None = None,
    method: str = "auto",
) -> list[str]:
    """The command line that runs argv in a private mount namespace with a namespace's files of `directory`.

    `userns` (default: when not root) adds an unprivileged user namespace; `method` forces one way of
    mounting the symlinks (tests).
    """
    if not argv:
        raise ValueError("no command to run")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    unshare = shutil.which("unshare") or "unshare"
    if userns is None:
        userns = os.geteuid() != 0
    wrapper = [unshare, *(["--map-root-user"] if userns else []), "--mount", "--propagation", "private", "--"]
    helper = [
        python or sys.executable,
        "-P",
        "-m",
        "canarist.sandbox.cluster_net",
        "exec",
        "--namespace",
        _check_namespace(namespace),
        "--dir",
        str(Path(directory).absolute()),
        "--outer-mntns",
        _mount_namespace_id(),
    ]
    if method != "auto":
        helper += ["--method", method]
    return [*wrapper, *helper, "--", *argv]


# ---------------------------------------------------------------------- inside the new mount namespace


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _mount_open_tree(link: str, target: str) -> None:
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        raise OSError(errno.ENOSYS, f"open_tree: no syscall number known for {platform.machine()}")
    open_tree, move_mount = numbers
    libc = _libc()
    fd = libc.syscall(
        ctypes.c_long(open_tree),
        ctypes.c_long(_AT_FDCWD),
        ctypes.c_char_p(link.encode()),
        ctypes.c_long(_OPEN_TREE_CLONE | os.O_CLOEXEC | _AT_SYMLINK_NOFOLLOW),
    )
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"open_tree({link}): {os.strerror(code)}")
    try:
        done = libc.syscall(
            ctypes.c_long(move_mount),
            ctypes.c_long(fd),
            ctypes.c_char_p(b""),
            ctypes.c_long(_AT_FDCWD),
            ctypes.c_char_p(target.encode()),
            ctypes.c_long(_MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_SYMLINKS),
        )
        if done != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"move_mount(-> {target}): {os.strerror(code)}")
    finally:
        os.close(fd)


def _mount_proc_fd(link: str, target: str) -> None:
    libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    fd = os.open(link, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        source = f"/proc/self/fd/{fd}".encode()
        if libc.mount(source, target.encode(), None, _MS_BIND, None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"mount --bind {link} {target}: {os.strerror(code)}")
    finally:
        os.close(fd)


def mount_symlink(link: str, target: str, method: str = "auto") -> str:
    """Mount the symlink `link` itself over `target`; returns the method that worked.

    Checked by resolving `target`: it must lead, by name, to what `link` points at (a bind mount of the
    file the link points to would pin that file's inode and miss every later rename).
    """
    wanted = os.path.realpath(link)
    tried: list[str] = []
    ways = {"open-tree": _mount_open_tree, "proc-fd": _mount_proc_fd}
    for name in ("open-tree", "proc-fd") if method == "auto" else (method,):
        try:
            ways[name](link, target)
        except OSError as exc:
            tried.append(f"{name}: {exc.strerror or exc}")
            continue
        if os.path.realpath(target) == wanted:
            return name
        tried.append(f"{name}: mounted, but {target} does not lead to {wanted}")
    raise ClusterNetError(f"cannot mount the symlink {link} over {target} ({'; '.join(tried)})")


def _exec_in_namespace(namespace: str, directory: str, outer: str, method: str, argv: list[str]) -> None:
    _check_namespace(namespace)
    if not os.path.isabs(directory):
        raise ClusterNetError(f"--dir must be absolute: {directory}")
    if _mount_namespace_id() == outer:
        raise ClusterNetError(
            "still in the sandbox's mount namespace: refusing to mount over /etc (run through `unshare --mount`)"
        )
    links = os.path.join(directory, namespace, LINKS)
    for name in ETC_FILES:
        link = os.path.join(links, name)
        if not os.path.islink(link) or not os.path.exists(link):
            raise ClusterNetError(f"no cluster network files for namespace {namespace!r} in {directory}")
        mount_symlink(link, f"/etc/{name}", method)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"canarist cluster-net: {argv[0]}: {exc.strerror}", file=sys.stderr)
        raise SystemExit(127 if exc.errno == errno.ENOENT else 126) from None


# ---------------------------------------------------------------------- address ranges per sandbox

#: How many sandboxes can run at once on one machine: lease i has the Service CIDR 127.(96+i).0.0/16 and the
#: pod CIDR 127.(112+i).0.0/16 (i in 0..15 keeps both inside 127.96.0.0/11 and clear of each other).
LEASE_COUNT = 16
SERVICE_BASE, POD_BASE = 96, 112
LEASE_DIR_ENV = "CANARIST_NET_LEASES"
#: The lock files live in one directory for the whole machine (not per user, not under $TMPDIR): the
#: addresses are the machine's, so every sandbox of every user must see every lease.
DEFAULT_LEASE_DIR = "/tmp/canarist-net-leases"


class LeaseError(ClusterNetError):
    """No address range is free for another sandbox (why is in the message)."""


class NetworkLease:
    """One sandbox's address ranges, held with `flock` on a lock file for as long as the lease is open.

    The lock goes with the open file description (`flock(2)`), so it is released by `release()` and by the
    holder's death however it dies; the descriptor is not inherited by the sandbox's subprocesses.
    """

    def __init__(self, index: int, path: Path, fd: int) -> None:
        self.index = index
        self.path = path
        self._fd: int | None = fd
        self.service_cidr = f"127.{SERVICE_BASE + index}.0.0/16"
        self.pod_cidr = f"127.{POD_BASE + index}.0.0/16"
        #: kube-dns' place in the Service range (.10): never allocated, nothing listens there
        self.nameserver = f"127.{SERVICE_BASE + index}.0.10"

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the last descriptor of the description drops the flock

    def __enter__(self) -> NetworkLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "held" if self.held else "released"
        return f"NetworkLease({self.index}, services {self.service_cidr}, pods {self.pod_cidr}, {state})"


def lease_directory() -> Path:
    """Where the lock files are: ``$CANARIST_NET_LEASES``, else /tmp/canarist-net-leases."""
    return Path(os.environ.get(LEASE_DIR_ENV) or DEFAULT_LEASE_DIR)


def _open_lock(path: Path) -> int:
    """The lock file, created world-readable if it is new; never through a symlink."""
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, os.O_RDWR | flags, 0o644)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)  # another user's: flock needs no write
    return fd


def listening_ranges(proc: str = "/proc") -> set[int]:
    """The second octet of every 127.x address something listens on (TCP, from /proc/net/tcp)."""
    octets: set[int] = set()
    try:
        lines = Path(proc, "net/tcp").read_text().splitlines()[1:]
    except OSError:
        return octets
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":  # 0A: LISTEN
            continue
        address = fields[1].split(":", 1)[0]
        with contextlib.suppress(ValueError):
            packed = int(address, 16).to_bytes(4, "little")
            if packed[0] == 127:
                octets.add(packed[1])
    return octets


def lease_network(
    directory: str | os.PathLike[str] | None = None,
    indices: Sequence[int] | None = None,
    *,
    listening: Iterable[int] | None = None,
) -> NetworkLease:
    """The first free address range of ``indices`` (default: all `LEASE_COUNT`); `LeaseError` when every
    one is taken.

    A range is free when nobody holds its lock file and nothing listens on its addresses (a sandbox whose
    process was killed may leave an Envoy behind on them): ``listening`` are the second octets of the
    127.x addresses in use, by default read from /proc/net/tcp (`listening_ranges`).
    """
    where = Path(directory) if directory is not None else lease_directory()
    try:
        where.mkdir(parents=True, exist_ok=True)
        if where.stat().st_uid == os.geteuid():
            where.chmod(0o1777)  # every user's sandboxes take their leases here (sticky, like /tmp)
    except OSError as exc:
        raise LeaseError(f"cannot use the lease directory {where}: {exc.strerror or exc}") from None
    in_use = set(listening_ranges() if listening is None else listening)
    candidates = list(range(LEASE_COUNT) if indices is None else indices)
    busy: list[str] = []
    for index in candidates:
        if not 0 <= index < LEASE_COUNT:
            raise ValueError(f"a lease index is in 0..{LEASE_COUNT - 1}, not {index}")
        path = where / f"net-{index}.lock"
        try:
            fd = _open_lock(path)
        except OSError as exc:
            busy.append(f"{index}: {exc.strerror or exc}")
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            busy.append(f"{index}: held")
            continue
        if SERVICE_BASE + index in in_use or POD_BASE + index in in_use:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            busy.append(f"{index}: addresses in use by a process that holds no lease")
            continue
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        return NetworkLease(index, path, fd)
    raise LeaseError(
        f"all {len(candidates)} sandbox address ranges are taken ({'; '.join(busy)}): stop a sandbox "
        f"(`canarist sandbox down`, or end a `canarist demo`), or wait for running tests to finish; "
        f"lock files in {where}"
    )


# ---------------------------------------------------------------------- can it work here?

_RESTRICTIONS = (
    (
        "sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, "
        "Ubuntu's default since 23.10), so `unshare --map-root-user` gets no right to mount: run the sandbox "
        "as root, or allow them with `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` "
        "(to keep it: a file in /etc/sysctl.d/), or give /usr/bin/unshare an AppArmor profile with `userns,`",
    ),
    (
        "sys/kernel/unprivileged_userns_clone",
        "0",
        "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): run the sandbox as "
        "root, or `sudo sysctl -w kernel.unprivileged_userns_clone=1`",
    ),
    (
        "sys/user/max_user_namespaces",
        "0",
        "user namespaces are disabled (user.max_user_namespaces=0): run the sandbox as root, or "
        "`sudo sysctl -w user.max_user_namespaces=10000`",
    ),
)


def userns_restrictions(proc: str = "/proc") -> list[str]:
    """Why unprivileged user namespaces cannot be used here, from the kernel's settings (empty: nothing known)."""
    found: list[str] = []
    for path, value, why in _RESTRICTIONS:
        try:
            current = Path(proc, path).read_text().strip()
        except OSError:
            continue
        if current == value:
            found.append(why)
    return found


CAP_NET_BIND_SERVICE = 10
_VFS_CAP_FLAGS_EFFECTIVE = 0x000001


def binds_low_ports(binary: str | os.PathLike[str]) -> bool:
    """The binary carries the file capability cap_net_bind_service, effective (`setcap
    cap_net_bind_service=+ep BINARY`): run by a normal user, it may listen on ports below 1024."""
    try:
        raw = os.getxattr(binary, "security.capability")
    except OSError:
        return False
    if len(raw) < 12:
        return False
    magic, permitted = int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:8], "little")
    return bool(magic & _VFS_CAP_FLAGS_EFFECTIVE) and bool(permitted & (1 << CAP_NET_BIND_SERVICE))


def port_restriction(
    port: int, proc: str = "/proc", binary: str | os.PathLike[str] | None = None
) -> str | None:
    """Why this user cannot listen on a Service's port (below net.ipv4.ip_unprivileged_port_start), or None.

    ``binary`` is the program that listens (the sandbox's Envoy): with cap_net_bind_service it may. A user
    namespace does not help there: the sockets belong to the machine's network namespace.
    """
    if os.geteuid() == 0:
        return None
    try:
        start = int(Path(proc, "sys/net/ipv4/ip_unprivileged_port_start").read_text().strip())
    except (OSError, ValueError):
        start = 1024
    if port >= start or (binary is not None and binds_low_ports(binary)):
        return None
    setcap = f"sudo setcap cap_net_bind_service=+ep {binary}" if binary is not None else ""
    return (
        f"port {port} is below net.ipv4.ip_unprivileged_port_start={start}, so a normal user cannot listen on "
        f"it: run the sandbox as root, or `sudo sysctl -w net.ipv4.ip_unprivileged_port_start={port}` (to keep "
        f"it: a file in /etc/sysctl.d/)" + (f", or let Envoy bind it: `{setcap}`" if setcap else "")
    )


def probe(python: str | None = None, userns: bool | None = None, timeout: float = 20.0) -> str | None:
    """Run a resolution through the helper, for real: None if it works, else why not."""
    if not sys.platform.startswith("linux"):
        return "cluster networking needs Linux (mount namespaces)"
    if shutil.which("unshare") is None:
        return "`unshare` is not on PATH (it is in util-linux: `sudo apt-get install util-linux`)"
    if userns is None:
        userns = os.geteuid() != 0
    with tempfile.TemporaryDirectory(prefix="canarist-cluster-net-") as tmp:
        net = ClusterNetwork(tmp, python=python)
        net.update([ServiceAddress("default", "probe", "127.96.0.1")])
        check = "import socket, sys; sys.exit(socket.gethostbyname('probe') != '127.96.0.1')"
        argv = wrap_command(
            [net.python, "-I", "-S", "-c", check], "default", net.dir, python=net.python, userns=userns
        )
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"running {argv[0]} failed: {exc}"
    if done.returncode == 0:
        return None
    detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    hints = userns_restrictions() if userns else []
    if not userns and not hints:
        hints = ["as root it needs CAP_SYS_ADMIN (in a container: a privileged one, or run as a normal user)"]
    return "; ".join([f"a private mount namespace cannot be set up here: {detail}", *hints])


@functools.cache
def available() -> str | None:
    """None when cluster networking works for this user on this machine, else why not (probed once)."""
    return probe()


# ---------------------------------------------------------------------- command line

USAGE = """usage:
  python -m canarist.sandbox.cluster_net run --namespace N --dir D -- CMD...   CMD with namespace N's names
  python -m canarist.sandbox.cluster_net check                                  can it work here?
  (exec --namespace N --dir D --outer-mntns ID [--method M] -- CMD...: the helper `run` goes through)"""


def _options(args: list[str], names: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    if "--" not in args:
        raise ClusterNetError("missing `-- CMD...`")
    split = args.index("--")
    head, argv = args[:split], args[split + 1 :]
    if not argv:
        raise ClusterNetError("no command after `--`")
    values: dict[str, str] = {}
    it = iter(head)
    for key in it:
        name = key.removeprefix("--")
        if not key.startswith("--") or name not in names:
            raise ClusterNetError(f"unknown option {key}")
        values[name] = next(it, "")
    return values, argv


def main(args: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    verb, rest = (args[0], args[1:]) if args else ("", [])
    try:
        if verb == "exec":
            values, argv = _options(rest, ("namespace", "dir", "outer-mntns", "method"))
            method = values.get("method", "auto")
            if method not in METHODS:
                raise ClusterNetError(f"--method must be one of {METHODS}")
            _exec_in_namespace(
                values.get("namespace", ""),
                values.get("dir", ""),
                values.get("outer-mntns", ""),
                method,
                argv,
            )
        elif verb == "run":
            values, argv = _options(rest, ("namespace", "dir"))
            command = wrap_command(argv, values.get("namespace", ""), values.get("dir", ""))
            os.execvp(command[0], command)
        elif verb == "check":
            why = available()
            print(why or "cluster networking works here")
            return 0 if why is None else 1
        else:
            print(USAGE, file=sys.stderr)
            return 2
    except (ClusterNetError, ValueError, OSError) as exc:
        print(f"canarist cluster-net: {exc}", file=sys.stderr)
        return HELPER_FAILED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
