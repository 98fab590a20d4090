"""`wait_for_crds`: start-up's check that CustomResourceDefinitions are installed, honest under faults.

A transient failure (connection refused while the API server restarts, 429, 5xx, a timeout) says nothing
about the CRDs, so it is retried with backoff until ``timeout_s``; only a 404 from the server proves a CRD
is missing (`CrdsMissing`). A server that never answers usefully gives `ApiUnavailable`, which says it is
unreachable rather than asking for an install.

>>> await wait_for_crds(client, ["canaries.flagger.app", "metrictemplates.flagger.app"], timeout_s=60)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable

from .client import KubeClient
from .errors import ApiUnavailable, CrdsMissing, KubeError, NotFound, TransportError, is_transient
from .resources import CUSTOM_RESOURCE_DEFINITION

__all__ = ["wait_for_crds"]

log = logging.getLogger(__name__)


async def wait_for_crds(
    client: KubeClient,
    names: Iterable[str],
    *,
    timeout_s: float = 60.0,
    initial_delay: float = 0.2,
    max_delay: float = 5.0,
    log_every_s: float = 10.0,
) -> None:
    """Return once every CRD in ``names`` (``plural.group``) is registered.

    * 404 for any of them: `CrdsMissing` with the missing names, at once (the others are checked first so
      that the error lists all of them).
    * Transient errors (`is_transient`: transport failures, 429, 500, 502, 503, 504) and timeouts are
      retried, waiting ``initial_delay`` doubling up to ``max_delay`` (with jitter, never past the
      deadline); the first one is logged at warning, later ones every ``log_every_s`` at info.
    * Still no answer after ``timeout_s``: `ApiUnavailable` (its ``last_error`` is the last failure).
    * Any other error answer (403 Forbidden, 401, …) is raised as it is: retrying will not change it.
    """
    pending = list(dict.fromkeys(names))
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout_s
    delay = initial_delay
    last_error: KubeError | None = None
    next_log = started
    waited = False
    while True:
        missing: list[str] = []
        still: list[str] = []
        for name in pending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                still.append(name)
                continue
            try:
                async with asyncio.timeout(remaining):
                    await client.get(CUSTOM_RESOURCE_DEFINITION, name)
            except NotFound:
                missing.append(name)
            except TimeoutError:
                last_error = TransportError(f"GET CRD {name}: no answer within {remaining:.1f} s")
                still.append(name)
            except KubeError as e:
                if not is_transient(e):
                    raise
                last_error = e
                still.append(name)
        if missing:
            raise CrdsMissing(missing)
        if not still:
            if waited:
                log.info("API server answered after %.1f s: CRDs registered", loop.time() - started)
            return
        pending = still
        now = loop.time()
        if now >= deadline:
            raise ApiUnavailable(
                f"the API server {client.server} stayed unreachable or unavailable for {timeout_s:g} s while "
                f"checking the CRDs {', '.join(pending)} (last error: {last_error}); whether they exist is "
                "unknown",
                last_error,
            )
        if now >= next_log:
            log.log(
                logging.INFO if waited else logging.WARNING,
                "waiting for the API server to check CRDs %s: %s (retrying for %.0f s more)",
                ", ".join(pending),
                last_error,
                deadline - now,
            )
            next_log = now + log_every_s
        waited = True
        await asyncio.sleep(min(delay * random.uniform(0.5, 1.0), max(deadline - now, 0.0)))
        delay = min(max_delay, delay * 2)
