"""The SMI translator: TrafficSplits (``split.smi-spec.io`` v1alpha1, v1alpha2, v1alpha3) as a mesh's proxies
apply them — Linkerd's (through its SMI extension) and OSM's.

A TrafficSplit names an apex Service (``spec.service``: a name or an in-cluster DNS name, seen from the
TrafficSplit's namespace) and weighted backends (Services of the same namespace). Traffic a meshed client sends
to the apex goes to the backends in proportion to their weights, on the same port number. So the TrafficSplit
becomes one weighted route on every port of the apex Service (``service_routes``), which the gateway's host for
the apex (``podinfo.test``) uses too: a meshed ingress splits what enters by the apex name.

* Weights are Kubernetes quantities in v1alpha1 (``"100"``, ``"500m"``) and integers in later versions; either
  form is read (:func:`canarist.routers.smi.parse_quantity`) and, as the meshes do, weighed relative to each
  other: they become integer percentages summing to 100 (largest remainder; integers summing to 100 stay as
  they are), so a client sending the weight header 0…99 is split exactly by the weights.
* A backend with an unreadable or missing weight counts 0; a split whose weights sum to 0 is not applied.
* A backend naming no known Service routes to a cluster that does not exist (Envoy answers 503).
* One TrafficSplit per apex: the first by namespace/name. The same object served in several versions is read
  once. No route timeout (the meshes set none).

Not translated: v1alpha3 ``matches`` (HTTPRouteGroup references), which the routers never write. TrafficSplits
have no status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from canarist.kube.resources import ResourceKind
from canarist.routers.smi import (
    TRAFFIC_SPLIT_V1ALPHA1,
    TRAFFIC_SPLIT_V1ALPHA2,
    TRAFFIC_SPLIT_V1ALPHA3,
    parse_quantity,
)
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import (
    Obj,
    Program,
    ServiceKey,
    World,
    name_of,
    namespace_of,
    sort_key,
    spec_of,
)

__all__ = ["SmiTranslator", "split_percentages"]


class SmiTranslator:
    name = "smi"
    kinds: tuple[ResourceKind, ...] = (TRAFFIC_SPLIT_V1ALPHA1, TRAFFIC_SPLIT_V1ALPHA2, TRAFFIC_SPLIT_V1ALPHA3)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        splits: dict[tuple[str, str], Obj] = {}
        for kind in self.kinds:
            for split in objects.get(kind, ()):
                splits.setdefault(sort_key(split), split)
        program = Program()
        claimed: set[ServiceKey] = set()
        for key in sorted(splits):
            split = splits[key]
            namespace = namespace_of(split)
            apex = world.resolve(str(spec_of(split).get("service") or ""), namespace)
            if apex is None or apex in claimed:
                continue
            backends = _weighted_backends(split)
            if not backends:
                continue
            claimed.add(apex)
            for port in world.ports(*apex):
                clusters = [
                    e.Backend(_backend_cluster(service, namespace, port, world), weight)
                    for service, weight in backends
                ]
                program.service_routes[(apex[0], apex[1], port)] = [
                    e.route(
                        e.route_match(),
                        e.route_action(clusters, weight_header=world.weight_header, timeout=0),
                        name=f"ts.{namespace}.{name_of(split)}",
                    )
                ]
        return program


def split_percentages(weights: Sequence[Fraction]) -> list[int]:
    """Relative weights as integer percentages summing to 100 (largest remainder, ties to the earlier
    backend); ``[]`` when they sum to 0 or less."""
    total = sum(weights, Fraction(0))
    if total <= 0:
        return []
    exact = [w * 100 / total for w in weights]
    out = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: 100 - sum(out)]:
        out[i] += 1
    return out


def _weight(value: Any) -> Fraction:
    try:
        weight = parse_quantity(0 if value is None else value)
    except ValueError:
        return Fraction(0)
    return max(weight, Fraction(0))


def _weighted_backends(split: Mapping[str, Any]) -> list[tuple[str, int]]:
    entries = [b for b in spec_of(split).get("backends") or [] if isinstance(b, Mapping) and b.get("service")]
    percents = split_percentages([_weight(b.get("weight")) for b in entries])
    return [(str(b["service"]), p) for b, p in zip(entries, percents, strict=False)]


def _backend_cluster(service: str, namespace: str, port: int, world: World) -> str:
    resolved = world.resolve(service, namespace)
    if resolved is None:
        return f"outbound|{port}||{service}.{namespace}.unknown"  # no such cluster: Envoy answers 503
    return world.service_cluster(resolved[0], resolved[1], port)
