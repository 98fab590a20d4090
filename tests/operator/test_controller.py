"""Pure helpers of the controller."""

from datetime import UTC, datetime, timedelta

from canarist.engine.model import Decision
from canarist.operator.controller import canary_target_keys, next_wake, workload_config_keys
from tests.fixtures.canaries import canary_manifest

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_future_due_time_is_kept():
    due = NOW + timedelta(seconds=30)
    assert next_wake(Decision(actions=(), paced=True, next_due_at=due), NOW) == due


def test_a_past_due_time_does_not_spin_the_worker():
    # A canary at rest: the engine had nothing paced to do although the interval has long passed.
    decision = Decision(actions=(), paced=False, next_due_at=NOW - timedelta(minutes=5))
    assert next_wake(decision, NOW) is None
    assert next_wake(Decision(actions=(), paced=False, next_due_at=NOW), NOW) is None


def test_index_keys_of_canaries_and_workloads():
    assert list(canary_target_keys(canary_manifest())) == ["Deployment/test/podinfo"]
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "settings"}}]}],
                    "volumes": [{"name": "certs", "secret": {"secretName": "tls"}}],
                }
            }
        },
    }
    assert sorted(workload_config_keys(deployment)) == ["configmap/test/settings", "secret/test/tls"]
