"""`canarist validate` knows canarist's analysis fields: ``metrics[].noData``, ``metrics[].minSamples`` and
``analysis.maxProviderErrors`` (valid values pass and load; bad ones are path-qualified lines, exit 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canarist.api import Canary
from canarist.cli.main import main

CANARY = """\
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 30s
    threshold: 5
    stepWeight: 10
    maxProviderErrors: 2
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
        interval: 1m
        noData: hold
        minSamples:
          query: sum(increase(istio_requests_total{destination_workload="{{ target }}"}[{{ interval }}]))
          count: 100
      - name: request-duration
        thresholdRange: {max: 500}
        interval: 1m
"""


def test_the_fields_validate_and_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(CANARY)
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == ""
    canary = Canary.model_validate(yaml.safe_load(CANARY))
    held, failing = canary.spec.analysis.metrics if canary.spec.analysis else []
    assert (held.no_data_policy(), failing.no_data_policy()) == ("hold", "fail")
    assert held.min_samples is not None
    assert held.min_samples.count == 100
    assert canary.max_provider_errors() == 2
    assert Canary.model_validate({**yaml.safe_load(CANARY), "spec": {}}).max_provider_errors() == 4


@pytest.mark.parametrize(
    ("before", "after", "line"),
    [
        (
            "noData: hold",
            "noData: later",
            'metrics[0].noData: unsupported value "later": must be one of fail, hold',
        ),
        ("count: 100", "count: -5", "metrics[0].minSamples.count: must be >= 0"),
        ("count: 100", "count: many", "metrics[0].minSamples.count: must be a number, got a string"),
        ("maxProviderErrors: 2", "maxProviderErrors: -1", "maxProviderErrors: must be >= 0"),
        (
            "maxProviderErrors: 2",
            "maxProviderErrors: yes",
            "maxProviderErrors: must be a number, got a boolean",
        ),
    ],
)
def test_bad_values_are_path_qualified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], before: str, after: str, line: str
) -> None:
    path = tmp_path / "canary.yaml"
    path.write_text(CANARY.replace(before, after))
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines() == [f"podinfo: spec.analysis.{line}"]
    assert "Traceback" not in out.err
