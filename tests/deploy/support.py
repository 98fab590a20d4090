"""Helpers for the deploy/ tests: paths, `kubectl kustomize`, and an RBAC rule evaluator.

The evaluator answers "does this ClusterRole/Role allow (group, resource[/subresource], verb[, name])?" the
way the Kubernetes RBAC authorizer does for the rule fields we use (apiGroups, resources, resourceNames,
verbs); it refuses wildcards outright, because the deploy manifests must not contain any.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OPERATOR_BASE = DEPLOY / "base" / "operator"
LOADTESTER_BASE = DEPLOY / "base" / "loadtester"
ISTIO_OVERLAY = DEPLOY / "overlays" / "istio"
INSTALL_YAML = DEPLOY / "install.yaml"
RBAC_YAML = OPERATOR_BASE / "rbac.yaml"
KUBECTL = os.environ.get("CANARIST_KUBECTL", "/usr/bin/kubectl")
RBAC_GROUP = "rbac.authorization.k8s.io"


def kubectl_bin() -> str:
    found = KUBECTL if os.access(KUBECTL, os.X_OK) else shutil.which("kubectl")
    if not found:
        pytest.fail(
            f"kubectl (with its built-in kustomize) is required but was not found at {KUBECTL} or on PATH; "
            "install kubectl v1.32 (https://kubernetes.io/docs/tasks/tools/) or set CANARIST_KUBECTL",
            pytrace=False,
        )
    return found


def kustomize(path: Path) -> str:
    done = subprocess.run(
        [kubectl_bin(), "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed ({done.returncode}):\n{done.stderr}", pytrace=False)
    return done.stdout


def documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


@dataclass(frozen=True)
class Rule:
    groups: frozenset[str]
    resources: frozenset[str]
    verbs: frozenset[str]
    names: frozenset[str]  # empty: any name

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Rule:
        unknown = set(raw) - {"apiGroups", "resources", "verbs", "resourceNames"}
        assert not unknown, f"unsupported rule fields {unknown} in {raw}"
        rule = cls(
            frozenset(raw.get("apiGroups") or ()),
            frozenset(raw.get("resources") or ()),
            frozenset(raw.get("verbs") or ()),
            frozenset(raw.get("resourceNames") or ()),
        )
        for field_name, values in (
            ("apiGroups", rule.groups),
            ("resources", rule.resources),
            ("verbs", rule.verbs),
        ):
            assert values, f"rule without {field_name}: {raw}"
            assert not any("*" in v for v in values), f"wildcard in {field_name}: {raw}"
        return rule

    def allows(self, group: str, resource: str, verb: str, name: str = "") -> bool:
        if group not in self.groups or resource not in self.resources or verb not in self.verbs:
            return False
        # resourceNames never match list/watch of a collection nor create (RBAC has no name for those).
        return not self.names or (
            bool(name) and name in self.names and verb not in {"list", "watch", "create"}
        )

    def grants(self) -> set[tuple[str, str, str]]:
        return {(g, r, v) for g in self.groups for r in self.resources for v in self.verbs}


@dataclass(frozen=True)
class Role:
    kind: str
    name: str
    namespace: str
    rules: tuple[Rule, ...]

    def allows(self, group: str, resource: str, verb: str, namespace: str = "", name: str = "") -> bool:
        if self.kind == "Role" and namespace != self.namespace:
            return False
        return any(rule.allows(group, resource, verb, name) for rule in self.rules)

    def grants(self) -> set[tuple[str, str, str]]:
        return set().union(*(rule.grants() for rule in self.rules))


def load_roles(path: Path = RBAC_YAML) -> dict[str, Role]:
    """Roles and ClusterRoles of ``path`` by ``Kind/name``."""
    roles: dict[str, Role] = {}
    for doc in documents(path.read_text()):
        if doc["kind"] in {"ClusterRole", "Role"}:
            meta = doc["metadata"]
            rules = tuple(Rule.parse(raw) for raw in doc.get("rules") or ())
            roles[f"{doc['kind']}/{meta['name']}"] = Role(
                doc["kind"], meta["name"], meta.get("namespace", ""), rules
            )
    return roles
