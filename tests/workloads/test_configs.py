"""Config tracking: references, checksums (checked against hashlib over literal Go JSON), copies, renames."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from canarist.kube.writer import overlay
from canarist.workloads.configs import (
    config_checksum,
    config_refs,
    configs_changed,
    go_json,
    primary_config_copy,
    rename_pod_spec_refs,
    tracked_configs,
)
from canarist.workloads.deployment import build_primary
from tests.workloads import podinfo
from tests.workloads.podinfo import OWNER, stored


def sha8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_checksum_matches_go_json_marshal() -> None:
    data = {"b": "<x>&y", "a": "1", "é": "ü\n"}
    literal = '{"a":"1","b":"\\u003cx\\u003e\\u0026y","é":"ü\\n"}'
    assert go_json(data) == literal
    assert config_checksum(data) == sha8(literal)
    assert config_checksum({"color": "blue"}) == sha8('{"color":"blue"}')
    assert config_checksum(None) == sha8("null")
    assert config_checksum({}) == sha8("{}")


POD_SPEC: dict[str, Any] = {
    "volumes": [
        {"name": "cfg", "configMap": {"name": "podinfo-config-vol"}},
        {"name": "sec", "secret": {"secretName": "podinfo-secret-vol"}},
        {
            "name": "proj",
            "projected": {
                "sources": [
                    {"configMap": {"name": "podinfo-config-proj"}},
                    {"secret": {"name": "podinfo-secret-proj", "optional": True}},
                ]
            },
        },
    ],
    "initContainers": [{"name": "init", "envFrom": [{"configMapRef": {"name": "podinfo-config-init"}}]}],
    "containers": [
        {
            "name": "podinfod",
            "env": [
                {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "podinfo-config-env", "key": "a"}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "podinfo-secret-env", "key": "b"}}},
                {"name": "C", "value": "plain"},
            ],
            "envFrom": [
                {"secretRef": {"name": "podinfo-secret-all"}},
                {"configMapRef": {"name": "podinfo-config-vol"}},
            ],
        }
    ],
}


def target() -> dict[str, Any]:
    dep = podinfo.deployment()
    dep["spec"]["template"]["spec"] = POD_SPEC
    return dep


def test_refs() -> None:
    keys = [(r.key, r.optional) for r in config_refs(target())]
    assert keys == [
        ("configmap/podinfo-config-vol", False),
        ("secret/podinfo-secret-vol", False),
        ("configmap/podinfo-config-proj", False),
        ("secret/podinfo-secret-proj", True),
        ("configmap/podinfo-config-env", False),
        ("secret/podinfo-secret-env", False),
        ("secret/podinfo-secret-all", False),
        ("configmap/podinfo-config-init", False),
    ]


def cm(name: str, data: dict[str, str] | None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "test", "annotations": annotations or {}},
    }
    if data is not None:
        obj["data"] = data
    return obj


def secret(name: str, type_: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "test"},
        "type": type_,
        "data": {"token": "c2VjcmV0"},
    }


def test_tracked_configs() -> None:
    configmaps = {
        "podinfo-config-vol": cm("podinfo-config-vol", {"color": "blue"}),
        "podinfo-config-proj": cm("podinfo-config-proj", None),
        "podinfo-config-env": cm(
            "podinfo-config-env", {"a": "1"}, {"flagger.app/config-tracking": "disabled"}
        ),
        "podinfo-config-init": cm("podinfo-config-init", {"x": "<y>"}),
    }
    secrets = {
        "podinfo-secret-vol": secret("podinfo-secret-vol"),
        "podinfo-secret-env": secret("podinfo-secret-env", "kubernetes.io/service-account-token"),
        "podinfo-secret-all": secret("podinfo-secret-all", "kubernetes.io/tls"),
    }
    result = tracked_configs(target(), configmaps.get, secrets.get)
    assert result.checksums == {
        "configmap/podinfo-config-vol": sha8('{"color":"blue"}'),
        "secret/podinfo-secret-vol": sha8('{"token":"c2VjcmV0"}'),
        "configmap/podinfo-config-proj": sha8("null"),
        "configmap/podinfo-config-init": sha8('{"x":"\\u003cy\\u003e"}'),
        "secret/podinfo-secret-all": sha8('{"token":"c2VjcmV0"}'),
    }
    assert result.missing == []  # the missing projected secret is optional
    del configmaps["podinfo-config-vol"]
    assert tracked_configs(target(), configmaps.get, secrets.get).missing == ["configmap/podinfo-config-vol"]


def test_configs_changed() -> None:
    assert not configs_changed({"configmap/a": "1"}, {"configmap/a": "1"})
    assert configs_changed({"configmap/a": "2"}, {"configmap/a": "1"})
    assert configs_changed({"configmap/a": "1", "secret/b": "2"}, {"configmap/a": "1"})
    assert not configs_changed({}, None)


def test_primary_copy() -> None:
    original = cm(
        "podinfo-config-vol", {"color": "blue"}, {"note": "n", "kustomize.toolkit.fluxcd.io/name": "k"}
    )
    original["metadata"]["labels"] = {"app": "podinfo", "team": "a"}
    original["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Foo", "name": "owner", "uid": "u", "controller": True}
    ]
    original["metadata"]["resourceVersion"] = "9"
    copy_ = primary_config_copy(podinfo.canary(), original, include_label_prefixes=["team"])
    assert copy_ == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "podinfo-config-vol-primary",
            "namespace": "test",
            "labels": {"team": "a"},
            "annotations": {"note": "n"},
            "ownerReferences": [
                OWNER,
                {"apiVersion": "v1", "kind": "Foo", "name": "owner", "uid": "u", "controller": False},
            ],
        },
        "data": {"color": "blue"},
    }
    secret_copy = primary_config_copy(podinfo.canary(), secret("podinfo-secret-vol", "kubernetes.io/tls"))
    assert secret_copy["metadata"]["name"] == "podinfo-secret-vol-primary"
    assert secret_copy["type"] == "kubernetes.io/tls"
    assert secret_copy["data"] == {"token": "c2VjcmV0"}


def test_rename_only_tracked_refs() -> None:
    renamed = {"configmap/podinfo-config-vol", "secret/podinfo-secret-proj", "configmap/podinfo-config-init"}
    spec = rename_pod_spec_refs(POD_SPEC, renamed)
    assert spec["volumes"][0]["configMap"]["name"] == "podinfo-config-vol-primary"
    assert spec["volumes"][1]["secret"]["secretName"] == "podinfo-secret-vol"
    assert spec["volumes"][2]["projected"]["sources"][0]["configMap"]["name"] == "podinfo-config-proj"
    assert spec["volumes"][2]["projected"]["sources"][1]["secret"]["name"] == "podinfo-secret-proj-primary"
    assert spec["initContainers"][0]["envFrom"][0]["configMapRef"]["name"] == "podinfo-config-init-primary"
    assert spec["containers"][0]["envFrom"][1]["configMapRef"]["name"] == "podinfo-config-vol-primary"
    assert spec["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "podinfo-config-env"
    assert POD_SPEC["volumes"][0]["configMap"]["name"] == "podinfo-config-vol"  # input untouched


def test_primary_deployment_uses_primary_configs_and_renames_anti_affinity() -> None:
    dep = target()
    dep["spec"]["template"]["spec"] = dict(POD_SPEC)
    dep["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "labelSelector": {"matchLabels": {"app": "podinfo", "x": "podinfo"}},
        }
    ]
    dep["spec"]["template"]["spec"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "topologyKey": "host",
                    "labelSelector": {
                        "matchExpressions": [{"key": "app", "operator": "In", "values": ["other", "podinfo"]}]
                    },
                }
            ],
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 1,
                    "podAffinityTerm": {
                        "topologyKey": "host",
                        "labelSelector": {"matchLabels": {"app": "podinfo"}},
                    },
                }
            ],
        }
    }
    primary = build_primary(
        podinfo.canary(),
        dep,
        "app",
        "podinfo",
        flagger_id="f",
        configs_renamed={"configmap/podinfo-config-vol"},
    )
    spec = primary["spec"]["template"]["spec"]
    assert spec["volumes"][0]["configMap"]["name"] == "podinfo-config-vol-primary"
    assert spec["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == {
        "app": "podinfo-primary",
        "x": "podinfo",
    }
    anti = spec["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]["matchExpressions"][0][
        "values"
    ] == ["other", "podinfo-primary"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["labelSelector"] == {
        "matchLabels": {"app": "podinfo-primary"}
    }
    # the target itself is untouched
    assert dep["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"][
        "app"
    ] == ("podinfo")


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
@pytest.mark.parametrize("labels", [None, {"team": "a"}])
@pytest.mark.parametrize("annotations", [None, {"note": "n"}])
def test_an_unchanged_primary_copy_is_not_rewritten(
    kind: str, labels: dict[str, str] | None, annotations: dict[str, str] | None
) -> None:
    source = cm("podinfo-config", {"color": "blue"}, annotations) if kind == "ConfigMap" else secret("s")
    if annotations is not None:
        source["metadata"]["annotations"] = annotations
    if labels is not None:
        source["metadata"]["labels"] = labels
    desired = primary_config_copy(podinfo.canary(), source, include_label_prefixes=["team"])
    assert ("labels" in desired["metadata"]) == (labels is not None)
    assert ("annotations" in desired["metadata"]) == (annotations is not None)
    # as the API server returns the copy after writing it: server fields added, no empty maps
    served = stored(desired)
    served["metadata"].update({"uid": "c0ffee", "creationTimestamp": "2024-01-01T00:00:00Z"})
    assert overlay(served, desired) is None
