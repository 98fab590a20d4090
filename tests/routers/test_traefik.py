"""Traefik TraefikService: declaration, the weighted services (canary entry only above 0), read-back,
refusal of A/B matching, and the reconcile/SetRoutes policy."""

from __future__ import annotations

from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.routers import base
from canarist.routers.base import RouteContext, RouterConfigError, RoutesError, object_key
from canarist.routers.traefik import TRAEFIK, TRAEFIK_SERVICE, TraefikRouter
from tests.workloads import podinfo
from tests.workloads.podinfo import OWNER


def traefik_canary(**kw: Any) -> Canary:
    kw.setdefault("service", {"port": 9898})
    return podinfo.canary(provider="traefik", **kw)


def ctx_for(canary: Canary) -> RouteContext:
    return RouteContext.from_canary(canary)


def test_declaration() -> None:
    assert TRAEFIK.name == "traefik"
    assert TRAEFIK.kinds == (TRAEFIK_SERVICE,)
    assert (TRAEFIK_SERVICE.api_version, TRAEFIK_SERVICE.plural) == ("traefik.io/v1alpha1", "traefikservices")
    caps = TRAEFIK.capabilities
    assert (caps.weights, caps.matches, caps.mirroring, caps.session_affinity) == (True, False, False, False)
    router: base.Router = TraefikRouter()
    assert router.name == "traefik"


def test_weighted_services_canary_only_above_zero() -> None:
    ctx = ctx_for(traefik_canary())
    assert [r.key for r in TRAEFIK.objects(ctx)] == ["TraefikService/podinfo"]
    (obj,) = TRAEFIK.desired(ctx, Routes(100, 0))
    assert obj["apiVersion"] == "traefik.io/v1alpha1"
    assert obj["metadata"]["name"] == "podinfo"
    assert obj["metadata"]["ownerReferences"] == [OWNER]
    assert obj["spec"] == {
        "weighted": {
            "services": [{"name": "podinfo-primary", "namespace": "test", "port": 9898, "weight": 100}]
        }
    }
    (obj,) = TRAEFIK.desired(ctx, Routes(70, 30))
    assert obj["spec"]["weighted"]["services"] == [
        {"name": "podinfo-primary", "namespace": "test", "port": 9898, "weight": 70},
        {"name": "podinfo-canary", "namespace": "test", "port": 9898, "weight": 30},
    ]


def test_read_back() -> None:
    ctx = ctx_for(traefik_canary())
    (obj,) = TRAEFIK.desired(ctx, Routes(60, 40))
    assert TRAEFIK.routes(ctx, {object_key(obj): obj}) == Routes(60, 40)
    (obj,) = TRAEFIK.desired(ctx, Routes(100, 0))
    assert TRAEFIK.routes(ctx, {object_key(obj): obj}) == Routes(100, 0)
    with pytest.raises(RoutesError, match=r"TraefikService podinfo\.test query error: not found"):
        TRAEFIK.routes(ctx, {})
    obj["spec"]["weighted"]["services"][0]["weight"] = 170
    with pytest.raises(RoutesError, match="not in 0-100"):
        TRAEFIK.routes(ctx, {object_key(obj): obj})
    obj["spec"]["weighted"]["services"] = []
    with pytest.raises(RoutesError, match="does not contain a service podinfo-primary"):
        TRAEFIK.routes(ctx, {object_key(obj): obj})


def test_ab_match_refused() -> None:
    canary = traefik_canary(
        iterations=10,
        match=[{"headers": {"x-canary": {"exact": "insider"}}}],
        stepWeight=None,
        maxWeight=None,
    )
    with pytest.raises(
        RouterConfigError, match=r"spec\.analysis\.match: the traefik router routes by weight only"
    ):
        TRAEFIK.objects(ctx_for(canary))


def test_reconcile_ignores_weights_and_set_routes_replaces_them() -> None:
    ctx = ctx_for(traefik_canary())
    (observed,) = TRAEFIK.desired(ctx, Routes(50, 50))
    (desired,) = TRAEFIK.desired(ctx, Routes(100, 0))
    merged = TRAEFIK.merge(ctx, observed, desired)
    assert merged["spec"] == observed["spec"]
    merged = TRAEFIK.merge(ctx, observed, desired, set_routes=True)
    assert merged["spec"] == desired["spec"]
    changed = TRAEFIK.desired(ctx_for(traefik_canary(service={"port": 8080})), Routes(100, 0))[0]
    assert TRAEFIK.merge(ctx, observed, changed)["spec"] == changed["spec"]
    assert TRAEFIK.revert(ctx, {}) == []
