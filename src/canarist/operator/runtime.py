"""The operator process: caches, the HTTP endpoint, leader election, graceful shutdown.

>>> await Operator(settings, client).run(stop_event)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid

from canarist import REVISION, __version__
from canarist.kube import resources as kinds
from canarist.kube.cache import ObjectCache
from canarist.kube.client import KubeClient
from canarist.kube.crds import wait_for_crds
from canarist.kube.errors import ApiUnavailable, CrdsMissing, KubeError
from canarist.kube.events import EventRecorder
from canarist.kube.leader import LeaderElection
from canarist.kube.writer import Writer
from canarist.notify.outbox import Outbox
from canarist.operator.alerts import AlertSender
from canarist.operator.controller import BASE_KINDS, Controller
from canarist.operator.executor import Executor
from canarist.operator.http import OperatorHttp
from canarist.operator.settings import OperatorSettings
from canarist.operator.shards import ElectionTiming, ShardManager
from canarist.operator.telemetry import Telemetry
from canarist.routers import registry as routers

log = logging.getLogger("canarist")

LEASE_NAME = "flagger-leader-election"
#: the CRDs the operator refuses to start without: the three flagger.app kinds and canarist.dev's commands.
FLAGGER_CRDS = (
    "canaries.flagger.app",
    "metrictemplates.flagger.app",
    "alertproviders.flagger.app",
    "canarycommands.canarist.dev",
)
#: operator flags that only some routers read: (setting, its default, the flag's name).
ROUTER_SETTINGS = (
    ("ingress_class", "", "-ingress-class"),
    ("ingress_annotations_prefix", "nginx.ingress.kubernetes.io", "-ingress-annotations-prefix"),
)


# Exit statuses of `canarist operator` (documented in docs/cli.md): 2 is argparse's usage error.
EXIT_FAILED = 1  # a failure while running (leader election lost, a refused flag combination)
EXIT_KUBECONFIG = 3  # the kubeconfig is missing, unreadable or not a kubeconfig
EXIT_UNREACHABLE = 4  # the API server did not answer within the start-up timeout
EXIT_NO_CRDS = 5  # the API server answered: the flagger.app CRDs are not installed
EXIT_API_REFUSED = 6  # the API server refused the CRD check (403, 401, …)


class StartupError(SystemExit):
    """The operator cannot start: ``code`` is the one-sentence message, ``exit_status`` the process's."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


def unused_router_flags(settings: OperatorSettings) -> list[str]:
    """Router flags that were set although no registered router reads them (a flag that would silently do
    nothing is refused instead)."""
    read = {name for router in routers.routers() for name in router.settings}
    return [
        f"{flag} is set but no available router reads it (supported providers: {', '.join(routers.supported())})"
        for name, default, flag in ROUTER_SETTINGS
        if getattr(settings, name) != default and name not in read
    ]


