import json

import pytest

from canarist.hooks import build_event_payload, build_payload


def test_payload_has_flagger_fields_and_metadata():
    payload = build_payload("podinfo", "test", "Progressing", "abc123", {"cmd": "hey -z 1m http://x/"})
    assert payload == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "abc123",
        "metadata": {"cmd": "hey -z 1m http://x/"},
    }
    assert list(payload) == ["name", "namespace", "phase", "checksum", "metadata"]


@pytest.mark.parametrize("metadata", [None, {}])
def test_empty_metadata_is_omitted(metadata):
    payload = build_payload("podinfo", "test", "Succeeded", "c", metadata)
    assert "metadata" not in payload
    assert json.loads(json.dumps(payload)) == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Succeeded",
        "checksum": "c",
    }


def test_event_payload_metadata_and_no_override():
    payload = build_event_payload(
        "podinfo",
        "test",
        "Progressing",
        "sum",
        "Advance podinfo.test canary weight 10",
        "Normal",
        metadata={"eventType": "Sneaky", "timestamp": "1", "eventMessage": "x", "team": "a"},
        timestamp_ms=1700000000123,
    )
    assert payload["metadata"] == {
        "eventMessage": "Advance podinfo.test canary weight 10",
        "eventType": "Normal",
        "timestamp": "1700000000123",
        "team": "a",
    }
    assert payload["phase"] == "Progressing"


def test_event_payload_timestamp_defaults_to_now_in_ms():
    payload = build_event_payload("a", "b", "Failed", "c", "m", "Warning")
    stamp = payload["metadata"]["timestamp"]
    assert isinstance(stamp, str)
    assert stamp.isdigit()
    assert len(stamp) == 13  # milliseconds since the epoch


def test_event_type_is_checked():
    with pytest.raises(ValueError, match="Normal"):
        build_event_payload("a", "b", "Failed", "c", "m", "Error")
