"""Pod selector label and port discovery (Flagger's ``GetMetadata``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from canarist.api import Canary
from canarist.workloads._meta import get_path, go_list

#: Flagger's ``-selector-labels`` default.
DEFAULT_SELECTOR_LABELS: tuple[str, ...] = ("app", "name", "app.kubernetes.io/name")
#: sidecar containers whose ports are never discovered.
PROXY_CONTAINERS = frozenset({"istio-proxy", "envoy"})


class SelectorError(ValueError):
    """The target has none of the selector labels in ``spec.selector.matchLabels``."""


def find_selector(
    kind: str, target: Mapping[str, Any], selector_labels: Sequence[str] = DEFAULT_SELECTOR_LABELS
) -> tuple[str, str]:
    """The first of ``selector_labels`` present in the target's ``spec.selector.matchLabels``, and its value.

    Raises :class:`SelectorError` with Flagger's message, e.g.
    ``deployment podinfo.test spec.selector.matchLabels must contain one of [app name app.kubernetes.io/name]``.
    """
    match_labels = get_path(target, "spec", "selector", "matchLabels") or {}
    for label in selector_labels:
        if label in match_labels:
            return label, str(match_labels[label])
    name = get_path(target, "metadata", "name") or ""
    namespace = get_path(target, "metadata", "namespace") or ""
    raise SelectorError(
        f"{kind.lower()} {name}.{namespace} spec.selector.matchLabels must contain one of "
        f"{go_list(selector_labels)}"
    )


def discover_ports(canary: Canary, target: Mapping[str, Any]) -> dict[str, int]:
    """The extra service ports of ``service.portDiscovery``: every container port of the pod template.

    Skips the ``istio-proxy``/``envoy`` containers and the main port (the container port equal to
    ``targetPort``, or named ``targetPort`` when it is a name, or equal to ``port`` when no targetPort is
    set). A port is named after the container port, or ``tcp-<container>-<index>`` when unnamed.
    Returns ``{}`` when port discovery is off.
    """
    service = canary.spec.service
    if not service.port_discovery:
        return {}
    target_port = service.target_port
    ports: dict[str, int] = {}
    containers = get_path(target, "spec", "template", "spec", "containers") or []
    for container in containers:
        cname = str(container.get("name", ""))
        if cname in PROXY_CONTAINERS:
            continue
        for index, port in enumerate(container.get("ports") or []):
            number = int(port.get("containerPort", 0))
            pname = str(port.get("name") or "")
            if target_port in (None, "", 0):
                if number == service.port:
                    continue
            elif isinstance(target_port, int):
                if number == target_port:
                    continue
            elif pname == target_port or (target_port.isdigit() and number == int(target_port)):
                continue
            ports[pname or f"tcp-{cname}-{index}"] = number
    return ports
