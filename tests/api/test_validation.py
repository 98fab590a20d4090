"""validate_document: the invalid corpus, the valid examples, and junk input that must never raise."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from canarist.api import AlertProvider, Canary, MetricTemplate
from canarist.api.validation import Problem, parse_document, validate_document
from tests.conftest import SHARED

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
INVALID = sorted((HERE / "invalid").glob("*.yaml"))
EXAMPLES = sorted((SHARED / "reference" / "examples").glob("*.yaml")) + sorted(
    (ROOT / "examples" / "podinfo").glob("*.yaml")
)


def _expectations(path: Path) -> list[str]:
    return [
        line.removeprefix("# expect:").strip()
        for line in path.read_text().splitlines()
        if line.startswith("# expect:")
    ]


def _label(doc: object) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("metadata"), dict):
        name = doc["metadata"].get("name")
        if isinstance(name, str) and name:
            return name
    return "document 1"


def test_corpus_is_big_enough():
    assert len(INVALID) >= 60


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_reports_expected_problems(path):
    expected = _expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    doc = yaml.safe_load(path.read_text())
    got = [f"{_label(doc)}: {problem}" for problem in validate_document(doc)]
    assert got == expected


def _flagger_docs():
    for path in EXAMPLES:
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("flagger.app/"):
                yield pytest.param(doc, id=f"{path.name}#{index}")


@pytest.mark.parametrize("doc", list(_flagger_docs()))
def test_examples_validate_clean(doc):
    assert validate_document(doc) == []


VALID_CANARY = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test"},
    "spec": {
        "provider": "istio",
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {
            "port": 80,
            "targetPort": "http",
            "trafficPolicy": {"loadBalancer": {"consistentHash": {"httpCookie": {"name": "u", "ttl": "0s"}}}},
            "match": [{"uri": {"prefix": "/"}}],
            "gatewayRefs": [{"name": "gw", "namespace": "istio-system"}],
        },
        "analysis": {
            "interval": "30s",
            "threshold": 3,
            "iterations": 10,
            "match": [{"headers": {"x-canary": {"suffix": "insider"}}}],
            "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                {"name": "errors", "templateRef": {"name": "errors"}, "templateVariables": {"a": "b"}},
            ],
            "webhooks": [
                {"name": "gate", "type": "confirm-rollout", "url": "http://gate/", "timeout": "30s"}
            ],
            "alerts": [{"name": "team", "severity": "", "providerRef": {"name": "slack"}}],
            "sessionAffinity": {"cookieName": "c", "primaryCookieName": "p", "maxAge": 60, "sameSite": "Lax"},
        },
    },
    "status": {
        "phase": "Succeeded",
        "lastTransitionTime": "2024-05-01T10:00:00Z",
        "conditions": [{"type": "Promoted", "status": "True", "reason": "Succeeded"}],
    },
}


def test_a_rich_canary_is_valid_and_loads():
    problems, model = parse_document(copy.deepcopy(VALID_CANARY))
    assert problems == []
    assert isinstance(model, Canary)


def test_metric_template_and_alert_provider_with_secret_are_valid():
    template = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": "latency"},
        "spec": {"provider": {"type": "datadog", "secretRef": {"name": "dd"}}, "query": "avg:x{*}"},
    }
    provider = {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "AlertProvider",
        "metadata": {"name": "slack"},
        "spec": {"type": "slack", "secretRef": {"name": "slack-url"}},
    }
    assert parse_document(template)[0] == []
    assert isinstance(parse_document(template)[1], MetricTemplate)
    assert parse_document(provider)[0] == []
    assert isinstance(parse_document(provider)[1], AlertProvider)


def test_problem_str():
    assert str(Problem("spec.x", "is required")) == "spec.x: is required"
    assert str(Problem("", "must be a map")) == "must be a map"


def _mutations() -> list[object]:
    """Junk: every leaf and subtree of a valid canary replaced by values of the wrong kinds."""
    junk_values: list[object] = [
        None,
        True,
        0,
        -1,
        10**400,
        -(10**400),
        1.5,
        math.inf,
        math.nan,
        "",
        "x" * 10000,
        "\x00\xff",
        [],
        [None],
        [[[]]],
        {},
        {"": None},
        {1: 2},
        {(1, 2): "tuple key"},
        b"\x00\x01binary",
        object(),
    ]
    out: list[object] = [*junk_values, [VALID_CANARY], {"apiVersion": "flagger.app/v1beta1"}]

    def walk(node: object, setter) -> None:  # type: ignore[no-untyped-def]
        for value in junk_values:
            out.append(setter(value))
        if isinstance(node, dict):
            for key in list(node):

                def child_setter(value: object, key: object = key, setter=setter, node=node) -> object:  # type: ignore[no-untyped-def]
                    changed = dict(node)
                    changed[key] = value
                    return setter(changed)

                walk(node[key], child_setter)
        elif isinstance(node, list):
            for index in range(len(node)):

                def item_setter(value: object, index: int = index, setter=setter, node=node) -> object:  # type: ignore[no-untyped-def]
                    changed = list(node)
                    changed[index] = value
                    return setter(changed)

                walk(node[index], item_setter)

    walk(VALID_CANARY, lambda value: value)
    for kind in ("MetricTemplate", "AlertProvider"):
        for value in junk_values:
            out.append(
                {"apiVersion": "flagger.app/v1beta1", "kind": kind, "metadata": {"name": "x"}, "spec": value}
            )
    return out


MUTATIONS = _mutations()


def test_junk_never_raises_and_clean_means_loadable():
    assert len(MUTATIONS) > 1000
    for doc in MUTATIONS:
        problems, model = parse_document(doc)
        assert all(isinstance(p, Problem) for p in problems)
        if not problems:
            assert model is not None


def test_self_referencing_structure_does_not_raise():
    loop: dict[str, object] = {}
    loop["loop"] = loop
    doc = copy.deepcopy(VALID_CANARY)
    doc["spec"]["analysis"]["match"] = [loop]
    doc["spec"]["service"]["backends"] = loop
    assert validate_document(doc)
