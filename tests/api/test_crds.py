"""The generated CRDs against Flagger's reference CRD (read at test time) and Kubernetes' structural rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from canarist.api.crds import PRIVATE_PREFIX, crds
from canarist.api.validation import validate_document
from tests.conftest import SHARED

REFERENCE = {
    doc["spec"]["names"]["kind"]: doc
    for doc in yaml.safe_load_all((SHARED / "reference" / "flagger-crd.yaml").read_text())
    if doc
}
OURS = {doc["spec"]["names"]["kind"]: doc for doc in crds()}
KINDS = ["Canary", "MetricTemplate", "AlertProvider"]


def _schema(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every structural node: properties, items and additionalProperties, with a readable path."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _index(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(_walk(schema))


def test_same_kinds():
    # Flagger's three kinds, and canarist's own CanaryCommand (another group, docs/control.md)
    assert sorted(OURS) == sorted([*REFERENCE, "CanaryCommand"])
    assert OURS["CanaryCommand"]["spec"]["group"] == "canarist.dev"


@pytest.mark.parametrize("kind", KINDS)
def test_names_scope_and_columns_match_flagger(kind):
    ours, ref = OURS[kind], REFERENCE[kind]
    assert ours["metadata"]["name"] == ref["metadata"]["name"]
    assert ours["spec"]["group"] == ref["spec"]["group"]
    assert ours["spec"]["names"] == ref["spec"]["names"]
    assert ours["spec"]["scope"] == ref["spec"]["scope"] == "Namespaced"
    ours_v, ref_v = ours["spec"]["versions"][0], ref["spec"]["versions"][0]
    for key in ("name", "served", "storage", "subresources", "additionalPrinterColumns"):
        assert ours_v[key] == ref_v[key], key


@pytest.mark.parametrize("kind", KINDS)
def test_every_reference_property_path_exists_with_same_type_enum_and_required(kind):
    ours = _index(_schema(OURS[kind]))
    ref = _index(_schema(REFERENCE[kind]))
    assert len(ref) > 5
    missing = sorted(set(ref) - set(ours))
    assert missing == []
    for path, node in ref.items():
        mine = ours[path]
        assert mine.get("type") == node.get("type"), path
        assert mine.get("enum") == node.get("enum"), path
        assert mine.get("x-kubernetes-int-or-string") == node.get("x-kubernetes-int-or-string"), path
        if node.get("type") == "object" and "required" in node:
            assert sorted(mine.get("required", [])) == sorted(node["required"]), path
        for key in ("pattern", "minimum", "maximum", "maxItems", "default"):
            if key in node:
                assert mine.get(key) == node[key], (path, key)


def test_canary_reference_has_deep_istio_paths():
    paths = _index(_schema(OURS["Canary"]))
    for path in (
        ".spec.service.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl",
        ".spec.service.trafficPolicy.loadBalancer.localityLbSetting.distribute[].to{}",
        ".spec.service.match[].withoutHeaders{}.regex",
        ".spec.service.corsPolicy.allowOrigins[].exact",
        ".spec.service.gatewayRefs[].sectionName",
        ".spec.service.mirror[].backendRef.port",
        ".spec.analysis.sessionAffinity.sameSite",
        ".status.conditions[].lastUpdateTime",
    ):
        assert path in paths, path


def _one_of(kind: str, path: str) -> Any:
    return (
        _index(_schema(OURS[kind]))[path].get("oneOf"),
        _index(_schema(REFERENCE[kind]))[path].get("oneOf"),
    )


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("Canary", ".spec.analysis"),
        ("Canary", ".spec.service.trafficPolicy.loadBalancer"),
        ("AlertProvider", ".spec"),
    ],
)
def test_one_of_constraints_equal_flagger(kind, path):
    ours, ref = _one_of(kind, path)
    assert ref is not None
    assert ours == ref


def _canary_with(service_match: object) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "c"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "c"},
            "service": {"port": 80, "match": [service_match]},
            "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 5},
        },
    }


def test_string_match_exclusivity_is_enforced_like_flagger():
    assert validate_document(_canary_with({"uri": {}})) == []
    assert validate_document(_canary_with({"uri": {"regex": ".*"}})) == []
    problems = validate_document(_canary_with({"uri": {"prefix": "/", "regex": ".*"}}))
    assert [p.path for p in problems] == ["spec.service.match[0].uri"]


def _all_nodes(node: Any, inside_value_validation: bool = False) -> Iterator[tuple[dict[str, Any], bool]]:
    if isinstance(node, dict):
        yield node, inside_value_validation
        for key, child in node.items():
            nested = inside_value_validation or key in ("oneOf", "anyOf", "allOf", "not")
            if key in ("properties", "additionalProperties", "items", "oneOf", "anyOf", "allOf", "not"):
                children = (
                    child.values() if key == "properties" else child if isinstance(child, list) else [child]
                )
                for grandchild in children:
                    yield from _all_nodes(grandchild, nested)
            elif key == "x-kubernetes-validations":
                continue


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind):
    schema = _schema(OURS[kind])
    for path, node in _walk(schema):
        assert (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        ), f"{kind}{path} has no type"
        if "properties" in node or "additionalProperties" in node:
            assert node["type"] == "object", path
        if "items" in node:
            assert node["type"] == "array", path
    for node, in_value_validation in _all_nodes(schema):
        assert not any(str(k).startswith(PRIVATE_PREFIX) for k in node)
        if in_value_validation:
            for forbidden in ("type", "description", "default", "additionalProperties", "nullable"):
                assert forbidden not in node, (kind, node)


def test_crds_are_yaml_serialisable_and_stable():
    text = yaml.safe_dump_all(crds())
    assert list(yaml.safe_load_all(text)) == crds()
