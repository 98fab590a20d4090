"""The RBAC evaluator used by tests/e2e/test_rbac.py answers like the Kubernetes authorizer for the rule
fields deploy/ uses, so a missing grant cannot slip through it."""

from __future__ import annotations

import pytest

from tests.deploy.support import Rule, load_roles


def test_rule_matching() -> None:
    rule = Rule.parse({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list", "update"]})
    assert rule.allows("apps", "deployments", "list")
    assert not rule.allows("apps", "deployments", "delete")
    assert not rule.allows("", "deployments", "list")  # another group
    assert not rule.allows("apps", "deployments/status", "update")  # subresources are separate resources
    named = Rule.parse(
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["x"],
            "verbs": ["get", "create"],
        }
    )
    assert named.allows("coordination.k8s.io", "leases", "get", "x")
    assert not named.allows("coordination.k8s.io", "leases", "get", "y")
    assert not named.allows("coordination.k8s.io", "leases", "create", "")  # create has no name for RBAC


@pytest.mark.parametrize("field", ["apiGroups", "resources", "verbs"])
def test_wildcards_are_refused(field: str) -> None:
    raw = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}
    raw[field] = ["*"]
    with pytest.raises(AssertionError, match="wildcard"):
        Rule.parse(raw)


def test_roles_of_rbac_yaml() -> None:
    roles = load_roles()
    cluster = roles["ClusterRole/canarist"]
    assert cluster.allows("flagger.app", "canaries/status", "update")
    assert not cluster.allows("flagger.app", "canaries", "update")
    assert cluster.allows(
        "apiextensions.k8s.io", "customresourcedefinitions", "get", name="canaries.flagger.app"
    )
    assert not cluster.allows(
        "apiextensions.k8s.io", "customresourcedefinitions", "get", name="other.example.com"
    )
    assert not cluster.allows("apiextensions.k8s.io", "customresourcedefinitions", "list")
    lease = roles["Role/canarist-leader-election"]
    assert lease.allows("coordination.k8s.io", "leases", "create", "canarist-system")
    assert not lease.allows("coordination.k8s.io", "leases", "create", "kube-system")
    assert not lease.allows(
        "coordination.k8s.io", "leases", "update", "canarist-system", "someone-elses-lease"
    )


def test_every_kind_the_operator_watches_is_granted_from_the_declarations() -> None:
    """The operator's RBAC follows from what it watches: the base kinds and each router's declared kinds
    (a new router's kinds that are not granted fail here, not in a cluster)."""
    from canarist.operator.controller import watched_kinds
    from canarist.routers import registry as routers

    cluster = load_roles()["ClusterRole/canarist"]
    for kind in watched_kinds("istio"):
        for verb in ("list", "watch"):
            assert cluster.allows(kind.group, kind.plural, verb), f"{verb} {kind.group}/{kind.plural}"
    for kind in routers.all_kinds():
        for verb in ("create", "update"):
            assert cluster.allows(kind.group, kind.plural, verb), f"{verb} {kind.group}/{kind.plural}"
