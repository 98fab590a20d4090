"""A small leader process for the signal tests: campaigns for the Lease, and while leading writes a
ConfigMap through the client's write fence (``election.holds_lease``). Prints one JSON line per event, each
with ``t`` = ``time.monotonic()`` when printed (the same system-wide clock the test reads):

    {"e": "leading"}                                 became leader
    {"e": "renewed", "at": ..., "renewTime": ...}    acquired/renewed (``at``: last_renewed_at, polled)
    {"e": "write", "seq": n, "t0": ...}              a fenced write got through; ``t0`` when it was started
    {"e": "fenced", "holds": false}                  the fence refused a write (nothing was sent)
    {"e": "woke", "gap": s, "holds": bool}           the work loop noticed it had been stalled
    {"e": "stopped", "lost": bool, "holds": bool}    on_stopped_leading ran

Exits 3 when leadership was lost, 0 otherwise.

    python tests/kube/_elector.py URL NAMESPACE IDENTITY CONFIGMAP [lease renew retry]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from canarist.kube import Fenced, KubeClient, KubeError, LeaderElection
from canarist.kube import resources as r


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"e": event, **fields, "t": time.monotonic()}) + "\n")
    sys.stdout.flush()


async def main(argv: list[str]) -> int:
    url, namespace, identity, configmap = argv[:4]
    lease, renew, retry = (float(x) for x in (argv[4:7] or ["2", "1.5", "0.2"]))
    client = KubeClient.from_url(url, namespace=namespace)
    election = LeaderElection(
        client,
        namespace,
        identity=identity,
        lease_duration=lease,
        renew_deadline=renew,
        retry_period=retry,
        release_on_stop=False,
    )
    client.set_write_fence(election.holds_lease)

    async def report_renewals() -> None:
        seen: float | None = None
        while True:
            at = election.last_renewed_at
            if at is not None and at != seen:
                seen = at
                emit("renewed", at=at, renewTime=election.observed_renew_time)
            await asyncio.sleep(0.005)

    reporter = asyncio.create_task(report_renewals())

    async def work() -> None:
        emit("leading")
        seq = 0
        last = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last > 0.5:
                emit("woke", gap=now - last, holds=election.holds_lease())
            t0 = time.monotonic()
            try:
                await client.patch(
                    r.CONFIG_MAP,
                    configmap,
                    {"data": {"writer": identity, "seq": str(seq)}},
                    namespace=namespace,
                )
                emit("write", seq=seq, t0=t0)
                seq += 1
            except Fenced:
                emit("fenced", holds=election.holds_lease())
            except KubeError as e:
                emit("error", error=str(e))
            last = time.monotonic()
            await asyncio.sleep(0.05)

    def stopped() -> None:
        emit("stopped", lost=election.lost, holds=election.holds_lease())

    try:
        await election.run(work, stopped)
    finally:
        reporter.cancel()
        await client.close()
    return 3 if election.lost else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
