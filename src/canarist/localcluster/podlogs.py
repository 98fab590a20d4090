"""Pod logs: the `pods/{name}/log` subresource, served from files that local processes write.

Whoever runs a pod's containers as processes (the local sandbox) registers, in process, the file each
container's stdout/stderr goes to: ``cluster.pod_logs.register(namespace, pod, container, path)``. Nothing
in an API request can register a file, so a client can never make the server read an arbitrary path.

``GET /api/v1/namespaces/{ns}/pods/{name}/log`` then answers ``text/plain`` with that file, honouring
kubectl's parameters: ``container``, ``follow``, ``tailLines``, ``limitBytes``, ``timestamps``,
``previous``, ``sinceSeconds`` and ``sinceTime`` (see docs/localcluster.md for the approximations).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from aiohttp import web

from canarist.localcluster.errors import ApiError, FieldError

if TYPE_CHECKING:
    from canarist.localcluster.api import Api
    from canarist.localcluster.resources import ResourceType

Obj = dict[str, Any]
PODS = ("", "pods")
FOLLOW_POLL_INTERVAL = 0.1  # seconds between looks at a followed file (and at the pod and the registry)
_BLOCK = 64 * 1024
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class LogSource:
    """Where one container's log is: the current file, and the one of the run before (after a restart)."""

    path: Path
    previous: Path | None = None


