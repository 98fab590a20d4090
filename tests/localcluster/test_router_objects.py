"""Every object every router writes is accepted by the local control plane's provider schemas, as `kubectl
apply` sends it (server-side validation, unknown fields rejected): each provider's example Canary, in the
layouts its router builds — weights, A/B, mirroring, session affinity — and each Flagger provider variant.

A schema that is stricter than what canarist writes (or a router that writes a field the real API lacks)
fails here, not in a user's cluster.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarist.api import Canary
from canarist.engine.model import Routes
from canarist.localcluster import LocalClusterThread
from canarist.routers import registry
from canarist.routers.base import AffinityCookies, RouteContext, object_key
from tests.fixtures.localcluster import LocalClusterHandle, kubectl_path

Obj = dict[str, Any]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMESPACE = "test"

#: provider → the examples directory whose canary.yaml it routes (the variants share their family's).
PROVIDERS = {
    "gatewayapi:v1": "gatewayapi",
    "gatewayapi:v1beta1": "gatewayapi",
    "linkerd": "linkerd",
    "smi:v1alpha1": "linkerd",
    "smi:v1alpha2": "linkerd",
    "smi:v1alpha3": "linkerd",
    "osm": "linkerd",
    "appmesh:v1beta2": "appmesh",
    "contour": "contour",
    "nginx": "nginx",
    "gloo": "gloo",
    "traefik": "traefik",
    "skipper": "skipper",
    "apisix": "apisix",
    "kuma": "kuma",
}
AB = [{"headers": {"x-canary": {"exact": "insider"}}}]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClusterHandle]:
    home = tmp_path_factory.mktemp("router-objects")
    thread = LocalClusterThread(readiness_delay=0.05, install_provider_crds=True).start()
    try:
        kubeconfig = thread.write_kubeconfig(home / "kubeconfig")
        handle = LocalClusterHandle(
            thread.url, kubeconfig, thread.cluster, thread, home / "cache", kubectl_path()
        )
        handle.kubectl("create", "namespace", NAMESPACE, check=True)
        yield handle
    finally:
        thread.stop()


def _documents(directory: str, name: str) -> list[Obj]:
    path = EXAMPLES / directory / name
    return [d for d in yaml.safe_load_all(path.read_text()) if d] if path.exists() else []


#: service features every router maps (timeouts, retries), and those only Gateway API maps besides.
FEATURES: Obj = {"timeout": "5s", "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"}}
GATEWAY_FEATURES: Obj = {
    "headers": {"request": {"set": {"x-env": "test"}, "remove": ["x-debug"]}},
    "rewrite": {"uri": "/", "authority": "podinfo.example.com"},
    "corsPolicy": {
        "allowOrigins": [{"exact": "https://example.com"}],
        "allowMethods": ["GET"],
        "maxAge": "24h",
    },
}


def _canary(provider: str, service: Obj | None = None, **analysis: Any) -> Canary:
    [manifest] = _documents(PROVIDERS[provider], "canary.yaml")
    manifest = copy.deepcopy(manifest)
    manifest["spec"]["provider"] = provider
    manifest["spec"]["service"].update(service or {})
    manifest["spec"]["analysis"].update(analysis)
    manifest["metadata"]["uid"] = "0b6b4f5e-1111-4222-8333-444455556666"
    return Canary.model_validate(manifest)


def _context(canary: Canary, cookies: AffinityCookies | None = None) -> RouteContext:
    """The context the operator builds, with the user-side objects of the example as references."""
    ctx = RouteContext.from_canary(canary, cookies=cookies)
    router = registry.get(canary.provider_or("istio"))
    routing = {object_key(d): d for d in _documents(PROVIDERS[canary.spec.provider or ""], "routing.yaml")}
    wanted = {ref.key for ref in router.references(ctx)}
    refs = {key: obj for key, obj in routing.items() if key in wanted}
    assert set(refs) == wanted, f"{canary.spec.provider}: the example lacks {wanted - set(refs)}"
    return dataclasses.replace(ctx, references=refs, selector_label="app", selector_value="podinfo")


def _layouts(provider: str) -> list[tuple[str, RouteContext, Routes]]:
    router = registry.get(provider)
    caps = router.capabilities
    plain = _canary(provider)
    out = [
        (f"{provider} 100/0", _context(plain), Routes(100, 0)),
        (f"{provider} 70/30", _context(plain), Routes(70, 30)),
    ]
    features = {**FEATURES, **(GATEWAY_FEATURES if provider.startswith("gatewayapi") else {})}
    out.append((f"{provider} service features", _context(_canary(provider, features)), Routes(90, 10)))
    if caps.matches:
        out.append((f"{provider} A/B", _context(_canary(provider, match=AB, iterations=5)), Routes(0, 100)))
    if caps.mirroring:
        mirrored = _canary(provider, mirror=True, iterations=5, stepWeight=None, maxWeight=None)
        out.append((f"{provider} mirrored", _context(mirrored), Routes(100, 0, mirrored=True)))
    if caps.session_affinity:
        sticky = _canary(
            provider, sessionAffinity={"cookieName": "flagger-cookie", "primaryCookieName": "primary"}
        )
        cookies = AffinityCookies(canary="flagger-cookie=abcdefghij", primary="primary=klmnopqrst")
        out.append((f"{provider} session affinity", _context(sticky, cookies), Routes(80, 20)))
    return out


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_objects_a_router_writes_pass_the_provider_schemas(
    cluster: LocalClusterHandle, provider: str
) -> None:
    router = registry.get(provider)
    for what, ctx, routes in _layouts(provider):
        objects = router.desired(ctx, routes)
        assert objects, what
        for obj in objects:
            obj = copy.deepcopy(obj)
            obj["metadata"].pop("ownerReferences", None)  # the Canary is not in this cluster
            done = cluster.kubectl(
                "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump(obj)
            )
            assert done.returncode == 0, f"{what}: {obj['kind']} {obj['metadata']['name']}: {done.stderr}"
