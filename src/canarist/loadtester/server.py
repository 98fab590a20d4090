"""The loadtester HTTP API, compatible with flagger-loadtester (docs/flagger-parity.md#the-loadtester-api).

>>> tester = LoadTester(LoadTesterConfig(port=0, host="127.0.0.1"))
>>> url = await tester.start()           # "http://127.0.0.1:PORT/"
>>> ...
>>> await tester.stop()                  # also kills running commands
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from canarist import __version__
from canarist.loadtester.runner import CommandOutcome, run_command, run_pipeline, truncate
from canarist.loadtester.safety import (
    DEFAULT_ALLOWED_COMMANDS,
    CommandPolicy,
    CommandRejected,
    CommandUnrunnable,
    Stage,
)

log = logging.getLogger("canarist.loadtester")

ASYNC_TYPES = ("cmd",)
BLOCKING_TYPES = ("bash",)
UNSUPPORTED_TYPES = ("helm", "helmv3", "kubectl", "concord", "ngrinder")
OPEN_PATHS = ("/healthz", "/metrics")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class LoadTesterConfig:
    port: int = 9090
    host: str = "0.0.0.0"
    timeout_s: float = 3600.0
    namespace_regexp: str = ""
    token: str = ""
    allowed_commands: tuple[str, ...] = DEFAULT_ALLOWED_COMMANDS
    allow_any_command: bool = False
    log_output_limit: int = 4096
    proto_dirs: tuple[str, ...] = ()  # directories ghz may read .proto/.protoset files from


@dataclass(frozen=True)
class HookPayload:
    name: str
    namespace: str
    phase: str
    checksum: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def canary(self) -> str:
        return f"{self.name}.{self.namespace}"


class BadPayload(ValueError):
    pass


def parse_payload(raw: bytes) -> HookPayload:
    """Decode Flagger's webhook body; a malformed one raises :class:`BadPayload`."""
    try:
        data = json.loads(raw.decode() or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadPayload(f"error decoding payload: {err}") from err
    if not isinstance(data, dict):
        raise BadPayload("error decoding payload: expected a JSON object")
    values: dict[str, str] = {}
    for key in ("name", "namespace", "phase", "checksum"):
        value = data.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise BadPayload(f"error decoding payload: {key} must be a string")
        values[key] = value
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise BadPayload("error decoding payload: metadata must be a map of strings")
    return HookPayload(metadata=metadata, **values)


class LoadTester:
    """The loadtester: an aiohttp application plus the tasks it runs and the gates it keeps."""

    def __init__(self, config: LoadTesterConfig | None = None) -> None:
        self.config = config or LoadTesterConfig()
        # Programs are resolved to absolute paths here, once, from PATH at start-up.
        self.policy = CommandPolicy.from_options(
            self.config.allowed_commands, self.config.allow_any_command, self.config.proto_dirs
        )
        self._namespace_re = (
            re.compile(self.config.namespace_regexp) if self.config.namespace_regexp else None
        )
        self.gates: dict[str, bool] = {}
        self.rollbacks: dict[str, bool] = {}
        self.running: dict[tuple[str, str], asyncio.Task[CommandOutcome]] = {}
        self.completed: list[CommandOutcome] = []  # the last outcomes of async tasks, newest last
        self.started_pids: deque[int] = deque(maxlen=1000)  # every process started, newest last
        self._runner: web.AppRunner | None = None
        self.port: int = 0
        self.registry = CollectorRegistry()
        self.tasks_total = Counter(
            "canarist_loadtester_tasks",
            "Loadtester tasks by type and result",
            ["type", "result"],
            registry=self.registry,
        )
        self.tasks_running = Gauge(
            "canarist_loadtester_tasks_running", "Async tasks running now", registry=self.registry
        )
        self.requests_total = Counter(
            "canarist_loadtester_http_requests",
            "HTTP requests by path and status code",
            ["path", "code"],
            registry=self.registry,
        )
        self.app = self._build_app()

    # -- lifecycle ---------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._count_middleware, self._auth_middleware])
        routes = [
            ("/", self.handle_task),
            ("/gate/approve", self.handle_gate_approve),
            ("/gate/halt", self.handle_gate_halt),
            ("/gate/check", self.handle_gate_check),
            ("/gate/open", self.handle_gate_open),
            ("/gate/close", self.handle_gate_close),
            ("/rollback/check", self.handle_rollback_check),
            ("/rollback/open", self.handle_rollback_open),
            ("/rollback/close", self.handle_rollback_close),
        ]
        for path, handler in routes:
            app.router.add_route("*", path, handler)
        app.router.add_get("/healthz", self.handle_healthz)
        app.router.add_get("/metrics", self.handle_metrics)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def start(self) -> str:
        """Listen on ``config.host:config.port`` (port 0 picks a free one); return the base URL."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.config.port
        self._log_policy()
        log.info("Starting load tester v%s API on port %s", __version__, self.port)
        return self.url

    def _log_policy(self) -> None:
        policy = self.policy
        if policy.allow_any:
            log.warning(
                "--allow-any-command: every command runs through sh -c / bash -c UNCHECKED, as in "
                "flagger-loadtester; anyone who can reach this loadtester or create a Canary gets a shell"
            )
            return
        installed = [f"{name}={policy.paths[name]}" for name in sorted(policy.allowed) if policy.paths[name]]
        log.info("allowed programs: %s", ", ".join(installed) or "none")
        if policy.missing:
            log.info("allowed but not installed: %s", ", ".join(policy.missing))
        if policy.unchecked:
            log.warning(
                "no option grammar for %s: their arguments are passed unchecked (still without a shell)",
                ", ".join(policy.unchecked),
            )

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "", "::") else "127.0.0.1"
        return f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.cancel_tasks()

    async def cancel_tasks(self) -> None:
        tasks = list(self.running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # pragma: no cover - logged by the task itself
                pass

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.cancel_tasks()

    async def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no async task is running (for tests and graceful shutdown)."""
        async with asyncio.timeout(timeout_s):
            while self.running:
                await asyncio.gather(*self.running.values(), return_exceptions=True)

    # -- middlewares -------------------------------------------------------------------------------

    @web.middleware
    async def _count_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        known = request.match_info.route.resource is not None
        path = request.path if known else "other"
        try:
            response = await handler(request)
        except web.HTTPException as err:
            self.requests_total.labels(path, str(err.status)).inc()
            raise
        self.requests_total.labels(path, str(response.status)).inc()
        return response

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        token = self.config.token
        if token and request.path not in OPEN_PATHS:
            header = request.headers.get("Authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
                return web.Response(
                    status=401,
                    text="Unauthorized: a bearer token is required",
                    headers={"WWW-Authenticate": 'Bearer realm="canarist-loadtester"'},
                )
        return await handler(request)

    # -- helpers -----------------------------------------------------------------------------------

    async def _payload(self, request: web.Request) -> HookPayload | web.Response:
        if request.method != "POST":
            return web.Response(status=405, text="method not allowed, use POST")
        try:
            payload = parse_payload(await request.read())
        except BadPayload as err:
            return web.Response(status=400, text=str(err))
        if self._namespace_re is not None and not self._namespace_re.search(payload.namespace):
            log.info(
                "Forbidden: namespace %r does not match %s", payload.namespace, self.config.namespace_regexp
            )
            return web.Response(
                status=403,
                text=f"Forbidden: namespace {payload.namespace!r} does not match the namespace regexp",
            )
        return payload

    # -- tasks -------------------------------------------------------------------------------------

    async def handle_task(self, request: web.Request) -> web.StreamResponse:
        payload = await self._payload(request)
        if isinstance(payload, web.Response):
            return payload
        if not payload.metadata:
            return web.Response(status=400, text="metadata not found in payload")
        task_type = payload.metadata.get("type") or "cmd"
        if task_type in UNSUPPORTED_TYPES:
            self.tasks_total.labels(task_type, "unsupported").inc()
            return web.Response(
                status=400, text=f"task type {task_type} is not supported by canarist loadtester"
            )
        if task_type not in ASYNC_TYPES and task_type not in BLOCKING_TYPES:
            self.tasks_total.labels("unknown", "unsupported").inc()
            return web.Response(status=400, text=f"unknown task type {task_type}")
        command = payload.metadata.get("cmd", "")
        if not command.strip():
            self.tasks_total.labels(task_type, "rejected").inc()
            return web.Response(status=400, text="cmd not found in payload metadata")
        stages: tuple[Stage, ...] | None = None
        try:
            if not self.policy.allow_any:
                stages = self.policy.plan(command)
        except CommandRejected as err:
            self.tasks_total.labels(task_type, "rejected").inc()
            log.warning(
                "command rejected for %s: %s: %s",
                payload.canary,
                truncate(command, self.config.log_output_limit),
                err,
                extra={"canary": payload.canary},
            )
            return web.Response(status=403, text=f"command rejected: {err}")
        except CommandUnrunnable as err:
            self.tasks_total.labels(task_type, "rejected").inc()
            log.warning(
                "command cannot run for %s: %s", payload.canary, err, extra={"canary": payload.canary}
            )
            return web.Response(status=400, text=f"command cannot be run: {err}")
        if task_type == "bash":
            return await self._run_blocking(payload, command, stages)
        return self._queue(payload, command, stages)

    async def _execute(self, command: str, stages: Sequence[Stage] | None, shell: str) -> CommandOutcome:
        """Exec the planned stages, or (``--allow-any-command``) run the command through ``shell -c``."""
        spawned = self.started_pids.append
        if stages is None:
            return await run_command(command, shell, self.config.timeout_s, on_spawn=spawned)
        argvs = [stage.argv for stage in stages]
        return await run_pipeline(command, argvs, self.config.timeout_s, on_spawn=spawned)

    def _queue(self, payload: HookPayload, command: str, stages: Sequence[Stage] | None) -> web.Response:
        key = (payload.canary, command)
        existing = self.running.get(key)
        if existing is not None and not existing.done():
            self.tasks_total.labels("cmd", "skipped").inc()
            log.info("command skipped %s is already running", command, extra={"canary": payload.canary})
            return web.Response(status=202, text=f"command skipped {command} is already running")
        log_output = payload.metadata.get("logCmdOutput", "") == "true"
        task = asyncio.create_task(
            self._run_async(payload, command, stages, log_output), name=f"cmd {payload.canary}"
        )
        self.running[key] = task
        self.tasks_running.set(len(self.running))
        self.tasks_total.labels("cmd", "accepted").inc()
        return web.Response(status=202, text="task accepted")

    async def _run_async(
        self, payload: HookPayload, command: str, stages: Sequence[Stage] | None, log_output: bool
    ) -> CommandOutcome:
        extra = {"canary": payload.canary}
        log.info("command starting %s", command, extra=extra)
        try:
            outcome = await self._execute(command, stages, "sh")
        finally:
            self.running.pop((payload.canary, command), None)
            self.tasks_running.set(len(self.running))
        self._record(outcome, "cmd")
        if outcome.ok:
            log.info("command finished %s", command, extra=extra)
        else:
            log.warning("%s", truncate(outcome.describe_failure(), self.config.log_output_limit), extra=extra)
        if log_output:
            log.info(
                "%s", truncate(outcome.stdout + outcome.stderr, self.config.log_output_limit), extra=extra
            )
        self.completed.append(outcome)
        del self.completed[:-100]
        return outcome

    async def _run_blocking(
        self, payload: HookPayload, command: str, stages: Sequence[Stage] | None
    ) -> web.Response:
        extra = {"canary": payload.canary}
        log.info("command starting %s", command, extra=extra)
        outcome = await self._execute(command, stages, "bash")
        self._record(outcome, "bash")
        if not outcome.ok:
            message = outcome.describe_failure()
            log.warning("%s", truncate(message, self.config.log_output_limit), extra=extra)
            return web.Response(status=500, text=message)
        log.info("command finished %s", command, extra=extra)
        if payload.metadata.get("returnCmdOutput", "") == "true":
            return web.Response(status=200, text=outcome.stdout)
        return web.Response(status=200, text="")

    def _record(self, outcome: CommandOutcome, task_type: str) -> None:
        if outcome.error:
            result = "unrunnable"
        else:
            result = "timeout" if outcome.timed_out else ("succeeded" if outcome.ok else "failed")
        self.tasks_total.labels(task_type, result).inc()

    # -- gates -------------------------------------------------------------------------------------

    async def handle_gate_approve(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=200, text="OK")

    async def handle_gate_halt(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=403, text="Forbidden")

    async def _flag(
        self, request: web.Request, table: dict[str, bool], what: str, value: bool | None
    ) -> web.Response:
        payload = await self._payload(request)
        if isinstance(payload, web.Response):
            return payload
        key = payload.canary
        if value is None:
            if table.get(key, False):
                return web.Response(status=200, text="Approved")
            return web.Response(status=403, text="Forbidden")
        table[key] = value
        state = "opened" if value else "closed"
        log.info("%s %s %s", what, key, state, extra={"canary": key})
        return web.Response(status=202, text=f"{what} {key} {state}")

    async def handle_gate_check(self, request: web.Request) -> web.StreamResponse:
        return await self._flag(request, self.gates, "gate", None)

    async def handle_gate_open(self, request: web.Request) -> web.StreamResponse:
        return await self._flag(request, self.gates, "gate", True)

    async def handle_gate_close(self, request: web.Request) -> web.StreamResponse:
        return await self._flag(request, self.gates, "gate", False)

    async def handle_rollback_check(self, request: web.Request) -> web.StreamResponse:
        return await self._flag(request, self.rollbacks, "rollback", None)

    async def handle_rollback_open(self, request: web.Request) -> web.StreamResponse:
        return await self._flag(request, self.rollbacks, "rollback", True)

    async def handle_rollback_close(self, request: web.Request) -> web.StreamResponse:
        return await self._flag(request, self.rollbacks, "rollback", False)

    # -- health and metrics ------------------------------------------------------------------------

    async def handle_healthz(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=200, text="OK")

    async def handle_metrics(self, request: web.Request) -> web.StreamResponse:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def serve(config: LoadTesterConfig, stop: asyncio.Event | None = None) -> None:
    """Run a loadtester until ``stop`` is set (or forever)."""
    tester = LoadTester(config)
    await tester.start()
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await tester.stop()