class PodLogs:
    """A thread-safe registry of the log files of pods' containers, keyed by (namespace, pod, container).

    Registering another path for a container that has one is a restart: the old file becomes the
    ``previous`` log (``kubectl logs --previous``). Registering the same path again changes nothing.
    The registrations of a pod are forgotten when the Pod object is deleted.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._pods: dict[tuple[str, str], dict[str, LogSource]] = {}
        self._epoch = 0
        self._streams = 0

    def register(self, namespace: str, pod: str, container: str, path: str | Path) -> None:
        target = Path(path)
        with self._lock:
            containers = self._pods.setdefault((namespace, pod), {})
            old = containers.get(container)
            if old is not None and old.path == target:
                return
            containers[container] = LogSource(target, old.path if old is not None else None)

    def unregister(self, namespace: str, pod: str, container: str | None = None) -> None:
        """Forget one container's log, or every container's of the pod (container None)."""
        with self._lock:
            if container is None:
                self._pods.pop((namespace, pod), None)
                return
            containers = self._pods.get((namespace, pod))
            if containers is not None:
                containers.pop(container, None)
                if not containers:
                    del self._pods[(namespace, pod)]

    def lookup(self, namespace: str, pod: str, container: str) -> LogSource | None:
        with self._lock:
            return (self._pods.get((namespace, pod)) or {}).get(container)

    def registered(self) -> dict[tuple[str, str], dict[str, LogSource]]:
        """A snapshot: {(namespace, pod): {container: LogSource}}."""
        with self._lock:
            return {key: dict(containers) for key, containers in self._pods.items()}

    @property
    def active_streams(self) -> int:
        """How many `follow` streams are open right now."""
        with self._lock:
            return self._streams

    def wait_for_streams(self, count: int, timeout: float) -> bool:
        """Block (in any thread but the cluster's) until exactly `count` follow streams are open."""
        with self._lock:
            return self._lock.wait_for(lambda: self._streams == count, timeout)

    def end_streams(self) -> None:
        """End every open follow stream (the cluster is stopping)."""
        with self._lock:
            self._epoch += 1

    @property
    def epoch(self) -> int:
        with self._lock:
            return self._epoch

    def _stream_opened(self) -> None:
        with self._lock:
            self._streams += 1
            self._lock.notify_all()

    def _stream_closed(self) -> None:
        with self._lock:
            self._streams -= 1
            self._lock.notify_all()


# ---------------------------------------------------------------------- request options


@dataclass(frozen=True)
class LogOptions:
    """The PodLogOptions of one request."""

    container: str = ""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since: float | None = None  # epoch seconds: only what was written at or after this

    @classmethod
    def parse(cls, query: Mapping[str, str], pod: str, now: float | None = None) -> LogOptions:
        current = time.time() if now is None else now
        tail = _integer(query, "tailLines")
        limit = _integer(query, "limitBytes")
        since_seconds = _integer(query, "sinceSeconds")
        since_time = query.get("sinceTime") or None
        errors: list[FieldError] = []
        if tail is not None and tail < 0:
            errors.append(
                FieldError("tailLines", "FieldValueInvalid", "must be greater than or equal to 0", tail)
            )
        if limit is not None and limit < 1:
            errors.append(FieldError("limitBytes", "FieldValueInvalid", "must be greater than 0", limit))
        if since_seconds is not None and since_seconds < 1:
            errors.append(
                FieldError("sinceSeconds", "FieldValueInvalid", "must be greater than 0", since_seconds)
            )
        if since_seconds is not None and since_time is not None:
            errors.append(
                FieldError(
                    "", "FieldValueForbidden", "at most one of `sinceTime` or `sinceSeconds` may be specified"
                )
            )
        if errors:
            raise ApiError.invalid("PodLogOptions", pod, errors, "", "")
        since: float | None = None
        if since_seconds is not None:
            since = current - since_seconds
        elif since_time is not None:
            try:
                since = datetime.fromisoformat(since_time.replace("Z", "+00:00")).timestamp()
            except ValueError as exc:
                raise ApiError.bad_request(
                    f'sinceTime: invalid value "{since_time}": expected an RFC 3339 time'
                ) from exc
        return cls(
            container=query.get("container", ""),
            follow=_boolean(query, "follow"),
            previous=_boolean(query, "previous"),
            timestamps=_boolean(query, "timestamps"),
            tail_lines=tail,
            limit_bytes=limit,
            since=since,
        )


def _integer(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError.bad_request(f'{name}: invalid value "{raw}": expected an integer') from exc


def _boolean(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name)
    if raw is None or raw == "" or raw in _FALSE:
        return False
    if raw in _TRUE:
        return True
    raise ApiError.bad_request(f'{name}: invalid value "{raw}": expected true or false')


# ---------------------------------------------------------------------- container choice


def container_names(pod: Obj) -> list[str]:
    """Init containers, containers, then ephemeral containers, as the API server lists them."""
    spec = pod.get("spec") or {}
    names: list[str] = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict) and container.get("name"):
                names.append(str(container["name"]))
    return names


def choose_container(pod: Obj, requested: str) -> str:
    name = str(pod["metadata"]["name"])
    if requested:
        if requested not in container_names(pod):
            raise ApiError.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    regular = [
        str(c["name"])
        for c in (pod.get("spec") or {}).get("containers") or []
        if isinstance(c, dict) and c.get("name")
    ]
    if len(regular) == 1:
        return regular[0]
    if not regular:
        raise ApiError.bad_request(f"a container name must be specified for pod {name}")
    choices = " ".join(container_names(pod))
    raise ApiError.bad_request(
        f"a container name must be specified for pod {name}, choose one of: [{choices}]"
    )


# ---------------------------------------------------------------------- serving


def _stamp(seconds: float) -> bytes:
    """RFC 3339 with nine fraction digits, in UTC (the kubelet's log timestamp format)."""
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos:09d}Z ".encode()


def _tail_offset(handle: IO[bytes], end: int, lines: int) -> int:
    """The offset where the last `lines` lines of the first `end` bytes begin."""
    if lines <= 0 or end <= 0:
        return end
    handle.seek(end - 1)
    scan_end = end - 1 if handle.read(1) == b"\n" else end
    count, position = 0, scan_end
    while position > 0:
        size = min(_BLOCK, position)
        position -= size
        handle.seek(position)
        block = handle.read(size)
        index = len(block)
        while True:
            index = block.rfind(b"\n", 0, index)
            if index < 0:
                break
            count += 1
            if count == lines:
                return position + index + 1
    return 0


