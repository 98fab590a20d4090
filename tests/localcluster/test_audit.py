"""The audit log: every request that changes something, with who sent it (its User-Agent) and the answer."""

from __future__ import annotations

from typing import Any

import aiohttp

from canarist.kube import KubeClient
from canarist.kube import resources as r

from .helpers import request

AUDIT = "/localcluster.canarist.dev/v1/audit"


async def test_writes_are_recorded_in_order_with_their_user_agent_and_reads_are_not(
    local_cluster: Any,
) -> None:
    client = KubeClient.from_kubeconfig(local_cluster.kubeconfig)
    client.set_user_agent("canarist/test (replica-1)")
    assert client.user_agent == "canarist/test (replica-1)"
    try:
        config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}
        await client.create(config)
        await client.get(r.CONFIG_MAP, "a", namespace="default")
        await client.delete(r.CONFIG_MAP, "a", namespace="default")
    finally:
        await client.close()
    async with aiohttp.ClientSession() as session:
        status, body = await request(session, "GET", local_cluster.url + AUDIT)
        assert status == 200
        mine = [e for e in body["items"] if e["user_agent"] == "canarist/test (replica-1)"]
        assert [(e["method"], e["path"], e["code"]) for e in mine] == [
            ("POST", "/api/v1/namespaces/default/configmaps", 201),
            ("DELETE", "/api/v1/namespaces/default/configmaps/a", 200),
        ]
        assert mine[0]["seq"] < mine[1]["seq"]

        status, body = await request(session, "GET", f"{local_cluster.url}{AUDIT}?since={mine[0]['seq']}")
        assert all(e["seq"] > mine[0]["seq"] for e in body["items"])
        assert mine[1]["seq"] in [e["seq"] for e in body["items"]]
        assert mine[0]["seq"] not in [e["seq"] for e in body["items"]]

        status, body = await request(session, "GET", f"{local_cluster.url}{AUDIT}?since=soon")
        assert status == 400
        assert "since: not a whole number: 'soon'" in body["message"]

        status, body = await request(session, "DELETE", local_cluster.url + AUDIT)
        assert (status, body) == (200, {"items": []})
        status, body = await request(session, "GET", local_cluster.url + AUDIT)
        assert body["items"] == []  # clearing it is not itself recorded
        assert local_cluster.server.audit.entries() == []
