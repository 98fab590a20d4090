"""`KubeClient`: the one async door to the Kubernetes API, speaking plain JSON dicts.

lightkube does the parts that are easy to get wrong and that we have no reason to own: reading a
kubeconfig (contexts, relative file paths, exec plugins, client certificates, token files that rotate)
or the in-cluster service account, and building an authenticated ``httpx2.AsyncClient`` with the right TLS
context. On that connection this module issues the REST requests itself, so that

* objects stay the server's JSON, unknown fields and all (no typed model in between, CRDs like
  ``networking.istio.io`` need none);
* watch errors are ours to see: a 410 ends the stream with `Gone` so that an informer can re-list and emit
  the diff, instead of a silent restart from "now";
* every request passes through one place that counts it (`RequestRecord`) and turns failures into the
  typed errors of `canarist.kube.errors`;
* writes pass a **write fence** (`set_write_fence`, the leader election's `holds_lease`) before they are
  sent, and transient failures of writes are retried there with bounded backoff (`RetryPolicy`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx2
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.config.models import Cluster
from lightkube.core.exceptions import ConfigError

from .errors import (
    AlreadyExists,
    Conflict,
    Fenced,
    KubeError,
    NotAKubeconfig,
    NotFound,
    TransportError,
    bounded,
    error_from_status,
    is_transient,
    not_applied,
)
from .policy import contains, differs, overlay  # contains stays importable from here
from .resources import ResourceKind, kind_of

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "EnsureResult",
    "KubeClient",
    "Obj",
    "ObjectList",
    "PatchType",
    "RequestHook",
    "RequestLog",
    "RequestRecord",
    "RetryPolicy",
    "WatchEvent",
    "WriteFence",
    "contains",
    "format_selector",
]

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Selector = str | Mapping[str, str] | None
JsonPatch = list[Any]  # RFC 6902 operations
WriteFence = Callable[[], bool]
RetryMode = Literal["none", "not_applied", "transient"]

_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A connection that was never made: the server cannot have seen the request.
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for transient failures (429, 5xx, transport errors).

    At most ``attempts`` tries; the n-th wait is ``base_delay * 2**(n-1)`` capped at ``max_delay``, times a
    random factor in [0.5, 1]. A 429's ``Retry-After`` is honoured up to ``max_retry_after``. No wait may
    take the total time spent waiting past ``budget``: the last error is raised instead. The defaults give
    at most 5 tries and 1.5 s of waiting (plus Retry-After, so at most 4 s)."""

    attempts: int = 5
    base_delay: float = 0.1
    max_delay: float = 1.0
    max_retry_after: float = 2.0
    budget: float = 4.0

    def delay(self, attempt: int, error: BaseException | None = None) -> float:
        """The wait before try ``attempt + 1`` (``attempt`` >= 1 tries have failed)."""
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > 0:
            backoff = max(backoff, min(float(retry_after), self.max_retry_after))
        return backoff

    async def run(
        self, op: Callable[[], Awaitable[_T]], retryable: Callable[[BaseException], bool], what: str
    ) -> _T:
        """``await op()``, again after each failure ``retryable`` accepts, within the attempts and budget."""
        attempt = 0
        waited = 0.0
        while True:
            try:
                return await op()
            except KubeError as e:
                attempt += 1
                if not retryable(e) or attempt >= self.attempts:
                    if attempt > 1:
                        e.add_note(f"gave up after {attempt} attempts ({waited:.1f} s of backoff)")
                    raise
                delay = self.delay(attempt, e)
                if waited + delay > self.budget:
                    e.add_note(f"gave up after {attempt} attempts: retry budget {self.budget:g} s spent")
                    raise
                log.debug("%s: %s; retry %d in %.2f s", what, e, attempt, delay)
                waited += delay
                await asyncio.sleep(delay)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)


def _is_lease(kind: ResourceKind) -> bool:
    return kind.group == "coordination.k8s.io" and kind.plural == "leases"


class PatchType(StrEnum):
    """The three patch flavours the API server accepts for JSON objects."""

    MERGE = "merge"  # RFC 7386 JSON merge patch
    JSON = "json"  # RFC 6902 JSON patch (a list of operations)
    STRATEGIC = "strategic"  # Kubernetes strategic merge patch (built-in kinds only)

    @property
    def content_type(self) -> str:
        return _PATCH_CONTENT_TYPES[self]


