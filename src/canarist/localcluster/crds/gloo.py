"""Gloo Edge: `gloo.solo.io/v1` Upstream and `gateway.solo.io/v1` RouteTable and VirtualService.

Gloo's VirtualService shares its Kind name with Istio's (`networking.istio.io`) and App Mesh's
(`appmesh.k8s.aws`); the local control plane keys everything by group and plural, so all of them coexist.

Typed: an Upstream's `kube` and `static` specs and `discoveryMetadata`; a route's `matchers`, its
`routeAction` (single upstream, multi weighted destinations, upstream group), `delegateAction` (ref or
selector) and `directResponseAction`; a RouteTable's `routes` and `weight`; a VirtualService's
`virtualHost` (domains, routes), `displayName`.

Free-form (`x-kubernetes-preserve-unknown-fields`), as real Gloo CRDs are or because the sub-tree is too
large to type here: the rest of an Upstream's `spec` (dozens of upstream-type and policy fields: aws, azure,
consul, sslConfig, circuitBreakers, healthChecks, loadBalancerConfig, ...), every `options` block (route,
virtual host and destination plugins), `sslConfig`, `redirectAction`, destination specs and `status`
(Gloo's `namespacedStatuses`/`statuses` map).
"""

from __future__ import annotations

from canarist.localcluster.crds._schema import (
    AGE,
    Obj,
    array,
    boolean,
    crd,
    free,
    int32,
    int64,
    obj,
    port,
    root,
    string,
    string_map,
    strings,
    version,
)

GLOO_GROUP = "gloo.solo.io"
GATEWAY_GROUP = "gateway.solo.io"
VERSION = "v1"
CATEGORIES = ("solo-io", "gloo")
LABELS = {"app": "gloo"}


def _resource_ref() -> Obj:
    return obj({"name": string(), "namespace": string()})


def _value_matcher() -> Obj:
    return obj({"name": string(), "value": string(), "regex": boolean(), "invertMatch": boolean()})


def _matcher() -> Obj:
    return obj(
        {
            "prefix": string(),
            "exact": string(),
            "regex": string(),
            "connectMatcher": free(),
            "caseSensitive": boolean(),
            "headers": array(_value_matcher()),
            "queryParameters": array(obj({"name": string(), "value": string(), "regex": boolean()})),
            "methods": strings(),
        }
    )


def _destination() -> Obj:
    return obj(
        {
            "upstream": _resource_ref(),
            "kube": free(),
            "consul": free(),
            "destinationSpec": free(),
            "subset": obj({"values": string_map()}),
        }
    )


def _route() -> Obj:
    weighted = obj({"destination": _destination(), "weight": int64(minimum=0), "options": free()})
    return obj(
        {
            "name": string(),
            "matchers": array(_matcher()),
            "inheritableMatchers": boolean(),
            "inheritablePathMatchers": boolean(),
            "routeAction": obj(
                {
                    "single": _destination(),
                    "multi": obj({"destinations": array(weighted)}),
                    "upstreamGroup": _resource_ref(),
                    "clusterHeader": string(),
                    "dynamicForwardProxy": free(),
                }
            ),
            "redirectAction": free(),
            "directResponseAction": obj({"status": int64(minimum=100, maximum=599), "body": string()}),
            "delegateAction": obj(
                {
                    "name": string(),
                    "namespace": string(),
                    "ref": _resource_ref(),
                    "selector": obj(
                        {
                            "labels": string_map(),
                            "namespaces": strings(),
                            "expressions": array(
                                obj(
                                    {"key": string(), "operator": string(), "values": strings()},
                                    required=("key",),
                                )
                            ),
                        }
                    ),
                }
            ),
            "graphqlApiRef": _resource_ref(),
            "options": free(),
            "optionsConfigRefs": obj({"delegateOptions": array(_resource_ref())}),
        }
    )


def upstream_schema() -> Obj:
    spec = obj(
        {
            "kube": obj(
                {
                    "serviceName": string(),
                    "serviceNamespace": string(),
                    "servicePort": port(),
                    "selector": string_map(),
                    "serviceSpec": free(),
                    "subsetSpec": free(),
                }
            ),
            "static": obj(
                {
                    "hosts": array(
                        obj(
                            {
                                "addr": string(),
                                "port": port(),
                                "sniAddr": string(),
                                "loadBalancingWeight": int32(),
                            }
                        )
                    ),
                    "useTls": boolean(),
                    "autoSniRewrite": boolean(),
                    "serviceSpec": free(),
                }
            ),
            "discoveryMetadata": obj({"labels": string_map()}),
            "useHttp2": boolean(),
            "sslConfig": free(),
            "circuitBreakers": free(),
            "loadBalancerConfig": free(),
            "connectionConfig": free(),
            "healthChecks": array(free()),
            "outlierDetection": free(),
            "failover": free(),
        },
    )
    spec["x-kubernetes-preserve-unknown-fields"] = True  # the many upstream types and policies
    return root(spec, free())


def routetable_schema() -> Obj:
    spec = obj({"routes": array(_route()), "weight": int32()})
    return root(spec, free())


def virtualservice_schema() -> Obj:
    spec = obj(
        {
            "virtualHost": obj(
                {
                    "domains": strings(),
                    "routes": array(_route()),
                    "options": free(),
                    "optionsConfigRefs": free(),
                }
            ),
            "sslConfig": free(),
            "displayName": string(),
        }
    )
    return root(spec, free())


def gloo_crds() -> list[Obj]:
    def served(schema: Obj) -> list[Obj]:
        return [version(VERSION, schema, storage=True, status=True, columns=[AGE])]

    return [
        crd(
            GLOO_GROUP,
            "Upstream",
            "upstreams",
            served(upstream_schema()),
            short_names=("us",),
            categories=CATEGORIES,
            labels=LABELS,
        ),
        crd(
            GATEWAY_GROUP,
            "RouteTable",
            "routetables",
            served(routetable_schema()),
            short_names=("rt",),
            categories=CATEGORIES,
            labels=LABELS,
        ),
        crd(
            GATEWAY_GROUP,
            "VirtualService",
            "virtualservices",
            served(virtualservice_schema()),
            short_names=("vs",),
            categories=CATEGORIES,
            labels=LABELS,
        ),
    ]


CRDS: list[Obj] = gloo_crds()
