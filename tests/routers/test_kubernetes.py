"""The kubernetes (blue/green) no-op router."""

from __future__ import annotations

from canarist.engine.model import Routes
from canarist.routers.base import RouteContext
from canarist.routers.kubernetes import KubernetesRouter
from tests.workloads import podinfo


def test_nop_router() -> None:
    router = KubernetesRouter()
    canary = podinfo.canary(provider="kubernetes")
    ctx = RouteContext.from_canary(canary)
    assert router.objects(ctx) == []
    assert router.desired(ctx, Routes(0, 100)) == []
    assert router.revert(ctx, {}) == []
    assert router.routes(ctx, {}) == Routes(100, 0)
    assert router.routes(RouteContext.from_canary(canary, iterations=1), {}) == Routes(0, 100)
    canary.status.iterations = 3
    assert router.routes(RouteContext.from_canary(canary), {}) == Routes(0, 100)
