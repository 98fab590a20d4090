"""The Knative translator: Knative Services (``serving.knative.dev/v1``) as Kourier, Knative's Envoy-based
ingress, programs its gateway.

Knative routes a Service's requests by the split its controller applied, ``status.traffic`` (not
``spec.traffic``, which may name revisions that are not ready yet): that is what this translator reads.

* **Hosts.** Each Knative Service with a ``status.traffic`` gets one gateway virtual host,
  ``knative.<namespace>.<name>``, for the host of its ``status.url`` (``podinfo.test.example.com``) and its
  cluster-local names (``podinfo.test``, ``podinfo.test.svc``, ``podinfo.test.svc.cluster.local``: Kourier's
  internal gateway serves them; the sandbox has one gateway listener). A traffic entry with a ``tag`` also
  gets the host ``<tag>-<name>.<namespace>.<domain>`` for its revision alone, as Knative's tagged routes.
* **Split.** The entries with a percent above 0 are summed per revision (Knative sends a revision named twice
  the sum of its shares) into weighted clusters; a Service whose entries sum to 0 gets no host (Envoy
  answers 404).
* **Clusters** are named as Kourier names a revision's cluster in Envoy's stats, ``<namespace>/<revision>``
  (`knative_cluster_name`), over the endpoints of the revision's Service ``<revision>`` (port 80, which the
  Knative stand-in of the local control plane creates with the revision's Deployment), so Envoy's own
  ``envoy_cluster_upstream_rq{envoy_cluster_name=~"test/podinfo-00002"}`` series answer the ``knative``
  builtin queries. A revision without its Service routes to a cluster that does not exist (Envoy answers 503).
* **Headers**: every request carries ``Knative-Serving-Namespace`` and ``Knative-Serving-Revision`` to its
  revision, as Kourier adds them.

Not translated: route timeouts and retries, ``visibility: cluster-local`` labels, domain mappings, TLS, and
the activator (scale to zero). Knative Services have no status of Kourier's to write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from canarist.kube import resources as kinds
from canarist.kube.resources import ResourceKind
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj, Program, World, name_of, namespace_of, sort_key

__all__ = ["REVISION_PORT", "KnativeTranslator", "knative_cluster_name", "traffic_split"]

#: the port of a revision's Service.
REVISION_PORT = 80
NAMESPACE_HEADER = "knative-serving-namespace"
REVISION_HEADER = "knative-serving-revision"


def knative_cluster_name(namespace: str, revision: str) -> str:
    """The name Kourier's cluster for a revision carries in Envoy's stats: ``test/podinfo-00002``."""
    return f"{namespace}/{revision}"


def _percent(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def traffic_split(traffic: Any) -> list[tuple[str, int]]:
    """``(revision, percent)`` of a ``status.traffic`` list, revisions in first-seen order, shares summed,
    entries without a revision name or a positive percent left out."""
    split: dict[str, int] = {}
    for entry in traffic if isinstance(traffic, list) else []:
        if not isinstance(entry, Mapping) or not entry.get("revisionName"):
            continue
        percent = _percent(entry.get("percent"))
        if percent:
            revision = str(entry["revisionName"])
            split[revision] = split.get(revision, 0) + percent
    return list(split.items())


def _url_host(service: Mapping[str, Any]) -> str:
    status = service.get("status")
    url = status.get("url") if isinstance(status, Mapping) else None
    return (urlsplit(url).hostname or "") if isinstance(url, str) else ""


class KnativeTranslator:
    name = "knative"
    kinds: tuple[ResourceKind, ...] = (kinds.KNATIVE_SERVICE,)

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        program = Program()
        for service in sorted(objects.get(kinds.KNATIVE_SERVICE, ()), key=sort_key):
            namespace, name = namespace_of(service), name_of(service)
            status = service.get("status")
            traffic = status.get("traffic") if isinstance(status, Mapping) else None
            split = traffic_split(traffic)
            if not split:
                continue
            host = _url_host(service)
            local = [
                f"{name}.{namespace}",
                f"{name}.{namespace}.svc",
                f"{name}.{namespace}.svc.cluster.local",
            ]
            program.gateway_hosts.append(
                {
                    "name": f"knative.{namespace}.{name}",
                    "domains": list(dict.fromkeys([*([host] if host else []), *local])),
                    "routes": [self._route(f"knative.{namespace}.{name}", namespace, split, world)],
                }
            )
            domain = host.removeprefix(f"{name}.") if host.startswith(f"{name}.") else ""
            for entry in traffic if isinstance(traffic, list) else []:
                if not isinstance(entry, Mapping) or not entry.get("tag") or not entry.get("revisionName"):
                    continue
                tagged = f"{entry['tag']}-{name}.{domain}" if domain else ""
                if tagged:
                    route_name = f"knative.{namespace}.{name}.{entry['tag']}"
                    program.gateway_hosts.append(
                        {
                            "name": route_name,
                            "domains": [tagged],
                            "routes": [
                                self._route(route_name, namespace, [(str(entry["revisionName"]), 100)], world)
                            ],
                        }
                    )
        return program

    def _route(self, name: str, namespace: str, split: list[tuple[str, int]], world: World) -> Obj:
        backends = [
            e.Backend(
                self._cluster(namespace, revision, world),
                percent,
                (e.header_set(NAMESPACE_HEADER, namespace), e.header_set(REVISION_HEADER, revision)),
            )
            for revision, percent in split
        ]
        action = e.route_action(backends, weight_header=world.weight_header, timeout=0)
        return e.route(e.route_match(), action, name=name)

    @staticmethod
    def _cluster(namespace: str, revision: str, world: World) -> str:
        cluster = knative_cluster_name(namespace, revision)
        if REVISION_PORT not in world.ports(namespace, revision):
            return f"{cluster}.unknown"  # no such cluster: Envoy answers 503
        return world.alias_cluster(cluster, namespace, revision, REVISION_PORT)
