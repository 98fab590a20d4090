"""`meta.k8s.io/v1` Table output: the columns `kubectl get` prints."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from canarist.localcluster.resources import PrinterColumn, ResourceType

Obj = dict[str, Any]
Cells = list[Any]

# ------------------------------------------------------------------ a small JSONPath for printer columns

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$@]+)
      |\[\s*(?P<index>-?\d+|\*)\s*\]
      |\[\s*['"](?P<quoted>(?:[^'"\\]|\\.)*)['"]\s*\]
      |\[\?\(\s*@\.(?P<fpath>[A-Za-z0-9_.\-]+)\s*(?P<fop>==|!=)\s*['"]?(?P<fval>[^'")]*)['"]?\s*\)\]
      |\.\[""",
    re.VERBOSE,
)


def jsonpath(obj: Any, path: str) -> list[Any]:
    """All values a simple JSONPath (`.a.b[0]`, `[*]`, `['k.x']`, `[?(@.type=="Ready")]`) selects."""
    expr = path.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1]
    if expr.startswith("$"):
        expr = expr[1:]
    values: list[Any] = [obj]
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            return []
        pos = match.end()
        nxt: list[Any] = []
        for value in values:
            if match.group("field") is not None or match.group("quoted") is not None:
                name = match.group("field") if match.group("field") is not None else match.group("quoted")
                name = name.replace("\\.", ".")
                if isinstance(value, dict) and name in value:
                    nxt.append(value[name])
            elif match.group("index") is not None and isinstance(value, list):
                if match.group("index") == "*":
                    nxt.extend(value)
                else:
                    n = int(match.group("index"))
                    if -len(value) <= n < len(value):
                        nxt.append(value[n])
            elif match.group("fpath") is not None and isinstance(value, list):
                for item in value:
                    current: Any = item
                    for piece in match.group("fpath").split("."):
                        current = current.get(piece) if isinstance(current, dict) else None
                    equal = str(current) == match.group("fval") if current is not None else False
                    if equal == (match.group("fop") == "=="):
                        nxt.append(item)
        values = nxt
    return values


# ------------------------------------------------------------------ formatting


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    secs = int(seconds)
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        rest = secs % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def age(timestamp: Any) -> str:
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        when = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - when).total_seconds())


def _created(obj: Obj) -> str:
    return age((obj.get("metadata") or {}).get("creationTimestamp"))


def _get(obj: Any, *path: str) -> Any:
    for piece in path:
        obj = obj.get(piece) if isinstance(obj, dict) else None
    return obj


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _containers(obj: Obj) -> list[Obj]:
    return [c for c in _get(obj, "spec", "template", "spec", "containers") or [] if isinstance(c, dict)]


