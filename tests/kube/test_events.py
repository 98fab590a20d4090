"""EventRecorder against the local control plane: fields, aggregation of repeats, never raising."""

from __future__ import annotations

from typing import Any

from canarist.kube import EventRecorder, KubeClient, RequestLog, RetryPolicy
from canarist.kube import resources as r

from ._net import ClusterControl
from .conftest import canary


async def _events(kube: KubeClient, ns: str) -> list[dict[str, Any]]:
    return sorted(
        (await kube.list(r.EVENT, namespace=ns)).items, key=lambda e: (e["reason"], e["message"], e["type"])
    )


async def test_event_fields(kube: KubeClient, ns: str, crds: None) -> None:
    target = await kube.create(canary("podinfo", ns))
    recorder = EventRecorder(kube, host="")
    written = await recorder.record(target, "Normal", "Synced", "Initialization done! podinfo.test")
    assert written is not None
    [event] = await _events(kube, ns)
    assert event["involvedObject"] == {
        "kind": "Canary",
        "namespace": ns,
        "name": "podinfo",
        "uid": target["metadata"]["uid"],
        "apiVersion": "flagger.app/v1beta1",
        "resourceVersion": target["metadata"]["resourceVersion"],
    }
    assert event["type"] == "Normal"
    assert event["reason"] == "Synced"
    assert event["message"] == "Initialization done! podinfo.test"
    assert event["source"] == {"component": "flagger"}
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"]
    assert event["metadata"]["name"].startswith("podinfo.")


async def test_repeats_are_aggregated(kube: KubeClient, ns: str, crds: None, request_log: RequestLog) -> None:
    target = await kube.create(canary("podinfo", ns))
    recorder = EventRecorder(kube)
    message = "Halt advancement no values found for istio metric request-success-rate"
    for _ in range(5):
        await recorder.record(target, "Warning", "Synced", message)
    await recorder.record(target, "Normal", "Synced", "Advance podinfo.test canary weight 10")
    await recorder.record(target, "Warning", "Synced", message)

    events = await _events(kube, ns)
    assert [(e["type"], e["count"]) for e in events] == [("Normal", 1), ("Warning", 6)]
    warning = events[1]
    assert warning["lastTimestamp"] >= warning["firstTimestamp"]
    assert request_log.counts[("create", "events", 201)] == 2
    assert request_log.counts[("patch", "events", 200)] == 5

    # Another object with the same reason and message is its own series.
    other = await kube.create(canary("other", ns))
    await recorder.record(other, "Warning", "Synced", message)
    assert len(await _events(kube, ns)) == 3


async def test_an_expired_event_starts_a_new_series(kube: KubeClient, ns: str, crds: None) -> None:
    target = await kube.create(canary("podinfo", ns))
    recorder = EventRecorder(kube)
    first = await recorder.record(target, "Warning", "Synced", "failing")
    assert first is not None
    await kube.delete(r.EVENT, first["metadata"]["name"], namespace=ns)  # events have a TTL
    again = await recorder.record(target, "Warning", "Synced", "failing")
    assert again is not None
    assert again["count"] == 1
    assert again["metadata"]["name"] != first["metadata"]["name"]


async def test_recording_never_raises(kube: KubeClient, ns: str, control: ClusterControl) -> None:
    recorder = EventRecorder(kube)
    ghost = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "no-such-namespace"},
    }
    assert await recorder.record(ghost, "Warning", "Synced", "lost") is None
    assert await recorder.record({"kind": "ConfigMap"}, "Normal", "Synced", "no name") is None
    # Transient errors are retried (see test_faults.py); one that outlasts the retries is given up.
    recorder.retry = RetryPolicy(attempts=2, base_delay=0.01, budget=0.5)
    await control.fail("create", 500, times=2)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": ns}}
    assert await recorder.record(cm, "Normal", "Synced", "server error") is None
    assert recorder.failures == 3
    # Back to normal afterwards, and the background form works too.
    recorder.record_nowait(cm, "Normal", "Synced", "ok")
    await recorder.flush()
    assert [e["message"] for e in await _events(kube, ns)] == ["ok"]


async def test_cluster_scoped_objects_get_events_in_default(kube: KubeClient) -> None:
    node_like = await kube.get(r.NAMESPACE, "default")
    recorder = EventRecorder(kube, component="canarist-test")
    event = await recorder.record(node_like, "Normal", "Checked", "namespace checked")
    assert event is not None
    assert event["metadata"]["namespace"] == "default"
    assert event["source"]["component"] == "canarist-test"
    assert "namespace" not in event["involvedObject"]
