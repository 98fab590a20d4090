"""Kuma (`kuma.io/v1alpha1`): TrafficRoute, cluster-scoped, without a status.

Kuma's resources keep their mesh in a top-level `mesh` field (not in `spec`). Typed: `spec.sources` and
`spec.destinations` (each a `match` of tags, `kuma.io/service` and others), `spec.conf.split` (a `weight`
and the `destination` tags of each entry) and `spec.conf.destination` (one destination without a split).

Free-form (`x-kubernetes-preserve-unknown-fields`): `spec.conf.loadBalancer` and the `spec.conf.http`
rules, which the routers never write.
"""

from __future__ import annotations

from canarist.localcluster.crds._schema import (
    AGE,
    Obj,
    array,
    crd,
    free,
    integer,
    obj,
    string,
    string_map,
    version,
)

GROUP = "kuma.io"
VERSION = "v1alpha1"
CATEGORIES = ("kuma",)


def trafficroute_schema() -> Obj:
    selector = obj({"match": string_map()}, required=("match",))
    split = obj({"weight": integer(minimum=0), "destination": string_map()}, required=("destination",))
    conf = obj(
        {
            "split": array(split),
            "destination": string_map(),
            "loadBalancer": free(),
            "http": array(free()),
        }
    )
    spec = obj({"sources": array(selector), "destinations": array(selector), "conf": conf})
    return obj(
        {
            "apiVersion": string(),
            "kind": string(),
            "metadata": {"type": "object"},
            "mesh": string(),
            "spec": spec,
        },
        required=("spec",),
    )


def kuma_crds() -> list[Obj]:
    return [
        crd(
            GROUP,
            "TrafficRoute",
            "trafficroutes",
            [version(VERSION, trafficroute_schema(), storage=True, columns=[AGE])],
            namespaced=False,
            categories=CATEGORIES,
        )
    ]


CRDS: list[Obj] = kuma_crds()
