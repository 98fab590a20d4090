"""SMI TrafficSplit (`split.smi-spec.io`): v1alpha1, v1alpha2 (stored) and v1alpha3.

`spec.service` is the apex service, `spec.backends[]` the weighted services. A backend's `weight` is a
resource quantity (an integer or a string such as `500m`) in v1alpha1 and v1alpha2, and a plain integer in
v1alpha3, which also has `spec.matches` (references to HTTPRouteGroups). Fully typed: no free-form parts.

The local control plane does not convert between versions (it rewrites the apiVersion), so an object written
with a quantity string through v1alpha2 reads back with that string through v1alpha3.
"""

from __future__ import annotations

from canarist.localcluster.crds._schema import (
    AGE,
    Obj,
    array,
    column,
    crd,
    int64,
    obj,
    quantity,
    root,
    string,
    version,
)

GROUP = "split.smi-spec.io"
VERSIONS = ("v1alpha1", "v1alpha2", "v1alpha3")
STORAGE_VERSION = "v1alpha2"


def trafficsplit_schema(api_version: str) -> Obj:
    weight = int64(minimum=0) if api_version == "v1alpha3" else quantity()
    backend = obj({"service": string(), "weight": weight}, required=("service", "weight"))
    properties: Obj = {"service": string(), "backends": array(backend)}
    if api_version == "v1alpha3":
        properties["matches"] = array(
            obj({"kind": string(), "name": string(), "apiGroup": string()}, required=("kind", "name"))
        )
    return root(obj(properties, required=("service", "backends")), required=("spec",))


def smi_crds() -> list[Obj]:
    columns = [column("Service", ".spec.service", description="The apex service of this split."), AGE]
    return [
        crd(
            GROUP,
            "TrafficSplit",
            "trafficsplits",
            [
                version(v, trafficsplit_schema(v), storage=v == STORAGE_VERSION, columns=columns)
                for v in VERSIONS
            ],
            short_names=("ts",),
        )
    ]


CRDS: list[Obj] = smi_crds()
