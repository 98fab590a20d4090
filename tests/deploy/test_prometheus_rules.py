"""deploy/prometheus/canarist-rules.yaml: valid for the real `promtool`, and its alerts fire (and stay
quiet) as the unit-test series in canarist-rules.test.yaml say."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.deploy.support import DEPLOY

RULES = DEPLOY / "prometheus" / "canarist-rules.yaml"
RULE_TESTS = DEPLOY / "prometheus" / "canarist-rules.test.yaml"
INSTALL = "apt-get install -y --no-install-recommends prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(f"the real `promtool` is required; install it with: {INSTALL}", pytrace=False)
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, cwd=RULES.parent, check=False
    )


def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_promtool_test_rules() -> None:
    done = promtool("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_unit_tested_and_the_required_ones_exist() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert {
        "CanaryFailed",
        "CanaryStuckProgressing",
        "CanaristOperatorDown",
        "CanaristOperatorAbsent",
    } <= alerts
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test") or []
        if case.get("exp_alerts")
    }
    assert tested == alerts
    failed = next(
        r
        for g in yaml.safe_load(RULES.read_text())["groups"]
        for r in g["rules"]
        if r["alert"] == "CanaryFailed"
    )
    assert failed["expr"] == "flagger_canary_status > 1"
