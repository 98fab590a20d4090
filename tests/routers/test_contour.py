"""Contour HTTPProxy: the objects per strategy (canary, blue/green, A/B), read-back, the ingress class, the
reconcile policy, takeover and revert."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.routers.base import RevertError, RouteContext, RouterConfigError, RoutesError, object_key
from canarist.routers.contour import CONTOUR, HTTP_PROXY
from canarist.routers.takeover import ORIGINAL_CONFIGURATION
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, OWNER, stored

SERVICE = {
    "port": 80,
    "targetPort": 9898,
    "timeout": "15s",
    "retries": {"attempts": 3, "perTryTimeout": "5s"},
}
BLUE_GREEN = {"interval": "30s", "threshold": 5, "iterations": 10}
AB = {
    "interval": "1m",
    "threshold": 5,
    "iterations": 10,
    "match": [{"headers": {"x-canary": {"exact": "insider"}}}],
}


def contour_canary(**kw: Any) -> Canary:
    kw.setdefault("service", SERVICE)
    return podinfo.canary(provider="contour", **kw)


def ctx_for(canary: Canary | None = None, **kw: Any) -> RouteContext:
    return RouteContext.from_canary(canary if canary is not None else contour_canary(), **kw)


def observed(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {object_key(o): o for o in objs}


def proxy_of(routes: Routes, canary: Canary | None = None, **kw: Any) -> dict[str, Any]:
    objs = CONTOUR.desired(ctx_for(canary, **kw), routes)
    assert len(objs) == 1
    return objs[0]


def svc(name: str, weight: int, port: int = 80) -> dict[str, Any]:
    return {
        "name": name,
        "port": port,
        "weight": weight,
        "requestHeadersPolicy": {
            "set": [{"name": "l5d-dst-override", "value": f"{name}.test.svc.cluster.local:{port}"}]
        },
    }


POLICIES = {
    "timeoutPolicy": {"response": "15s", "idle": "5m"},
    "retryPolicy": {"count": 3, "perTryTimeout": "5s"},
}


def test_canary_http_proxy() -> None:
    assert proxy_of(Routes(90, 10)) == {
        "apiVersion": "projectcontour.io/v1",
        "kind": "HTTPProxy",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "labels": {},
            "annotations": FLUX,
            "ownerReferences": [OWNER],
        },
        "spec": {
            "routes": [
                {
                    "conditions": [{"prefix": "/"}],
                    **POLICIES,
                    "services": [svc("podinfo-primary", 90), svc("podinfo-canary", 10)],
                }
            ]
        },
    }
    assert [r.key for r in CONTOUR.objects(ctx_for())] == ["HTTPProxy/podinfo"]
    assert CONTOUR.references(ctx_for()) == []
    assert CONTOUR.kinds == (HTTP_PROXY,)
    assert HTTP_PROXY.api_version == "projectcontour.io/v1"
    assert HTTP_PROXY.plural == "httpproxies"


def test_capabilities_and_settings() -> None:
    caps = CONTOUR.capabilities
    assert (caps.weights, caps.matches, caps.mirroring, caps.session_affinity) == (True, True, False, False)
    assert CONTOUR.settings == frozenset({"ingress_class"})


def test_ingress_class() -> None:
    spec = proxy_of(Routes(100, 0), ingress_class="contour-external")["spec"]
    assert spec["ingressClassName"] == "contour-external"
    assert "ingressClassName" not in proxy_of(Routes(100, 0))["spec"]


def test_minimal_service_prefix_and_retry_on() -> None:
    canary = contour_canary(
        service={
            "port": 9898,
            "match": [{"uri": {"prefix": "/api"}}],
            "retries": {"attempts": 2, "retryOn": "5xx, gateway-error,,connect-failure"},
            "apex": {"labels": {"l": "1"}, "annotations": {"a": "2", "kustomize.toolkit.fluxcd.io/x": "y"}},
        }
    )
    proxy = proxy_of(Routes(100, 0), canary)
    assert proxy["metadata"]["labels"] == {"l": "1"}
    assert proxy["metadata"]["annotations"] == {"a": "2", **FLUX}
    assert proxy["spec"]["routes"] == [
        {
            "conditions": [{"prefix": "/api"}],
            "retryPolicy": {"count": 2, "retryOn": ["5xx", "gateway-error", "connect-failure"]},
            "services": [svc("podinfo-primary", 100, 9898), svc("podinfo-canary", 0, 9898)],
        }
    ]


def test_blue_green() -> None:
    canary = contour_canary(analysis=BLUE_GREEN)
    ctx = ctx_for(canary)
    for routes in (Routes(100, 0), Routes(0, 100)):
        proxy = proxy_of(routes, canary)
        (route,) = proxy["spec"]["routes"]
        assert route["services"] == [
            svc("podinfo-primary", routes.primary),
            svc("podinfo-canary", routes.canary),
        ]
        assert CONTOUR.routes(ctx, observed([proxy])) == routes


def test_ab_headers_and_default_route() -> None:
    canary = contour_canary(analysis=AB)
    proxy = proxy_of(Routes(0, 100), canary)
    assert proxy["spec"]["routes"] == [
        {
            "conditions": [{"prefix": "/"}, {"header": {"name": "x-canary", "exact": "insider"}}],
            **POLICIES,
            "services": [svc("podinfo-primary", 0), svc("podinfo-canary", 100)],
        },
        {
            "conditions": [{"prefix": "/"}],
            **POLICIES,
            "services": [svc("podinfo-primary", 100), svc("podinfo-canary", 0)],
        },
    ]
    ctx = ctx_for(canary)
    assert CONTOUR.routes(ctx, observed([proxy])) == Routes(0, 100)
    assert CONTOUR.routes(ctx, observed([proxy_of(Routes(100, 0), canary)])) == Routes(100, 0)


def test_ab_match_kinds_and_alternatives() -> None:
    analysis = {
        **AB,
        "match": [
            {"headers": {"user-agent": {"prefix": "Mobile"}, "x-os": {"suffix": "Android"}, "x-any": {}}},
            {"headers": {"cookie": {"suffix": "insider"}}},
            {"headers": {"Cookie": {"exact": "canary=always"}}},
            {"queryParams": {"q": {"exact": "1"}}},  # no headers: no route of its own
        ],
    }
    canary = contour_canary(service={"port": 9898}, analysis=analysis)
    routes = proxy_of(Routes(50, 50), canary)["spec"]["routes"]
    assert [r["conditions"] for r in routes] == [
        [
            {"prefix": "/"},
            {"header": {"name": "user-agent", "contains": "Mobile"}},
            {"header": {"name": "x-os", "contains": "Android"}},
            {"header": {"name": "x-any", "present": True}},
        ],
        [{"prefix": "/"}, {"header": {"name": "Cookie", "contains": "insider"}}],
        [{"prefix": "/"}, {"header": {"name": "Cookie", "contains": "canary=always"}}],
        [{"prefix": "/"}],
    ]
    assert [[s["weight"] for s in r["services"]] for r in routes] == [[50, 50], [50, 50], [50, 50], [100, 0]]


def test_ab_refusals() -> None:
    regex = contour_canary(
        analysis={**AB, "match": [{"headers": {"cookie": {"regex": "^(.*?;)?(x=y)(;.*)?$"}}}]}
    )
    with pytest.raises(RouterConfigError) as err:
        CONTOUR.objects(ctx_for(regex))
    assert str(err.value).startswith("spec.analysis.match[0].headers.cookie: the contour router cannot match")
    with pytest.raises(RouterConfigError):
        CONTOUR.desired(ctx_for(regex), Routes(100, 0))
    no_headers = contour_canary(analysis={**AB, "match": [{"uri": {"prefix": "/x"}}]})
    with pytest.raises(RouterConfigError, match="no match has headers"):
        CONTOUR.objects(ctx_for(no_headers))


@pytest.mark.parametrize("analysis", [None, BLUE_GREEN, AB])
@pytest.mark.parametrize("routes", [Routes(100, 0), Routes(95, 5), Routes(50, 50), Routes(0, 100)])
def test_round_trip(analysis: dict[str, Any] | None, routes: Routes) -> None:
    canary = contour_canary() if analysis is None else contour_canary(analysis=analysis)
    ctx = ctx_for(canary)
    assert CONTOUR.routes(ctx, observed(CONTOUR.desired(ctx, routes))) == routes


def test_read_back_errors_and_missing_weight() -> None:
    ctx = ctx_for()
    with pytest.raises(RoutesError) as err:
        CONTOUR.routes(ctx, {})
    assert str(err.value) == "HTTPProxy podinfo.test query error: not found"
    proxy = proxy_of(Routes(100, 0))
    # a weight left out (Contour's omitempty) reads as 0
    del proxy["spec"]["routes"][0]["services"][0]["weight"]
    assert CONTOUR.routes(ctx, observed([proxy])) == Routes(0, 100)
    proxy["spec"]["routes"][0]["services"] = [svc("elsewhere", 100)]
    with pytest.raises(RoutesError) as err:
        CONTOUR.routes(ctx, observed([proxy]))
    assert (
        str(err.value)
        == "HTTPProxy podinfo.test does not contain routes for podinfo-primary and podinfo-canary"
    )
    proxy["spec"]["routes"] = []
    with pytest.raises(RoutesError, match="does not contain routes"):
        CONTOUR.routes(ctx, observed([proxy]))
    proxy["spec"]["routes"] = [{"services": [svc("podinfo-primary", 150)]}]
    with pytest.raises(RoutesError, match="is not in 0-100"):
        CONTOUR.routes(ctx, observed([proxy]))


def test_needs_update_ignores_weights_only() -> None:
    ctx = ctx_for()
    running = stored(proxy_of(Routes(60, 40)))
    baseline = proxy_of(Routes(100, 0))
    assert not CONTOUR.needs_update(ctx, running, baseline)
    assert CONTOUR.merge(ctx, running, baseline) == running  # the running weights stay
    changed = contour_canary(service={**SERVICE, "timeout": "30s"})
    assert CONTOUR.needs_update(ctx_for(changed), running, proxy_of(Routes(100, 0), changed))
    assert CONTOUR.needs_update(
        ctx_for(ingress_class="c"), running, proxy_of(Routes(100, 0), ingress_class="c")
    )
    labelled = contour_canary(service={**SERVICE, "apex": {"labels": {"new": "label"}}})
    assert CONTOUR.needs_update(ctx_for(labelled), running, proxy_of(Routes(100, 0), labelled))
    without_flux = copy.deepcopy(running)
    del without_flux["metadata"]["annotations"]
    assert CONTOUR.needs_update(ctx, without_flux, baseline)
    updated = CONTOUR.merge(ctx, without_flux, baseline)
    assert updated["metadata"]["annotations"] == FLUX
    assert updated["spec"] == running["spec"]


def test_merge_keeps_user_fields_and_foreign_metadata() -> None:
    changed = contour_canary(service={**SERVICE, "timeout": "30s", "apex": {"labels": {"mine": "1"}}})
    ctx = ctx_for(changed)
    running = stored(proxy_of(Routes(70, 30)))
    running["metadata"]["labels"] = {"team": "web"}
    running["metadata"]["annotations"] = {**FLUX, "projectcontour.io/note": "x"}
    running["status"] = {"currentStatus": "valid"}
    desired = proxy_of(Routes(100, 0), changed)
    merged = CONTOUR.merge(ctx, running, desired)
    assert merged["spec"] == desired["spec"]
    assert merged["status"] == {"currentStatus": "valid"}
    assert merged["metadata"]["labels"] == {"team": "web", "mine": "1"}
    assert merged["metadata"]["annotations"] == {**FLUX, "projectcontour.io/note": "x"}
    assert merged["metadata"]["ownerReferences"] == [OWNER]
    assert merged["metadata"]["resourceVersion"] == "7"
    # SetRoutes: only spec.routes
    running["spec"]["includes"] = [{"name": "user"}]
    written = CONTOUR.merge(ctx_for(), running, proxy_of(Routes(20, 80)), set_routes=True)
    assert written["metadata"] == running["metadata"]
    assert written["spec"]["includes"] == [{"name": "user"}]
    assert CONTOUR.routes(ctx, observed([written])) == Routes(20, 80)


USER_PROXY: dict[str, Any] = {
    "apiVersion": "projectcontour.io/v1",
    "kind": "HTTPProxy",
    "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "9", "labels": {"owner": "me"}},
    "spec": {"routes": [{"services": [{"name": "podinfo", "port": 80}]}]},
}


def test_takeover_and_revert() -> None:
    ctx = ctx_for()
    desired = proxy_of(Routes(100, 0))
    user = copy.deepcopy(USER_PROXY)
    assert CONTOUR.needs_update(ctx, user, desired)
    taken = stored(CONTOUR.merge(ctx, user, desired), "10")
    assert "ownerReferences" not in taken["metadata"]
    assert taken["metadata"]["labels"] == {"owner": "me"}
    assert taken["spec"] == desired["spec"]
    backup = taken["metadata"]["annotations"][ORIGINAL_CONFIGURATION]
    assert json.loads(backup) == USER_PROXY["spec"]
    assert {k: taken["metadata"]["annotations"][k] for k in FLUX} == FLUX
    assert not CONTOUR.needs_update(ctx, taken, desired)
    assert CONTOUR.merge(ctx, taken, desired) == taken
    changed = contour_canary(service={**SERVICE, "timeout": "1s"})
    again = CONTOUR.merge(ctx_for(changed), taken, proxy_of(Routes(100, 0), changed))
    assert again["metadata"]["annotations"][ORIGINAL_CONFIGURATION] == backup
    (reverted,) = CONTOUR.revert(ctx, observed([again]))
    assert reverted["spec"] == USER_PROXY["spec"]
    assert "annotations" not in reverted["metadata"]
    assert reverted["metadata"]["labels"] == {"owner": "me"}


def test_revert_from_kubectl_record_owned_and_errors() -> None:
    ctx = ctx_for()
    user = copy.deepcopy(USER_PROXY)
    user["metadata"]["annotations"] = {
        "helm.toolkit.fluxcd.io/driftDetection": "disabled",
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {
                "metadata": {"annotations": {"helm.toolkit.fluxcd.io/driftDetection": "disabled"}},
                "spec": USER_PROXY["spec"],
            }
        ),
    }
    taken = CONTOUR.merge(ctx, user, proxy_of(Routes(100, 0)))
    assert ORIGINAL_CONFIGURATION not in taken["metadata"]["annotations"]
    (reverted,) = CONTOUR.revert(ctx, observed([taken]))
    assert reverted["spec"] == USER_PROXY["spec"]
    assert reverted["metadata"]["annotations"] == user["metadata"]["annotations"]
    # created by the canary, or gone: nothing to restore
    assert CONTOUR.revert(ctx, observed([stored(proxy_of(Routes(100, 0)))])) == []
    assert CONTOUR.revert(ctx, {}) == []
    with pytest.raises(RevertError) as err:
        CONTOUR.revert(ctx, observed([copy.deepcopy(USER_PROXY)]))
    assert str(err.value) == "HTTPProxy podinfo.test original configuration not found, unable to revert"
    broken = copy.deepcopy(USER_PROXY)
    broken["metadata"]["annotations"] = {ORIGINAL_CONFIGURATION: "[1,"}
    with pytest.raises(RevertError, match="unreadable"):
        CONTOUR.revert(ctx, observed([broken]))
