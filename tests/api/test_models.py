"""Round trips and run-time defaults of the flagger.app models."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from canarist.api import (
    AlertProvider,
    Canary,
    CanaryAnalysis,
    CanaryStatus,
    CanaryWebhook,
    MetricTemplate,
    Phase,
    Strategy,
    WebhookType,
)
from canarist.api.canary import CanaryAlert, CanaryMetric, SessionAffinity
from canarist.kube.events import object_reference
from tests.conftest import SHARED
from tests.fixtures.canaries import walkthrough_canary

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((SHARED / "reference" / "examples").glob("*.yaml")) + sorted(
    (ROOT / "examples" / "podinfo").glob("*.yaml")
)


def _flagger_docs() -> list[tuple[str, dict[str, object]]]:
    out = []
    for path in EXAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("flagger.app/"):
                out.append((f"{path.name}:{doc['kind']}", doc))
    return out


MODELS = {"Canary": Canary, "MetricTemplate": MetricTemplate, "AlertProvider": AlertProvider}


@pytest.mark.parametrize(("label", "doc"), _flagger_docs(), ids=lambda v: v if isinstance(v, str) else "")
def test_examples_round_trip_unchanged(label, doc):
    model = MODELS[doc["kind"]].model_validate(doc)
    assert model.to_manifest() == doc


def test_examples_exist():
    assert len(_flagger_docs()) >= 5


BASE = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test", "resourceVersion": "7", "managedFields": [{"x": 1}]},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898, "futureField": {"a": [1, 2]}},
        "analysis": {"interval": "30s", "threshold": 5, "stepWeight": 10, "someNewKnob": True},
        "unknownTop": "kept",
    },
}


def test_unknown_fields_survive_read_modify_write():
    canary = Canary.model_validate(copy.deepcopy(BASE))
    canary.status.phase = Phase.PROGRESSING
    canary.status.canary_weight = 10
    out = canary.to_manifest()
    assert out["spec"]["service"]["futureField"] == {"a": [1, 2]}
    assert out["spec"]["analysis"]["someNewKnob"] is True
    assert out["spec"]["unknownTop"] == "kept"
    assert out["metadata"]["managedFields"] == [{"x": 1}]
    assert out["status"] == {"phase": "Progressing", "canaryWeight": 10}
    assert type(out["status"]["phase"]) is str
    # nothing invented
    assert "skipAnalysis" not in out["spec"]
    assert "portName" not in out["spec"]["service"]
    assert "maxWeight" not in out["spec"]["analysis"]


def test_snake_case_names_and_aliases():
    canary = Canary.model_validate(BASE)
    assert canary.key == "podinfo.test"
    assert canary.metadata.resource_version == "7"
    assert canary.spec.target_ref.api_version == "apps/v1"
    assert canary.spec.service.port == 9898
    built = Canary(metadata={"name": "a", "namespace": "b"}, spec={"target_ref": {"name": "t"}})
    assert built.to_manifest()["spec"]["targetRef"] == {"name": "t"}


def test_status_fields_round_trip():
    status = {
        "phase": "Succeeded",
        "failedChecks": 0,
        "canaryWeight": 0,
        "iterations": 0,
        "trackedConfigs": {"configmap/podinfo-config": "abc"},
        "lastAppliedSpec": "5f",
        "lastPromotedSpec": "5f",
        "lastTransitionTime": "2024-01-01T00:00:00Z",
        "sessionAffinityCookie": "c1",
        "primarySessionAffinityCookie": "c2",
        "previousSessionAffinityCookie": "c0",
        "conditions": [{"type": "Promoted", "status": "True", "reason": "Succeeded", "message": "ok"}],
    }
    canary = Canary.model_validate({**BASE, "status": status})
    assert canary.status.tracked_configs == {"configmap/podinfo-config": "abc"}
    assert canary.status.phase == Phase.SUCCEEDED
    assert canary.status.promoted_condition() is not None
    assert canary.to_manifest()["status"] == status


def test_slightly_off_values_still_load():
    doc = copy.deepcopy(BASE)
    doc["spec"]["provider"] = "some-new-mesh"
    doc["spec"]["analysis"]["webhooks"] = [{"name": "x", "url": "http://x/", "type": "pre-rolout"}]
    doc["status"] = {"phase": "Exploded"}
    canary = Canary.model_validate(doc)
    assert canary.spec.provider == "some-new-mesh"
    assert canary.spec.analysis is not None
    assert canary.spec.analysis.webhooks[0].hook_type() == "pre-rolout"
    assert canary.to_manifest() == doc


def _canary(analysis: dict[str, object] | None, **spec: object) -> Canary:
    body: dict[str, object] = {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"}}
    if analysis is not None:
        body["analysis"] = analysis
    body.update(spec)
    return Canary.model_validate({"metadata": {"name": "c", "namespace": "n"}, "spec": body})


@pytest.mark.parametrize(
    ("interval", "floor", "expected"),
    [
        (None, 10.0, 60.0),
        ("", 10.0, 60.0),
        ("30s", 10.0, 30.0),
        ("1m30s", 10.0, 90.0),
        ("5s", 10.0, 10.0),
        ("5s", 1.0, 5.0),
        ("bogus", 10.0, 60.0),
        ("2h", 10.0, 7200.0),
    ],
)
def test_analysis_interval(interval, floor, expected):
    analysis = {} if interval is None else {"interval": interval}
    assert _canary(analysis).analysis_interval(min_seconds=floor) == expected


def test_analysis_interval_without_analysis():
    assert _canary(None).analysis_interval() == 60.0


def test_deprecated_canary_analysis_is_read():
    canary = _canary(None, canaryAnalysis={"interval": "20s", "threshold": 3, "iterations": 4})
    assert isinstance(canary.analysis(), CanaryAnalysis)
    assert canary.analysis_interval() == 20.0
    assert canary.threshold() == 3
    assert canary.strategy() == Strategy.BLUE_GREEN
    assert not canary.skip_analysis()


@pytest.mark.parametrize(("threshold", "expected"), [(None, 1), (0, 1), (-3, 1), (5, 5)])
def test_threshold(threshold, expected):
    analysis = {} if threshold is None else {"threshold": threshold}
    assert _canary(analysis).threshold() == expected


@pytest.mark.parametrize(
    ("analysis", "expected"),
    [
        ({}, 100),
        ({"maxWeight": 50}, 50),
        ({"maxWeight": 0}, 100),
        ({"stepWeights": [1, 2, 10, 80], "maxWeight": 20}, 80),
        ({"stepWeights": [50, 150]}, 100),
    ],
)
def test_max_weight(analysis, expected):
    assert _canary(analysis).max_weight() == expected


def test_strategy():
    assert _canary({"stepWeight": 10}).strategy() == "canary"
    assert _canary({"iterations": 5}).strategy() == "blue-green"
    ab = _canary({"iterations": 5, "match": [{"headers": {"x": {"exact": "1"}}}]})
    assert ab.strategy() == "ab-testing"
    assert _canary({"iterations": 0, "match": [{"headers": {"x": {"exact": "1"}}}]}).strategy() == "canary"


def test_names():
    canary = _canary({}, service={"port": 80, "name": "apex"})
    assert canary.apex_name() == "apex"
    assert canary.primary_name() == "app-primary"
    assert canary.primary_service_name() == "apex-primary"
    assert canary.canary_service_name() == "apex-canary"
    assert _canary({}).apex_name() == "app"


def test_other_defaults():
    canary = _canary({})
    assert canary.progress_deadline_seconds() == 600
    assert _canary({}, progressDeadlineSeconds=60).progress_deadline_seconds() == 60
    assert canary.primary_ready_threshold() == 100
    assert canary.canary_ready_threshold() == 100
    assert _canary({"canaryReadyThreshold": 50}).canary_ready_threshold() == 50
    assert _canary(None).skip_analysis()
    assert _canary({}, skipAnalysis=True).skip_analysis()
    assert not canary.skip_analysis()
    assert canary.spec.service.port_name_or_default() == "http"
    service = _canary({}, service={"port": 80}).spec.service
    assert service.target_port_or_default() == 80
    assert (
        _canary({}, service={"port": 80, "targetPort": "web"}).spec.service.target_port_or_default() == "web"
    )


def test_webhook_defaults():
    assert CanaryWebhook(name="a", url="http://x").timeout_seconds() == 10.0
    assert CanaryWebhook(name="a", url="http://x", timeout="30s").timeout_seconds() == 30.0
    assert CanaryWebhook(name="a", url="http://x", timeout="junk").timeout_seconds() == 10.0
    assert CanaryWebhook(name="a", url="http://x").hook_type() == WebhookType.ROLLOUT
    assert (
        CanaryWebhook.model_validate({"name": "a", "url": "u", "type": "event"}).hook_type()
        is WebhookType.EVENT
    )
    hook = CanaryWebhook.model_validate({"name": "a", "url": "u", "disableTLS": True})
    assert hook.disable_tls is True


def test_metric_interval_default_for_every_metric():
    assert CanaryMetric(name="request-success-rate").interval_or_default() == "1m"
    templated = CanaryMetric.model_validate({"name": "errors", "templateRef": {"name": "t"}})
    assert templated.interval_or_default() == "1m"
    assert templated.interval_seconds() == 60.0
    assert "interval" not in templated.to_dict()


def test_alert_severity_empty_means_info():
    alert = CanaryAlert.model_validate({"name": "a", "providerRef": {"name": "slack"}})
    assert alert.effective_severity() == "info"
    assert alert.accepts("info")
    assert alert.accepts("warn")
    assert alert.accepts("error")
    warn = CanaryAlert.model_validate({"name": "a", "severity": "warn", "providerRef": {"name": "s"}})
    assert not warn.accepts("info")
    assert warn.accepts("warn")
    assert warn.accepts("error")
    error = CanaryAlert.model_validate({"name": "a", "severity": "error", "providerRef": {"name": "s"}})
    assert not error.accepts("warn")
    assert error.accepts("error")


def test_session_affinity_max_age():
    assert SessionAffinity(cookie_name="c").max_age_seconds() == 86400
    assert SessionAffinity.model_validate({"cookieName": "c", "maxAge": 60}).max_age_seconds() == 60


def test_status_assignment_on_fresh_status_object():
    canary = Canary.model_validate(BASE)
    canary.status = CanaryStatus(phase=Phase.INITIALIZING)
    assert canary.to_manifest()["status"] == {"phase": "Initializing"}


def test_deep_istio_shapes():
    service = {
        "port": 80,
        "trafficPolicy": {
            "connectionPool": {"http": {"http1MaxPendingRequests": 10, "h2UpgradePolicy": "UPGRADE"}},
            "loadBalancer": {
                "consistentHash": {"httpCookie": {"name": "u", "ttl": "0s"}, "minimumRingSize": 3},
                "localityLbSetting": {"distribute": [{"from": "a/b", "to": {"a/c": 100}}], "enabled": True},
            },
            "outlierDetection": {"consecutive5xxErrors": 5, "interval": "10s"},
            "tls": {"mode": "ISTIO_MUTUAL", "subjectAltNames": ["x"]},
        },
        "match": [{"uri": {"prefix": "/"}, "headers": {"x": {"regex": ".*"}}, "ignoreUriCase": True}],
        "corsPolicy": {"allowOrigins": [{"exact": "https://a"}], "maxAge": "24h"},
        "headers": {"request": {"add": {"x": "1"}, "remove": ["y"]}},
        "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"},
        "rewrite": {"uri": "/", "type": "ReplacePrefixMatch"},
        "gatewayRefs": [{"name": "gw", "namespace": "istio", "sectionName": "http", "port": 80}],
        "mirror": [{"backendRef": {"name": "shadow", "port": 80}}],
        "apex": {"labels": {"a": "b"}},
    }
    canary = _canary({"interval": "1m"}, service=service)
    s = canary.spec.service
    assert s.traffic_policy is not None
    assert s.traffic_policy.connection_pool is not None
    assert s.traffic_policy.connection_pool.http is not None
    assert s.traffic_policy.connection_pool.http.http1_max_pending_requests == 10
    lb = s.traffic_policy.load_balancer
    assert lb is not None
    assert lb.consistent_hash is not None
    assert lb.locality_lb_setting is not None
    assert lb.locality_lb_setting.distribute[0].from_ == "a/b"
    assert s.traffic_policy.outlier_detection is not None
    assert s.traffic_policy.outlier_detection.consecutive5xx_errors == 5
    assert s.match[0].uri is not None
    assert s.match[0].uri.prefix == "/"
    assert s.match[0].headers["x"].regex == ".*"
    assert s.gateway_refs[0].section_name == "http"
    assert s.mirror[0].backend_ref.name == "shadow"
    assert s.retries is not None
    assert s.retries.per_try_timeout == "1s"
    assert canary.to_manifest()["spec"]["service"] == service


def test_is_builtin_only_without_template_or_query():
    assert CanaryMetric(name="request-duration").is_builtin()
    templated = CanaryMetric.model_validate({"name": "request-duration", "templateRef": {"name": "t"}})
    assert not templated.is_builtin()
    assert not CanaryMetric(name="request-duration", query="sum(x)").is_builtin()
    assert not CanaryMetric(name="errors").is_builtin()


def test_a_canary_reference_names_the_object_as_its_full_manifest_does() -> None:
    manifest = walkthrough_canary()
    manifest["metadata"].update(uid="0f1e2d3c", resourceVersion="42")
    canary = Canary.model_validate(manifest)
    assert object_reference(canary.reference()) == object_reference(manifest)
    assert object_reference(canary.reference()) == {
        "kind": "Canary",
        "namespace": "test",
        "name": "podinfo",
        "uid": "0f1e2d3c",
        "apiVersion": "flagger.app/v1beta1",
        "resourceVersion": "42",
    }
