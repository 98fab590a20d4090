"""Selector discovery errors, revision hashes and the webhook checksum."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canarist.workloads.revision import fnv32a, revision_hash, safe_encode, webhook_checksum
from canarist.workloads.selector import SelectorError, find_selector
from tests.workloads import podinfo


def test_selector_order_and_error() -> None:
    target: dict[str, Any] = {"metadata": {"name": "web", "namespace": "prod"}, "spec": {"selector": {}}}
    target["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "web", "name": "w"}
    assert find_selector("Deployment", target, ["app", "name", "app.kubernetes.io/name"]) == ("name", "w")
    target["spec"]["selector"]["matchLabels"] = {"tier": "x"}
    with pytest.raises(SelectorError) as err:
        find_selector("Deployment", target, ["app", "name", "app.kubernetes.io/name"])
    assert str(err.value) == (
        "deployment web.prod spec.selector.matchLabels must contain one of [app name app.kubernetes.io/name]"
    )
    with pytest.raises(SelectorError, match=r"^daemonset web\.prod .* \[app\]$"):
        find_selector("DaemonSet", target, ["app"])


def test_fnv_and_safe_encoding_known_values() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    # '2'=50, '1'=49, '6'=54, '3'=51, '5'=53 modulo 27 index into "bcdfghjklmnpqrstvwxz2456789"
    assert safe_encode("2166136261") == "65bb57b6b5"


def test_revision_hash_is_stable_and_tracks_the_template() -> None:
    target = podinfo.deployment()
    first = revision_hash(target)
    assert first == revision_hash(copy.deepcopy(target))
    assert set(first) <= set("bcdfghjklmnpqrstvwxz2456789")
    reordered = copy.deepcopy(target)
    reordered["spec"]["template"] = dict(reversed(list(reordered["spec"]["template"].items())))
    assert revision_hash(reordered) == first
    scaled = copy.deepcopy(target)
    scaled["spec"]["replicas"] = 0
    scaled["metadata"]["labels"]["x"] = "y"
    assert revision_hash(scaled) == first
    changed = copy.deepcopy(target)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/stefanprodan/podinfo:3.1.1"
    assert revision_hash(changed) != first


def test_daemonset_scale_to_zero_selector_is_ignored() -> None:
    ds = podinfo.deployment()
    ds["kind"] = "DaemonSet"
    base = revision_hash(ds)
    zero = copy.deepcopy(ds)
    zero["spec"]["template"]["spec"]["nodeSelector"] = {"flagger.app/scale-to-zero": "true"}
    assert revision_hash(zero) == base


def test_webhook_checksum() -> None:
    a = webhook_checksum({"configmap/a": "0123456789abcdef"}, "5d7f8b")
    assert a == webhook_checksum({"configmap/a": "0123456789abcdef"}, "5d7f8b")
    assert a != webhook_checksum({"configmap/a": "0123456789abcdeg"}, "5d7f8b")
    assert a != webhook_checksum({"configmap/a": "0123456789abcdef"}, "5d7f8c")
    assert webhook_checksum(None, "x") == webhook_checksum({}, "x")
