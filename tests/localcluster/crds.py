"""A small Canary-like CRD used by the conformance tests (written for these tests)."""

from __future__ import annotations

from typing import Any

CANARY_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "canaries.flagger.app"},
    "spec": {
        "group": "flagger.app",
        "names": {
            "kind": "Canary",
            "listKind": "CanaryList",
            "plural": "canaries",
            "singular": "canary",
            "shortNames": ["canary"],
            "categories": ["all"],
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Weight", "type": "string", "jsonPath": ".status.canaryWeight"},
                    {
                        "name": "StepWeight",
                        "type": "string",
                        "jsonPath": ".spec.analysis.stepWeight",
                        "priority": 1,
                    },
                    {
                        "name": "Ready",
                        "type": "string",
                        "jsonPath": '.status.conditions[?(@.type=="Promoted")].status',
                        "priority": 1,
                    },
                    {
                        "name": "LastTransitionTime",
                        "type": "string",
                        "jsonPath": ".status.lastTransitionTime",
                    },
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "required": ["targetRef", "analysis"],
                                "properties": {
                                    "provider": {
                                        "type": "string",
                                        "enum": ["istio", "kubernetes", "gatewayapi:v1"],
                                    },
                                    "suspend": {"type": "boolean"},
                                    "progressDeadlineSeconds": {"type": "integer", "minimum": 0},
                                    "targetRef": {
                                        "type": "object",
                                        "required": ["name", "kind"],
                                        "properties": {
                                            "apiVersion": {"type": "string"},
                                            "kind": {
                                                "type": "string",
                                                "enum": ["Deployment", "DaemonSet", "Service"],
                                            },
                                            "name": {
                                                "type": "string",
                                                "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                                            },
                                        },
                                    },
                                    "service": {
                                        "type": "object",
                                        "properties": {
                                            "port": {"type": "number"},
                                            "targetPort": {"x-kubernetes-int-or-string": True},
                                            "headers": {
                                                "type": "object",
                                                "x-kubernetes-preserve-unknown-fields": True,
                                            },
                                        },
                                    },
                                    "analysis": {
                                        "type": "object",
                                        "properties": {
                                            "interval": {"type": "string", "pattern": "^[0-9]+(m|s)"},
                                            "threshold": {"type": "number", "default": 1},
                                            "maxWeight": {"type": "number", "maximum": 100},
                                            "stepWeight": {"type": "number"},
                                            "stepWeights": {"type": "array", "items": {"type": "number"}},
                                            "metrics": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["name"],
                                                    "properties": {
                                                        "name": {"type": "string"},
                                                        "templateRef": {
                                                            "type": "object",
                                                            "properties": {"name": {"type": "string"}},
                                                        },
                                                        "thresholdRange": {
                                                            "type": "object",
                                                            "properties": {
                                                                "min": {"type": "number"},
                                                                "max": {"type": "number"},
                                                            },
                                                        },
                                                    },
                                                    "oneOf": [
                                                        {"required": ["thresholdRange"]},
                                                        {"required": ["templateRef"]},
                                                        {
                                                            "not": {
                                                                "anyOf": [
                                                                    {"required": ["thresholdRange"]},
                                                                    {"required": ["templateRef"]},
                                                                ]
                                                            }
                                                        },
                                                    ],
                                                },
                                            },
                                            "webhooks": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["name", "url"],
                                                    "properties": {
                                                        "name": {"type": "string"},
                                                        "url": {"type": "string", "format": "uri"},
                                                        "metadata": {
                                                            "type": "object",
                                                            "additionalProperties": {"type": "string"},
                                                        },
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {
                                        "type": "string",
                                        "enum": [
                                            "",
                                            "Initializing",
                                            "Initialized",
                                            "Waiting",
                                            "Progressing",
                                            "Succeeded",
                                            "Failed",
                                        ],
                                    },
                                    "canaryWeight": {"type": "number"},
                                    "failedChecks": {"type": "number"},
                                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                                    "conditions": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["type", "status"],
                                            "properties": {
                                                "type": {"type": "string"},
                                                "status": {"type": "string"},
                                                "reason": {"type": "string"},
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


def canary(name: str = "podinfo", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "service": {"port": 9898},
        "analysis": {"interval": "1m", "stepWeight": 10, "maxWeight": 50},
    }
    body.update(spec)
    return {"apiVersion": "flagger.app/v1beta1", "kind": "Canary", "metadata": {"name": name}, "spec": body}