_PATCH_CONTENT_TYPES = {
    PatchType.MERGE: "application/merge-patch+json",
    PatchType.JSON: "application/json-patch+json",
    PatchType.STRATEGIC: "application/strategic-merge-patch+json",
}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the operator's metrics and the RBAC test see it.

    ``verb`` is the Kubernetes verb (get, list, watch, create, update, patch, delete); ``code`` is the HTTP
    status, or ``None`` when no response came back.
    """

    verb: str
    group: str
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    code: int | None
    duration_seconds: float

    @property
    def group_resource(self) -> str:
        base = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{base}/{self.subresource}" if self.subresource else base


RequestHook = Callable[[RequestRecord], None]


class RequestLog:
    """A request hook that keeps counts: ``client.add_request_hook(log := RequestLog())``.

    ``counts[(verb, group_resource, code)]`` counts requests; `permissions()` gives the set of
    ``(group, resource[/subresource], verb)`` triples used, which is what an RBAC Role must grant.
    """

    def __init__(self, keep: int = 0) -> None:
        self.counts: Counter[tuple[str, str, int | None]] = Counter()
        self.records: list[RequestRecord] = []
        self._keep = keep

    def __call__(self, record: RequestRecord) -> None:
        self.counts[(record.verb, record.group_resource, record.code)] += 1
        if self._keep:
            self.records.append(record)
            if len(self.records) > self._keep:
                del self.records[: len(self.records) - self._keep]

    def permissions(self) -> set[tuple[str, str, str]]:
        out: set[tuple[str, str, str]] = set()
        for verb, group_resource, _ in self.counts:
            resource, _, group = group_resource.partition("/")[0].partition(".")
            sub = group_resource.partition("/")[2]
            out.add((group, f"{resource}/{sub}" if sub else resource, verb))
        return out

    def total(self, verb: str | None = None) -> int:
        return sum(n for (v, _, _), n in self.counts.items() if verb is None or v == verb)

    def clear(self) -> None:
        self.counts.clear()
        self.records.clear()


@dataclass(slots=True)
class ObjectList:
    """The result of a list: the items (each with apiVersion and kind filled in) and the collection's
    resourceVersion, from which a watch continues."""

    items: list[Obj]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event: ``type`` is ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    object: Obj


@dataclass(frozen=True, slots=True)
class EnsureResult:
    """What `KubeClient.ensure` did: ``action`` is ``created``, ``updated`` or ``unchanged``."""

    object: Obj
    action: Literal["created", "updated", "unchanged"]


def format_selector(selector: Selector) -> str | None:
    """A label/field selector as the API wants it: strings pass through, mappings become ``k=v,k2=v2``."""
    if selector is None:
        return None
    if isinstance(selector, str):
        return selector or None
    return ",".join(f"{k}={v}" for k, v in selector.items()) or None


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _default_kubeconfig_path() -> str:
    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    return str(Path("~/.kube/config").expanduser())


class KubeClient:
    """Async access to one API server. Create it with `from_kubeconfig`, `in_cluster`, `connect` or
    `from_url`; close it with ``await client.close()`` (or ``async with``).

    Namespaces: for reads and writes of namespaced objects a missing namespace means the object's own
    ``metadata.namespace``, then the client's `namespace` (the kubeconfig context's). For `list` and `watch`
    a missing namespace means all namespaces.

    Retries (``retry``, default `DEFAULT_RETRY`; per call with ``retry=``): a PUT (`replace`,
    `replace_status`) and a merge or strategic PATCH are retried on every transient error, since repeating
    them is harmless (a PUT carrying a resourceVersion that was applied after all gets `Conflict`, which
    `update_status` handles). A create (POST), a delete and a JSON patch are retried only on errors that
    prove the request was not applied (429, connection never made), because a repeat after a lost answer
    could give `AlreadyExists` or `NotFound`, or a second object with ``generateName``. Reads and Lease
    requests are never retried here: callers (informers, the leader election) have their own loops.
    """

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        namespace: str = "default",
        field_manager: str | None = None,
        on_request: RequestHook | Iterable[RequestHook] | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._http = http
        self.namespace = namespace
        self.field_manager = field_manager
        self._timeout = timeout
        self.retry = retry
        self._fence: WriteFence | None = None
        self._hooks: list[RequestHook] = []
        if callable(on_request):
            self._hooks.append(on_request)
        elif on_request is not None:
            self._hooks.extend(on_request)

    # ------------------------------------------------------------------ construction

    @classmethod
    def _from_config(
        cls,
        config: SingleConfig,
        *,
        server: str | None = None,
        timeout: float = 10.0,
        field_manager: str | None = None,
        on_request: RequestHook | Iterable[RequestHook] | None = None,
    ) -> KubeClient:
        if server:
            config = config._replace(cluster=copy.copy(config.cluster))
            config.cluster.server = server
        if config.user is None:
            from lightkube.config.models import User

            config = config._replace(user=User())
        params = client_adapter.ConnectionParams(timeout=httpx2.Timeout(timeout), trust_env=False)
        try:
            http = client_adapter.AsyncClient(config, params)
        except (ConfigError, OSError, ValueError) as e:
            raise KubeError(f"cannot configure a connection to {config.cluster.server}: {e}") from e
        return cls(
            http,
            namespace=config.namespace,
            field_manager=field_manager,
            on_request=on_request,
            timeout=timeout,
        )

    @classmethod
    def from_kubeconfig(
        cls,
        path: str | os.PathLike[str] | None = None,
        context: str | None = None,
        *,
        server: str | None = None,
        timeout: float = 10.0,
        field_manager: str | None = None,
        on_request: RequestHook | Iterable[RequestHook] | None = None,
    ) -> KubeClient:
        """A client for a kubeconfig file (default ``$KUBECONFIG``, then ``~/.kube/config``) and context
        (default its current-context). ``server`` overrides the cluster address (Flagger's ``-master``)."""
        fname = os.fspath(path) if path is not None else _default_kubeconfig_path()
        try:
            config = KubeConfig.from_file(fname).get(context)
        except (ConfigError, OSError, KeyError, ValueError) as e:
            raise KubeError(f"cannot load kubeconfig {fname}: {e}") from e
        except (AttributeError, TypeError) as e:  # YAML that is not a mapping (say /etc/hostname)
            raise NotAKubeconfig(f"cannot load kubeconfig {fname}: not a kubeconfig file") from e
        assert config is not None  # get() without a default raises instead
        return cls._from_config(
            config, server=server, timeout=timeout, field_manager=field_manager, on_request=on_request
        )

    @classmethod
    def in_cluster(
        cls,
        *,
        service_account: str | os.PathLike[str] = "/var/run/secrets/kubernetes.io/serviceaccount",
        timeout: float = 10.0,
        field_manager: str | None = None,
        on_request: RequestHook | Iterable[RequestHook] | None = None,
    ) -> KubeClient:
        """A client for the pod's service account (token re-read when it rotates)."""
        try:
            config = KubeConfig.from_service_account(service_account).get()
        except (ConfigError, OSError, KeyError) as e:
            raise KubeError(f"not running in a cluster: {e}") from e
        assert config is not None
        return cls._from_config(config, timeout=timeout, field_manager=field_manager, on_request=on_request)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str = "default",
        timeout: float = 10.0,
        field_manager: str | None = None,
        on_request: RequestHook | Iterable[RequestHook] | None = None,
    ) -> KubeClient:
        """A client for an unauthenticated server address (the local control plane, ``kubectl proxy``)."""
        config = KubeConfig.from_one(cluster=Cluster(server=url), namespace=namespace).get()
        assert config is not None
        return cls._from_config(config, timeout=timeout, field_manager=field_manager, on_request=on_request)

    @classmethod
    def connect(
        cls,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        *,
        server: str | None = None,
        timeout: float = 10.0,
        field_manager: str | None = None,
        on_request: RequestHook | Iterable[RequestHook] | None = None,
    ) -> KubeClient:
        """Flagger's rule: an explicit kubeconfig wins; otherwise in-cluster when running in a pod; otherwise
        ``$KUBECONFIG`` / ``~/.kube/config``."""
        kw: dict[str, Any] = {"timeout": timeout, "field_manager": field_manager, "on_request": on_request}
        if kubeconfig:
            return cls.from_kubeconfig(kubeconfig, context, server=server, **kw)
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not server and not context:
            try:
                return cls.in_cluster(**kw)
            except KubeError:
                pass
        if server and not Path(_default_kubeconfig_path()).exists():
            return cls.from_url(server, timeout=timeout, field_manager=field_manager, on_request=on_request)
        return cls.from_kubeconfig(None, context, server=server, **kw)

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def set_user_agent(self, user_agent: str) -> None:
        """The ``User-Agent`` of every request from now on (an API server's audit log records it)."""
        self._http.headers["User-Agent"] = user_agent

    @property
    def user_agent(self) -> str:
        return str(self._http.headers.get("User-Agent", ""))

    @property
    def server(self) -> str:
        return str(self._http.base_url)

    # ------------------------------------------------------------------ write fence

    def set_write_fence(self, fence: WriteFence | None) -> None:
        """Check ``fence()`` before every mutating request (POST, PUT, PATCH, DELETE, status and Events
        included); when it returns False (or raises) the request is not sent and `Fenced` is raised.
        Requests for coordination.k8s.io Leases are exempt, so that the election can renew and re-acquire;
        reads are never fenced. ``None`` removes the fence. Typically
        ``client.set_write_fence(election.holds_lease)``."""
        self._fence = fence

    @property
    def write_fence(self) -> WriteFence | None:
        return self._fence

    def _check_fence(self, method: str, kind: ResourceKind, namespace: str | None, name: str | None) -> None:
        fence = self._fence
        if fence is None or method not in _MUTATING or _is_lease(kind):
            return
        try:
            allowed = bool(fence())
        except Exception:
            log.exception("write fence %r failed; refusing the write", fence)
            allowed = False
        if not allowed:
            target = "/".join(p for p in (namespace or "", name or "") if p)
            raise Fenced(
                f"not the leader: the Lease this replica held has expired or was lost, so "
                f"{method} {kind.group_resource}{' ' + target if target else ''} was not sent"
            )

    # ------------------------------------------------------------------ request hooks

    def add_request_hook(self, hook: RequestHook) -> Callable[[], None]:
        """Call ``hook(record)`` after every request; returns a function that removes it."""
        self._hooks.append(hook)

        def remove() -> None:
            if hook in self._hooks:
                self._hooks.remove(hook)

        return remove

    def _record(
        self,
        verb: str,
        kind: ResourceKind,
        namespace: str | None,
        name: str | None,
        subresource: str | None,
        code: int | None,
        started: float,
    ) -> None:
        if not self._hooks:
            return
        record = RequestRecord(
            verb=verb,
            group=kind.group,
            version=kind.version,
            resource=kind.plural,
            subresource=subresource or "",
            namespace=(namespace or "") if kind.namespaced else "",
            name=name or "",
            code=code,
            duration_seconds=time.monotonic() - started,
        )
        for hook in list(self._hooks):
            try:
                hook(record)
            except Exception:
                log.exception("request hook %r failed", hook)

    # ------------------------------------------------------------------ the one request path

    async def _request(
        self,
        method: str,
        verb: str,
        kind: ResourceKind,
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
        params: Mapping[str, str | None] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retry_mode: RetryMode | None = None,
        retry: RetryPolicy | None = None,
    ) -> Obj:
        """Send one request, through the write fence, retrying per ``retry_mode`` (default: none for reads
        and Leases, ``transient`` for PUT/PATCH, ``not_applied`` for POST/DELETE) under ``retry``."""
        if retry_mode is None:
            if method not in _MUTATING or _is_lease(kind):
                retry_mode = "none"
            elif method in ("PUT", "PATCH"):
                retry_mode = "transient"
            else:
                retry_mode = "not_applied"
        policy = retry or self.retry
        if retry_mode == "none":
            policy = NO_RETRY

        async def once() -> Obj:
            self._check_fence(method, kind, namespace, name)
            return await self._send(
                method,
                verb,
                kind,
                namespace=namespace,
                name=name,
                subresource=subresource,
                params=params,
                body=body,
                content_type=content_type,
            )

        retryable = not_applied if retry_mode == "not_applied" else is_transient
        return await policy.run(once, retryable, f"{method} {kind.plural}")

    async def _send(
        self,
        method: str,
        verb: str,
        kind: ResourceKind,
        *,
        namespace: str | None,
        name: str | None,
        subresource: str | None,
        params: Mapping[str, str | None] | None,
        body: Any,
        content_type: str,
    ) -> Obj:
        url = kind.path(namespace, name, subresource)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        headers = {"Accept": "application/json"}
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = content_type
            if self.field_manager and method in ("POST", "PUT", "PATCH"):
                query.setdefault("fieldManager", self.field_manager)
        started = time.monotonic()
        try:
            resp = await self._http.request(method, url, params=query, content=content, headers=headers)
        except httpx2.HTTPError as e:
            self._record(verb, kind, namespace, name, subresource, None, started)
            raise TransportError(
                f"{method} {url}: {type(e).__name__}: {bounded(str(e))}", sent=not isinstance(e, _NOT_SENT)
            ) from e
        self._record(verb, kind, namespace, name, subresource, resp.status_code, started)
        return self._decode(resp, method, url)

    @staticmethod
    def _decode(resp: httpx2.Response, method: str, url: str) -> Obj:
        try:
            data = json.loads(resp.content) if resp.content else {}
        except ValueError:
            data = None
        if resp.status_code >= 400:
            status = data if isinstance(data, dict) else None
            text = bounded(resp.text) if status is None else ""
            raise error_from_status(
                resp.status_code,
                status,
                text or f"{method} {url} failed",
                retry_after_header=resp.headers.get("Retry-After"),
            )
        if not isinstance(data, dict):
            raise TransportError(f"{method} {url}: response is not a JSON object")
        return data

    def _ns(
        self, kind: ResourceKind, namespace: str | None, obj: Mapping[str, Any] | None = None
    ) -> str | None:
        if not kind.namespaced:
            return None
        if namespace:
            return namespace
        if obj is not None:
            ns = _meta(obj).get("namespace")
            if isinstance(ns, str) and ns:
                return ns
        return self.namespace

    @staticmethod
    def _name(obj: Mapping[str, Any]) -> str:
        name = _meta(obj).get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("object has no metadata.name")
        return name

    # ------------------------------------------------------------------ verbs

    async def get(self, kind: ResourceKind, name: str, *, namespace: str | None = None) -> Obj:
        """The object, or `NotFound`."""
        return await self._request("GET", "get", kind, namespace=self._ns(kind, namespace), name=name)

    async def get_or_none(self, kind: ResourceKind, name: str, *, namespace: str | None = None) -> Obj | None:
        """The object, or ``None`` when it does not exist."""
        try:
            return await self.get(kind, name, namespace=namespace)
        except NotFound:
            return None

    async def list(
        self,
        kind: ResourceKind,
        *,
        namespace: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        limit: int | None = None,
    ) -> ObjectList:
        """All matching objects (following ``continue`` tokens when ``limit`` pages the result), each with
        apiVersion/kind set, and the list's resourceVersion. ``namespace=None`` lists all namespaces."""
        ns = namespace if kind.namespaced else None
        params: dict[str, str | None] = {
            "labelSelector": format_selector(label_selector),
            "fieldSelector": format_selector(field_selector),
            "limit": str(limit) if limit else None,
        }
        items: list[Obj] = []
        resource_version = ""
        while True:
            data = await self._request("GET", "list", kind, namespace=ns, params=params)
            for item in data.get("items") or []:
                if isinstance(item, dict):
                    item.setdefault("apiVersion", kind.api_version)
                    item.setdefault("kind", kind.kind)
                    items.append(item)
            meta = _meta(data)
            resource_version = str(meta.get("resourceVersion") or resource_version)
            cont = meta.get("continue")
            if not cont:
                break
            params["continue"] = str(cont)
        return ObjectList(items=items, resource_version=resource_version)

    async def create(
        self,
        obj: Mapping[str, Any],
        *,
        kind: ResourceKind | None = None,
        namespace: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Obj:
        """Create ``obj`` (its kind from apiVersion/kind unless given); `AlreadyExists` if the name is taken.
        ``metadata.generateName`` works as in the API. Retried only on errors that prove it was not
        applied (429, no connection)."""
        kind = kind or kind_of(obj)
        body = dict(obj)
        body.setdefault("apiVersion", kind.api_version)
        body.setdefault("kind", kind.kind)
        return await self._request(
            "POST", "create", kind, namespace=self._ns(kind, namespace, obj), body=body, retry=retry
        )

    async def replace(
        self,
        obj: Mapping[str, Any],
        *,
        kind: ResourceKind | None = None,
        namespace: str | None = None,
        subresource: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Obj:
        """PUT the whole object. With ``metadata.resourceVersion`` set, a concurrent change gives `Conflict`.
        Transient errors (429, 5xx, transport) are retried with backoff."""
        kind = kind or kind_of(obj)
        body = dict(obj)
        body.setdefault("apiVersion", kind.api_version)
        body.setdefault("kind", kind.kind)
        return await self._request(
            "PUT",
            "update",
            kind,
            namespace=self._ns(kind, namespace, obj),
            name=self._name(obj),
            subresource=subresource,
            body=body,
            retry=retry,
        )

    async def replace_status(
        self,
        obj: Mapping[str, Any],
        *,
        kind: ResourceKind | None = None,
        namespace: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Obj:
        """PUT to ``/status`` (the main resource for kinds without a status subresource); transient errors
        are retried with backoff, a `Conflict` is raised."""
        kind = kind or kind_of(obj)
        sub = "status" if kind.status_subresource else None
        return await self.replace(obj, kind=kind, namespace=namespace, subresource=sub, retry=retry)

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any] | JsonPatch,
        *,
        namespace: str | None = None,
        patch_type: PatchType | str = PatchType.MERGE,
        subresource: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Obj:
        """PATCH with a merge patch (a dict, the default), a JSON patch (a list of operations,
        ``patch_type="json"``) or a strategic merge patch (``patch_type="strategic"``, built-in kinds).

        Merge and strategic patches are retried on transient errors (repeating one is harmless); a JSON
        patch only on errors proving it was not applied (an ``add`` to a list is not idempotent)."""
        ptype = PatchType(patch_type)
        if ptype is PatchType.JSON and not isinstance(patch, list):
            raise TypeError("a JSON patch is a list of operations")
        if ptype is not PatchType.JSON and not isinstance(patch, Mapping):
            raise TypeError(f"a {ptype.value} patch is a JSON object")
        return await self._request(
            "PATCH",
            "patch",
            kind,
            namespace=self._ns(kind, namespace),
            name=name,
            subresource=subresource,
            body=patch if isinstance(patch, list) else dict(patch),
            content_type=ptype.content_type,
            retry_mode="not_applied" if ptype is PatchType.JSON else None,
            retry=retry,
        )

    async def patch_status(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Obj:
        """A merge patch to ``/status``: ``{"status": {...}}``; transient errors are retried."""
        sub = "status" if kind.status_subresource else None
        return await self.patch(kind, name, patch, namespace=namespace, subresource=sub, retry=retry)

    async def delete(
        self,
        kind: ResourceKind,
        name: str,
        *,
        namespace: str | None = None,
        propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
        grace_period_seconds: int | None = None,
        preconditions: Mapping[str, str] | None = None,
        missing_ok: bool = False,
        retry: RetryPolicy | None = None,
    ) -> Obj | None:
        """Delete; returns what the server answered (the object while finalizers hold it, else a Status).
        With ``missing_ok`` a missing object is ``None`` instead of `NotFound`. ``preconditions`` takes
        ``uid`` and/or ``resourceVersion``. Retried only on errors proving it was not applied."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            body["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            body["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            body["preconditions"] = dict(preconditions)
        try:
            return await self._request(
                "DELETE",
                "delete",
                kind,
                namespace=self._ns(kind, namespace),
                name=name,
                body=body,
                retry=retry,
            )
        except NotFound:
            if missing_ok:
                return None
            raise

    async def watch(
        self,
        kind: ResourceKind,
        *,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: Selector = None,
        field_selector: Selector = None,
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Stream watch events until the server ends the stream (normally after ``timeout_seconds``).

        An ``ERROR`` event is raised as its typed error (`Gone` for an expired resourceVersion); a dropped
        connection raises `TransportError`. ``namespace=None`` watches all namespaces."""
        ns = namespace if kind.namespaced else None
        url = kind.path(ns)
        params = {
            k: v
            for k, v in {
                "watch": "true",
                "resourceVersion": resource_version or None,
                "allowWatchBookmarks": "true" if allow_bookmarks else None,
                "timeoutSeconds": str(timeout_seconds) if timeout_seconds else None,
                "labelSelector": format_selector(label_selector),
                "fieldSelector": format_selector(field_selector),
            }.items()
            if v is not None
        }
        # No read timeout unless the server promised to close the stream; then allow it some slack.
        read_timeout = float(timeout_seconds) + 30.0 if timeout_seconds else None
        timeout = httpx2.Timeout(self._timeout, read=read_timeout)
        started = time.monotonic()
        recorded = False
        try:
            async with self._http.stream(
                "GET", url, params=params, headers={"Accept": "application/json"}, timeout=timeout
            ) as resp:
                self._record("watch", kind, ns, None, None, resp.status_code, started)
                recorded = True
                if resp.status_code >= 400:
                    await resp.aread()
                    self._decode(resp, "GET", url)  # raises the typed error
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError as e:
                        raise TransportError(f"watch {url}: undecodable event {line[:200]!r}") from e
                    etype = event.get("type")
                    obj = event.get("object")
                    if not isinstance(obj, dict) or not isinstance(etype, str):
                        raise TransportError(f"watch {url}: malformed event {line[:200]!r}")
                    if etype == "ERROR":
                        code = obj.get("code")
                        raise error_from_status(code if isinstance(code, int) else 500, obj)
                    yield WatchEvent(etype, obj)
        except httpx2.HTTPError as e:
            if not recorded:
                self._record("watch", kind, ns, None, None, None, started)
            raise TransportError(
                f"watch {url}: {type(e).__name__}: {bounded(str(e))}", sent=not isinstance(e, _NOT_SENT)
            ) from e

    # ------------------------------------------------------------------ read-modify-write helpers

    async def _read_modify_write(
        self,
        kind: ResourceKind,
        name: str,
        mutate: Callable[[Obj], None],
        namespace: str | None,
        status: bool,
        retries: int,
    ) -> Obj:
        attempt = 0
        while True:
            current = await self.get(kind, name, namespace=namespace)
            desired = copy.deepcopy(current)
            mutate(desired)
            unchanged = (
                desired.get("status") == current.get("status")
                if status and kind.status_subresource
                else desired == current
            )
            if unchanged:
                return current
            try:
                if status:
                    return await self.replace_status(desired, kind=kind, namespace=namespace)
                return await self.replace(desired, kind=kind, namespace=namespace)
            except Conflict:
                attempt += 1
                if attempt > retries:
                    raise
                log.debug("conflict writing %s %s/%s, retry %d", kind.kind, namespace, name, attempt)
                await asyncio.sleep(random.uniform(0.0, 0.01 * attempt))

    async def update_status(
        self,
        kind: ResourceKind,
        name: str,
        namespace: str | None,
        mutate: Callable[[Obj], None],
        *,
        retries: int = 5,
    ) -> Obj:
        """Read the object, let ``mutate`` change its ``status`` in place, PUT it to ``/status``; on
        `Conflict` read again and re-apply, at most ``retries`` times. No write when nothing changed."""
        return await self._read_modify_write(kind, name, mutate, namespace, True, retries)

    async def update(
        self,
        kind: ResourceKind,
        name: str,
        namespace: str | None,
        mutate: Callable[[Obj], None],
        *,
        retries: int = 5,
    ) -> Obj:
        """`update_status` for the main resource (spec, metadata)."""
        return await self._read_modify_write(kind, name, mutate, namespace, False, retries)

    async def ensure(
        self,
        obj: Mapping[str, Any],
        *,
        kind: ResourceKind | None = None,
        namespace: str | None = None,
        retries: int = 5,
    ) -> EnsureResult:
        """Create ``obj``, or bring the existing object in line with it.

        "In line" means `contains(current, desired)` for every top-level field but ``status`` (so values
        the server defaulted are not differences) and for metadata labels, annotations, ownerReferences and
        finalizers. When it differs, desired top-level fields replace the current ones, labels and
        annotations are merged (desired wins), and the object is PUT with its resourceVersion (conflicts
        retried). A field removed from ``desired`` is not removed from the object: callers that need that
        should `replace`.
        """
        desired = dict(obj)
        kind = kind or kind_of(desired)
        ns = self._ns(kind, namespace, desired)
        name = self._name(desired)
        attempt = 0
        while True:
            try:
                current = await self.get(kind, name, namespace=ns)
            except NotFound:
                try:
                    created = await self.create(desired, kind=kind, namespace=ns)
                    return EnsureResult(created, "created")
                except AlreadyExists:
                    current = await self.get(kind, name, namespace=ns)
            if not differs(current, desired):
                return EnsureResult(current, "unchanged")
            try:
                merged = overlay(current, desired)
                if merged is None:
                    return EnsureResult(current, "unchanged")
                updated = await self.replace(merged, kind=kind, namespace=ns)
                return EnsureResult(updated, "updated")
            except Conflict:
                attempt += 1
                if attempt > retries:
                    raise
