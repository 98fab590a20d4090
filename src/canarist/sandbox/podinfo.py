"""One podinfo pod as its own process: ``python -m canarist.sandbox.podinfo [podinfo flags...]``.

The sandbox runs this for the containers of ``stefanprodan/podinfo`` images (`canarist.sandbox.images`).
It wraps the demo app (`canarist.sandbox.demo_app.DemoApp`) and speaks podinfo's HTTP API as the
walkthrough and Flagger's tutorials use it: ``/`` (with the UI message and colour), ``/version`` (the
image tag), ``/env`` (the process environment, ``KEY=value`` strings), ``/healthz``, ``/readyz``
(``POST /readyz/enable|disable``), ``/status/{code}``, ``/delay/{seconds}``, ``POST /token``, ``/headers``,
``/echo`` and ``/metrics`` (podinfo's own ``http_request_duration_seconds`` and ``http_requests_total``).

Flags are podinfo's (pflag spelling: ``--port=9898`` or ``--port 9898``; every flag can also come from the
environment as ``PODINFO_<FLAG>``, ``-`` as ``_``, a flag on the command line winning): ``--port`` (9898),
``--port-metrics`` (also serve ``/metrics`` there), ``--level`` (``debug`` logs every request),
``--ui-message``, ``--ui-color``, ``--ui-logo``, ``--unhealthy``, ``--unready``, ``--version``. The others
podinfo has (``--grpc-port``, ``--grpc-service-name``, ``--random-delay``, ``--random-error``,
``--backend-url``...) are accepted, and named on stderr as not implemented when set. An unknown flag ends
the process with podinfo's ``Error: unknown flag: --x`` and the flag list, exit status 2.

What the sandbox sets in the environment (and removes before the pod's code sees it):

* ``CANARIST_POD_IP``: the address to bind (the pod's IP; default 127.0.0.1);
* ``CANARIST_STATS_FD`` (a listening socket the sandbox bound for it) or ``CANARIST_STATS_PORT``: the pod's
  stats port (15020, as Istio's agent), serving ``/stats/prometheus`` (also ``/metrics``): every series
  of `canarist.sandbox.telemetry` with the pod's identity labels, and the control endpoints
  ``POST /sandbox/assign``, ``GET|POST /sandbox/knobs``, ``GET /sandbox/state``;
* ``CANARIST_STANDBY=1``: a pool process. It serves only the stats port until the sandbox assigns it a pod
  (``POST /sandbox/assign`` with the pod's namespace, name, labels, workload, version, args, env, knobs and
  tally file); it then parses the args, takes the env and opens the ports the args name. Without it, the
  flags are the command line's and the pod comes from ``CANARIST_ASSIGNMENT`` (the same JSON), if set;
* ``CANARIST_PODINFO_VERSION``: the version to report (the image tag).

After each counted request the process writes what it served (per namespace, workload and source) to the
tally file, by atomic rename, before the answer is sent: the sandbox reads it (`PodManager.served`).
Logs are podinfo's JSON lines: the start-up banner at info, one line per request at debug.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

from aiohttp import web

from canarist.sandbox.demo_app import DemoApp
from canarist.sandbox.telemetry import PodIdentity

__all__ = [
    "ENV_ASSIGNMENT",
    "ENV_PARENT",
    "ENV_POD_IP",
    "ENV_STANDBY",
    "ENV_STATS_FD",
    "ENV_STATS_PORT",
    "ENV_VERSION",
    "STATS_PORT",
    "Assignment",
    "FlagError",
    "Options",
    "main",
    "parse_flags",
]

ENV_POD_IP: Final = "CANARIST_POD_IP"
ENV_STATS_FD: Final = "CANARIST_STATS_FD"
ENV_STATS_PORT: Final = "CANARIST_STATS_PORT"
ENV_STANDBY: Final = "CANARIST_STANDBY"
ENV_ASSIGNMENT: Final = "CANARIST_ASSIGNMENT"
ENV_VERSION: Final = "CANARIST_PODINFO_VERSION"
#: the sandbox's pid: the process ends when its parent is no longer that one (the sandbox died)
ENV_PARENT: Final = "CANARIST_PARENT_PID"
#: the pod's stats port (Istio's agent serves the merged metrics on :15020/stats/prometheus)
STATS_PORT: Final = 15020
DEFAULT_VERSION: Final = "6.0.0"
#: podinfo's own metric families (what its /metrics exports)
PODINFO_FAMILIES: Final = frozenset({"http_request_duration_seconds", "http_requests_total"})


class FlagError(ValueError):
    """A command line podinfo refuses (the message is podinfo's)."""


@dataclass(frozen=True)
class _Flag:
    name: str
    kind: str  # "int", "string", "bool", "slice", "duration"
    default: Any
    usage: str
    implemented: bool = False
    short: str = ""


_FLAGS: Final = (
    _Flag("port", "int", 9898, "HTTP port", True),
    _Flag("secure-port", "int", 0, "HTTPS port"),
    _Flag("port-metrics", "int", 0, "metrics port", True),
    _Flag("grpc-port", "int", 0, "gRPC port"),
    _Flag("grpc-service-name", "string", "podinfo", "gPRC service name"),
    _Flag("level", "string", "info", "log level debug, info, warn, error, fatal or panic", True),
    _Flag("backend-url", "slice", [], "backend service URL"),
    _Flag("http-client-timeout", "duration", "2m0s", "client timeout duration"),
    _Flag("http-server-timeout", "duration", "30s", "server read and write timeout duration"),
    _Flag("http-server-shutdown-timeout", "duration", "5s", "server graceful shutdown timeout duration"),
    _Flag("server-shutdown-timeout", "duration", "5s", "server graceful shutdown timeout duration"),
    _Flag("data-path", "string", "/data", "data local path"),
    _Flag("config-path", "string", "", "config dir path"),
    _Flag("cert-path", "string", "/data/cert", "certificate path for HTTPS port"),
    _Flag("host", "string", "", "Host to bind service to"),
    _Flag("config", "string", "config.yaml", "config file name"),
    _Flag("ui-path", "string", "./ui", "UI local path"),
    _Flag("ui-logo", "string", "", "UI logo", True),
    _Flag("ui-color", "string", "#34577c", "UI color", True),
    _Flag("ui-message", "string", "", "UI message", True),
    _Flag("h2c", "bool", False, "allow upgrading to H2C"),
    _Flag("random-delay", "bool", False, "between 0 and 5 seconds random delay by default"),
    _Flag("random-delay-unit", "string", "s", "either s(seconds) or ms(milliseconds)"),
    _Flag("random-delay-min", "int", 0, "min for random delay: 0 by default"),
    _Flag("random-delay-max", "int", 5, "max for random delay: 5 by default"),
    _Flag("random-error", "bool", False, "1/3 chances of a random response error"),
    _Flag("unhealthy", "bool", False, "when set, healthy state is never reached", True),
    _Flag("unready", "bool", False, "when set, ready state is never reached", True),
    _Flag("jwt-secret", "string", "", "secret key used to sign JWT tokens"),
    _Flag("cache-server", "string", "", "Redis address in the format 'tcp://<host>:<port>'"),
    _Flag("otel-service-name", "string", "", "service name for reporting to open telemetry address"),
    _Flag("stress-cpu", "int", 0, "number of CPU cores with 100 load"),
    _Flag("stress-memory", "int", 0, "MB of data to load into memory"),
    _Flag("version", "bool", False, "get version number", True, "v"),
)
_BY_NAME: Final = {f.name: f for f in _FLAGS}
_BY_SHORT: Final = {f.short: f for f in _FLAGS if f.short}
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass
class Options:
    """The parsed flags."""

    values: dict[str, Any]
    #: flags given (on the command line or in the environment) that the sandbox's podinfo does not implement
    not_implemented: list[str] = field(default_factory=list)
    help: bool = False

    @property
    def port(self) -> int:
        return int(self.values["port"])

    @property
    def port_metrics(self) -> int:
        return int(self.values["port-metrics"])

    @property
    def level(self) -> str:
        return str(self.values["level"])

    def ui_message(self, version: str) -> str:
        return str(self.values["ui-message"] or f"greetings from podinfo v{version}")


def _convert(flag: _Flag, text: str, current: Any) -> Any:
    if flag.kind == "int":
        try:
            return int(text, 0)
        except ValueError:
            raise FlagError(
                f'invalid argument "{text}" for "--{flag.name}" flag: strconv.ParseInt: parsing '
                f'"{text}": invalid syntax'
            ) from None
    if flag.kind == "bool":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise FlagError(
            f'invalid argument "{text}" for "--{flag.name}" flag: strconv.ParseBool: parsing "{text}": '
            "invalid syntax"
        )
    if flag.kind == "slice":
        return [*current, *(part for part in text.split(",") if part)]
    return text


def usage() -> str:
    """The flag list, as podinfo prints it after an error."""
    lines = []
    for flag in _FLAGS:
        short = f"-{flag.short}, " if flag.short else "    "
        kind = {"bool": "", "slice": " strings", "duration": " duration"}.get(flag.kind, f" {flag.kind}")
        default = flag.default
        shown = (
            ""
            if flag.kind == "bool" or default in ("", 0, [])
            else f' (default "{default}")'
            if flag.kind == "string"
            else f" (default {default})"
        )
        lines.append(f"  {short}--{flag.name}{kind}\t{flag.usage}{shown}")
    return "\n".join(lines) + "\n"


def parse_flags(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Options:
    """podinfo's flags from ``argv`` (without the program), then ``PODINFO_*`` from ``environ`` for those
    not given; raises FlagError with podinfo's message."""
    values: dict[str, Any] = {f.name: list(f.default) if f.kind == "slice" else f.default for f in _FLAGS}
    given: set[str] = set()
    options = Options(values)
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue  # pflag keeps positional arguments; podinfo ignores them
        if arg.startswith("--"):
            name, eq, text = arg[2:].partition("=")
            if name == "help":
                options.help = True
                continue
            flag = _BY_NAME.get(name)
            if flag is None:
                raise FlagError(f"unknown flag: --{name}")
        else:
            letters, eq, text = arg[1:].partition("=")
            if letters == "h":
                options.help = True
                continue
            flag = _BY_SHORT.get(letters[0])
            if flag is None or len(letters) > 1:
                bad = letters[0] if flag is None else letters[1]
                raise FlagError(f"unknown shorthand flag: '{bad}' in {arg}")
        if not eq:
            if flag.kind == "bool":
                text = "true"
            elif i < len(args):
                text = args[i]
                i += 1
            else:
                raise FlagError(f"flag needs an argument: --{flag.name}")
        values[flag.name] = _convert(flag, text, values[flag.name] if flag.name in given else [])
        given.add(flag.name)
    env = os.environ if environ is None else environ
    for flag in _FLAGS:
        key = "PODINFO_" + flag.name.upper().replace("-", "_")
        if key == "PODINFO_PORT" and env.get(key, "").startswith("tcp://"):
            continue  # a Service named podinfo's link variable, not the flag
        if flag.name not in given and key in env and flag.name != "version":
            values[flag.name] = _convert(flag, env[key], [])
            given.add(flag.name)
    options.not_implemented = [
        f"--{name}"
        for name in sorted(given)
        if not _BY_NAME[name].implemented and values[name] != _BY_NAME[name].default
    ]
    return options


@dataclass
class Assignment:
    """The pod a process plays (what the sandbox sends to ``POST /sandbox/assign``)."""

    namespace: str = "default"
    pod: str = ""
    workload: str = "podinfo"
    version: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    knobs: dict[str, float] = field(default_factory=dict)
    tally_file: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Assignment:
        if not isinstance(data, dict):
            raise ValueError("the assignment must be a JSON object")

        def strings(key: str) -> dict[str, str]:
            value = data.get(key) or {}
            if not isinstance(value, dict):
                raise ValueError(f"{key} must be an object of strings")
            return {str(k): str(v) for k, v in value.items()}

        args = data.get("args") or []
        if not isinstance(args, list):
            raise ValueError("args must be a list of strings")
        knobs = data.get("knobs") or {}
        if not isinstance(knobs, dict):
            raise ValueError("knobs must be an object")
        return cls(
            namespace=str(data.get("namespace") or "default"),
            pod=str(data.get("pod") or ""),
            workload=str(data.get("workload") or "podinfo"),
            version=str(data.get("version") or ""),
            labels=strings("labels"),
            args=[str(a) for a in args],
            env=strings("env"),
            knobs={str(k): float(v) for k, v in knobs.items() if v is not None},
            tally_file=str(data.get("tally_file") or ""),
        )


class _Log:
    """podinfo's JSON log lines (zap's production encoder, roughly): info and debug on stdout."""

    LEVELS: Final = {"debug": 0, "info": 1, "warn": 2, "error": 3, "fatal": 4, "panic": 5}

    def __init__(self, level: str = "info") -> None:
        self.level = self.LEVELS.get(level, 1)

    def write(self, level: str, msg: str, **fields: Any) -> None:
        if self.LEVELS[level] < self.level:
            return
        line = json.dumps({"level": level, "ts": round(time.time(), 6), "msg": msg, **fields})
        stream: TextIO = sys.stdout if self.LEVELS[level] < 2 else sys.stderr
        print(line, file=stream, flush=True)


class PodinfoApp(DemoApp):
    """The demo app with podinfo's answers (``/`` fields, probes that ``--unhealthy``/``--unready`` hold)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.color = "#34577c"
        self.logo = ""
        self.healthy = True
        self.ready = True
        self.log = _Log()
        self.metrics_families = PODINFO_FAMILIES
        self.metrics_identity = False

    def _info(self) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "version": self.version,
            "revision": "",
            "color": self.color,
            "logo": self.logo,
            "message": self.message,
            "goos": sys.platform,
            "goarch": platform.machine(),
            "runtime": f"python{sys.version_info.major}.{sys.version_info.minor}",
            "num_goroutine": str(threading.active_count()),
            "num_cpu": str(os.cpu_count() or 1),
            "workload": self.workload,
            "namespace": self.namespace,
        }

    def application(self) -> web.Application:
        app = super().application()
        app.middlewares.insert(0, self._request_log)
        app.router.add_post("/readyz/enable", self._ready_switch)
        app.router.add_post("/readyz/disable", self._ready_switch)
        app.router.add_get("/headers", self._headers)
        app.router.add_post("/echo", self._echo)
        app.router.add_get("/api/info", self._index)
        app.router.add_post("/api/echo", self._echo)
        return app

    @web.middleware
    async def _request_log(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.log.write(
            "debug",
            "request started",
            proto=f"HTTP/{request.version.major}.{request.version.minor}",
            uri=request.path_qs,
            method=request.method,
            remote=request.remote or "",
            **{"user-agent": request.headers.get("User-Agent", "")},
        )
        response: web.StreamResponse = await handler(request)
        return response

    async def _health(self, request: web.Request) -> web.StreamResponse:
        ok = self.healthy if request.path == "/healthz" else self.ready
        if not ok:
            return web.json_response({"status": "Service Unavailable"}, status=503)
        return web.json_response({"status": "OK"})

    async def _ready_switch(self, request: web.Request) -> web.StreamResponse:
        self.ready = request.path.endswith("/enable")
        return web.Response(status=202)

    async def _headers(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({k: request.headers.getall(k) for k in request.headers})

    async def _echo(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=await request.read(), status=202)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"listen tcp {host}:{port}: bind: {exc.strerror}") from None
    sock.listen(128)
    return sock


class PodProcess:
    """The process: the stats server, then (once it plays a pod) the ports its flags name."""

    def __init__(self, host: str, version: str) -> None:
        self.host = host
        self.default_version = version
        self.app = PodinfoApp(workload="", namespace="", version=version)
        self.app.assign(namespace="", workload="", version=version, fresh_codes=())
        self.assignment: Assignment | None = None
        self.options: Options | None = None
        self.ports: list[int] = []
        self.runners: list[web.AppRunner] = []
        self.exit_code: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.tally_file = ""

    def finish(self, code: int) -> None:
        if not self.exit_code.done():
            self.exit_code.set_result(code)

    # -- servers ----------------------------------------------------------------------------------------

    async def _serve(self, app: web.Application, sock: socket.socket) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        self.runners.append(runner)

    async def serve_stats(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_get("/stats/prometheus", self._stats)
        app.router.add_get("/metrics", self._stats)
        app.router.add_get("/healthz/ready", self._stats_ready)
        app.router.add_post("/sandbox/assign", self._assign)
        app.router.add_get("/sandbox/state", self._state)
        app.router.add_get("/sandbox/knobs", self._get_knobs)
        app.router.add_post("/sandbox/knobs", self._post_knobs)
        await self._serve(app, sock)

    async def stop(self) -> None:
        for runner in reversed(self.runners):
            with contextlib.suppress(Exception):
                await runner.cleanup()
        self.runners.clear()

    # -- playing a pod ----------------------------------------------------------------------------------

    async def play(self, assignment: Assignment, options: Options) -> None:
        """Take the pod's identity, env and flags, then open its ports (OSError when one cannot be bound)."""
        self.assignment, self.options = assignment, options
        for key, value in assignment.env.items():
            os.environ[key] = value
        if assignment.pod:
            os.environ["HOSTNAME"] = assignment.pod
        version = assignment.version or self.default_version
        app = self.app
        app.assign(
            namespace=assignment.namespace,
            workload=assignment.workload,
            version=version,
            pod=PodIdentity(assignment.namespace, assignment.pod, assignment.labels)
            if assignment.pod
            else None,
            fresh_codes=(200, 500),
        )
        app.hostname = assignment.pod or os.environ.get("HOSTNAME") or socket.gethostname()
        app.message = options.ui_message(version)
        app.color = str(options.values["ui-color"])
        app.logo = str(options.values["ui-logo"])
        app.healthy = not options.values["unhealthy"]
        app.ready = not options.values["unready"]
        app.log = log = _Log(options.level)
        app.set_knobs(
            error_rate=assignment.knobs.get("error_rate"), latency_ms=assignment.knobs.get("latency_ms")
        )
        self.tally_file = assignment.tally_file
        if self.tally_file:
            app.on_counted = self._write_tally
            self._write_tally()
        log.write("info", "Starting podinfo", version=version, revision="", port=str(options.port))
        if options.not_implemented:
            log.write(
                "warn",
                "flags accepted but not implemented by the sandbox's podinfo",
                flags=options.not_implemented,
            )
        sockets = [(options.port, _listen(self.host, options.port))]
        metrics_port = options.port_metrics
        if metrics_port and metrics_port != options.port:
            try:
                sockets.append((metrics_port, _listen(self.host, metrics_port)))
            except OSError:
                sockets[0][1].close()
                raise
        await self._serve(app.application(), sockets[0][1])
        log.write("info", "Starting HTTP Server.", addr=f"{self.host}:{options.port}")
        if len(sockets) > 1:
            metrics = web.Application()
            metrics.router.add_get("/metrics", app._metrics)
            await self._serve(metrics, sockets[1][1])
            log.write("info", "Starting metrics server.", port=str(metrics_port))
        self.ports = [port for port, _ in sockets]

    def _write_tally(self) -> None:
        rows = [[ns, workload, source, count] for (ns, workload, source), count in self.app.tally.items()]
        path = Path(self.tally_file)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(json.dumps(rows))
            os.replace(tmp, path)
        except OSError as exc:
            self.app.log.write("error", "cannot write the tally file", path=str(path), error=str(exc))

    # -- stats and control endpoints ---------------------------------------------------------------------

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        body = self.app.exposition()
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def _stats_ready(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="")

    async def _state(self, request: web.Request) -> web.StreamResponse:
        a = self.assignment
        return web.json_response(
            {
                "pid": os.getpid(),
                "assigned": a is not None,
                "pod": a.pod if a else "",
                "namespace": a.namespace if a else "",
                "ports": self.ports,
                "served": self.app.served,
            }
        )

    async def _assign(self, request: web.Request) -> web.StreamResponse:
        if self.assignment is not None:
            return web.json_response({"error": "this process already plays a pod"}, status=409)
        try:
            assignment = Assignment.from_json(await request.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        try:
            options = parse_flags(assignment.args, {**os.environ, **assignment.env})
        except FlagError as exc:
            _flag_error(exc)
            asyncio.get_running_loop().call_later(0.05, self.finish, 2)
            return web.json_response({"error": str(exc), "exit": 2}, status=400)
        if options.help or options.values["version"]:
            _early_exit(options, assignment.version or self.default_version)
            asyncio.get_running_loop().call_later(0.05, self.finish, 0)
            return web.json_response({"exit": 0})
        try:
            await self.play(assignment, options)
        except OSError as exc:
            self.app.log.write("fatal", "HTTP server crashed", error=str(exc.strerror or exc))
            asyncio.get_running_loop().call_later(0.05, self.finish, 1)
            return web.json_response({"error": str(exc.strerror or exc), "exit": 1}, status=500)
        return web.json_response({"ports": self.ports, "pid": os.getpid()})

    async def _get_knobs(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.app.knobs())

    async def _post_knobs(self, request: web.Request) -> web.StreamResponse:
        return await self.app._post_knobs(request)


def _flag_error(exc: FlagError) -> None:
    print(f"Error: {exc}\n", file=sys.stderr)
    print(usage(), file=sys.stderr, end="", flush=True)


def _early_exit(options: Options, version: str) -> None:
    if options.help:
        print(usage(), file=sys.stderr, end="", flush=True)
    else:
        print(version, flush=True)


def _take_environment() -> dict[str, str]:
    """The sandbox's settings, removed from the environment the pod sees."""
    return {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("CANARIST_")}


async def _run(argv: list[str]) -> int:
    settings = _take_environment()
    host = settings.get(ENV_POD_IP, "127.0.0.1")
    version = settings.get(ENV_VERSION, DEFAULT_VERSION)
    process = PodProcess(host, version)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, process.finish, 0)
    if settings.get(ENV_PARENT, "").isdigit():
        watch = loop.create_task(_orphaned(int(settings[ENV_PARENT]), process))
        watch.add_done_callback(lambda _: None)
    try:
        stats: socket.socket | None = None
        if ENV_STATS_FD in settings:
            stats = socket.socket(fileno=int(settings[ENV_STATS_FD]))
        elif ENV_STATS_PORT in settings:
            stats = _listen(host, int(settings[ENV_STATS_PORT]))
        if stats is not None:
            await process.serve_stats(stats)
        if settings.get(ENV_STANDBY) != "1":
            try:
                options = parse_flags(argv)
            except FlagError as exc:
                _flag_error(exc)
                return 2
            raw = settings.get(ENV_ASSIGNMENT)
            assignment = Assignment.from_json(json.loads(raw)) if raw else Assignment(version=version)
            if options.help or options.values["version"]:
                _early_exit(options, assignment.version or version)
                return 0
            await process.play(assignment, options)
        code = await process.exit_code
        if process.options is not None:
            process.app.log.write("info", "Shutting down HTTP/HTTPS server", timeout="5s")
        return code
    except OSError as exc:
        print(
            json.dumps({"level": "fatal", "ts": time.time(), "msg": str(exc.strerror or exc)}),
            file=sys.stderr,
        )
        return 1
    except (ValueError, TypeError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    finally:
        await process.stop()
        if process.tally_file:
            process._write_tally()


async def _orphaned(parent: int, process: PodProcess) -> None:
    """End the process once its parent is not the sandbox any more (it was killed without stopping us)."""
    while os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(process.exit_code), 1.0)
            return
    process.finish(0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        return asyncio.run(_run(list(args)))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