def _selector(obj: Obj) -> str:
    labels = _get(obj, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "<none>"


# ------------------------------------------------------------------ built-in printers

Column = tuple[str, str, int]  # name, type, priority
Printer = tuple[list[Column], Callable[[Obj], Cells]]


def _deployment(obj: Obj) -> Cells:
    status = obj.get("status") or {}
    containers = _containers(obj)
    return [
        obj["metadata"]["name"],
        f"{_int(status.get('readyReplicas'))}/{_int(_get(obj, 'spec', 'replicas'))}",
        _int(status.get("updatedReplicas")),
        _int(status.get("availableReplicas")),
        _created(obj),
        ",".join(str(c.get("name")) for c in containers),
        ",".join(str(c.get("image")) for c in containers),
        _selector(obj),
    ]


def _daemonset(obj: Obj) -> Cells:
    status = obj.get("status") or {}
    node_selector = _get(obj, "spec", "template", "spec", "nodeSelector") or {}
    containers = _containers(obj)
    return [
        obj["metadata"]["name"],
        _int(status.get("desiredNumberScheduled")),
        _int(status.get("currentNumberScheduled")),
        _int(status.get("numberReady")),
        _int(status.get("updatedNumberScheduled")),
        _int(status.get("numberAvailable")),
        ",".join(f"{k}={v}" for k, v in node_selector.items()) or "<none>",
        _created(obj),
        ",".join(str(c.get("name")) for c in containers),
        ",".join(str(c.get("image")) for c in containers),
        _selector(obj),
    ]


def _external_ips(obj: Obj) -> str:
    """EXTERNAL-IP as kubectl prints it: a LoadBalancer's ingress addresses (``<pending>`` until it has
    one) and the Service's ``externalIPs``."""
    spec = obj.get("spec") or {}
    addresses = [str(ip) for ip in spec.get("externalIPs") or []]
    if spec.get("type") == "LoadBalancer":
        ingress = _get(obj, "status", "loadBalancer", "ingress") or []
        found = [str(i.get("ip") or i.get("hostname")) for i in ingress if isinstance(i, dict)]
        found = [a for a in found if a and a != "None"]
        return ",".join(found + addresses) or "<pending>"
    return ",".join(addresses) or "<none>"


def _service(obj: Obj) -> Cells:
    spec = obj.get("spec") or {}
    ports = ",".join(
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
    external = _external_ips(obj)
    return [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", "<none>"),
        external,
        ports or "<none>",
        _created(obj),
        selector or "<none>",
    ]


def _pod_status(obj: Obj) -> str:
    """The STATUS column as kubectl prints it: a container's waiting or terminated reason over the phase
    (``ErrImagePull``, ``CrashLoopBackOff``, ``Error``, ``ExitCode:2``), ``Terminating`` while deleted."""
    status = _get(obj, "status") or {}
    reason = str(status.get("reason") or status.get("phase") or "Pending")
    for container in reversed(status.get("containerStatuses") or []):
        state = (container.get("state") if isinstance(container, dict) else None) or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if isinstance(waiting, dict) and waiting.get("reason"):
            reason = str(waiting["reason"])
        elif isinstance(terminated, dict):
            if terminated.get("reason"):
                reason = str(terminated["reason"])
            elif _int(terminated.get("signal")):
                reason = f"Signal:{terminated['signal']}"
            else:
                reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
    if _get(obj, "metadata", "deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod(obj: Obj) -> Cells:
    statuses = _get(obj, "status", "containerStatuses") or []
    ready = sum(1 for s in statuses if isinstance(s, dict) and s.get("ready"))
    total = len(_get(obj, "spec", "containers") or [])
    restarts = sum(_int(s.get("restartCount")) for s in statuses if isinstance(s, dict))
    return [
        obj["metadata"]["name"],
        f"{ready}/{total}",
        _pod_status(obj),
        restarts,
        _created(obj),
        _get(obj, "status", "podIP") or "<none>",
        _get(obj, "spec", "nodeName") or "<none>",
    ]


def _event(obj: Obj) -> Cells:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    last = (
        obj.get("lastTimestamp")
        or obj.get("eventTime")
        or (obj.get("metadata") or {}).get("creationTimestamp")
    )
    return [
        age(last),
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        obj.get("message") or obj.get("note", ""),
    ]


def _hpa(obj: Obj) -> Cells:
    spec = obj.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [
        obj["metadata"]["name"],
        f"{ref.get('kind')}/{ref.get('name')}",
        "<unknown>",
        spec.get("minReplicas", 1),
        spec.get("maxReplicas", 0),
        _int(_get(obj, "status", "currentReplicas")),
        _created(obj),
    ]


def _ingress(obj: Obj) -> Cells:
    spec = obj.get("spec") or {}
    hosts = [str(r.get("host")) for r in spec.get("rules") or [] if isinstance(r, dict) and r.get("host")]
    addresses = [
        str(i.get("ip") or i.get("hostname"))
        for i in _get(obj, "status", "loadBalancer", "ingress") or []
        if isinstance(i, dict) and (i.get("ip") or i.get("hostname"))
    ]
    return [
        obj["metadata"]["name"],
        spec.get("ingressClassName") or "<none>",
        ",".join(hosts) or "*",
        ",".join(addresses),
        "80, 443" if spec.get("tls") else "80",
        _created(obj),
    ]


def _ingress_class(obj: Obj) -> Cells:
    spec = obj.get("spec") or {}
    parameters = spec.get("parameters")
    shown = "<none>"
    if isinstance(parameters, dict):
        group = f".{parameters['apiGroup']}" if parameters.get("apiGroup") else ""
        shown = f"{parameters.get('kind')}{group}/{parameters.get('name')}"
    return [obj["metadata"]["name"], spec.get("controller", ""), shown, _created(obj)]


# The built-in kinds' printers, by `Kind.group` (`Kind` for the core group; both Event kinds print alike).
PRINTERS: dict[str, Printer] = {
    "Deployment.apps": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _deployment,
    ),
    "DaemonSet.apps": (
        [
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        _daemonset,
    ),
    "Service": (
        [
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        _service,
    ),
    "Pod": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        _pod,
    ),
    "Event": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _event,
    ),
    "HorizontalPodAutoscaler.autoscaling": (
        [
            ("Name", "string", 0),
            ("Reference", "string", 0),
            ("Targets", "string", 0),
            ("MinPods", "string", 0),
            ("MaxPods", "integer", 0),
            ("Replicas", "integer", 0),
            ("Age", "string", 0),
        ],
        _hpa,
    ),
    "Ingress.networking.k8s.io": (
        [
            ("Name", "string", 0),
            ("Class", "string", 0),
            ("Hosts", "string", 0),
            ("Address", "string", 0),
            ("Ports", "string", 0),
            ("Age", "string", 0),
        ],
        _ingress,
    ),
    "IngressClass.networking.k8s.io": (
        [
            ("Name", "string", 0),
            ("Controller", "string", 0),
            ("Parameters", "string", 0),
            ("Age", "string", 0),
        ],
        _ingress_class,
    ),
    "ConfigMap": (
        [("Name", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)],
        lambda o: [
            o["metadata"]["name"],
            len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            _created(o),
        ],
    ),
    "Secret": (
        [("Name", "string", 0), ("Type", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)],
        lambda o: [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data") or {}), _created(o)],
    ),
    "Namespace": (
        [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
        lambda o: [o["metadata"]["name"], _get(o, "status", "phase") or "Active", _created(o)],
    ),
    "Lease.coordination.k8s.io": (
        [("Name", "string", 0), ("Holder", "string", 0), ("Age", "string", 0)],
        lambda o: [o["metadata"]["name"], _get(o, "spec", "holderIdentity") or "", _created(o)],
    ),
    "CustomResourceDefinition.apiextensions.k8s.io": (
        [("Name", "string", 0), ("Created At", "date", 0)],
        lambda o: [o["metadata"]["name"], (o.get("metadata") or {}).get("creationTimestamp")],
    ),
}


def _default_printer() -> Printer:
    return ([("Name", "string", 0), ("Age", "string", 0)], lambda o: [o["metadata"]["name"], _created(o)])


def _cell(column: PrinterColumn, obj: Obj) -> Any:
    found = jsonpath(obj, column.json_path)
    if not found:
        return None
    value = found[0]
    if column.type == "date":
        return age(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if column.type == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return value


def printer_for(rt: ResourceType) -> Printer:
    if rt.printer_columns is not None:
        columns: list[Column] = [("Name", "string", 0)]
        columns.extend((c.name, c.type, c.priority) for c in rt.printer_columns)
        defs = rt.printer_columns

        def cells(obj: Obj) -> Cells:
            return [obj["metadata"]["name"], *(_cell(c, obj) for c in defs)]

        return columns, cells
    if rt.is_custom:
        return _default_printer()
    if rt.is_builtin("Event.events.k8s.io"):
        return PRINTERS["Event"]
    return PRINTERS.get(rt.qualified_kind, _default_printer())


def column_definitions(rt: ResourceType) -> list[Obj]:
    columns, _ = printer_for(rt)
    descriptions = {c.name: c.description for c in rt.printer_columns or ()}
    return [
        {
            "name": name,
            "type": "string" if kind == "date" and rt.printer_columns is None else kind,
            "format": "name" if name == "Name" else "",
            "description": descriptions.get(name, name),
            "priority": priority,
        }
        for name, kind, priority in columns
    ]


def partial_metadata(obj: Obj) -> Obj:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata", {}),
    }


def to_table(
    rt: ResourceType,
    objects: list[Obj],
    resource_version: str,
    include_object: str,
    with_columns: bool = True,
) -> Obj:
    _, cells = printer_for(rt)
    rows = []
    for obj in objects:
        row: Obj = {"cells": cells(obj)}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": column_definitions(rt) if with_columns else [],
        "rows": rows,
    }
