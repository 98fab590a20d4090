"""The Skipper translator: ``networking.k8s.io/v1`` Ingresses as Skipper's Kubernetes data client serves them.

Skipper turns every rule path of an Ingress of its class into routes: ``Host`` of the rule's host, a path
predicate by pathType (``Prefix``: a path subtree, element-wise; ``Exact``: the exact path;
``ImplementationSpecific``: a plain character prefix) and the predicates of the Ingress's
``zalando.org/skipper-predicate`` annotation. When one host+path of an Ingress has several Service backends,
the ``zalando.org/backend-weights`` annotation (JSON ``{"<service>": weight}``) splits the path's traffic
between them (a Service the annotation does not name gets nothing; without the annotation, or when the
named weights add up to 0, the backends share equally). Here:

* each host becomes a gateway virtual host ``skipper.<host>`` (a rule without a host: the catch-all ``*``);
  within it the routes are ordered as Skipper picks them: Exact paths, then the longer paths, then, for the
  same path, the route with the higher priority (its number of predicates plus the ``n`` of its
  ``Weight(n)`` predicates), then the older Ingress (then namespace/name);
* predicates understood: ``True()``, ``False()`` (the Ingress's routes are disabled), ``Weight(n)``,
  ``Header("name", "value")``, ``HeaderRegexp("name", "regex")`` (searched in the value, unanchored, as
  Go's regexp does) and ``Method("GET")``, joined with ``&&``. An Ingress whose predicate annotation has
  anything else is not served (Skipper refuses a route it cannot parse);
* backends are the Service ports' clusters (``service.port.number`` or ``.name``); a missing Service or port
  is a cluster that does not exist (Envoy answers 503);
* every routed request carries :data:`canarist.sandbox.telemetry.SKIPPER_ROUTE_HEADER` = the id of the route
  of its backend, ``kube_<namespace>__<ingress>__<host>__<path>__<service>`` with every non-word character
  replaced by ``_`` (Skipper's route ids), so the demo apps export Skipper's series under that ``route``;
* the route timeout is 60 s (Skipper's default backend timeout).

The class: an Ingress is served when ``spec.ingressClassName`` or the ``kubernetes.io/ingress.class``
annotation names the translator's class (``skipper``). Unlike Skipper, an Ingress without a class is left to
the NGINX translator (the sandbox has one controller for those). Not supported: ``spec.defaultBackend``,
TLS, Skipper's filters (``zalando.org/skipper-filter``) and east-west routes. Ingress status is not written
(Skipper does not write it either).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from canarist.kube.resources import INGRESS, ResourceKind
from canarist.sandbox import telemetry
from canarist.sandbox.dataplane import envoy as e
from canarist.sandbox.dataplane.base import Obj, Program, World, meta, name_of, namespace_of, spec_of

__all__ = [
    "BACKEND_WEIGHTS",
    "CLASS_ANNOTATION",
    "DEFAULT_TIMEOUT_S",
    "PREDICATE",
    "Predicates",
    "SkipperTranslator",
    "parse_predicates",
    "route_id",
]

BACKEND_WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_TIMEOUT_S = 60.0

_PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
_NON_WORD = re.compile(r"\W")
_CALL = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*)\s*\((.*?)\)\s*$", re.S)
_ARG = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|(-?[0-9]+(?:\.[0-9]+)?))\s*(?:,|$)', re.S)


def route_id(namespace: str, ingress: str, host: str, path: str, service: str) -> str:
    """Skipper's id of an Ingress route: ``kube_test__podinfo__app_example_com____podinfo``."""
    parts = [_NON_WORD.sub("_", part) for part in (namespace, ingress, host, path, service)]
    return "kube_" + "__".join(parts)


@dataclass
class Predicates:
    """What the sandbox routes of a Skipper predicate expression."""

    disabled: bool = False
    weight: int = 0
    count: int = 0
    headers: list[Obj] = field(default_factory=list)


def parse_predicates(text: str) -> Predicates | None:
    """``Weight(100) && Header("x", "y")`` → :class:`Predicates`; ``None`` when it has a predicate the
    sandbox does not know or is not a predicate expression."""
    out = Predicates()
    if not text.strip():
        return out
    for term in text.split("&&"):
        call = _CALL.match(term)
        if call is None:
            return None
        name, raw = call.group(1), call.group(2)
        args: list[str | float] = []
        rest = raw.strip()
        while rest:
            arg = _ARG.match(rest)
            if arg is None:
                return None
            args.append(json.loads(f'"{arg.group(1)}"') if arg.group(1) is not None else float(arg.group(2)))
            rest = rest[arg.end() :].strip()
        out.count += 1
        if name == "True" and not args:
            continue
        if name == "False" and not args:
            out.disabled = True
        elif name == "Weight" and len(args) == 1 and isinstance(args[0], float):
            out.weight += int(args[0])
        elif name == "Header" and len(args) == 2 and all(isinstance(a, str) for a in args):
            out.headers.append(e.header_match(str(args[0]), "exact", str(args[1])))
        elif name == "HeaderRegexp" and len(args) == 2 and all(isinstance(a, str) for a in args):
            out.headers.append(e.header_match(str(args[0]), "regex", f".*(?:{args[1]}).*"))
        elif name == "Method" and len(args) == 1 and isinstance(args[0], str):
            out.headers.append(e.header_match(":method", "exact", str(args[0]).upper()))
        else:
            return None
    return out


@dataclass(frozen=True)
class _Backend:
    service: str
    port: int | str


@dataclass
class _Path:
    ingress: Mapping[str, Any]
    host: str
    path: str
    path_type: str
    predicates: Predicates
    weights: Mapping[str, float] | None
    backends: list[_Backend] = field(default_factory=list)