class _Output:
    """Writes log bytes to the response: timestamps on complete lines, and the byte limit."""

    def __init__(self, response: web.StreamResponse, options: LogOptions) -> None:
        self.response = response
        self.timestamps = options.timestamps
        self.remaining = options.limit_bytes
        self.partial = b""

    @property
    def full(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    async def feed(self, data: bytes, stamp: float) -> None:
        if not self.timestamps:
            await self._write(data)
            return
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        if cut:
            prefix = _stamp(stamp)
            lines = data[:cut].splitlines(keepends=True)
            await self._write(b"".join(prefix + line for line in lines))

    async def finish(self, stamp: float) -> None:
        if self.partial:
            partial, self.partial = self.partial, b""
            await self._write(_stamp(stamp) + partial)

    async def _write(self, data: bytes) -> None:
        if self.remaining is not None:
            data = data[: max(0, self.remaining)]
            self.remaining -= len(data)
        if data:
            await self.response.write(data)


def _open(path: Path) -> IO[bytes] | None:
    try:
        return path.open("rb")
    except FileNotFoundError:
        return None


async def serve_pod_log(
    request: web.Request, api: Api, logs: PodLogs, rt: ResourceType, namespace: str, name: str
) -> web.StreamResponse:
    """Answer GET .../pods/{name}/log (errors before any byte is sent are ApiErrors, as Status bodies)."""
    options = LogOptions.parse(request.query, name)
    pod = api.get(rt, namespace, name)
    container = choose_container(pod, options.container)
    source = logs.lookup(namespace, name, container)
    if options.previous:
        if source is None or source.previous is None:
            raise ApiError.bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        path = source.previous
    else:
        if source is None:
            raise ApiError.bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
            )
        path = source.path
    try:
        handle = _open(path)
    except OSError as exc:
        raise ApiError(
            500,
            "InternalError",
            f'cannot read the log of container "{container}" in pod "{name}": {exc.strerror}',
        ) from exc
    uid = pod["metadata"].get("uid")
    epoch = logs.epoch
    follow = options.follow and not options.previous
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "text/plain", "Cache-Control": "no-cache, private"}
    )
    response.enable_chunked_encoding()
    output = _Output(response, options)
    if follow:
        logs._stream_opened()
    try:
        await response.prepare(request)
        position = 0
        if handle is not None:
            stat = os.fstat(handle.fileno())
            end = stat.st_size
            written_at = stat.st_mtime  # existing content counts as written when the file last changed
            position = end if options.since is not None and written_at < options.since else 0
            if options.tail_lines is not None:
                position = max(position, _tail_offset(handle, end, options.tail_lines))
            handle.seek(position)
            while position < end and not output.full:
                chunk = handle.read(min(_BLOCK, end - position))
                if not chunk:
                    break
                position += len(chunk)
                await output.feed(chunk, written_at)
        if not follow:
            await output.finish(time.time())
            return response

        def still_streaming() -> bool:
            current = api.store.get(PODS, namespace, name)
            if current is None or current["metadata"].get("uid") != uid or logs.epoch != epoch:
                return False
            now = logs.lookup(namespace, name, container)
            return now is not None and now.path == path

        while not output.full:
            streaming = still_streaming()
            if handle is None:
                handle = _open(path)
            if handle is not None:
                if os.fstat(handle.fileno()).st_size < position:  # truncated: start again from the top
                    position = 0
                handle.seek(position)
                while not output.full:
                    chunk = handle.read(_BLOCK)
                    if not chunk:
                        break
                    position += len(chunk)
                    await output.feed(chunk, time.time())
            if not streaming:
                break
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            await asyncio.sleep(FOLLOW_POLL_INTERVAL)
        await output.finish(time.time())
        return response
    except (ConnectionError, asyncio.CancelledError):
        return response
    finally:
        if handle is not None:
            handle.close()
        if follow:
            logs._stream_closed()
