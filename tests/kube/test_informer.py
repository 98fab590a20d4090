"""Informer against the local control plane: events, cache, indexes, resume, 410 re-list, bookmarks, GC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from canarist.kube import ADDED, DELETED, MODIFIED, Informer, KubeClient, RequestLog
from canarist.kube import resources as r

from ._net import ClusterControl, TcpProxy
from .conftest import configmap, deployment

Event = tuple[str, str, str]  # (type, name, data["v"] or "")


async def eventually(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``predicate()`` holds (a bound on waiting, not a timing assertion)."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polling a plain predicate is the point
            await asyncio.sleep(0.01)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.olds: list[dict[str, Any] | None] = []

    def __call__(self, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self.events.append((event_type, obj["metadata"]["name"], (obj.get("data") or {}).get("v", "")))
        self.olds.append(old)

    def names(self, event_type: str) -> list[str]:
        return [name for t, name, _ in self.events if t == event_type]


@pytest.fixture
async def started() -> AsyncIterator[list[Informer]]:
    """Informers appended here are stopped after the test."""
    informers: list[Informer] = []
    yield informers
    for informer in informers:
        await informer.stop()


async def test_handlers_see_added_modified_deleted(
    kube: KubeClient, ns: str, started: list[Informer]
) -> None:
    await kube.create(configmap("a", ns, {"v": "1"}))
    informer = Informer(kube, r.CONFIG_MAP, namespace=ns)
    sync_seen = Recorder()
    async_seen: list[tuple[str, str]] = []
    failures = 0

    async def async_handler(event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        await asyncio.sleep(0)
        async_seen.append((event_type, obj["metadata"]["name"]))

    def broken(event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        nonlocal failures
        failures += 1
        raise RuntimeError("handler bug")

    informer.add_handler(broken)
    informer.add_handler(sync_seen)
    informer.add_handler(async_handler)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    assert sync_seen.events == [(ADDED, "a", "1")]
    assert informer.get(ns, "a") is not None

    await kube.create(configmap("b", ns, {"v": "1"}))
    await kube.patch(r.CONFIG_MAP, "a", {"data": {"v": "2"}}, namespace=ns)
    await kube.delete(r.CONFIG_MAP, "b", namespace=ns)
    await eventually(lambda: len(sync_seen.events) == 4)
    assert sync_seen.events[1:] == [(ADDED, "b", "1"), (MODIFIED, "a", "2"), (DELETED, "b", "1")]
    old = sync_seen.olds[2]
    assert old is not None
    assert old["data"]["v"] == "1"
    await eventually(lambda: len(async_seen) == 4)
    assert async_seen == [(ADDED, "a"), (ADDED, "b"), (MODIFIED, "a"), (DELETED, "b")]
    assert failures == 4  # the failing handler was called for every event and did not stop anything

    cached = informer.get(ns, "a")
    assert cached is not None
    assert cached["data"] == {"v": "2"}
    assert cached["kind"] == "ConfigMap"
    assert informer.get(ns, "b") is None
    assert [o["metadata"]["name"] for o in informer.list(ns)] == ["a"]
    assert informer.list("elsewhere") == []


async def test_cache_reads_and_indexes_do_not_hit_the_api(
    kube: KubeClient, ns: str, started: list[Informer], request_log: RequestLog
) -> None:
    for i in range(4):
        await kube.create(configmap(f"cm{i}", ns, {"v": "x"}, canary=f"c{i % 2}"))
    informer = Informer(kube, r.CONFIG_MAP, namespace=ns)
    informer.add_index("canary", lambda o: [o["metadata"].get("labels", {}).get("canary", "")])
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    request_log.clear()
    for _ in range(100):
        informer.get(ns, "cm1")
        informer.list()
        informer.by_index("canary", "c1")
    assert request_log.total("get") == 0
    assert request_log.total("list") == 0


async def test_secondary_indexes_follow_changes(kube: KubeClient, ns: str, started: list[Informer]) -> None:
    """Index ConfigMaps by the canaries that use them (a label listing several, comma-separated)."""

    def users(obj: dict[str, Any]) -> list[str]:
        value = (obj["metadata"].get("labels") or {}).get("users", "")
        return [u for u in value.split(".") if u]

    await kube.create(configmap("shared", ns, users="web.api"))
    await kube.create(configmap("web-only", ns, users="web"))
    informer = Informer(kube, r.CONFIG_MAP, namespace=ns)
    informer.add_index("users", users)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()

    def names(key: str) -> list[str]:
        return [o["metadata"]["name"] for o in informer.by_index("users", key)]

    assert names("web") == ["shared", "web-only"]
    assert names("api") == ["shared"]
    assert informer.index_keys("users") == ["api", "web"]

    await kube.patch(r.CONFIG_MAP, "shared", {"metadata": {"labels": {"users": "api"}}}, namespace=ns)
    await eventually(lambda: names("web") == ["web-only"])
    assert names("api") == ["shared"]
    await kube.delete(r.CONFIG_MAP, "web-only", namespace=ns)
    await eventually(lambda: names("web") == [])
    assert informer.index_keys("users") == ["api"]

    # An index added to a synced informer covers what is already cached.
    informer.add_index("name-length", lambda o: [str(len(o["metadata"]["name"]))])
    assert [o["metadata"]["name"] for o in informer.by_index("name-length", "6")] == ["shared"]
    with pytest.raises(KeyError):
        informer.by_index("missing", "x")


async def test_watch_resumes_after_a_dropped_connection(
    kube: KubeClient, proxied: KubeClient, proxy: TcpProxy, ns: str, started: list[Informer]
) -> None:
    await kube.create(configmap("a", ns, {"v": "0"}))
    informer = Informer(proxied, r.CONFIG_MAP, namespace=ns, backoff_initial=0.05, backoff_max=0.2)
    seen = Recorder()
    informer.add_handler(seen)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()

    for round_ in range(1, 4):
        assert proxy.drop_all() >= 1  # the watch stream is cut mid-flight (connection reset)
        # Changes made while the informer is disconnected are replayed from its resourceVersion.
        await kube.patch(r.CONFIG_MAP, "a", {"data": {"v": str(round_)}}, namespace=ns)
        await kube.create(configmap(f"new{round_}", ns, {"v": str(round_)}))
        await eventually(lambda n=round_: len(seen.events) == 1 + 2 * n)

    assert seen.events == [
        (ADDED, "a", "0"),
        (MODIFIED, "a", "1"),
        (ADDED, "new1", "1"),
        (MODIFIED, "a", "2"),
        (ADDED, "new2", "2"),
        (MODIFIED, "a", "3"),
        (ADDED, "new3", "3"),
    ]
    assert informer.lists == 1  # resumed, never re-listed
    assert informer.reconnects + informer.watches >= 4


async def test_watch_continues_when_the_server_ends_streams(
    kube: KubeClient, control: ClusterControl, ns: str, started: list[Informer]
) -> None:
    await control.faults(dropWatchAfterEvents=2)
    informer = Informer(kube, r.CONFIG_MAP, namespace=ns, backoff_initial=0.05)
    seen = Recorder()
    informer.add_handler(seen)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    for i in range(7):
        await kube.create(configmap(f"c{i}", ns, {"v": str(i)}))
    await eventually(lambda: len(seen.events) == 7)
    assert seen.names(ADDED) == [f"c{i}" for i in range(7)]
    assert informer.watches >= 4
    assert informer.lists == 1


async def test_gone_relists_and_emits_the_diff(
    kube: KubeClient,
    proxied: KubeClient,
    proxy: TcpProxy,
    control: ClusterControl,
    ns: str,
    started: list[Informer],
) -> None:
    for name in ("keep", "change", "remove"):
        await kube.create(configmap(name, ns, {"v": "1"}))
    informer = Informer(proxied, r.CONFIG_MAP, namespace=ns, backoff_initial=0.05, backoff_max=0.2)
    seen = Recorder()
    informer.add_handler(seen)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    assert sorted(seen.names(ADDED)) == ["change", "keep", "remove"]
    seen.events.clear()

    proxy.pause()  # cut the watch and refuse reconnects
    await kube.patch(r.CONFIG_MAP, "change", {"data": {"v": "2"}}, namespace=ns)
    await kube.delete(r.CONFIG_MAP, "remove", namespace=ns)
    await kube.create(configmap("appeared", ns, {"v": "1"}))
    await control.compact()  # the informer's resourceVersion is now too old to watch from
    proxy.resume()

    await eventually(lambda: len(seen.events) == 3)
    assert sorted(seen.events) == [
        (ADDED, "appeared", "1"),
        (DELETED, "remove", "1"),
        (MODIFIED, "change", "2"),
    ]
    assert informer.relists_after_gone == 1
    assert informer.lists == 2
    assert sorted(o["metadata"]["name"] for o in informer.list()) == ["appeared", "change", "keep"]

    # And it watches again afterwards.
    await kube.patch(r.CONFIG_MAP, "keep", {"data": {"v": "3"}}, namespace=ns)
    await eventually(lambda: len(seen.events) == 4)
    assert seen.events[-1] == (MODIFIED, "keep", "3")


@pytest.mark.localcluster(bookmark_interval=0.05)
async def test_bookmarks_advance_the_resource_version(
    kube: KubeClient, ns: str, started: list[Informer]
) -> None:
    informer = Informer(kube, r.CONFIG_MAP, namespace=ns)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    # A change the informer does not see (another namespace) still moves its resourceVersion forward.
    other = await kube.create(configmap("elsewhere", "default"))
    target = int(other["metadata"]["resourceVersion"])
    await eventually(lambda: int(informer.resource_version or 0) >= target)
    assert len(informer) == 0


async def test_label_selector_informer(kube: KubeClient, ns: str, started: list[Informer]) -> None:
    await kube.create(configmap("in", ns, tracked="yes"))
    await kube.create(configmap("out", ns))
    informer = Informer(kube, r.CONFIG_MAP, namespace=ns, label_selector={"tracked": "yes"})
    seen = Recorder()
    informer.add_handler(seen)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    assert [o["metadata"]["name"] for o in informer.list()] == ["in"]

    await kube.patch(r.CONFIG_MAP, "out", {"metadata": {"labels": {"tracked": "yes"}}}, namespace=ns)
    await eventually(lambda: informer.get(ns, "out") is not None)
    await kube.patch(r.CONFIG_MAP, "in", {"metadata": {"labels": {"tracked": None}}}, namespace=ns)
    await eventually(lambda: informer.get(ns, "in") is None)
    # The cache changes before the handlers run (on the dispatcher task): wait for the handler's event.
    await eventually(lambda: len(seen.events) >= 3)
    assert [e[:2] for e in seen.events] == [(ADDED, "in"), (ADDED, "out"), (DELETED, "in")]


async def test_resync_replays_the_cache_without_api_calls(
    kube: KubeClient, ns: str, started: list[Informer], request_log: RequestLog
) -> None:
    await kube.create(configmap("a", ns))
    informer = Informer(kube, r.CONFIG_MAP, namespace=ns, resync_seconds=0.05)
    resyncs: list[bool] = []
    informer.add_handler(lambda t, obj, old: resyncs.append(old is obj) if t == MODIFIED else None)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    request_log.clear()
    await eventually(lambda: len(resyncs) >= 3)
    assert all(resyncs)
    assert request_log.total("list") == 0
    assert informer.lists == 1


async def test_late_handler_gets_the_cache_first(kube: KubeClient, ns: str, started: list[Informer]) -> None:
    for name in ("x", "y"):
        await kube.create(configmap(name, ns))
    informer = Informer(kube, r.CONFIG_MAP, namespace=ns)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    late = Recorder()
    informer.add_handler(late)
    await kube.create(configmap("z", ns))
    await eventually(lambda: len(late.events) == 3)
    assert sorted(late.names(ADDED)) == ["x", "y", "z"]
    assert late.events[-1][1] == "z"


async def test_cluster_scoped_informer(kube: KubeClient, started: list[Informer]) -> None:
    informer = Informer(kube, r.NAMESPACE, namespace="ignored")
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    assert informer.get(None, "default") is not None
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fresh"}})
    await eventually(lambda: informer.get(None, "fresh") is not None)


async def test_garbage_collection_of_owned_objects_is_observed(
    kube: KubeClient, ns: str, started: list[Informer]
) -> None:
    owner = await kube.create(deployment("podinfo", ns))
    ref = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "podinfo",
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    for name in ("podinfo-primary-config", "podinfo-primary-secret-ref"):
        cm = configmap(name, ns)
        cm["metadata"]["ownerReferences"] = [ref]
        await kube.create(cm)
    await kube.create(configmap("unowned", ns))

    informer = Informer(kube, r.CONFIG_MAP, namespace=ns)
    informer.add_index("owner", lambda o: [ref["uid"] for ref in o["metadata"].get("ownerReferences") or []])
    seen = Recorder()
    informer.add_handler(seen)
    started.append(informer)
    await informer.start()
    await informer.wait_synced()
    assert len(informer.by_index("owner", owner["metadata"]["uid"])) == 2

    await kube.delete(r.DEPLOYMENT, "podinfo", namespace=ns, propagation_policy="Background")
    await eventually(lambda: len(seen.names(DELETED)) == 2)
    assert sorted(seen.names(DELETED)) == ["podinfo-primary-config", "podinfo-primary-secret-ref"]
    assert informer.by_index("owner", owner["metadata"]["uid"]) == []
    assert [o["metadata"]["name"] for o in informer.list()] == ["unowned"]