class SkipperTranslator:
    """``ingress_class``: the class served (Skipper's ``-kubernetes-ingress-class``)."""

    name = "skipper"
    kinds: tuple[ResourceKind, ...] = (INGRESS,)

    def __init__(self, ingress_class: str = "skipper") -> None:
        self.ingress_class = ingress_class

    def serves(self, obj: Mapping[str, Any]) -> bool:
        annotations = meta(obj).get("annotations")
        by_annotation = annotations.get(CLASS_ANNOTATION) if isinstance(annotations, Mapping) else None
        if by_annotation:
            return str(by_annotation) == self.ingress_class
        return str(spec_of(obj).get("ingressClassName") or "") == self.ingress_class

    def program(self, objects: Mapping[ResourceKind, Sequence[Obj]], world: World) -> Program:
        ingresses = sorted((i for i in objects.get(INGRESS, ()) if self.serves(i)), key=_age_key)
        hosts: dict[str, list[tuple[int, _Path]]] = {}
        for age, ingress in enumerate(ingresses):
            annotations = meta(ingress).get("annotations")
            annotations = annotations if isinstance(annotations, Mapping) else {}
            predicates = parse_predicates(str(annotations.get(PREDICATE) or ""))
            if predicates is None or predicates.disabled:
                continue
            weights = _weights(str(annotations.get(BACKEND_WEIGHTS) or ""))
            paths: dict[tuple[str, str, str], _Path] = {}
            for host, path, path_type, backend in _paths(ingress):
                entry = paths.setdefault(
                    (host, path, path_type), _Path(ingress, host, path, path_type, predicates, weights)
                )
                if backend not in entry.backends:
                    entry.backends.append(backend)
            for entry in paths.values():
                hosts.setdefault(entry.host, []).append((age, entry))
        program = Program()
        for host in sorted(hosts):
            ordered = [p for _, p in sorted(hosts[host], key=_order)]
            routes = [self._route(p, index, world) for index, p in enumerate(ordered)]
            program.gateway_hosts.append(
                {"name": f"skipper.{host or '_'}", "domains": [host or "*"], "routes": routes}
            )
        return program

    def _route(self, entry: _Path, index: int, world: World) -> Obj:
        ingress = entry.ingress
        namespace, name = namespace_of(ingress), name_of(ingress)
        weights = [_weight(entry.weights, b.service) for b in entry.backends]
        if sum(weights) <= 0:
            weights = [1.0] * len(entry.backends)
        scale = 1000 if any(w != int(w) for w in weights) else 1
        backends = [
            e.Backend(
                _cluster(namespace, backend, world),
                round(weight * scale),
                (
                    e.header_set(
                        telemetry.SKIPPER_ROUTE_HEADER,
                        route_id(namespace, name, entry.host, entry.path, backend.service),
                    ),
                ),
            )
            for backend, weight in zip(entry.backends, weights, strict=True)
            if round(weight * scale) > 0
        ]
        return e.route(
            e.route_match(_path_match(entry.path, entry.path_type), headers=entry.predicates.headers),
            e.route_action(backends, weight_header=world.weight_header, timeout=DEFAULT_TIMEOUT_S),
            name=f"skipper.{namespace}.{name}.{index}",
        )


# ------------------------------------------------------------------------------------------------ helpers


def _age_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(meta(obj).get("creationTimestamp") or ""), namespace_of(obj), name_of(obj))


def _order(item: tuple[int, _Path]) -> tuple[int, int, int, int]:
    age, entry = item
    priority = entry.predicates.count + entry.predicates.weight
    return (0 if entry.path_type == "Exact" else 1, -len(entry.path.rstrip("/")), -priority, age)


def _weights(text: str) -> Mapping[str, float] | None:
    if not text.strip():
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if not isinstance(parsed, Mapping):
        return None
    return {
        str(k): float(v)
        for k, v in parsed.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
    }


def _weight(weights: Mapping[str, float] | None, service: str) -> float:
    return 1.0 if weights is None else weights.get(service, 0.0)


def _paths(ingress: Mapping[str, Any]) -> list[tuple[str, str, str, _Backend]]:
    """``(host, path, pathType, backend)`` of every rule path with a Service backend."""
    out: list[tuple[str, str, str, _Backend]] = []
    for rule in spec_of(ingress).get("rules") or []:
        if not isinstance(rule, Mapping):
            continue
        host = str(rule.get("host") or "").strip().lower()
        http = rule.get("http")
        for item in (http.get("paths") if isinstance(http, Mapping) else None) or []:
            if not isinstance(item, Mapping):
                continue
            backend = item.get("backend")
            service = backend.get("service") if isinstance(backend, Mapping) else None
            if not isinstance(service, Mapping) or not service.get("name"):
                continue
            port_spec = service.get("port")
            port: int | str = 0
            if isinstance(port_spec, Mapping):
                if port_spec.get("number"):
                    port = int(port_spec["number"])
                elif port_spec.get("name"):
                    port = str(port_spec["name"])
            path_type = str(item.get("pathType") or "ImplementationSpecific")
            if path_type not in _PATH_TYPES:
                continue
            out.append((host, str(item.get("path") or "/"), path_type, _Backend(str(service["name"]), port)))
    return out


def _path_match(path: str, path_type: str) -> Obj:
    if path_type == "Exact":
        return e.path_match("exact", path)
    if path_type == "Prefix":
        return e.path_match("path_separated_prefix", path)
    return e.path_match("prefix", path)


def _cluster(namespace: str, backend: _Backend, world: World) -> str:
    port = world.port(namespace, backend.service, backend.port or None)
    if port is None:
        return f"skipper|{namespace}-{backend.service}-{backend.port}"  # no such cluster: Envoy answers 503
    return world.service_cluster(namespace, backend.service, port)
