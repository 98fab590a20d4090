"""`observe` on a dict-backed cache: the target kind's record, the router and its capabilities resolved once,
and every problem only an edit fixes raised as `Permanent` with a path-qualified message."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.kube import resources as kinds
from canarist.kube.cache import MISSING, SYNCED, KindState, StaticCache
from canarist.operator.observe import Permanent, observe
from canarist.operator.settings import OperatorSettings
from canarist.workloads.revision import revision_hash
from canarist.workloads.targets import DAEMON_SET, DEPLOYMENT, KNATIVE_SERVICE, SERVICE
from tests.fixtures.canaries import canary_model

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SETTINGS = OperatorSettings()


def workload(kind: str, name: str, *, ready: bool = True, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "test", "generation": 1, **meta},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "podinfo:1"}]},
            },
        },
    }
    if kind == "Deployment":
        obj["spec"]["replicas"] = 1
        obj["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
        obj["status"]["conditions"] = [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        ]
    else:
        obj["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
        obj["status"] = {
            "observedGeneration": 1,
            "desiredNumberScheduled": 1,
            "updatedNumberScheduled": 1 if ready else 0,
            "numberAvailable": 1 if ready else 0,
        }
    return obj


def canary(kind: str = "Deployment", **overrides: Any) -> Canary:
    return canary_model(target_kind=kind, autoscaler=None, **overrides)


def test_a_daemonset_target_is_read_with_the_daemonset_record() -> None:
    cache = StaticCache(
        [
            (kinds.DAEMON_SET, workload("DaemonSet", "podinfo")),
            (kinds.DAEMON_SET, workload("DaemonSet", "podinfo-primary", ready=False)),
            # A Deployment of the primary's name must not be mistaken for the primary.
            (kinds.DEPLOYMENT, workload("Deployment", "podinfo-primary")),
        ]
    )
    observed = observe(canary("DaemonSet"), cache, SETTINGS, NOW, None)
    assert observed.target_kind is DAEMON_SET
    assert observed.primary is not None
    assert observed.primary["kind"] == "DaemonSet"
    assert observed.observation.canary.ready
    assert not observed.observation.primary.ready
    assert observed.observation.target is not None
    assert observed.observation.target.kind == "DaemonSet"


def test_a_deployment_target_and_the_router_resolved_once() -> None:
    cache = StaticCache([(kinds.DEPLOYMENT, workload("Deployment", "podinfo"))])
    observed = observe(canary(), cache, SETTINGS, NOW, None)
    assert observed.target_kind is DEPLOYMENT
    assert observed.router.name == "istio"
    assert observed.context.apex == "podinfo"
    assert observed.observation.router.weights
    assert observed.primary is None
    assert not observed.observation.primary.ready


def test_routes_are_read_back_from_the_cached_route_object() -> None:
    vs = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "hosts": ["podinfo"],
            "http": [
                {
                    "route": [
                        {"destination": {"host": "podinfo-primary"}, "weight": 70},
                        {"destination": {"host": "podinfo-canary"}, "weight": 30},
                    ]
                }
            ],
        },
    }
    cache = StaticCache([(kinds.DEPLOYMENT, workload("Deployment", "podinfo")), (kinds.VIRTUAL_SERVICE, vs)])
    observed = observe(canary(), cache, SETTINGS, NOW, None)
    routes = observed.observation.routes
    assert routes is not None
    assert (routes.primary, routes.canary) == (70, 30)


def test_the_kubernetes_provider_has_no_weights() -> None:
    cache = StaticCache([(kinds.DEPLOYMENT, workload("Deployment", "podinfo"))])
    observed = observe(canary(provider="kubernetes"), cache, SETTINGS, NOW, None)
    assert not observed.observation.router.weights
    assert not observed.observation.router.matches


def _problem(
    subject: Canary, cache: StaticCache | None = None, settings: OperatorSettings = SETTINGS
) -> Permanent:
    with pytest.raises(Permanent) as raised:
        observe(subject, cache or StaticCache(), settings, NOW, None)
    return raised.value


def test_an_unsupported_provider_is_permanent(without_knative: str) -> None:
    # every Flagger provider has a router: the registry of this test lacks one
    problem = _problem(canary(provider=without_knative))
    assert problem.reason == "UnsupportedProvider"
    assert problem.message.startswith(
        "spec.provider: provider 'knative' is not supported by canarist yet (supported: apisix, appmesh, "
    )


def service(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "test", **meta},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": "podinfo"},
            "ports": [{"name": "http", "port": 9898}],
        },
    }


def service_canary(**overrides: Any) -> Canary:
    return canary_model(
        target_kind="Service",
        spec={"targetRef": {"apiVersion": "v1", "kind": "Service", "name": "podinfo"}},
        **overrides,
    )


def test_a_service_target_is_read_with_the_service_record_and_is_always_ready() -> None:
    cache = StaticCache(
        [
            (kinds.SERVICE, service("podinfo")),
            # A Deployment of the primary's name must not be mistaken for the primary.
            (kinds.DEPLOYMENT, workload("Deployment", "podinfo-primary", ready=False)),
        ]
    )
    observed = observe(service_canary(autoscaler=None), cache, SETTINGS, NOW, None)
    assert observed.target_kind is SERVICE
    assert observed.primary is None
    assert observed.selector is None  # a Service's selector is not a pod selector canarist manages
    assert observed.observation.primary.ready
    assert observed.observation.canary.ready
    facts = observed.observation.target
    assert facts is not None
    assert (facts.kind, facts.replicas, facts.selector_error) == ("Service", None, None)
    cache = StaticCache([(kinds.SERVICE, service("podinfo")), (kinds.SERVICE, service("podinfo-primary"))])
    observed = observe(service_canary(autoscaler=None), cache, SETTINGS, NOW, None)
    assert observed.primary is not None
    assert observed.primary["metadata"]["name"] == "podinfo-primary"


def test_a_service_target_with_an_autoscaler_is_permanent() -> None:
    problem = _problem(service_canary())
    assert problem.reason == "UnsupportedAutoscaler"
    assert problem.message.startswith("spec.autoscalerRef: a Service target runs no pods of its own")


def test_ab_testing_on_a_router_without_matches_is_refused() -> None:
    subject = canary(provider="kubernetes", iterations=5, match=[{"headers": {"x-canary": {"exact": "1"}}}])
    problem = _problem(subject)
    assert problem.reason == "UnsupportedByProvider"
    assert problem.message.startswith("spec.analysis.match: provider kubernetes cannot route by header")


def test_cross_namespace_references_are_refused_only_when_asked() -> None:
    cache = StaticCache([(kinds.DEPLOYMENT, workload("Deployment", "podinfo"))])
    metrics = [
        {"name": "errors", "templateRef": {"name": "errors", "namespace": "istio-system"}, "interval": "1m"}
    ]
    subject = canary(metrics=metrics)
    observe(subject, cache, SETTINGS, NOW, None)  # allowed by default, as in Flagger
    strict = OperatorSettings(no_cross_namespace_refs=True)
    problem = _problem(subject, cache, strict)
    assert problem.reason == "CrossNamespaceReference"
    assert problem.message.startswith(
        "spec.analysis.metrics[0].templateRef.namespace: istio-system is another"
    )


def test_a_target_generated_by_another_canary_is_refused() -> None:
    owner = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "name": "web",
        "uid": "1",
        "controller": True,
    }
    primary = workload("Deployment", "web-primary", ownerReferences=[owner])
    subject = canary(target_name="web-primary", name="hijack")
    problem = _problem(subject, StaticCache([(kinds.DEPLOYMENT, copy.deepcopy(primary))]))
    assert problem.reason == "TargetOwnedByCanary"
    assert "was generated by canary web.test" in problem.message


def test_a_keda_scaler_is_accepted_and_an_unknown_kind_is_not() -> None:
    keda = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "podinfo"}
    cache = StaticCache([(kinds.DEPLOYMENT, workload("Deployment", "podinfo"))])
    observed = observe(canary_model(autoscaler=keda), cache, SETTINGS, NOW, None)
    assert observed.target_kind is DEPLOYMENT
    problem = _problem(canary_model(autoscaler={**keda, "kind": "VerticalPodAutoscaler"}))
    assert problem.reason == "UnsupportedAutoscaler"
    assert problem.message == (
        "spec.autoscalerRef.kind: VerticalPodAutoscaler autoscalers are not supported by canarist yet "
        "(supported: HorizontalPodAutoscaler, ScaledObject)"
    )


KNATIVE_REF = {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "podinfo"}


def knative_service(primary: str | None, latest: str) -> dict[str, Any]:
    annotations = {"flagger.app/primary-revision": primary} if primary else {}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "podinfo", "namespace": "test", "generation": 1, "annotations": annotations},
        "spec": {"template": {"spec": {"containers": [{"image": "podinfo:1"}]}}},
        "status": {
            "observedGeneration": 1,
            "latestCreatedRevisionName": latest,
            "traffic": [
                {"latestRevision": True, "percent": 20, "revisionName": latest},
                {"latestRevision": False, "percent": 80, "revisionName": primary or latest},
            ],
        },
    }


def knative_revision(name: str, ready: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": "test", "labels": {"serving.knative.dev/service": "podinfo"}},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def knative_canary() -> Canary:
    return canary_model(provider="knative", autoscaler=None, spec={"targetRef": KNATIVE_REF})


def test_a_knative_target_s_primary_and_canary_are_its_revisions() -> None:
    cache = StaticCache(
        [
            (kinds.KNATIVE_SERVICE, knative_service(None, "podinfo-00001")),
            # the Kubernetes Service Knative makes under the same name is not the target
            (kinds.SERVICE, service("podinfo")),
            (kinds.KNATIVE_REVISION, knative_revision("podinfo-00001", "True")),
        ]
    )
    observed = observe(knative_canary(), cache, SETTINGS, NOW, None)
    assert observed.target_kind is KNATIVE_SERVICE
    assert observed.router.name == "knative"
    assert observed.target is not None
    assert observed.target["apiVersion"] == "serving.knative.dev/v1"
    assert observed.context.target is observed.target
    assert observed.primary is None  # no primary revision named yet: not initialized
    assert not observed.observation.primary_exists
    assert observed.observation.canary.ready
    assert observed.observation.routes is None  # no annotation yet: nothing to read back
    assert (
        observed.observation.routes_error
        == "Knative Service podinfo.test primary revision annotation not found"
    )

    cache.put(kinds.KNATIVE_SERVICE, knative_service("podinfo-00001", "podinfo-00002"))
    cache.put(kinds.KNATIVE_REVISION, knative_revision("podinfo-00002", "Unknown"))
    observed = observe(knative_canary(), cache, SETTINGS, NOW, None)
    assert observed.primary is observed.target  # promotion rewrites the Service itself
    assert observed.observation.primary_exists
    assert observed.observation.primary.ready
    canary_readiness = observed.observation.canary
    assert not canary_readiness.ready
    assert canary_readiness.retriable
    assert canary_readiness.message == "Knative Revision podinfo-00002.test is not ready"
    assert observed.observation.routes == Routes(primary=80, canary=20)
    facts = observed.observation.target
    assert facts is not None
    assert facts.revision == revision_hash(observed.target)


def test_a_knative_target_on_a_cluster_without_knative_is_permanent() -> None:
    class WithoutKnative(StaticCache):
        def watch(self, kind: kinds.ResourceKind) -> KindState:
            return MISSING if kind.group == "serving.knative.dev" else SYNCED

    problem = _problem(knative_canary(), WithoutKnative())
    assert problem.reason == "TargetNotInstalled"
    assert problem.message == (
        "spec.targetRef: the cluster does not serve services.serving.knative.dev (serving.knative.dev/v1), "
        "revisions.serving.knative.dev (serving.knative.dev/v1); install Knative Serving"
    )
