"""Ingress and the routing providers' CRDs (Gateway API, SMI, App Mesh, Contour, Gloo) with real kubectl.

One local control plane for the whole module (every provider's CRDs installed); each test works in its own
namespace. The objects are shaped like the ones Flagger's tutorials apply and its routers write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarist.cli.cmd_localcluster import parse_provider_crds
from canarist.localcluster import LocalClusterThread
from canarist.localcluster.crds import PROVIDER_CRDS, provider_crds, provider_names
from tests.fixtures.localcluster import LocalClusterHandle, kubectl_path

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClusterHandle]:
    binary = kubectl_path()
    home = tmp_path_factory.mktemp("provider-crds")
    thread = LocalClusterThread(readiness_delay=0.05, install_provider_crds=True).start()
    try:
        kubeconfig = thread.write_kubeconfig(home / "kubeconfig")
        yield LocalClusterHandle(thread.url, kubeconfig, thread.cluster, thread, home / "kube-cache", binary)
    finally:
        thread.stop()


def _namespace(cluster: LocalClusterHandle, name: str) -> str:
    cluster.kubectl("create", "namespace", name, check=True)
    return name


def _apply(cluster: LocalClusterHandle, namespace: str, *docs: Obj) -> str:
    text = yaml.safe_dump_all(docs, sort_keys=False)
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=text, check=True).stdout


def _rejected(cluster: LocalClusterHandle, namespace: str, doc: Obj) -> str:
    done = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    assert done.returncode != 0, done.stdout
    return done.stderr


def _get(cluster: LocalClusterHandle, namespace: str, resource: str, name: str) -> Obj:
    out = cluster.kubectl("get", resource, name, "-n", namespace, "-o", "json", check=True).stdout
    result: Obj = json.loads(out)
    return result


def _rows(cluster: LocalClusterHandle, namespace: str, resource: str) -> list[list[str]]:
    out = cluster.kubectl("get", resource, "-n", namespace, check=True).stdout
    return [line.split() for line in out.splitlines()]


def _meta(name: str, **extra: Any) -> Obj:
    return {"name": name, **extra}


# ------------------------------------------------------------------ the registry and the options


def test_registry_names_and_selection() -> None:
    assert list(PROVIDER_CRDS) == [
        "istio",
        "gatewayapi",
        "smi",
        "appmesh",
        "contour",
        "gloo",
        "traefik",
        "apisix",
        "kuma",
        "knative",
        "keda",
    ]
    assert provider_names(True) == list(PROVIDER_CRDS)
    assert provider_names(False) == []
    assert provider_names("smi") == ["smi"]
    with pytest.raises(ValueError, match="unknown routing provider"):
        provider_names(["linkerd"])
    copies = provider_crds(["contour"])
    copies[0]["spec"]["group"] = "changed"
    assert PROVIDER_CRDS["contour"][0]["spec"]["group"] == "projectcontour.io"
    names = {c["metadata"]["name"] for crds in PROVIDER_CRDS.values() for c in crds}
    assert {
        "httproutes.gateway.networking.k8s.io",
        "trafficsplits.split.smi-spec.io",
        "virtualnodes.appmesh.k8s.aws",
        "httpproxies.projectcontour.io",
        "upstreams.gloo.solo.io",
        "routetables.gateway.solo.io",
        "ingressroutes.traefik.io",
        "traefikservices.traefik.io",
        "apisixroutes.apisix.apache.org",
        "trafficroutes.kuma.io",
        "services.serving.knative.dev",
        "revisions.serving.knative.dev",
        "scaledobjects.keda.sh",
        "virtualservices.gateway.solo.io",
        "virtualservices.networking.istio.io",
    } <= names


def test_every_schema_is_structural() -> None:
    def walk(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        if "properties" in node or "items" in node or "additionalProperties" in node:
            assert node.get("type") in ("object", "array"), path
        if "type" not in node:
            assert node.get("x-kubernetes-int-or-string"), path
        for key, child in (node.get("properties") or {}).items():
            walk(child, f"{path}.{key}")
        walk(node.get("items"), f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}{{}}")

    for crds in PROVIDER_CRDS.values():
        for crd in crds:
            for version in crd["spec"]["versions"]:
                walk(version["schema"]["openAPIV3Schema"], f"{crd['metadata']['name']}/{version['name']}")


def test_only_the_selected_providers_are_installed() -> None:
    with LocalClusterThread(install_provider_crds=["smi"]) as running:
        groups = running.call(running.cluster.api.registry.groups)
    assert "split.smi-spec.io" in groups
    assert "gateway.networking.k8s.io" not in groups
    assert "networking.istio.io" not in groups


def test_cli_provider_crds_flag(tmp_path: Path) -> None:
    assert parse_provider_crds("") is False
    assert parse_provider_crds("all") is True
    assert parse_provider_crds("smi, contour") == ["smi", "contour"]
    kubeconfig = tmp_path / "kubeconfig"
    command = [sys.executable, "-m", "canarist.localcluster", "--kubeconfig", str(kubeconfig)]
    bad = subprocess.run([*command, "--provider-crds", "linkerd"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert "unknown routing provider(s) linkerd" in bad.stderr
    process = subprocess.Popen(
        [*command, "--no-istio-crds", "--provider-crds", "smi,contour"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        assert "serving the Kubernetes API" in process.stdout.readline()
        crds = subprocess.run(
            [
                kubectl_path(),
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                str(tmp_path / "c"),
                "get",
                "crd",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        names = [line.split()[0] for line in crds.stdout.splitlines()[1:]]
        assert names == ["httpproxies.projectcontour.io", "trafficsplits.split.smi-spec.io"]
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
        assert process.returncode == 0
    finally:
        process.kill()


# ------------------------------------------------------------------ Ingress


def test_ingress_with_nginx_canary_annotations(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "ingress")
    ingress_class: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": _meta("nginx"),
        "spec": {"controller": "k8s.io/ingress-nginx"},
    }
    ingress: Obj = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(
            "podinfo-canary",
            labels={"app": "podinfo"},
            annotations={
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-weight": "10",
            },
        ),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "app.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "podinfo-canary", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }
    out = _apply(cluster, ns, ingress_class, ingress)
    assert "ingressclass.networking.k8s.io/nginx created" in out
    assert "ingress.networking.k8s.io/podinfo-canary created" in out
    rows = _rows(cluster, ns, "ingress")
    assert rows[0] == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert rows[1][:4] == ["podinfo-canary", "nginx", "app.example.com", "80"]
    classes = cluster.kubectl("get", "ingressclasses", check=True).stdout.splitlines()
    assert classes[0].split() == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert classes[1].split()[:3] == ["nginx", "k8s.io/ingress-nginx", "<none>"]
    # the canary weight moves through a client-side apply (three-way strategic merge patch)
    ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] = "30"
    assert "configured" in _apply(cluster, ns, ingress)
    stored = _get(cluster, ns, "ingress", "podinfo-canary")
    assert stored["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "30"
    assert stored["metadata"]["generation"] == 1
    # status through /status only
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.7"}]}}}
    cluster.kubectl(
        "patch", "ingress", "podinfo-canary", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps(status), check=True,
    )  # fmt: skip
    assert _rows(cluster, ns, "ingress")[1][3] == "10.0.0.7"
    discovery = json.loads(cluster.kubectl("get", "--raw", "/apis/networking.k8s.io/v1", check=True).stdout)
    names = {r["name"] for r in discovery["resources"]}
    assert {"ingresses", "ingresses/status", "ingressclasses"} <= names


def test_ingress_validation(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "ingress-invalid")

    def ingress(path: Obj) -> Obj:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": _meta("broken"),
            "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [path]}}]},
        }

    backend = {"service": {"name": "podinfo", "port": {"number": 80}}}
    error = _rejected(cluster, ns, ingress({"path": "/", "backend": backend}))
    assert "spec.rules[0].http.paths[0].pathType: Required value" in error
    typed = {"service": {"name": "podinfo", "port": {"number": "http"}}}
    error = _rejected(cluster, ns, ingress({"path": "/", "pathType": "Prefix", "backend": typed}))
    assert "spec.rules[0].http.paths[0].backend.service.port.number" in error
    error = _rejected(cluster, ns, ingress({"path": "/", "pathType": "Sometimes", "backend": backend}))
    assert 'spec.rules[0].http.paths[0].pathType: Unsupported value: "Sometimes"' in error
    error = _rejected(cluster, ns, ingress({"path": "relative", "pathType": "Exact", "backend": backend}))
    assert "must be an absolute path" in error
    unknown = ingress({"path": "/", "pathType": "Prefix", "backend": backend, "weight": 3})
    error = _rejected(cluster, ns, unknown)
    assert 'unknown field "spec.rules[0].http.paths[0].weight"' in error


# ------------------------------------------------------------------ Gateway API


def test_gateway_api_gateway_and_weighted_httproute(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "gatewayapi")
    gateway_class: Obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": _meta("istio"),
        "spec": {"controllerName": "istio.io/gateway-controller"},
    }
    gateway: Obj = {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "Gateway",
        "metadata": _meta("gateway"),
        "spec": {
            "gatewayClassName": "istio",
            "listeners": [
                {
                    "name": "default",
                    "hostname": "*.example.com",
                    "port": 80,
                    "protocol": "HTTP",
                    "allowedRoutes": {"namespaces": {"from": "All"}},
                }
            ],
        },
    }
    route: Obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta("podinfo"),
        "spec": {
            "parentRefs": [{"name": "gateway", "namespace": ns}],
            "hostnames": ["www.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"name": "podinfo-primary", "port": 9898, "weight": 90},
                        {"name": "podinfo-canary", "port": 9898, "weight": 10},
                    ],
                }
            ],
        },
    }
    out = _apply(cluster, ns, gateway_class, gateway, route)
    assert "gatewayclass.gateway.networking.k8s.io/istio created" in out
    assert "httproute.gateway.networking.k8s.io/podinfo created" in out
    stored = _get(cluster, ns, "httproutes.gateway.networking.k8s.io", "podinfo")
    assert stored["spec"]["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "gateway",
        "namespace": ns,
    }
    assert [b["weight"] for b in stored["spec"]["rules"][0]["backendRefs"]] == [90, 10]
    assert stored["spec"]["rules"][0]["backendRefs"][0]["kind"] == "Service"
    rows = _rows(cluster, ns, "gateways.gateway.networking.k8s.io")
    assert rows[0] == ["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]
    assert rows[1][:2] == ["gateway", "istio"]
    assert _rows(cluster, ns, "httproutes")[1][:2] == ["podinfo", '["www.example.com"]']
    beta = json.loads(
        cluster.kubectl(
            "get", "--raw", f"/apis/gateway.networking.k8s.io/v1beta1/namespaces/{ns}/httproutes/podinfo",
            check=True,
        ).stdout
    )  # fmt: skip
    assert beta["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
    # a wrongly typed weight, and one out of range, are rejected with the field's path
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = "ten"
    error = _rejected(cluster, ns, route)
    assert "spec.rules[0].backendRefs[1].weight" in error
    assert "must be of type integer" in error
    route["spec"]["rules"][0]["backendRefs"][1]["weight"] = 2_000_000
    assert "spec.rules[0].backendRefs[1].weight" in _rejected(cluster, ns, route)


def test_httproute_status_is_written_through_the_status_subresource(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "gatewayapi-status")
    route: Obj = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _meta("podinfo"),
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"backendRefs": [{"name": "podinfo-primary", "port": 9898}]}],
        },
    }
    _apply(cluster, ns, route)
    stored = _get(cluster, ns, "httproute", "podinfo")
    assert stored["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert stored["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1
    parents = [
        {
            "parentRef": {"name": "gateway"},
            "controllerName": "istio.io/gateway-controller",
            "conditions": [
                {
                    "type": "Accepted",
                    "status": "True",
                    "reason": "Accepted",
                    "message": "Route was valid",
                    "lastTransitionTime": "2024-05-01T10:00:00Z",
                    "observedGeneration": stored["metadata"]["generation"],
                }
            ],
        }
    ]
    # status sent with the main resource is ignored
    with_status = {**route, "status": {"parents": parents}}
    _apply(cluster, ns, with_status)
    assert "status" not in _get(cluster, ns, "httproute", "podinfo")
    cluster.kubectl(
        "patch", "httproute", "podinfo", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"parents": parents}}), check=True,
    )  # fmt: skip
    stored = _get(cluster, ns, "httproute", "podinfo")
    condition = stored["status"]["parents"][0]["conditions"][0]
    assert condition["type"] == "Accepted"
    assert stored["status"]["parents"][0]["parentRef"]["kind"] == "Gateway"  # defaulted
    assert stored["metadata"]["generation"] == 1
    bad = [{**parents[0], "conditions": [{"type": "Accepted", "status": "Maybe"}]}]
    done = cluster.kubectl(
        "patch", "httproute", "podinfo", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"parents": bad}}),
    )  # fmt: skip
    assert done.returncode != 0
    assert 'status.parents[0].conditions[0].status: Unsupported value: "Maybe"' in done.stderr
    assert "status.parents[0].conditions[0].reason: Required value" in done.stderr


# ------------------------------------------------------------------ SMI


def test_smi_trafficsplit_quantity_weights(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "smi")
    split: Obj = {
        "apiVersion": "split.smi-spec.io/v1alpha2",
        "kind": "TrafficSplit",
        "metadata": _meta("podinfo"),
        "spec": {
            "service": "podinfo",
            "backends": [
                {"service": "podinfo-primary", "weight": "900m"},
                {"service": "podinfo-canary", "weight": 100},
            ],
        },
    }
    assert "trafficsplit.split.smi-spec.io/podinfo created" in _apply(cluster, ns, split)
    stored = _get(cluster, ns, "trafficsplits", "podinfo")
    assert [b["weight"] for b in stored["spec"]["backends"]] == ["900m", 100]
    rows = _rows(cluster, ns, "ts")
    assert rows[0] == ["NAME", "SERVICE", "AGE"]
    assert rows[1][:2] == ["podinfo", "podinfo"]
    split["spec"]["backends"][1]["weight"] = "lots"
    assert "spec.backends[1].weight" in _rejected(cluster, ns, split)
    v1alpha3: Obj = {
        **split,
        "apiVersion": "split.smi-spec.io/v1alpha3",
        "metadata": _meta("podinfo-v3"),
        "spec": {"service": "podinfo", "backends": [{"service": "podinfo-primary", "weight": "50"}]},
    }
    error = _rejected(cluster, ns, v1alpha3)
    assert "spec.backends[0].weight" in error
    assert "must be of type integer" in error
    v1alpha3["spec"]["backends"][0]["weight"] = 50
    v1alpha3["spec"]["matches"] = [{"kind": "HTTPRouteGroup", "name": "ab-test"}]
    assert "created" in _apply(cluster, ns, v1alpha3)


# ------------------------------------------------------------------ Kuma (cluster-scoped)


def _kuma_route(name: str, primary: int = 100) -> Obj:
    def tag(service: str) -> dict[str, str]:
        return {"kuma.io/service": f"{service}_kuma_svc_9898"}

    return {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "TrafficRoute",
        "mesh": "default",
        "metadata": _meta(name),
        "spec": {
            "sources": [{"match": {"kuma.io/service": "*"}}],
            "destinations": [{"match": tag("podinfo")}],
            "conf": {
                "split": [
                    {"weight": primary, "destination": tag("podinfo-primary")},
                    {"weight": 100 - primary, "destination": tag("podinfo-canary")},
                ]
            },
        },
    }


def test_kuma_trafficroute_is_cluster_scoped(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "kuma")
    # kubectl's -n does not apply to a cluster-scoped kind: the object is stored without a namespace
    assert "trafficroute.kuma.io/podinfo created" in _apply(cluster, ns, _kuma_route("podinfo"))
    stored = json.loads(cluster.kubectl("get", "trafficroute", "podinfo", "-o", "json", check=True).stdout)
    assert "namespace" not in stored["metadata"]
    assert stored["mesh"] == "default"
    assert [e["weight"] for e in stored["spec"]["conf"]["split"]] == [100, 0]
    rows = [
        line.split() for line in cluster.kubectl("get", "trafficroutes", "-A", check=True).stdout.splitlines()
    ]
    assert rows[0] == ["NAME", "AGE"]  # no NAMESPACE column for a cluster-scoped kind
    assert [r[0] for r in rows[1:]] == ["podinfo"]
    raw = "/apis/kuma.io/v1alpha1/trafficroutes/podinfo"
    assert (
        json.loads(cluster.kubectl("get", "--raw", raw, check=True).stdout)["metadata"]["name"] == "podinfo"
    )
    namespaced = cluster.kubectl(
        "get", "--raw", f"/apis/kuma.io/v1alpha1/namespaces/{ns}/trafficroutes/podinfo"
    )
    assert namespaced.returncode != 0
    assert "NotFound" in namespaced.stderr or "not found" in namespaced.stderr
    # an update of the split, then a weight Kuma's schema refuses
    assert "configured" in _apply(cluster, ns, _kuma_route("podinfo", primary=70))
    stored = json.loads(cluster.kubectl("get", "trafficroute", "podinfo", "-o", "json", check=True).stdout)
    assert [e["weight"] for e in stored["spec"]["conf"]["split"]] == [70, 30]
    bad = _kuma_route("bad")
    bad["spec"]["conf"]["split"][0]["weight"] = -1
    assert "spec.conf.split[0].weight" in _rejected(cluster, ns, bad)
    cluster.kubectl("delete", "trafficroute", "podinfo", check=True)
    gone = cluster.kubectl("get", "trafficroute", "podinfo")
    assert gone.returncode != 0


# ------------------------------------------------------------------ App Mesh


def test_appmesh_virtual_node_router_and_service(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "appmesh")
    mesh: Obj = {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "Mesh",
        "metadata": _meta("global"),
        "spec": {"namespaceSelector": {"matchLabels": {"appmesh.k8s.aws/sidecarInjectorWebhook": "enabled"}}},
    }
    node: Obj = {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualNode",
        "metadata": _meta("podinfo-primary"),
        "spec": {
            "podSelector": {"matchLabels": {"app": "podinfo-primary"}},
            "listeners": [
                {
                    "portMapping": {"port": 9898, "protocol": "http"},
                    "healthCheck": {
                        "protocol": "http",
                        "path": "/health",
                        "healthyThreshold": 2,
                        "unhealthyThreshold": 2,
                        "timeoutMillis": 2000,
                        "intervalMillis": 5000,
                    },
                }
            ],
            "serviceDiscovery": {"dns": {"hostname": f"podinfo-primary.{ns}.svc.cluster.local"}},
            "backends": [{"virtualService": {"virtualServiceRef": {"name": "backend"}}}],
        },
    }
    router: Obj = {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualRouter",
        "metadata": _meta("podinfo"),
        "spec": {
            "listeners": [{"portMapping": {"port": 9898, "protocol": "http"}}],
            "routes": [
                {
                    "name": "podinfo",
                    "httpRoute": {
                        "match": {"prefix": "/"},
                        "action": {
                            "weightedTargets": [
                                {"virtualNodeRef": {"name": "podinfo-primary"}, "weight": 90},
                                {"virtualNodeRef": {"name": "podinfo-canary"}, "weight": 10},
                            ]
                        },
                        "retryPolicy": {
                            "maxRetries": 2,
                            "perRetryTimeout": {"unit": "ms", "value": 1000},
                            "httpRetryEvents": ["server-error", "gateway-error"],
                        },
                    },
                }
            ],
        },
    }
    service: Obj = {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualService",
        "metadata": _meta("podinfo"),
        "spec": {
            "awsName": f"podinfo.{ns}",
            "provider": {"virtualRouter": {"virtualRouterRef": {"name": "podinfo"}}},
        },
    }
    out = _apply(cluster, ns, mesh, node, router, service)
    assert "mesh.appmesh.k8s.aws/global created" in out
    assert "virtualservice.appmesh.k8s.aws/podinfo created" in out
    stored = _get(cluster, ns, "virtualrouters", "podinfo")
    targets = stored["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"]
    assert [t["weight"] for t in targets] == [90, 10]
    assert _rows(cluster, ns, "virtualnodes")[0] == ["NAME", "ARN", "AGE"]
    targets[1]["weight"] = 150
    error = _rejected(cluster, ns, {**router, "spec": stored["spec"]})
    assert "spec.routes[0].httpRoute.action.weightedTargets[1].weight" in error
    assert "less than or equal to 100" in error


# ------------------------------------------------------------------ Contour


def test_contour_httpproxy_with_includes(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "contour")
    root_proxy: Obj = {
        "apiVersion": "projectcontour.io/v1",
        "kind": "HTTPProxy",
        "metadata": _meta("podinfo-ingress"),
        "spec": {
            "virtualhost": {"fqdn": "app.example.com"},
            "includes": [{"name": "podinfo", "namespace": ns, "conditions": [{"prefix": "/"}]}],
        },
    }
    proxy: Obj = {
        "apiVersion": "projectcontour.io/v1",
        "kind": "HTTPProxy",
        "metadata": _meta("podinfo"),
        "spec": {
            "routes": [
                {
                    "conditions": [{"prefix": "/", "header": {"name": "x-canary", "exact": "insider"}}],
                    "timeoutPolicy": {"response": "15s"},
                    "retryPolicy": {"count": 10, "perTryTimeout": "5s"},
                    "services": [
                        {"name": "podinfo-primary", "port": 9898, "weight": 90},
                        {"name": "podinfo-canary", "port": 9898, "weight": 10},
                    ],
                }
            ]
        },
    }
    out = _apply(cluster, ns, root_proxy, proxy)
    assert "httpproxy.projectcontour.io/podinfo-ingress created" in out
    rows = _rows(cluster, ns, "proxy")
    assert rows[0] == ["NAME", "FQDN", "TLS", "SECRET", "STATUS", "STATUS", "DESCRIPTION"]
    assert [row[:2] for row in rows[1:]] == [["podinfo"], ["podinfo-ingress", "app.example.com"]]
    cluster.kubectl(
        "patch", "httpproxy", "podinfo-ingress", "-n", ns, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"currentStatus": "valid", "description": "Valid HTTPProxy"}}),
        check=True,
    )  # fmt: skip
    assert "valid" in cluster.kubectl("get", "httpproxy", "podinfo-ingress", "-n", ns, check=True).stdout
    proxy["spec"]["routes"][0]["services"][0]["port"] = "http"
    error = _rejected(cluster, ns, proxy)
    assert "spec.routes[0].services[0].port" in error


# ------------------------------------------------------------------ Gloo, and the VirtualService kinds


def test_gloo_upstream_routetable_and_virtualservice(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "gloo")
    upstreams: list[Obj] = [
        {
            "apiVersion": "gloo.solo.io/v1",
            "kind": "Upstream",
            "metadata": _meta(f"{ns}-podinfo-{role}upstream-9898"),
            "spec": {
                "kube": {"serviceName": f"podinfo-{role}", "serviceNamespace": ns, "servicePort": 9898},
                "connectionConfig": {"maxRequestsPerConnection": 10},  # free-form
            },
        }
        for role in ("primary", "canary")
    ]
    table: Obj = {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "RouteTable",
        "metadata": _meta("podinfo"),
        "spec": {
            "routes": [
                {
                    "matchers": [{"prefix": "/"}],
                    "routeAction": {
                        "multi": {
                            "destinations": [
                                {
                                    "destination": {
                                        "upstream": {"name": u["metadata"]["name"], "namespace": ns}
                                    },
                                    "weight": weight,
                                }
                                for u, weight in zip(upstreams, (90, 10), strict=True)
                            ]
                        }
                    },
                }
            ]
        },
    }
    virtual_service: Obj = {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": _meta("podinfo"),
        "spec": {
            "virtualHost": {
                "domains": ["app.example.com"],
                "routes": [
                    {
                        "matchers": [{"prefix": "/"}],
                        "delegateAction": {"ref": {"name": "podinfo", "namespace": ns}},
                    }
                ],
            }
        },
    }
    out = _apply(cluster, ns, *upstreams, table, virtual_service)
    assert "routetable.gateway.solo.io/podinfo created" in out
    assert "virtualservice.gateway.solo.io/podinfo created" in out
    stored = _get(cluster, ns, "upstreams", f"{ns}-podinfo-primaryupstream-9898")
    assert stored["spec"]["connectionConfig"] == {"maxRequestsPerConnection": 10}
    assert _rows(cluster, ns, "routetables.gateway.solo.io")[1][0] == "podinfo"
    table["spec"]["routes"][0]["routeAction"]["multi"]["destinations"][0]["weight"] = "ninety"
    error = _rejected(cluster, ns, table)
    assert "spec.routes[0].routeAction.multi.destinations[0].weight" in error


def test_istio_gloo_and_appmesh_virtualservices_coexist(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "virtualservices")
    istio: Obj = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": _meta("podinfo"),
        "spec": {"hosts": ["podinfo"], "http": [{"route": [{"destination": {"host": "podinfo-primary"}}]}]},
    }
    gloo: Obj = {
        "apiVersion": "gateway.solo.io/v1",
        "kind": "VirtualService",
        "metadata": _meta("podinfo"),
        "spec": {"virtualHost": {"domains": ["*"], "routes": [{"matchers": [{"prefix": "/"}]}]}},
    }
    appmesh: Obj = {
        "apiVersion": "appmesh.k8s.aws/v1beta2",
        "kind": "VirtualService",
        "metadata": _meta("podinfo"),
        "spec": {"provider": {"virtualNode": {"virtualNodeRef": {"name": "podinfo-primary"}}}},
    }
    out = _apply(cluster, ns, istio, gloo, appmesh)
    for group in ("networking.istio.io", "gateway.solo.io", "appmesh.k8s.aws"):
        assert f"virtualservice.{group}/podinfo created" in out
    assert _get(cluster, ns, "virtualservices.networking.istio.io", "podinfo")["spec"]["hosts"] == ["podinfo"]
    assert _get(cluster, ns, "virtualservices.gateway.solo.io", "podinfo")["spec"]["virtualHost"][
        "domains"
    ] == ["*"]
    assert "provider" in _get(cluster, ns, "virtualservices.appmesh.k8s.aws", "podinfo")["spec"]
    # each kind keeps its own schema: Istio's open spec takes a field that Gloo's typed one refuses
    istio["spec"]["virtualHost"] = {"domains": ["*"]}
    _apply(cluster, ns, istio)
    assert "virtualHost" in _get(cluster, ns, "virtualservices.networking.istio.io", "podinfo")["spec"]
    gloo["spec"]["hosts"] = ["podinfo"]
    assert 'unknown field "spec.hosts"' in _rejected(cluster, ns, gloo)
    cluster.kubectl("delete", "virtualservices.gateway.solo.io", "podinfo", "-n", ns, check=True)
    assert cluster.kubectl("get", "virtualservices.gateway.solo.io", "podinfo", "-n", ns).returncode != 0
    assert (
        _get(cluster, ns, "virtualservices.networking.istio.io", "podinfo")["metadata"]["name"] == "podinfo"
    )
    assert _get(cluster, ns, "virtualservices.appmesh.k8s.aws", "podinfo")["metadata"]["name"] == "podinfo"


# ------------------------------------------------------------------ KEDA


def test_keda_scaledobject(cluster: LocalClusterHandle) -> None:
    ns = _namespace(cluster, "keda")
    so: Obj = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _meta("podinfo-so", annotations={"autoscaling.keda.sh/paused-replicas": "0"}),
        "spec": {
            "scaleTargetRef": {"name": "podinfo"},
            "pollingInterval": 10,
            "minReplicaCount": 1,
            "maxReplicaCount": 3,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": "podinfo-hpa"}},
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "requests",
                    "metadata": {
                        "serverAddress": "http://prometheus:9090",
                        "query": "sum(up)",
                        "threshold": "5",
                    },
                }
            ],
        },
    }
    assert "scaledobject.keda.sh/podinfo-so created" in _apply(cluster, ns, so)
    rows = _rows(cluster, ns, "so")
    assert rows[0] == ["NAME", "SCALETARGETNAME", "MIN", "MAX", "AGE"]
    assert rows[1][:4] == ["podinfo-so", "podinfo", "1", "3"]
    assert (
        _get(cluster, ns, "scaledobject", "podinfo-so")["spec"]["triggers"][0]["metadata"]["query"]
        == "sum(up)"
    )
    so["spec"]["minReplicaCount"] = "one"
    assert "spec.minReplicaCount" in _rejected(cluster, ns, so)
