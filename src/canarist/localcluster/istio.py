"""Minimal CustomResourceDefinitions for the networking.istio.io kinds the operator writes."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

ISTIO_GROUP = "networking.istio.io"
ISTIO_KINDS = (
    ("VirtualService", "virtualservices", "virtualservice", ("vs",)),
    ("DestinationRule", "destinationrules", "destinationrule", ("dr",)),
    ("Gateway", "gateways", "gateway", ("gw",)),
)
ISTIO_VERSIONS = ("v1", "v1beta1", "v1alpha3")


def istio_crds() -> list[Obj]:
    """One CRD per kind, serving v1 (stored), v1beta1 and v1alpha3 with open specs."""
    crds = []
    for kind, plural, singular, short in ISTIO_KINDS:
        schema: Obj = {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            },
        }
        versions = [
            {
                "name": version,
                "served": True,
                "storage": version == "v1",
                "schema": {"openAPIV3Schema": schema},
                "subresources": {"status": {}},
            }
            for version in ISTIO_VERSIONS
        ]
        crds.append(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {
                    "name": f"{plural}.{ISTIO_GROUP}",
                    "labels": {"app.kubernetes.io/part-of": "istio"},
                },
                "spec": {
                    "group": ISTIO_GROUP,
                    "names": {
                        "kind": kind,
                        "listKind": f"{kind}List",
                        "plural": plural,
                        "singular": singular,
                        "shortNames": list(short),
                        "categories": ["istio-io", "networking-istio-io"],
                    },
                    "scope": "Namespaced",
                    "versions": versions,
                },
            }
        )
    return crds
