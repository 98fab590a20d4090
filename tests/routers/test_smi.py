"""SMI TrafficSplit routers (linkerd, smi:v1alpha1/2/3, osm): the objects per version and strategy,
read-back with quantity weights, the reconcile policy, takeover and revert, the target-mesh suffix."""

from __future__ import annotations

import copy
import json
from fractions import Fraction
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.routers.base import RevertError, RouteContext, RoutesError, object_key
from canarist.routers.smi import (
    ISTIO_GATEWAYS_ANNOTATION,
    LINKERD,
    OSM,
    ROUTERS,
    SMI_V1ALPHA1,
    SMI_V1ALPHA2,
    SMI_V1ALPHA3,
    SmiRouter,
    parse_quantity,
    percentages,
    router_for,
    with_mesh,
)
from canarist.routers.takeover import ORIGINAL_CONFIGURATION
from tests.workloads import podinfo
from tests.workloads.podinfo import FLUX, OWNER, stored

BLUE_GREEN = {"interval": "30s", "threshold": 5, "iterations": 10}


def mesh_canary(**kw: Any) -> Canary:
    kw.setdefault("service", {"port": 9898})
    return podinfo.canary(provider="linkerd", **kw)


def ctx_for(canary: Canary | None = None, **kw: Any) -> RouteContext:
    return RouteContext.from_canary(canary if canary is not None else mesh_canary(), **kw)


