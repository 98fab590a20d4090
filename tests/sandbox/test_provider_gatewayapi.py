"""The walkthrough with the Gateway API (``gatewayapi:v1``), end to end on one sandbox: the local control plane
with the Gateway API CRDs, a real Envoy programmed by the Gateway API translator from the user's Gateway
(examples/gatewayapi/routing.yaml) and the HTTPRoute canarist writes, demo-app pods, a real Prometheus, the
loadtester and the operator (``-mesh-provider=gatewayapi:v1``) as a subprocess.

User traffic enters through the gateway listener as ``Host: app.example.com``. Checked, in this order on the
same sandbox: a promotion whose canary share of those requests tracks every weight within 5 points and a
rollback when the canary answers errors (the walkthrough's story); the statuses the sandbox's controller
wrote; an A/B release in which ``x-canary: insider`` always reaches the canary and no request without it
does; a Blue/Green release with traffic mirroring in which users are answered by the primary while the canary
pods get a copy of every request; and a canary release with session affinity in which a client that got the
canary cookie keeps reaching the canary, and has the cookie expired once the canary is promoted.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from canarist.kube import resources as kinds
from canarist.routers.gatewayapi import HTTP_ROUTE_V1
from canarist.sandbox.dataplane.gatewayapi import CONTROLLER_NAME, GATEWAY_CLASS_V1, GATEWAY_V1
from canarist.sandbox.demo import (
    play_ab,
    send_requests,
)
from canarist.sandbox.liveview import LiveView
from canarist.sandbox.mesh import RouteWrite
from tests.sandbox.stories import INTERVAL_S, Run, assert_promotion_tracks_weights, assert_rolled_back, played

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "test"
HOST = "app.example.com"
CANARY_SERVICE = (NS, "podinfo-canary")
PRIMARY_SERVICE = (NS, "podinfo-primary")
IMAGE = "quay.io/stefanprodan/podinfo"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gatewayapi"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Run]:
    """One sandbox for the module, with the promotion + rollback story already played."""
    async with played(tmp_path_factory.mktemp("gatewayapi-demo"), provider="gatewayapi:v1") as state:
        yield state


# ------------------------------------------------------------------------------------------------ helpers


async def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def status(run: Run) -> dict[str, Any]:
    return dict((run.sandbox.canary() or {}).get("status") or {})


def walkthrough_canary(run: Run, **analysis: Any) -> dict[str, Any]:
    """examples/gatewayapi/canary.yaml at the sandbox's interval (its webhooks as written: their names
    resolve in the loadtester's namespace), with ``analysis`` fields replaced (``None`` removes one)."""
    canary: dict[str, Any] = yaml.safe_load((EXAMPLES / "canary.yaml").read_text())
    section = canary["spec"]["analysis"]
    section["interval"] = f"{INTERVAL_S:g}s"
    for metric in section["metrics"]:
        metric["interval"] = run.options.metric_interval
    for key, value in analysis.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = copy.deepcopy(value)
    return canary


async def release(run: Run, canary: dict[str, Any], image: str) -> float:
    """Apply ``canary`` once the previous run is over, then set ``image``; returns when it was set."""
    client = run.sandbox.client
    assert client is not None
    await wait_for(
        lambda: status(run).get("phase") in ("Initialized", "Succeeded", "Failed"), 60, "an idle canary"
    )
    await client.ensure(canary, kind=kinds.CANARY)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": image}]}}}}
    await client.patch(kinds.DEPLOYMENT, "podinfo", patch, namespace=NS, patch_type="strategic")
    run.log(f"set image {image}")
    return time.monotonic()


def last_write(run: Run) -> RouteWrite | None:
    mesh = run.sandbox.mesh
    assert mesh is not None
    return mesh.writes[-1] if mesh.writes else None


