"""The Kuma translator: TrafficRoutes (``kuma.io/v1alpha1``, cluster-scoped) as Kuma's control plane programs
the dataplanes' Envoys.

Kuma names a Service port of the mesh by its ``kuma.io/service`` tag, ``<service>_<namespace>_svc_<port>``
(:func:`parse_service_tag`). A TrafficRoute applies to the traffic its sources send to its destinations:

* **Sources**: only a TrafficRoute with a source matching every service (``kuma.io/service: "*"``) is
  applied: the sandbox's clients (the gateway listener, the loadtester) have no tags of their own, so a route
  for narrower sources is one they are not subject to.
* **Destinations**: each ``kuma.io/service`` tag naming a known Service port gets, on that port's listener
  (and on the gateway's host for the Service: a meshed client reaches it by name), one route splitting the
  traffic across ``conf.split`` (or the single ``conf.destination``) on the tags' own ports.
* **Weights** are relative, as in Kuma: they become integer percentages summing to 100 (largest remainder,
  see :func:`canarist.sandbox.dataplane.smi.split_percentages`); a split whose weights sum to 0 is not
  applied. A split tag naming no known Service port routes to a cluster that does not exist (Envoy answers
  503).
* One TrafficRoute per destination: the first by name. ``mesh`` is not read: every Service is in one mesh.

Clusters are named after the tags (``podinfo-canary_test_svc_9898``), as Kuma names a dataplane's outbound
clusters, over that Service port's endpoints. Every request sent to a tag carries it in
:data:`~canarist.sandbox.telemetry.KUMA_SERVICE_HEADER`: the demo app then counts it in the destination
dataplane's Envoy series (``envoy_cluster_upstream_rq{service="<tag>", envoy_cluster_name="localhost:<port>"}``,
what Kuma's builtin queries read). So that requests sent straight to a split's Service (the tutorial's
``curl http://podinfo-canary.test:9898/status/500``) are counted too, every Service port a split names gets
Kuma's default route to itself (``route-all``) on its listener. Not translated: ``conf.loadBalancer`` and
``conf.http``, which the routers never write. TrafficRoutes have no status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from canarist.kube.resources import ResourceKind
from canarist.routers.kuma import SERVICE_TAG, TRAFFIC_ROUTE
from canarist.sandbox import telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj, PortKey, Program, World, name_of, spec_of
from canarist.sandbox.dataplane.smi import split_percentages

__all__ = ["KumaTranslator", "parse_service_tag"]

_TAG = re.compile(
    r"^(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?)_(?P<namespace>[a-z0-9-]+)_svc_(?P<port>[0-9]+)$"
)


def parse_service_tag(tag: str) -> PortKey | None:
    """``podinfo-canary_test_svc_9898`` → ``("test", "podinfo-canary", 9898)``; ``None`` for another tag."""
    found = _TAG.match(tag)
    if found is None:
        return None
    return (found["namespace"], found["service"], int(found["port"]))


def _tags(selectors: Any) -> list[str]:
    """The ``kuma.io/service`` tags of a list of ``{match: {...}}`` selectors."""
    out: list[str] = []
    for selector in selectors if isinstance(selectors, list) else []:
        match = selector.get("match") if isinstance(selector, Mapping) else None
        if isinstance(match, Mapping) and match.get(SERVICE_TAG):
            out.append(str(match[SERVICE_TAG]))
    return out


def _weight(value: Any) -> Fraction:
    return (
        Fraction(value)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0
        else Fraction(0)
    )


def _split(conf: Mapping[str, Any]) -> list[tuple[str, int]]:
    """``(tag, percent)`` of the route's destinations."""
    entries = [
        s
        for s in conf.get("split") or []
        if isinstance(s, Mapping)
        and isinstance(s.get("destination"), Mapping)
        and s["destination"].get(SERVICE_TAG)
    ]
    if entries:
        percents = split_percentages([_weight(s.get("weight")) for s in entries])
        return [(str(s["destination"][SERVICE_TAG]), p) for s, p in zip(entries, percents, strict=False)]
    single = conf.get("destination")
    if isinstance(single, Mapping) and single.get(SERVICE_TAG):
        return [(str(single[SERVICE_TAG]), 100)]
    return []


class KumaTranslator:
    name = "kuma"
    kinds: tuple[ResourceKind, ...] = (TRAFFIC_ROUTE,)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        program = Program()
        claimed: set[PortKey] = set()
        named: dict[PortKey, str] = {}  # the Service ports a split names, with their tags
        for route in sorted(objects.get(TRAFFIC_ROUTE, ()), key=name_of):
            spec = spec_of(route)
            if "*" not in _tags(spec.get("sources")):
                continue
            conf = spec.get("conf")
            backends = _split(conf) if isinstance(conf, Mapping) else []
            if not backends:
                continue
            for tag in _tags(spec.get("destinations")):
                key = parse_service_tag(tag)
                if key is None or key in claimed or key[2] not in world.ports(key[0], key[1]):
                    continue
                claimed.add(key)
                clusters = []
                for backend, weight in backends:
                    clusters.append(e.Backend(self._cluster(backend, world), weight, _tagged(backend)))
                    target = parse_service_tag(backend)
                    if target is not None:
                        named.setdefault(target, backend)
                program.service_routes[key] = [
                    e.route(
                        e.route_match(),
                        e.route_action(clusters, weight_header=world.weight_header, timeout=0),
                        name=f"kuma.{name_of(route)}.{tag}",
                    )
                ]
        for key, tag in sorted(named.items()):
            if key in claimed or key[2] not in world.ports(key[0], key[1]):
                continue
            # Kuma's default route: the service's own traffic to itself
            program.service_routes[key] = [
                e.route(
                    e.route_match(),
                    e.route_action([e.Backend(self._cluster(tag, world))], timeout=0),
                    name=f"kuma.route-all.{tag}",
                    request_headers_to_add=_tagged(tag),
                )
            ]
        return program

    @staticmethod
    def _cluster(tag: str, world: World) -> str:
        key = parse_service_tag(tag)
        if key is None or key[2] not in world.ports(key[0], key[1]):
            return f"{tag}.unknown"  # no such cluster: Envoy answers 503
        return world.alias_cluster(tag, key[0], key[1], key[2])


def _tagged(tag: str) -> tuple[Obj, ...]:
    return (e.header_set(telemetry.KUMA_SERVICE_HEADER, tag),)
