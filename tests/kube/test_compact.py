"""Cached objects are compacted: shared keys and short strings, no managedFields; the content is unchanged."""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from canarist.kube import KubeClient
from canarist.kube import resources as r
from canarist.kube.cache import ObjectCache
from canarist.kube.compact import INTERN_MAX, compact

from .test_informer import eventually

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "podinfo",
        "namespace": "test",
        "labels": {"app": "podinfo"},
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}],
        "annotations": {"long": "x" * (INTERN_MAX + 1)},
    },
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "podinfod", "ports": [9898]}]}}},
}


def test_compact_keeps_everything_but_managed_fields_and_leaves_its_input_alone() -> None:
    original = json.loads(json.dumps(DEPLOYMENT))
    before = copy.deepcopy(original)
    small = compact(original)
    assert original == before
    expected = copy.deepcopy(DEPLOYMENT)
    del expected["metadata"]["managedFields"]
    assert small == expected


def test_two_decoded_objects_share_their_keys_and_short_strings_once_compacted() -> None:
    one, two = (compact(json.loads(json.dumps(DEPLOYMENT))) for _ in range(2))
    key_one = next(k for k in one["metadata"] if k == "labels")
    key_two = next(k for k in two["metadata"] if k == "labels")
    assert key_one is key_two
    assert one["metadata"]["labels"]["app"] is two["metadata"]["labels"]["app"]
    assert one["metadata"]["labels"]["app"] is sys.intern("podinfo")
    # A long value is kept as it is (interning is for what repeats).
    assert one["metadata"]["annotations"]["long"] is not two["metadata"]["annotations"]["long"]


async def test_an_informer_stores_compacted_objects(kube: KubeClient, ns: str) -> None:
    cache = ObjectCache(kube, [r.CONFIG_MAP], namespace=ns)
    await cache.start()
    try:
        for name in ("a", "b"):
            await kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": name, "namespace": ns},
                    "data": {"color": "blue-green"},
                }
            )
        await eventually(lambda: len(cache.list(r.CONFIG_MAP)) == 2, within=30)
        a, b = (cache.get(r.CONFIG_MAP, ns, name) or {} for name in ("a", "b"))
        assert a["data"]["color"] is b["data"]["color"]
        assert "managedFields" not in a["metadata"]
    finally:
        await cache.stop()
