"""Knative: the router writes the target Knative Service's own ``spec.traffic`` (the latest revision, then the
primary revision by name), reads the weights back from ``status.traffic``, never creates a Service, refuses
A/B matching, mirroring and session affinity with path-qualified messages, and on revert gives the traffic
back to Knative's default."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from canarist.api import Canary
from canarist.cli.main import main
from canarist.engine.model import RouterCapabilities, Routes
from canarist.routers import base, registry
from canarist.routers.base import RouteContext, RoutesError
from canarist.routers.knative import KNATIVE, KnativeRouter
from canarist.workloads import knative
from tests.fixtures.canaries import canary_model

AB = [{"headers": {"x-canary": {"exact": "insider"}}}]
TARGET_REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}


def knative_canary(**kw: Any) -> Canary:
    return canary_model(provider="knative", autoscaler=None, spec={"targetRef": TARGET_REF}, **kw)


def service(
    primary: str | None = "podinfo-00001",
    latest: str = "podinfo-00001",
    status_traffic: list[dict[str, Any]] | None = None,
    generation: int = 2,
    observed_generation: int = 2,
) -> dict[str, Any]:
    annotations = {"team": "api"}
    if primary is not None:
        annotations[knative.PRIMARY_REVISION] = primary
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "generation": generation,
            "resourceVersion": "7",
            "annotations": annotations,
        },
        "spec": {
            "template": {"spec": {"containers": [{"image": "ghcr.io/stefanprodan/podinfo:6.0.0"}]}},
            "traffic": knative.traffic(primary or latest, 100, 0),
        },
        "status": {
            "observedGeneration": observed_generation,
            "latestCreatedRevisionName": latest,
            "latestReadyRevisionName": latest,
            "traffic": status_traffic
            if status_traffic is not None
            else [
                {"latestRevision": True, "percent": 0, "revisionName": latest},
                {"latestRevision": False, "percent": 100, "revisionName": primary or latest},
            ],
        },
    }


def ctx_for(target: dict[str, Any] | None = None, canary: Canary | None = None) -> RouteContext:
    ctx = RouteContext.from_canary(canary if canary is not None else knative_canary())
    return RouteContext(**{**ctx.__dict__, "target": target if target is not None else service()})


def test_declaration_and_registry() -> None:
    assert KNATIVE.name == "knative"
    assert KNATIVE.kinds == ()  # it writes the target, declared by the target kind's record
    assert KNATIVE.settings == frozenset()
    assert KNATIVE.capabilities == RouterCapabilities(
        weights=True, matches=False, mirroring=False, session_affinity=False
    )
    router: base.Router = KnativeRouter()
    assert router.name == "knative"
    assert registry.get("knative") is KNATIVE
    assert "knative" in registry.supported()
    (ref,) = KNATIVE.objects(ctx_for())
    assert (ref.api_version, ref.kind, ref.name, ref.namespace) == (
        "serving.knative.dev/v1",
        "Service",
        "podinfo",
        "test",
    )
    assert KNATIVE.references(ctx_for()) == []


@pytest.mark.parametrize(("primary", "canary"), [(100, 0), (90, 10), (50, 50), (0, 100)])
def test_each_weight_is_the_traffic_of_the_target_itself(primary: int, canary: int) -> None:
    target = service()
    (desired,) = KNATIVE.desired(ctx_for(target), Routes(primary, canary))
    assert desired["spec"]["traffic"] == [
        {"latestRevision": True, "percent": canary},
        {"revisionName": "podinfo-00001", "percent": primary},
    ]
    # nothing else of the Service changes
    assert {k: v for k, v in desired["spec"].items() if k != "traffic"} == {
        k: v for k, v in target["spec"].items() if k != "traffic"
    }
    assert desired["metadata"] == target["metadata"]
    merged = KNATIVE.merge(ctx_for(target), target, desired, set_routes=True)
    assert merged["spec"]["traffic"] == desired["spec"]["traffic"]
    assert merged["metadata"]["resourceVersion"] == "7"


def test_no_service_is_ever_created() -> None:
    ctx = RouteContext.from_canary(knative_canary())
    assert ctx.target is None
    assert KNATIVE.desired(ctx, Routes(100, 0)) == []


def test_the_primary_is_the_observed_annotation() -> None:
    """The desired object may come from a target read before the initialization named the primary: the
    write names the primary the freshest (observed) Service names."""
    stale = service(primary=None)
    (desired,) = KNATIVE.desired(ctx_for(stale), Routes(80, 20))
    fresh = service(primary="podinfo-00002", latest="podinfo-00003")
    merged = KNATIVE.merge(ctx_for(stale), fresh, desired, set_routes=True)
    assert merged["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 20},
        {"revisionName": "podinfo-00002", "percent": 80},
    ]
    # without an annotation nothing is written (routes() says why)
    unnamed = service(primary=None)
    assert KNATIVE.merge(ctx_for(unnamed), unnamed, desired, set_routes=True) == unnamed


def test_reconcile_keeps_the_weights_and_repairs_the_shape() -> None:
    target = service()
    target["spec"]["traffic"] = knative.traffic("podinfo-00001", 70, 30)
    (desired,) = KNATIVE.desired(ctx_for(target), Routes(100, 0))
    assert not KNATIVE.needs_update(ctx_for(target), target, desired)
    assert KNATIVE.merge(ctx_for(target), target, desired)["spec"]["traffic"] == target["spec"]["traffic"]
    edited = copy.deepcopy(target)
    edited["spec"]["traffic"] = [{"latestRevision": True, "percent": 100}]
    assert KNATIVE.needs_update(ctx_for(edited), edited, desired)
    assert KNATIVE.merge(ctx_for(edited), edited, desired)["spec"]["traffic"] == knative.traffic(
        "podinfo-00001", 100, 0
    )
    moved = service(primary="podinfo-00002", latest="podinfo-00002")
    moved["spec"]["traffic"] = knative.traffic("podinfo-00001", 100, 0)
    assert KNATIVE.needs_update(ctx_for(moved), moved, desired)


def test_weights_are_read_back_from_status_traffic() -> None:
    observed = service(
        primary="podinfo-00001",
        latest="podinfo-00002",
        status_traffic=[
            {"latestRevision": True, "percent": 30, "revisionName": "podinfo-00002"},
            {"latestRevision": False, "percent": 70, "revisionName": "podinfo-00001"},
        ],
    )
    observed["spec"]["traffic"] = knative.traffic("podinfo-00001", 10, 90)  # not applied: status wins
    assert KNATIVE.routes(ctx_for(), {"Service/podinfo": observed}) == Routes(primary=70, canary=30)
    # at initialization the latest revision is the primary too: its latest-revision entry is not the primary
    assert KNATIVE.routes(ctx_for(), {"Service/podinfo": service()}) == Routes(primary=100, canary=0)


def test_read_back_errors() -> None:
    ctx = ctx_for()
    with pytest.raises(RoutesError, match=r"^Knative Service podinfo\.test get query error: not found$"):
        KNATIVE.routes(ctx, {})
    with pytest.raises(RoutesError, match="primary revision annotation not found"):
        KNATIVE.routes(ctx, {"Service/podinfo": service(primary=None)})
    with pytest.raises(
        RoutesError, match=r"not applied yet \(observed generation: 1, current generation: 2\)"
    ):
        KNATIVE.routes(ctx, {"Service/podinfo": service(observed_generation=1)})
    default = service(
        status_traffic=[{"latestRevision": True, "percent": 100, "revisionName": "podinfo-00001"}]
    )
    with pytest.raises(RoutesError, match="has no routes for the latest revision and the primary revision"):
        KNATIVE.routes(ctx, {"Service/podinfo": default})


def test_ab_mirroring_and_session_affinity_refused_with_their_paths() -> None:
    ab = knative_canary(iterations=10, match=AB, stepWeight=None, maxWeight=None)
    assert registry.provider_problems(ab, "istio") == [
        "spec.analysis.match: provider knative cannot route by header, cookie or query (A/B testing); "
        "use a provider that can, or remove match"
    ]
    mirrored = knative_canary(iterations=10, mirror=True, stepWeight=None, maxWeight=None)
    assert registry.provider_problems(mirrored, "istio") == [
        "spec.analysis.mirror: provider knative cannot mirror traffic; remove mirror"
    ]
    sticky = knative_canary(sessionAffinity={"cookieName": "flagger-cookie"})
    assert registry.provider_problems(sticky, "istio") == [
        "spec.analysis.sessionAffinity: provider knative cannot pin sessions by cookie; remove sessionAffinity"
    ]
    assert registry.provider_problems(knative_canary(), "istio") == []


def test_revert_removes_the_annotation_and_gives_all_traffic_to_the_latest_revision() -> None:
    target = service(primary="podinfo-00001", latest="podinfo-00002")
    (reverted,) = KNATIVE.revert(ctx_for(target), {"Service/podinfo": target})
    assert knative.PRIMARY_REVISION not in reverted["metadata"]["annotations"]
    assert reverted["metadata"]["annotations"] == {"team": "api"}
    assert reverted["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
    assert KNATIVE.revert(ctx_for(target), {}) == []


def test_the_example_canary_is_valid_and_routable() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "knative" / "canary.yaml"
    assert main(["validate", str(example)]) == 0