def gateway_route(write: RouteWrite, headers: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The first Envoy route of the gateway's virtual host for HOST that a ``GET /`` with ``headers``
    meets (the routes the translator wrote for the HTTPRoute)."""
    config = write.routes.get("gateway") or {}
    for host in config.get("virtual_hosts") or []:
        if HOST in host.get("domains", []):
            for route in host.get("routes") or []:
                wanted = [h for h in route["match"].get("headers") or [] if h["name"] != ":method"]
                if all(h["name"] in (headers or {}) for h in wanted):
                    return dict(route)
    return None


def mirrors_to_canary(write: RouteWrite | None) -> bool:
    if write is None:
        return False
    route = gateway_route(write)
    if route is None:
        return False
    mirrors = (route.get("route") or {}).get("request_mirror_policies") or []
    return any(write.cluster_services.get(m["cluster"]) == CANARY_SERVICE for m in mirrors)


def canary_percent(write: RouteWrite | None) -> int | None:
    if write is None:
        return None
    weights = write.service_weights(HOST)
    return None if weights is None else weights.get(CANARY_SERVICE, 0)


async def get(
    http: aiohttp.ClientSession, run: Run, source: str, cookie: str | None = None
) -> tuple[str, list[str]]:
    """One user request through the gateway: the workload that answered and the Set-Cookie headers."""
    headers = {"Host": HOST, "X-Source-Workload": source}
    if cookie is not None:
        headers["Cookie"] = cookie
    async with http.get(run.sandbox.gateway_url + "/", headers=headers) as response:
        assert response.status == 200, await response.text()
        body = json.loads(await response.text())
        return str(body["workload"]), response.headers.getall("Set-Cookie", [])


# ------------------------------------------------------------------------------------------------ story


async def test_promotion_share_tracks_each_weight(run: Run) -> None:
    assert_promotion_tracks_weights(run)


async def test_rollback_on_canary_errors(run: Run) -> None:
    assert_rolled_back(run)


async def test_route_gateway_and_class_statuses(run: Run) -> None:
    client = run.sandbox.client
    assert client is not None
    route = await client.get(HTTP_ROUTE_V1, "podinfo", namespace=NS)
    [parent] = route["status"]["parents"]
    assert parent["controllerName"] == CONTROLLER_NAME
    assert parent["parentRef"]["name"] == "gateway"
    assert parent["parentRef"]["namespace"] == "gateway-system"
    by_type = {c["type"]: c for c in parent["conditions"]}
    assert by_type["Accepted"]["status"] == "True"
    assert by_type["ResolvedRefs"]["status"] == "True"
    assert by_type["Accepted"]["observedGeneration"] == route["metadata"]["generation"]
    gateway = await client.get(GATEWAY_V1, "gateway", namespace="gateway-system")
    assert {c["type"]: c["status"] for c in gateway["status"]["conditions"]} == {
        "Accepted": "True",
        "Programmed": "True",
    }
    assert gateway["status"]["listeners"][0]["attachedRoutes"] == 1
    gateway_class = await client.get(GATEWAY_CLASS_V1, "sandbox")
    assert gateway_class["status"]["conditions"][0]["status"] == "True"


# ------------------------------------------------------------------------------------------------ A/B


async def test_ab_header_routing(run: Run) -> None:
    with LiveView(run.stream, live=False) as view:
        ab = await play_ab(run.sandbox, run.options, view, ("x-canary", "insider"), requests=50, iterations=4)
    output = run.stream.getvalue()
    assert ab.error == "", output
    assert ab.matched is not None, output
    assert ab.unmatched is not None, output
    assert (ab.matched.canary, ab.matched.primary, ab.matched.errors) == (50, 0, 0), output
    assert (ab.unmatched.canary, ab.unmatched.primary, ab.unmatched.errors) == (0, 50, 0), output
    assert ab.routes_held, output
    assert ab.promoted, output
    print(f"A/B: routed {ab.routed_s:.1f}s after the new image; phase {ab.phase}")


# ------------------------------------------------------------------------------------------------ mirroring


async def test_blue_green_mirroring(run: Run) -> None:
    """While mirrored, users are answered by the primary and every request is copied to the canary pods."""
    pods, mesh = run.sandbox.pods, run.sandbox.mesh
    assert pods is not None
    assert mesh is not None
    canary = walkthrough_canary(
        run, stepWeight=None, maxWeight=None, match=None, iterations=8, mirror=True, mirrorWeight=None
    )
    started = await release(run, canary, f"{IMAGE}:3.1.4")
    await wait_for(
        lambda: status(run).get("phase") == "Progressing" and mirrors_to_canary(last_write(run)),
        run.options.timeout_s / 2,
        "the mirrored route of a Progressing canary",
    )
    run.log(f"mirroring: routed {time.monotonic() - started:.1f}s after the new image")
    first = len(mesh.writes) - 1
    assert canary_percent(mesh.writes[first]) == 0
    answers = await send_requests(run.sandbox, 50, source="mirrored")
    held = (
        all(mirrors_to_canary(w) for w in mesh.writes[first:]) and status(run).get("phase") == "Progressing"
    )
    # users: all answered by the primary, without errors
    assert (answers.primary, answers.errors) == (50, 0), run.output()
    # the canary: a copy of each (mirrored requests are sent alongside, so they may land a moment later)
    await wait_for(lambda: pods.served(NS, "podinfo", "mirrored") >= 50, 10, "the mirrored copies")
    assert pods.served(NS, "podinfo", "mirrored") == 50, run.output()
    assert held, run.output()
    await wait_for(
        lambda: status(run).get("phase") in ("Succeeded", "Failed"), run.options.timeout_s, "the run"
    )
    assert status(run).get("phase") == "Succeeded", run.output()
    assert not mirrors_to_canary(last_write(run))
    print(
        f"mirroring: users 50/50 on the primary, {pods.served(NS, 'podinfo', 'mirrored')} copies on the canary"
    )


# ------------------------------------------------------------------------------------------------ affinity


async def test_session_affinity_keeps_a_client_on_the_canary(run: Run) -> None:
    """A client handed the canary cookie keeps reaching the canary while the weights move, clients without it
    are split by weight, and after the promotion the cookie is expired."""
    mesh = run.sandbox.mesh
    assert mesh is not None
    canary = walkthrough_canary(
        run,
        iterations=None,
        mirror=None,
        stepWeight=5,
        maxWeight=50,
        sessionAffinity={"cookieName": "flagger-cookie", "maxAge": 21600},
    )
    await release(run, canary, f"{IMAGE}:3.1.5")
    await wait_for(
        lambda: status(run).get("phase") == "Progressing" and (canary_percent(last_write(run)) or 0) > 0,
        run.options.timeout_s / 2,
        "a Progressing canary with weight",
    )
    jar = aiohttp.DummyCookieJar()  # cookies are sent by hand
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=5)) as http:
        # A new client is routed by weight until it lands on the canary, whose answer sets the cookie.
        cookie = ""
        landed = {"podinfo": 0, "podinfo-primary": 0}
        for _ in range(400):
            workload, set_cookie = await get(http, run, "affinity-new")
            landed[workload] += 1
            if workload == "podinfo-primary":
                assert not any(c.startswith("flagger-cookie=") for c in set_cookie), set_cookie
                continue
            [value] = [c for c in set_cookie if c.startswith("flagger-cookie=")]
            assert value.endswith("; Max-Age=21600"), value
            cookie = value.split(";", 1)[0]
            break
        assert cookie, f"no canary answer in {landed}"
        assert status(run).get("phase") == "Progressing"
        # With the cookie, every request reaches the canary; without, the weights split (mostly primary).
        sticky = [(await get(http, run, "affinity-sticky", cookie))[0] for _ in range(50)]
        weighted = await send_requests(run.sandbox, 100, source="affinity-weighted")
        still = status(run).get("phase") == "Progressing" and (canary_percent(last_write(run)) or 0) > 0
        assert sticky == ["podinfo"] * 50, sticky
        assert (weighted.primary + weighted.canary, weighted.errors) == (100, 0), weighted
        assert weighted.primary > 0, weighted  # not pinned: split by the weights
        assert still, run.output()
        await wait_for(
            lambda: status(run).get("phase") in ("Succeeded", "Failed"), run.options.timeout_s, "the run"
        )
        assert status(run).get("phase") == "Succeeded", run.output()
        # After the promotion the old cookie leads to the (promoted) primary and is expired.
        workload, set_cookie = await get(http, run, "affinity-after", cookie)
        assert workload == "podinfo-primary"
        assert f"{cookie}; Max-Age=-1" in set_cookie, set_cookie
    print(
        f"session affinity: cookie {cookie} after {sum(landed.values())} requests; 50/50 sticky on the canary"
    )
