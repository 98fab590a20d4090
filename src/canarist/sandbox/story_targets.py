"""The walkthrough's target as `canarist demo` plays it: which manifests make it, how a new version is released,
and, at any moment, which workload serves as the canary and which as the primary.

Two kinds (`ProviderDemo.target`):

* ``deployment``: ``examples/podinfo`` (namespace, Deployment ``podinfo``, HPA); a release is
  ``kubectl set image deployment/podinfo podinfod=...``; the canary is ``podinfo`` behind the Service
  ``podinfo-canary``, the primary ``podinfo-primary``: fixed roles.
* ``knative``: the namespace and the provider's ``service.yaml`` (a Knative Service ``podinfo``); a release
  is the Knative tutorial's JSON patch of ``/spec/template/spec/containers/0/image``. The roles move with the
  revisions: the canary is the latest created revision, the primary the revision the annotation
  ``flagger.app/primary-revision`` names (the latest ready one before there is an annotation); each runs in
  its Deployment ``<revision>-deployment`` behind its Service ``<revision>``. Once the canary is the primary
  (after a promotion) there is no canary.

`Roles` are read from the same cache the sandbox's data plane programs Envoy from, so a route write and the
roles it is judged by are of the same moment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.workloads import knative

__all__ = ["DeploymentTarget", "KnativeTarget", "Roles", "StoryTarget", "story_target"]

NAMESPACE = "test"
NAME = "podinfo"


@dataclass(frozen=True)
class Roles:
    """Who serves as what: Deployment names (whose pods' counts and knobs the story reads and sets), and the
    Service in front of the canary (``None``: no canary now, its weight is 0)."""

    canary: str | None
    primary: str | None
    canary_service: tuple[str, str] | None


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


class StoryTarget(Protocol):
    def initialized(self, provider: str) -> str:
        """What initialization made, for the summary's check."""
        ...

    def describe(self) -> str: ...

    async def apply(self, client: KubeClient, examples: Path, provider_examples: Path) -> None: ...

    async def set_image(self, client: KubeClient, image: str) -> None: ...

    def release_command(self, image: str) -> str: ...

    def roles(self) -> Roles: ...

    async def primary_image(self, client: KubeClient) -> str: ...


class DeploymentTarget:
    def initialized(self, provider: str) -> str:
        return f"podinfo-primary and the {provider} routing objects generated"

    def describe(self) -> str:
        return "podinfo (namespace, deployment, HPA)"

    async def apply(self, client: KubeClient, examples: Path, provider_examples: Path) -> None:
        for name in ("namespace.yaml", "deployment.yaml", "hpa.yaml"):
            document = _load(examples / name)
            await client.ensure(document, kind=kinds.kind_of(document))

    async def set_image(self, client: KubeClient, image: str) -> None:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": image}]}}}}
        await client.patch(kinds.DEPLOYMENT, NAME, patch, namespace=NAMESPACE, patch_type="strategic")

    def release_command(self, image: str) -> str:
        return f"kubectl -n {NAMESPACE} set image deployment/{NAME} podinfod={image}"

    def roles(self) -> Roles:
        return Roles(NAME, f"{NAME}-primary", (NAMESPACE, f"{NAME}-canary"))

    async def primary_image(self, client: KubeClient) -> str:
        primary = await client.get_or_none(kinds.DEPLOYMENT, f"{NAME}-primary", namespace=NAMESPACE)
        if primary is None:
            return ""
        return str(primary["spec"]["template"]["spec"]["containers"][0]["image"])


class KnativeTarget:
    """``service`` returns the cached Knative Service ``podinfo.test`` (``None`` before it exists)."""

    def initialized(self, provider: str) -> str:
        return "the primary revision annotated on the Knative Service, all its traffic split to it"

    def __init__(self, service: Callable[[], Mapping[str, Any] | None]) -> None:
        self.service = service

    def describe(self) -> str:
        return "podinfo (namespace, Knative Service)"

    async def apply(self, client: KubeClient, examples: Path, provider_examples: Path) -> None:
        namespace = _load(examples / "namespace.yaml")
        await client.ensure(namespace, kind=kinds.kind_of(namespace))
        await client.ensure(_load(provider_examples / "service.yaml"), kind=kinds.KNATIVE_SERVICE)

    async def set_image(self, client: KubeClient, image: str) -> None:
        patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}]
        await client.patch(kinds.KNATIVE_SERVICE, NAME, patch, namespace=NAMESPACE, patch_type="json")

    def release_command(self, image: str) -> str:
        return (
            f"kubectl -n {NAMESPACE} patch services.serving {NAME} --type=json -p "
            f"""'[{{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "{image}"}}]'"""
        )

    def revisions(self) -> tuple[str, str]:
        """(latest created, primary) revision names (``""`` when unknown)."""
        service = self.service() or {}
        status = service.get("status") or {}
        latest = str(status.get("latestCreatedRevisionName") or "")
        primary = knative.primary_revision(service) or str(status.get("latestReadyRevisionName") or "")
        return latest, primary

    def roles(self) -> Roles:
        latest, primary = self.revisions()
        primary_workload = f"{primary}-deployment" if primary else None
        if not latest or latest == primary:
            return Roles(None, primary_workload, None)
        return Roles(f"{latest}-deployment", primary_workload, (NAMESPACE, latest))

    async def primary_image(self, client: KubeClient) -> str:
        _, primary = self.revisions()
        if not primary:
            return ""
        revision = await client.get_or_none(kinds.KNATIVE_REVISION, primary, namespace=NAMESPACE)
        if revision is None:
            return ""
        return str(revision["spec"]["containers"][0]["image"])


def story_target(kind: str, knative_service: Callable[[], Mapping[str, Any] | None]) -> StoryTarget:
    """The `StoryTarget` of a `ProviderDemo.target` value."""
    if kind == "knative":
        return KnativeTarget(knative_service)
    if kind == "deployment":
        return DeploymentTarget()
    raise ValueError(f"unknown demo target {kind!r}; choose deployment or knative")
