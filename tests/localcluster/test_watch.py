"""Watch semantics: resume from a resourceVersion, selectors, bookmarks, timeouts and 410 Gone."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import aiohttp
import pytest

from tests.localcluster.helpers import configmap, request, watch_events

CMS = "/api/v1/namespaces/default/configmaps"


async def test_watch_resumes_from_resource_version(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", base, configmap("before"))
        _, listed = await request(session, "GET", base)
        rv = listed["metadata"]["resourceVersion"]
        await request(session, "POST", base, configmap("w", {"a": "1"}))
        await request(session, "PATCH", f"{base}/w", {"data": {"a": "2"}}, "application/merge-patch+json")
        await request(session, "DELETE", f"{base}/w")
        for flag in ("true", "1", "True"):
            events = await watch_events(session, f"{base}?watch={flag}&resourceVersion={rv}", 3)
            assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
                ("ADDED", "w"),
                ("MODIFIED", "w"),
                ("DELETED", "w"),
            ]
            assert events[1]["object"]["data"] == {"a": "2"}
            versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
            assert versions == sorted(versions)
            assert versions[0] > int(rv)


async def test_watch_without_version_starts_with_synthetic_added(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", base, configmap("a"))
        await request(session, "POST", base, configmap("b"))
        events = await watch_events(session, f"{base}?watch=1", 2)
        assert sorted(e["object"]["metadata"]["name"] for e in events) == ["a", "b"]
        assert {e["type"] for e in events} == {"ADDED"}


async def test_watch_live_events_and_all_namespaces(local_cluster):
    async with aiohttp.ClientSession() as session:
        _, listed = await request(session, "GET", local_cluster.url + "/api/v1/configmaps")
        rv = listed["metadata"]["resourceVersion"]
        reader = asyncio.create_task(
            watch_events(session, f"{local_cluster.url}/api/v1/configmaps?watch=true&resourceVersion={rv}", 2)
        )
        await asyncio.sleep(0.2)
        await request(session, "POST", local_cluster.url + CMS, configmap("live"))
        await request(
            session,
            "POST",
            local_cluster.url + "/api/v1/namespaces/kube-system/configmaps",
            configmap("other"),
        )
        events = await asyncio.wait_for(reader, 10)
        assert [(e["object"]["metadata"]["namespace"], e["type"]) for e in events] == [
            ("default", "ADDED"),
            ("kube-system", "ADDED"),
        ]


async def test_watch_label_selector_translates_transitions(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        _, listed = await request(session, "GET", base)
        rv = listed["metadata"]["resourceVersion"]
        await request(session, "POST", base, configmap("s", labels={"tier": "web"}))
        await request(session, "POST", base, configmap("ignored", labels={"tier": "db"}))
        await request(
            session,
            "PATCH",
            f"{base}/s",
            {"metadata": {"labels": {"tier": "db"}}},
            "application/merge-patch+json",
        )
        await request(
            session,
            "PATCH",
            f"{base}/s",
            {"metadata": {"labels": {"tier": "web"}}},
            "application/merge-patch+json",
        )
        events = await watch_events(
            session, f"{base}?watch=true&resourceVersion={rv}&labelSelector=tier%3Dweb", 3
        )
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "s"),
            ("DELETED", "s"),
            ("ADDED", "s"),
        ]


async def test_watch_field_selector_on_name(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        _, listed = await request(session, "GET", base)
        rv = listed["metadata"]["resourceVersion"]
        await request(session, "POST", base, configmap("x"))
        await request(session, "POST", base, configmap("y"))
        events = await watch_events(
            session, f"{base}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dy", 1
        )
        assert events[0]["object"]["metadata"]["name"] == "y"


async def test_watch_timeout_seconds_ends_the_stream(local_cluster):
    async with aiohttp.ClientSession() as session:
        events = await watch_events(session, f"{local_cluster.url}{CMS}?watch=true&timeoutSeconds=1", 100)
        assert events == []


@pytest.mark.localcluster(bookmark_interval=0.2)
async def test_watch_bookmarks_when_allowed(local_cluster):
    async with aiohttp.ClientSession() as session:
        _, listed = await request(session, "GET", local_cluster.url + CMS)
        rv = listed["metadata"]["resourceVersion"]
        url = f"{local_cluster.url}{CMS}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
        events = await watch_events(session, url, 1)
        assert events[0]["type"] == "BOOKMARK"
        assert events[0]["object"]["kind"] == "ConfigMap"
        assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)
        plain = await watch_events(
            session, f"{local_cluster.url}{CMS}?watch=true&resourceVersion={rv}&timeoutSeconds=1", 5
        )
        assert plain == []


@pytest.mark.localcluster(history_size=5)
async def test_watch_from_a_compacted_version_is_410_gone(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        _, listed = await request(session, "GET", base)
        old_rv = listed["metadata"]["resourceVersion"]
        for n in range(10):
            await request(session, "POST", base, configmap(f"c{n}"))
        events = await watch_events(session, f"{base}?watch=true&resourceVersion={old_rv}", 1)
        assert events[0]["type"] == "ERROR"
        status = events[0]["object"]
        assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
        assert "too old resource version" in status["message"]
        _, relisted = await request(session, "GET", base)
        recent = await watch_events(
            session,
            f"{base}?watch=true&resourceVersion={relisted['metadata']['resourceVersion']}&timeoutSeconds=1",
            1,
        )
        assert recent == []


async def test_watch_after_explicit_compaction_is_410(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        _, listed = await request(session, "GET", base)
        rv = listed["metadata"]["resourceVersion"]
        await request(session, "POST", base, configmap("z"))
        local_cluster.call(local_cluster.server.compact_history)
        events = await watch_events(session, f"{base}?watch=true&resourceVersion={rv}", 1)
        assert events[0]["object"]["code"] == 410


def _watchers(local_cluster) -> int:
    return local_cluster.call(
        lambda: len(local_cluster.server.api.store.watchers.get(("", "configmaps"), ()))
    )


def test_kubectl_get_watch_sees_changes(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(configmap("watched", {"a": "1"})), check=True)
    local_cluster.server.faults.drop_watch_after_events = 1  # the stream ends after the change: kubectl exits
    watcher = subprocess.Popen(
        [
            local_cluster.kubectl_bin,
            "--kubeconfig",
            str(local_cluster.kubeconfig),
            "--cache-dir",
            str(local_cluster.cache_dir),
            "get",
            "configmaps",
            "-w",
            "--request-timeout=20s",
            "-o",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(400):
            if _watchers(local_cluster):
                break
            time.sleep(0.025)
        local_cluster.kubectl(
            "patch",
            "configmap",
            "watched",
            "--type",
            "merge",
            "-p",
            json.dumps({"data": {"a": "2"}}),
            check=True,
        )
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    decoder = json.JSONDecoder()
    objects, text = [], out.strip()
    while text:
        obj, end = decoder.raw_decode(text)
        objects.append(obj)
        text = text[end:].strip()
    assert [o["data"]["a"] for o in objects if o["metadata"]["name"] == "watched"] == ["1", "2"], err


def test_kubectl_get_watch_table_output(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(configmap("t1", {"a": "1"})), check=True)
    local_cluster.server.faults.drop_watch_after_events = 0
    done = local_cluster.kubectl("get", "configmaps", "-w", "--request-timeout=20s")
    lines = [line.split() for line in done.stdout.strip().splitlines()]
    assert lines[0] == ["NAME", "DATA", "AGE"]
    assert lines[1][:2] == ["t1", "1"]


async def test_abandoned_watch_is_released(local_cluster):
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{local_cluster.url}{CMS}?watch=true") as response,
    ):
        assert response.status == 200
        for _ in range(200):
            if _watchers(local_cluster) == 1:
                break
            await asyncio.sleep(0.02)
        assert _watchers(local_cluster) == 1
    for _ in range(300):  # released by the server's liveness check, without any event on the stream
        if _watchers(local_cluster) == 0:
            break
        await asyncio.sleep(0.02)
    assert _watchers(local_cluster) == 0


async def test_watch_list_initial_events_end_with_a_bookmark(local_cluster):
    base = local_cluster.url + CMS
    async with aiohttp.ClientSession() as session:
        await request(session, "POST", base, configmap("one"))
        url = f"{base}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
        events = await watch_events(session, url, 2)
        assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
        marker = events[1]["object"]["metadata"]
        assert marker["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert int(marker["resourceVersion"]) >= int(events[0]["object"]["metadata"]["resourceVersion"])
        status, _ = await request(session, "GET", f"{base}?watch=true&sendInitialEvents=true")
        assert status == 400
