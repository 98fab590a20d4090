"""A router that exists only in the tests: one module, registered with one line, nothing else changed.

It writes one ``WeightSplit`` object (a kind of its own, in a group of its own) per canary, carrying the
primary and canary weights. It routes by weight only: no matches, no mirroring, no session affinity.
"""

from __future__ import annotations

import copy
from typing import Any

from canarist.engine.model import RouterCapabilities, Routes
from canarist.kube.resources import ResourceKind
from canarist.routers.base import Obj, ObjectRef, ObservedRoutes, Reference, RouteContext, RoutesError

WEIGHT_SPLIT = ResourceKind("split.canarist.test", "v1", "weightsplits", "WeightSplit")
API_VERSION = "split.canarist.test/v1"

#: the CustomResourceDefinition of its kind, for the cluster the test runs against.
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "weightsplits.split.canarist.test"},
    "spec": {
        "group": "split.canarist.test",
        "names": {
            "kind": "WeightSplit",
            "listKind": "WeightSplitList",
            "plural": "weightsplits",
            "singular": "weightsplit",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "backends": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "service": {"type": "string"},
                                                "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                                            },
                                        },
                                    }
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


class WeightSplitRouter:
    name = "weightsplit"
    kinds: tuple[ResourceKind, ...] = (WEIGHT_SPLIT,)
    capabilities = RouterCapabilities(weights=True, matches=False, mirroring=False, session_affinity=False)
    settings: frozenset[str] = frozenset()

    def objects(self, ctx: RouteContext) -> list[ObjectRef]:
        return [ObjectRef(API_VERSION, "WeightSplit", ctx.apex, ctx.namespace)]

    def references(self, ctx: RouteContext) -> list[Reference]:
        return []

    def desired(self, ctx: RouteContext, routes: Routes) -> list[Obj]:
        owner = {
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "name": ctx.canary.metadata.name,
            "uid": ctx.canary.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
        return [
            {
                "apiVersion": API_VERSION,
                "kind": "WeightSplit",
                "metadata": {"name": ctx.apex, "namespace": ctx.namespace, "ownerReferences": [owner]},
                "spec": {
                    "backends": [
                        {"service": ctx.primary, "weight": routes.primary},
                        {"service": ctx.canary_host, "weight": routes.canary},
                    ]
                },
            }
        ]

    def routes(self, ctx: RouteContext, observed: ObservedRoutes) -> Routes:
        split = observed.get(f"WeightSplit/{ctx.apex}")
        weights = {
            b.get("service"): int(b.get("weight") or 0)
            for b in ((split or {}).get("spec") or {}).get("backends") or []
        }
        if ctx.primary not in weights or ctx.canary_host not in weights:
            raise RoutesError(
                f"WeightSplit {ctx.apex}.{ctx.namespace} does not route to {ctx.primary} and {ctx.canary_host}"
            )
        return Routes(primary=weights[ctx.primary], canary=weights[ctx.canary_host])

    def needs_update(self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj) -> bool:
        def services(obj: Obj) -> list[Any]:
            return [b.get("service") for b in (obj.get("spec") or {}).get("backends") or []]

        return services(observed_obj) != services(desired_obj)

    def merge(
        self, ctx: RouteContext, observed_obj: Obj, desired_obj: Obj, *, set_routes: bool = False
    ) -> Obj:
        merged = copy.deepcopy(observed_obj)
        merged["spec"] = copy.deepcopy(desired_obj["spec"])
        return merged

    def revert(self, ctx: RouteContext, observed: ObservedRoutes) -> list[Obj]:
        return []


WEIGHT_SPLITS = WeightSplitRouter()
