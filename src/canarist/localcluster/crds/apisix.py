"""APISIX (`apisix.apache.org/v2`): ApisixRoute, namespaced, without a status.

Typed: `ingressClassName` and the `http` rules: `name`, `priority`, `timeout` (connect, send, read), `match`
(`hosts`, `paths`, `methods`, `remoteAddrs`, `exprs` with their subject, operator and value(s)),
`backends` (`serviceName`, `servicePort` number or name, `resolveGranularity` endpoint or service,
`weight`, `subset`), `upstreams` (ApisixUpstream references with a weight), `websocket` and
`plugin_config_name`.

Free-form (`x-kubernetes-preserve-unknown-fields`): a rule's `plugins` entries' `config`, its
`authentication`, and the `stream` rules.
"""

from __future__ import annotations

from canarist.localcluster.crds._schema import (
    AGE,
    Obj,
    array,
    boolean,
    crd,
    free,
    int_or_string,
    integer,
    obj,
    root,
    string,
    strings,
    version,
)

GROUP = "apisix.apache.org"
VERSION = "v2"
CATEGORIES = ("apisix-ingress-controller",)


def apisixroute_schema() -> Obj:
    expr = obj(
        {
            "subject": obj(
                {"scope": string(enum=("Header", "Query", "Path", "Cookie", "Variable")), "name": string()},
                required=("scope",),
            ),
            "op": string(),
            "value": string(),
            "set": strings(),
        },
        required=("subject", "op"),
    )
    match = obj(
        {
            "hosts": strings(),
            "paths": strings(),
            "methods": strings(),
            "remoteAddrs": strings(),
            "exprs": array(expr),
            "filter_func": string(),
        },
        required=("paths",),
    )
    backend = obj(
        {
            "serviceName": string(),
            "servicePort": int_or_string(),
            "resolveGranularity": string(enum=("endpoint", "service")),
            "weight": integer(minimum=0),
            "subset": string(),
        },
        required=("serviceName",),
    )
    plugin = obj(
        {"name": string(), "enable": boolean(), "config": free(), "secretRef": string()},
        required=("name", "enable"),
    )
    rule = obj(
        {
            "name": string(),
            "priority": integer(),
            "timeout": obj({"connect": string(), "send": string(), "read": string()}),
            "match": match,
            "backends": array(backend),
            "upstreams": array(obj({"name": string(), "weight": integer(minimum=0)}, required=("name",))),
            "websocket": boolean(),
            "plugin_config_name": string(),
            "plugin_config_namespace": string(),
            "plugins": array(plugin),
            "authentication": free(),
        },
        required=("name", "match"),
    )
    spec = obj({"ingressClassName": string(), "http": array(rule), "stream": array(free())})
    return root(spec, required=("metadata", "spec"))


def apisix_crds() -> list[Obj]:
    return [
        crd(
            GROUP,
            "ApisixRoute",
            "apisixroutes",
            [version(VERSION, apisixroute_schema(), storage=True, columns=[AGE])],
            categories=CATEGORIES,
            short_names=("ar",),
        )
    ]


CRDS: list[Obj] = apisix_crds()
