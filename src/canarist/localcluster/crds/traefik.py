"""Traefik (`traefik.io/v1alpha1`): IngressRoute and TraefikService, namespaced, without a status.

Typed: an IngressRoute's `entryPoints`, `routes[]` (match rule, kind, priority, syntax, services,
middleware references) and `tls` (secret, options, store, certificate resolver, domains); a TraefikService's
`weighted` (weighted services, sticky) and `mirroring` (main service, mirrors with their percentage). A
service reference (`name`, `namespace`, `kind` Service or TraefikService, `port` number or name, `weight`,
`scheme`, `passHostHeader`, `serversTransport`, `strategy`, `nativeLB`, `nodePortLB`).

Free-form (`x-kubernetes-preserve-unknown-fields`): `sticky`, `responseForwarding`, `healthCheck` and a
route's `observability`, as well as the TLS `domains` entries' details beyond `main` and `sans`.
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

GROUP = "traefik.io"
VERSION = "v1alpha1"
CATEGORIES = ("traefik",)


def _service_fields() -> dict[str, Obj]:
    return {
        "name": string(),
        "namespace": string(),
        "kind": string(enum=("Service", "TraefikService")),
        "port": int_or_string(),
        "weight": integer(minimum=0),
        "scheme": string(),
        "serversTransport": string(),
        "passHostHeader": boolean(),
        "strategy": string(),
        "nativeLB": boolean(),
        "nodePortLB": boolean(),
        "sticky": free(),
        "responseForwarding": free(),
        "healthCheck": free(),
    }


def _service() -> Obj:
    return obj(_service_fields(), required=("name",))


def ingressroute_schema() -> Obj:
    route = obj(
        {
            "match": string(),
            "kind": string(enum=("Rule",)),
            "priority": integer(minimum=0),
            "syntax": string(enum=("v3", "v2")),
            "services": array(_service()),
            "middlewares": array(obj({"name": string(), "namespace": string()}, required=("name",))),
            "observability": free(),
        },
        required=("match",),
    )
    tls = obj(
        {
            "secretName": string(),
            "options": obj({"name": string(), "namespace": string()}, required=("name",)),
            "store": obj({"name": string(), "namespace": string()}, required=("name",)),
            "certResolver": string(),
            "domains": array(obj({"main": string(), "sans": strings()})),
        }
    )
    spec = obj({"entryPoints": strings(), "routes": array(route), "tls": tls}, required=("routes",))
    return root(spec, required=("metadata", "spec"))


def traefikservice_schema() -> Obj:
    mirror = obj({**_service_fields(), "percent": integer(minimum=0, maximum=100)}, required=("name",))
    spec = obj(
        {
            "weighted": obj({"services": array(_service()), "sticky": free()}),
            "mirroring": obj(
                {
                    **_service_fields(),
                    "mirrors": array(mirror),
                    "maxBodySize": integer(),
                    "mirrorBody": boolean(),
                },
                required=("name",),
            ),
        }
    )
    return root(spec, required=("metadata", "spec"))


def traefik_crds() -> list[Obj]:
    return [
        crd(
            GROUP,
            "IngressRoute",
            "ingressroutes",
            [version(VERSION, ingressroute_schema(), storage=True, columns=[AGE])],
            categories=CATEGORIES,
        ),
        crd(
            GROUP,
            "TraefikService",
            "traefikservices",
            [version(VERSION, traefikservice_schema(), storage=True, columns=[AGE])],
            categories=CATEGORIES,
        ),
    ]


CRDS: list[Obj] = traefik_crds()
