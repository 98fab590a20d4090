"""The local control plane for the CLI tests: the CRDs, a namespace, the podinfo Deployment and a Canary
whose status the test writes through the API (no operator), and the CLI run as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from canarist.api.crds import crds
from canarist.kube import resources as kinds
from canarist.kube.client import KubeClient
from canarist.workloads.revision import revision_hash
from tests.fixtures.canaries import canary_manifest
from tests.fixtures.localcluster import LocalClusterHandle

NAMESPACE = "test"
#: a bound for one CLI command (a slow shared machine), never a wait for something to happen.
COMMAND_TIMEOUT_S = 120
OLD_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.0"
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.1"


def deployment(image: str) -> dict[str, Any]:
    labels = {"app": "podinfo"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": NAMESPACE},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "podinfod", "image": image}]},
            },
        },
    }


@dataclass
class Cluster:
    handle: LocalClusterHandle
    client: KubeClient

    @property
    def kubeconfig(self) -> Path:
        return self.handle.kubeconfig

    async def revision(self) -> str:
        """The podinfo Deployment's revision hash as the operator records it (status.lastAppliedSpec)."""
        return revision_hash(await self.client.get(kinds.DEPLOYMENT, "podinfo", namespace=NAMESPACE))

    async def set_image(self, image: str) -> str:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "podinfod", "image": image}]}}}}
        await self.client.patch(
            kinds.DEPLOYMENT, "podinfo", patch, namespace=NAMESPACE, patch_type="strategic"
        )
        return await self.revision()

    async def write_status(self, status: Mapping[str, Any]) -> None:
        await self.client.patch_status(kinds.CANARY, "podinfo", {"status": dict(status)}, namespace=NAMESPACE)


async def start_cluster(handle: LocalClusterHandle) -> Cluster:
    client = KubeClient.from_kubeconfig(handle.kubeconfig)
    for crd in crds():
        await client.create(crd, kind=kinds.CUSTOM_RESOURCE_DEFINITION)
    await client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    await client.create(deployment(OLD_IMAGE))
    await client.create(canary_manifest(), kind=kinds.CANARY)
    return Cluster(handle, client)


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1", **extra}


async def spawn(*argv: str, extra_env: Mapping[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env(**dict(extra_env or {})),
    )


async def canarist(*argv: str) -> tuple[int, str, str]:
    """Run ``python -m canarist ARGV`` to its end: (exit code, stdout, stderr)."""
    process = await spawn(sys.executable, "-m", "canarist", *argv)
    out, err = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
