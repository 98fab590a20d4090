"""Canary manifests for the engine stories: the seed walkthrough's canary and variations of it."""

from __future__ import annotations

import copy
from typing import Any

SEED: dict[str, Any] = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "metadata": {"name": "podinfo", "namespace": "test"},
    "spec": {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "progressDeadlineSeconds": 60,
        "autoscalerRef": {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "name": "podinfo",
        },
        "service": {"port": 9898},
        "analysis": {
            "interval": "30s",
            "threshold": 10,
            "maxWeight": 50,
            "stepWeight": 5,
            "metrics": [
                {"name": "request-success-rate", "threshold": 99, "interval": "30s"},
                {"name": "request-duration", "threshold": 500, "interval": "30s"},
            ],
            "webhooks": [
                {
                    "name": "load-test",
                    "url": "http://flagger-loadtester.test/",
                    "timeout": "5s",
                    "metadata": {"cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"},
                }
            ],
        },
    },
}


def canary(**analysis: Any) -> dict[str, Any]:
    """The seed canary with ``analysis`` fields replaced (a value of None removes the field)."""
    manifest = copy.deepcopy(SEED)
    for key, value in analysis.items():
        if value is None:
            manifest["spec"]["analysis"].pop(key, None)
        else:
            manifest["spec"]["analysis"][key] = value
    return manifest


def hook(name: str, type: str, url: str = "http://flagger-loadtester.test/gate/check") -> dict[str, Any]:
    return {"name": name, "type": type, "url": url}
