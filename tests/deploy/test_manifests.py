"""The kustomize bases and the Istio overlay: generated files are current, the manifests say what the
operator needs (two replicas with leader election, probes, a locked-down security context, least-privilege
RBAC), the flags in them parse with canarist's own CLI, and the rendered install applies to a real
(local) control plane with kubectl."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from canarist.cli.main import build_parser
from canarist.operator.runtime import LEASE_NAME
from canarist.operator.settings import MAX_SHARDS, settings_from_args
from canarist.operator.shards import lease_names
from tests.deploy.support import (
    INSTALL_YAML,
    ISTIO_OVERLAY,
    LOADTESTER_BASE,
    OPERATOR_BASE,
    RBAC_GROUP,
    ROOT,
    documents,
    find,
    kustomize,
    load_roles,
)
from tests.fixtures.localcluster import LocalClusterHandle

NAMESPACE = "canarist-system"


@pytest.fixture(scope="module")
def install() -> list[dict[str, Any]]:
    return documents(kustomize(ISTIO_OVERLAY))


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def test_committed_crds_are_canarist_crds_output() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "canarist", "crds"], capture_output=True, text=True, timeout=60, check=True
    )
    committed = (OPERATOR_BASE / "crds.yaml").read_text()
    assert committed == done.stdout, "deploy/base/operator/crds.yaml is stale: run deploy/generate.sh"
    names = sorted(d["metadata"]["name"] for d in documents(committed))
    assert names == [
        "alertproviders.flagger.app",
        "canaries.flagger.app",
        "canarycommands.canarist.dev",
        "metrictemplates.flagger.app",
    ]


def test_install_yaml_is_the_rendered_istio_overlay() -> None:
    assert INSTALL_YAML.read_text() == kustomize(ISTIO_OVERLAY), (
        "deploy/install.yaml is stale: run deploy/generate.sh"
    )


def test_every_kustomization_renders() -> None:
    for path in (OPERATOR_BASE, LOADTESTER_BASE, ISTIO_OVERLAY):
        assert documents(kustomize(path)), path


def test_install_contents(install: list[dict[str, Any]]) -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in install)
    assert kinds == [
        "ClusterRole/canarist",
        "ClusterRole/canarist-release-operator",
        "ClusterRole/canarist-viewer",
        "ClusterRoleBinding/canarist",
        "CustomResourceDefinition/alertproviders.flagger.app",
        "CustomResourceDefinition/canaries.flagger.app",
        "CustomResourceDefinition/canarycommands.canarist.dev",
        "CustomResourceDefinition/metrictemplates.flagger.app",
        "Deployment/canarist",
        "Deployment/flagger-loadtester",
        "Namespace/canarist-system",
        "Role/canarist-leader-election",
        "RoleBinding/canarist-leader-election",
        "Service/canarist-metrics",
        "Service/flagger-loadtester",
        "ServiceAccount/canarist",
    ]
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"}
    for doc in install:
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]
    for binding in (
        find(install, "ClusterRoleBinding", "canarist"),
        find(install, "RoleBinding", "canarist-leader-election"),
    ):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "canarist", "namespace": NAMESPACE}]


def test_operator_deployment(install: list[dict[str, Any]]) -> None:
    deployment = find(install, "Deployment", "canarist")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "canarist"
    assert pod["securityContext"]["runAsNonRoot"] is True
    main = container(deployment)
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert main["resources"]["requests"]
    assert main["resources"]["limits"]["memory"]
    assert {p["containerPort"] for p in main["ports"]} == {8080}
    env = {e["name"]: e for e in main["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"

    # The kubelet expands $(POD_NAMESPACE); then the arguments must parse with the real CLI.
    argv = [a.replace("$(POD_NAMESPACE)", NAMESPACE) for a in main["args"]]
    args = build_parser().parse_args(argv)
    assert args.command == "operator"
    settings = settings_from_args(args, environ={})
    assert settings.enable_leader_election is True
    assert settings.leader_election_lease_namespace == NAMESPACE
    assert settings.mesh_provider == "istio"
    assert settings.metrics_server == "http://prometheus.istio-system:9090"
    assert settings.port == 8080

    # The Lease the operator will use is the one the Role grants, in the same namespace.
    lease_role = load_roles()["Role/canarist-leader-election"]
    assert lease_role.allows("coordination.k8s.io", "leases", "update", NAMESPACE, "flagger-leader-election")

    service = find(install, "Service", "canarist-metrics")
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http-metrics"


def test_base_operator_defaults_to_flaggers_metrics_server() -> None:
    base = find(documents(kustomize(OPERATOR_BASE)), "Deployment", "canarist")
    assert "-metrics-server=http://prometheus:9090" in container(base)["args"]


def test_loadtester(install: list[dict[str, Any]]) -> None:
    deployment = find(install, "Deployment", "flagger-loadtester")
    main = container(deployment)
    args = build_parser().parse_args(main["args"])
    assert args.command == "loadtester"
    assert args.port == 9090
    assert not args.allow_any_command
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    service = find(install, "Service", "flagger-loadtester")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert main["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_cluster_role_has_no_wildcards_and_no_cluster_wide_leases() -> None:
    roles = load_roles()  # Rule.parse rejects wildcards
    assert set(roles) == {"ClusterRole/canarist", "Role/canarist-leader-election"}
    cluster = roles["ClusterRole/canarist"]
    assert not {g for g, _, _ in cluster.grants()} & {"coordination.k8s.io", RBAC_GROUP}
    assert not {v for _, _, v in cluster.grants()} & {
        "delete",
        "deletecollection",
        "escalate",
        "bind",
        "impersonate",
    }


def served_groups(handle: LocalClusterHandle) -> set[str]:
    done = handle.kubectl("api-versions", check=True)
    return {line.rpartition("/")[0] for line in done.stdout.split()}


@pytest.mark.localcluster(install_istio_crds=True)
def test_install_yaml_applies_to_the_local_control_plane(local_cluster: LocalClusterHandle) -> None:
    assert RBAC_GROUP in served_groups(local_cluster)
    applied = INSTALL_YAML.read_text()
    first = local_cluster.kubectl("apply", "-f", "-", input=applied)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    again = local_cluster.kubectl("apply", "-f", "-", input=applied)
    assert again.returncode == 0, again.stderr
    assert all(line.endswith(" unchanged") for line in again.stdout.splitlines()), again.stdout

    got = local_cluster.kubectl(
        "get", "deployments,services,serviceaccounts", "-n", NAMESPACE, "-o", "name", check=True
    )
    assert sorted(got.stdout.split()) == [
        "deployment.apps/canarist",
        "deployment.apps/flagger-loadtester",
        "service/canarist-metrics",
        "service/flagger-loadtester",
        "serviceaccount/canarist",
    ]
    replicas = local_cluster.kubectl(
        "get", "deployment", "canarist", "-n", NAMESPACE, "-o", "jsonpath={.spec.replicas}", check=True
    )
    assert replicas.stdout == "2"
    crds = local_cluster.kubectl("get", "crd", "-o", "name", check=True).stdout.split()
    for name in (
        "canaries.flagger.app",
        "metrictemplates.flagger.app",
        "alertproviders.flagger.app",
        "canarycommands.canarist.dev",
    ):
        assert f"customresourcedefinition.apiextensions.k8s.io/{name}" in crds
    # The CRDs serve: a Canary can be created in the new namespace.
    canary = (
        (ROOT / "examples" / "podinfo" / "canary.yaml")
        .read_text()
        .replace("namespace: test", f"namespace: {NAMESPACE}")
    )
    created = local_cluster.kubectl("apply", "-f", "-", input=canary)
    assert created.returncode == 0, created.stderr
    roles = local_cluster.kubectl("get", "clusterrole/canarist", "-o", "name", check=True)
    assert roles.stdout.strip() == "clusterrole.rbac.authorization.k8s.io/canarist"


def test_the_lease_role_grants_every_lease_a_sharded_operator_uses_and_no_more() -> None:
    lease_role = load_roles()["Role/canarist-leader-election"]
    for name in lease_names(LEASE_NAME, MAX_SHARDS):
        for verb in ("get", "update"):
            assert lease_role.allows("coordination.k8s.io", "leases", verb, NAMESPACE, name), (verb, name)
    assert not lease_role.allows(
        "coordination.k8s.io", "leases", "update", NAMESPACE, f"{LEASE_NAME}-shard-{MAX_SHARDS}"
    )
    assert not lease_role.allows(
        "coordination.k8s.io", "leases", "delete", NAMESPACE, f"{LEASE_NAME}-members"
    )