class Operator:
    def __init__(self, settings: OperatorSettings, client: KubeClient, http_host: str = "0.0.0.0") -> None:
        self.settings = settings
        self.client = client
        self.telemetry = Telemetry(settings.mesh_provider)
        client.add_request_hook(self._count_request)
        # Built first and passed down: one cache, one writer, one outbox for every notification.
        self.cache = ObjectCache(
            client,
            BASE_KINDS,  # the routers' kinds are watched on demand (ObjectCache.watch)
            namespace=settings.namespace or None,
            label_selectors={kinds.CANARY: settings.label_selector} if settings.label_selector else None,
        )
        self.writer = Writer(client, self.cache)
        self.outbox = Outbox(
            on_drop=lambda kind, destination: self.telemetry.notifications_dropped.labels(
                kind=kind, destination=destination
            ).inc()
        )
        self.alerts = AlertSender(self.cache, settings, self.telemetry, self.outbox)
        recorder = EventRecorder(client, component="flagger")
        self.executor = Executor(
            client, self.cache, self.writer, recorder, settings, self.telemetry, self.alerts, self.outbox
        )
        self.controller = Controller.build(client, settings, self.telemetry, self.cache, self.executor)
        self.http = OperatorHttp(self.telemetry, self._readiness)
        self._http_host = http_host
        self.leading = False
        self.identity = settings.identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        # The API server's audit log (and the local control plane's) then says which replica sent what.
        client.set_user_agent(f"canarist/{__version__} ({self.identity})")
        self.shards: ShardManager | None = None
        #: how long start-up waits for an API server that does not answer before exiting.
        self.crd_timeout_s = 60.0

    def _count_request(self, record: object) -> None:
        verb = getattr(record, "verb", "")
        resource = getattr(record, "group_resource", "")
        code = getattr(record, "status", 0)
        self.telemetry.api_requests.labels(verb=verb, resource=str(resource), code=str(code)).inc()

    def _readiness(self) -> tuple[bool, str]:
        if not self.cache.synced:
            return False, "caches not synced"
        if self.shards is not None:
            held = sorted(self.shards.held)
            return True, f"shards {','.join(map(str, held))} of {self.shards.count}" if held else "no shard"
        return True, "leader" if self.leading else "standby"

    async def check_crds(self) -> None:
        """Flagger refuses to start without its CRDs; so do we, with the command that fixes it — but only
        when the API server said so (a 404). An API server that does not answer is retried with backoff for
        the start-up timeout (60 s), then the operator exits with `EXIT_UNREACHABLE` and its address: in a
        cluster the kubelet restarts it, at a terminal the user sees at once what to fix."""
        try:
            await wait_for_crds(self.client, FLAGGER_CRDS, timeout_s=self.crd_timeout_s)
        except CrdsMissing as error:
            raise StartupError(
                f"{error}; install them with: canarist crds | kubectl apply -f -", EXIT_NO_CRDS
            ) from None
        except ApiUnavailable as error:
            last = error.last_error if error.last_error is not None else error
            raise StartupError(
                f"the Kubernetes API server {self.client.server} is unreachable (no answer for "
                f"{self.crd_timeout_s:g} s, last error: {last}): start it, or point -kubeconfig/-master at "
                "a running one",
                EXIT_UNREACHABLE,
            ) from None
        except KubeError as error:
            raise StartupError(
                f"the Kubernetes API server {self.client.server} refused the check of the flagger.app CRDs "
                f"({error}): give the operator's credentials read access to customresourcedefinitions",
                EXIT_API_REFUSED,
            ) from None

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "Starting canarist version %s revision %s mesh provider %s",
            __version__,
            REVISION,
            self.settings.mesh_provider,
        )
        problems = unused_router_flags(self.settings)
        if problems:
            raise SystemExit("; ".join(problems))
        try:
            routers.get(self.settings.mesh_provider)
        except routers.UnknownProviderError as error:
            # Not fatal: canaries may name their own spec.provider; the others are blocked, each with a
            # Warning event and a Blocked condition saying this.
            log.warning("-mesh-provider: %s; canaries without spec.provider will not run", error)
        await self.check_crds()
        await self.http.start(self._http_host, self.settings.port)
        try:
            await self.cache.start()
            if self.settings.shards:
                await self._run_sharded(stop)
            elif self.settings.enable_leader_election:
                await self._run_with_election(stop)
            else:
                await self._lead()
                await stop.wait()
        finally:
            await self.controller.stop()
            await self.alerts.close()
            await self.cache.stop()
            await self.http.stop()
            log.info("canarist stopped")

    async def _lead(self) -> None:
        self.leading = True
        self.telemetry.leader.set(1)
        await self.controller.start_workers()
        log.info("Started operator workers")

    async def _run_sharded(self, stop: asyncio.Event) -> None:
        """Act on the canaries of the shards this replica holds (`canarist.operator.shards`)."""
        settings = self.settings
        self.shards = ShardManager(
            self.client,
            settings.leader_election_lease_namespace,
            LEASE_NAME,
            self.identity,
            settings.shards,
            ElectionTiming(
                settings.leader_election_lease_duration_s,
                settings.leader_election_renew_deadline_s,
                settings.leader_election_retry_period_s,
            ),
            claim=self.controller.claim,
            drop=self.controller.drop,
        )
        # Every write is fenced by the Lease of the shard of the canary whose worker sends it.
        self.client.set_write_fence(self.shards.fence)
        self.telemetry.shards.set(settings.shards)
        await self.controller.start_workers(shards=settings.shards)
        self.leading = True  # caches synced and taking part: /readyz says which shards
        log.info("Started operator workers for %d shards as %s", settings.shards, self.identity)
        await self.shards.run(stop)

    async def _run_with_election(self, stop: asyncio.Event) -> None:
        election = LeaderElection(
            self.client,
            self.settings.leader_election_lease_namespace,
            name=LEASE_NAME,
            identity=self.identity,
            lease_duration=self.settings.leader_election_lease_duration_s,
            renew_deadline=self.settings.leader_election_renew_deadline_s,
            retry_period=self.settings.leader_election_retry_period_s,
        )
        # Writes are fenced by leadership: no request that changes anything (but the Lease's own) leaves this
        # replica unless its Lease is valid by its own monotonic clock, with a margin. A replica that was
        # paused past its Lease finds the fence closed before it can act on its old view.
        self.client.set_write_fence(election.holds_lease)
        lost = asyncio.Event()
        stopping = asyncio.Event()  # a shutdown we asked for, not a lost election

        async def on_started() -> None:
            log.info("leader election won by %s", self.identity)
            await self._lead()

        async def on_stopped() -> None:
            self.telemetry.leader.set(0)
            if self.leading and not stopping.is_set():
                log.error("leader election lost by %s", self.identity)
                lost.set()
            self.leading = False

        task = asyncio.create_task(election.run(on_started, on_stopped))
        stop_wait = asyncio.create_task(stop.wait())
        lost_wait = asyncio.create_task(lost.wait())
        await asyncio.wait({stop_wait, lost_wait, task}, return_when=asyncio.FIRST_COMPLETED)
        if not lost.is_set():
            stopping.set()
        stop_wait.cancel()
        lost_wait.cancel()
        # Stop acting first (in-flight ticks finish), then release the Lease so a standby takes over at once.
        await self.controller.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if lost.is_set():
            # Like Flagger: a replica that lost leadership exits and is restarted as a standby.
            raise SystemExit("leader election lost")