def observed(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {object_key(o): o for o in objs}


def ts_of(router: SmiRouter, routes: Routes, canary: Canary | None = None, **kw: Any) -> dict[str, Any]:
    objs = router.desired(ctx_for(canary, **kw), routes)
    assert len(objs) == 1
    return objs[0]


def test_linkerd_traffic_split_with_quantity_weights() -> None:
    assert ts_of(LINKERD, Routes(100, 0)) == {
        "apiVersion": "split.smi-spec.io/v1alpha1",
        "kind": "TrafficSplit",
        "metadata": {"name": "podinfo", "namespace": "test", "ownerReferences": [OWNER]},
        "spec": {
            "service": "podinfo",
            "backends": [
                {"service": "podinfo-canary", "weight": "0"},
                {"service": "podinfo-primary", "weight": "100"},
            ],
        },
    }
    assert [r.key for r in LINKERD.objects(ctx_for())] == ["TrafficSplit/podinfo"]
    assert LINKERD.objects(ctx_for())[0].api_version == "split.smi-spec.io/v1alpha1"
    assert LINKERD.references(ctx_for()) == []


@pytest.mark.parametrize(
    ("router", "api_version", "canary_weight"),
    [
        (SMI_V1ALPHA1, "split.smi-spec.io/v1alpha1", "30"),
        (SMI_V1ALPHA2, "split.smi-spec.io/v1alpha2", 30),
        (OSM, "split.smi-spec.io/v1alpha2", 30),
        (SMI_V1ALPHA3, "split.smi-spec.io/v1alpha3", 30),
    ],
)
def test_versions_and_weight_types(router: SmiRouter, api_version: str, canary_weight: Any) -> None:
    ts = ts_of(router, Routes(70, 30))
    assert ts["apiVersion"] == api_version
    assert ts["spec"]["backends"][0] == {"service": "podinfo-canary", "weight": canary_weight}
    assert router.kinds[0].api_version == api_version
    assert router.kinds[0].plural == "trafficsplits"
    assert router.objects(ctx_for())[0].api_version == api_version


def test_public_names_and_capabilities() -> None:
    assert [r.name for r in ROUTERS] == ["linkerd", "smi:v1alpha1", "smi:v1alpha2", "osm", "smi:v1alpha3"]
    for router in ROUTERS:
        caps = router.capabilities
        assert caps.weights
        assert (caps.matches, caps.mirroring, caps.session_affinity) == (False, False, False)
        assert router.settings == frozenset()
    with pytest.raises(ValueError, match="unknown SMI version"):
        SmiRouter("smi:v9", "v9")


def test_service_is_the_first_host() -> None:
    canary = mesh_canary(service={"port": 9898, "hosts": ["podinfo.example.com", "other"]})
    assert ts_of(LINKERD, Routes(100, 0), canary)["spec"]["service"] == "podinfo.example.com"


def test_no_owner_reference_when_the_mesh_is_elsewhere() -> None:
    assert "ownerReferences" not in ts_of(LINKERD, Routes(100, 0), set_owner_refs=False)["metadata"]


def test_blue_green_switches_all_traffic() -> None:
    canary = mesh_canary(analysis=BLUE_GREEN)
    ctx = ctx_for(canary)
    for routes in (Routes(100, 0), Routes(0, 100)):
        ts = ts_of(SMI_V1ALPHA3, routes, canary)
        assert ts["spec"]["backends"] == [
            {"service": "podinfo-canary", "weight": routes.canary},
            {"service": "podinfo-primary", "weight": routes.primary},
        ]
        assert SMI_V1ALPHA3.routes(ctx, observed([ts])) == routes


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize(
    "routes", [Routes(100, 0), Routes(95, 5), Routes(50, 50), Routes(1, 99), Routes(0, 100)]
)
def test_round_trip(router: SmiRouter, routes: Routes) -> None:
    ctx = ctx_for()
    assert router.routes(ctx, observed(router.desired(ctx, routes))) == routes


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("50", Fraction(50)),
        (50, Fraction(50)),
        (0, Fraction(0)),
        ("500m", Fraction(1, 2)),
        ("1.5", Fraction(3, 2)),
        ("1e2", Fraction(100)),
        ("1E-1", Fraction(1, 10)),
        ("2k", Fraction(2000)),
        ("1Ki", Fraction(1024)),
        ("+3", Fraction(3)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_parse_quantity(value: Any, expected: Fraction) -> None:
    assert parse_quantity(value) == expected


@pytest.mark.parametrize("value", ["", "abc", "5x", "1.2.3", True, None, [1]])
def test_parse_quantity_refuses(value: Any) -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(value)


def test_percentages() -> None:
    assert percentages(Fraction(90), Fraction(10)) == (90, 10)
    assert percentages(Fraction(9, 10), Fraction(1, 10)) == (90, 10)
    assert percentages(Fraction(1), Fraction(1)) == (50, 50)
    assert percentages(Fraction(1), Fraction(2)) == (33, 67)
    assert percentages(Fraction(1), Fraction(199)) == (1, 99)  # 0.5 rounds half up
    with pytest.raises(ValueError, match="positive sum"):
        percentages(Fraction(0), Fraction(0))


def with_weights(router: SmiRouter, primary: Any, canary: Any) -> dict[str, dict[str, Any]]:
    ts = ts_of(router, Routes(100, 0))
    ts["spec"]["backends"] = [
        {"service": "podinfo-primary", "weight": primary},
        {"service": "podinfo-canary", "weight": canary},
        {"service": "somewhere-else", "weight": "1000"},
    ]
    return observed([ts])


def test_read_back_of_quantity_weights() -> None:
    ctx = ctx_for()
    assert LINKERD.routes(ctx, with_weights(LINKERD, "900m", "100m")) == Routes(90, 10)
    assert LINKERD.routes(ctx, with_weights(LINKERD, "50", 50)) == Routes(50, 50)
    assert LINKERD.routes(ctx, with_weights(LINKERD, "1", "1")) == Routes(50, 50)
    assert LINKERD.routes(ctx, with_weights(LINKERD, "1k", "0")) == Routes(100, 0)
    assert SMI_V1ALPHA2.routes(ctx, with_weights(SMI_V1ALPHA2, 0, 100)) == Routes(0, 100)
    # a backend without a weight weighs nothing
    ts = ts_of(LINKERD, Routes(100, 0))
    del ts["spec"]["backends"][0]["weight"]
    assert LINKERD.routes(ctx, observed([ts])) == Routes(100, 0)


def test_read_back_errors() -> None:
    ctx = ctx_for()
    with pytest.raises(RoutesError) as err:
        LINKERD.routes(ctx, {})
    assert str(err.value) == "TrafficSplit podinfo.test query error: not found"
    with pytest.raises(RoutesError) as err:
        LINKERD.routes(ctx, with_weights(LINKERD, "0", "0"))
    assert (
        str(err.value)
        == "TrafficSplit podinfo.test does not contain routes for podinfo-primary and podinfo-canary"
    )
    ts = ts_of(LINKERD, Routes(100, 0))
    ts["spec"]["backends"] = [{"service": "somewhere-else", "weight": "100"}]
    with pytest.raises(RoutesError, match="does not contain routes"):
        LINKERD.routes(ctx, observed([ts]))
    with pytest.raises(RoutesError, match="backend podinfo-primary weight: not a quantity"):
        LINKERD.routes(ctx, with_weights(LINKERD, "lots", "0"))
    with pytest.raises(RoutesError, match="does not contain routes"):
        LINKERD.routes(ctx, with_weights(LINKERD, "-5", "0"))


def test_reconcile_ignores_weights_and_keeps_foreign_metadata() -> None:
    ctx = ctx_for()
    running = stored(ts_of(LINKERD, Routes(60, 40)))
    running["metadata"]["labels"] = {"added-by": "someone"}
    running["metadata"]["annotations"] = {"linkerd.io/note": "x"}
    desired = ts_of(LINKERD, Routes(100, 0))
    assert not LINKERD.needs_update(ctx, running, desired)
    merged = LINKERD.merge(ctx, running, desired)
    assert merged == running  # the weights of the running analysis stay, nothing else to change

    # a changed service is written, labels and foreign annotations stay
    changed = mesh_canary(service={"port": 9898, "hosts": ["podinfo.example.com"]})
    ctx2 = ctx_for(changed)
    desired2 = ts_of(LINKERD, Routes(100, 0), changed)
    assert LINKERD.needs_update(ctx2, running, desired2)
    merged = LINKERD.merge(ctx2, running, desired2)
    assert merged["spec"] == desired2["spec"]
    assert merged["metadata"]["labels"] == {"added-by": "someone"}
    assert merged["metadata"]["annotations"] == {"linkerd.io/note": "x"}
    assert merged["metadata"]["resourceVersion"] == "7"
    assert ORIGINAL_CONFIGURATION not in merged["metadata"]["annotations"]  # owned: no backup


def test_set_routes_merge_only_touches_backends() -> None:
    ctx = ctx_for()
    running = stored(ts_of(SMI_V1ALPHA3, Routes(100, 0)))
    running["metadata"]["annotations"] = {"keep": "me"}
    running["spec"]["extra"] = "user"
    written = SMI_V1ALPHA3.merge(ctx, running, ts_of(SMI_V1ALPHA3, Routes(80, 20)), set_routes=True)
    assert written["metadata"] == running["metadata"]
    assert written["spec"]["extra"] == "user"
    assert SMI_V1ALPHA3.routes(ctx, observed([written])) == Routes(80, 20)


USER_TS: dict[str, Any] = {
    "apiVersion": "split.smi-spec.io/v1alpha2",
    "kind": "TrafficSplit",
    "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "42", "labels": {"team": "a"}},
    "spec": {"service": "podinfo", "backends": [{"service": "podinfo-v1", "weight": 100}]},
}


def test_takeover_backs_up_the_spec_and_revert_restores_it() -> None:
    ctx = ctx_for()
    user_ts = copy.deepcopy(USER_TS)
    desired = ts_of(SMI_V1ALPHA2, Routes(100, 0))
    assert SMI_V1ALPHA2.needs_update(ctx, user_ts, desired)
    taken = stored(SMI_V1ALPHA2.merge(ctx, user_ts, desired), "43")
    assert taken["spec"] == desired["spec"]
    assert "ownerReferences" not in taken["metadata"]
    assert taken["metadata"]["labels"] == {"team": "a"}
    annotations = taken["metadata"]["annotations"]
    assert {k: annotations[k] for k in FLUX} == FLUX
    assert json.loads(annotations[ORIGINAL_CONFIGURATION]) == USER_TS["spec"]
    # converged: the next reconcile changes nothing, and later changes keep the first backup
    assert not SMI_V1ALPHA2.needs_update(ctx, taken, desired)
    assert SMI_V1ALPHA2.merge(ctx, taken, desired) == taken
    changed = mesh_canary(service={"port": 9898, "hosts": ["x"]})
    again = SMI_V1ALPHA2.merge(ctx_for(changed), taken, ts_of(SMI_V1ALPHA2, Routes(100, 0), changed))
    assert again["metadata"]["annotations"][ORIGINAL_CONFIGURATION] == annotations[ORIGINAL_CONFIGURATION]
    (reverted,) = SMI_V1ALPHA2.revert(ctx, observed([again]))
    assert reverted["spec"] == USER_TS["spec"]
    assert "annotations" not in reverted["metadata"]
    assert reverted["metadata"]["labels"] == {"team": "a"}


def test_revert_from_kubectl_record_and_errors() -> None:
    ctx = ctx_for()
    user_ts = copy.deepcopy(USER_TS)
    user_ts["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"spec": USER_TS["spec"]})
    }
    taken = SMI_V1ALPHA2.merge(ctx, user_ts, ts_of(SMI_V1ALPHA2, Routes(100, 0)))
    assert ORIGINAL_CONFIGURATION not in taken["metadata"]["annotations"]
    (reverted,) = SMI_V1ALPHA2.revert(ctx, observed([taken]))
    assert reverted["spec"] == USER_TS["spec"]
    assert not set(FLUX) & set(reverted["metadata"]["annotations"])
    # owned or gone: nothing to restore
    assert SMI_V1ALPHA2.revert(ctx, observed([ts_of(SMI_V1ALPHA2, Routes(100, 0))])) == []
    assert SMI_V1ALPHA2.revert(ctx, {}) == []
    # foreign without any record
    with pytest.raises(RevertError) as err:
        SMI_V1ALPHA2.revert(ctx, observed([copy.deepcopy(USER_TS)]))
    assert str(err.value) == "TrafficSplit podinfo.test original configuration not found, unable to revert"
    broken = copy.deepcopy(USER_TS)
    broken["metadata"]["annotations"] = {ORIGINAL_CONFIGURATION: "{nope"}
    with pytest.raises(RevertError, match="unreadable"):
        SMI_V1ALPHA2.revert(ctx, observed([broken]))


def test_mesh_suffix() -> None:
    assert with_mesh("smi:v1alpha1:istio") == ("smi:v1alpha1", "istio")
    assert with_mesh("smi:v1alpha2:nginx") == ("smi:v1alpha2", "nginx")
    assert with_mesh("smi:v1alpha1") == ("smi:v1alpha1", "")
    assert with_mesh("linkerd") == ("linkerd", "")
    assert with_mesh("istio") == ("istio", "")
    assert with_mesh("smi:v1alpha1:") == ("smi:v1alpha1:", "")
    assert router_for("linkerd") is LINKERD
    assert router_for("osm") is OSM
    assert router_for("smi:v1alpha3") is SMI_V1ALPHA3
    assert router_for("istio") is None
    assert router_for("smi:v9:istio") is None
    istio = router_for("smi:v1alpha1:istio")
    assert istio is not None
    assert (istio.name, istio.version, istio.target_mesh) == ("smi:v1alpha1:istio", "v1alpha1", "istio")
    assert istio.kinds == SMI_V1ALPHA1.kinds
    assert router_for("smi:v1alpha1:istio") is istio  # one instance per name


def test_istio_target_mesh_writes_the_gateways_annotation() -> None:
    istio = router_for("smi:v1alpha1:istio")
    assert istio is not None
    canary = mesh_canary(service={"port": 9898, "gateways": ["public-gateway.istio-system", "mesh"]})
    ctx = ctx_for(canary)
    ts = ts_of(istio, Routes(100, 0), canary)
    assert ts["metadata"]["annotations"] == {
        ISTIO_GATEWAYS_ANNOTATION: '["public-gateway.istio-system","mesh"]'
    }
    assert ts["spec"] == ts_of(SMI_V1ALPHA1, Routes(100, 0), canary)["spec"]
    assert ts_of(istio, Routes(100, 0))["metadata"]["annotations"] == {ISTIO_GATEWAYS_ANNOTATION: "[]"}
    # another target mesh, or none: no annotation
    other = router_for("smi:v1alpha1:consul")
    assert other is not None
    assert "annotations" not in ts_of(other, Routes(100, 0), canary)["metadata"]
    # a TrafficSplit without (or with a stale) annotation is updated, the rest kept
    bare = stored(ts_of(SMI_V1ALPHA1, Routes(70, 30), canary))
    bare["metadata"]["annotations"] = {"foreign": "1"}
    assert istio.needs_update(ctx, bare, ts)
    merged = istio.merge(ctx, bare, ts)
    assert merged["metadata"]["annotations"] == {"foreign": "1", **ts["metadata"]["annotations"]}
    assert merged["spec"] == bare["spec"]
    assert not istio.needs_update(ctx, merged, ts)
