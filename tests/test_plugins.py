"""Plugins through entry points: real distributions on disk (``*.dist-info`` with ``entry_points.txt``)
discovered by ``importlib.metadata`` in a real subprocess, used by a metric check, an alert and
``canarist validate``; broken plugins give warnings and failed checks, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

PLUGIN_MODULE = """
import json
import os


def _record(**fields):
    with open(os.environ["ACME_OUT"], "a") as out:
        out.write(json.dumps(fields) + "\\n")


class Fixed:
    def __init__(self, spec, secret):
        self.spec = spec
        self.secret = secret

    async def query(self, q):
        _record(kind="query", query=q, address=self.spec.address, type=self.spec.type, secret=self.secret)
        return 42.5


def fixed(spec, secret):
    return Fixed(spec, secret)


def raising(spec, secret):
    raise RuntimeError("no backend configured")


class Exploding:
    async def query(self, q):
        raise ValueError("boom")


def exploding(spec, secret):
    return Exploding()


NOT_CALLABLE = 3


class Recorder:
    def __init__(self, config):
        self.config = config

    async def post(self, workload, namespace, message, fields, severity):
        _record(
            kind="alert", workload=workload, namespace=namespace, message=message, fields=list(fields),
            severity=severity, url=self.config.url, channel=self.config.channel,
        )


def recorder(config):
    return Recorder(config)
"""

ENTRY_POINTS = """\
[canarist.metric_providers]
acme = acme_plugins:fixed
raising = acme_plugins:raising
exploding = acme_plugins:exploding
notcallable = acme_plugins:NOT_CALLABLE
missing = acme_missing_module:factory
prometheus = acme_plugins:fixed

[canarist.notifiers]
recorder = acme_plugins:recorder
slack = acme_plugins:recorder
brokennotifier = acme_missing_module:build
"""

#: a second distribution claiming a name the first one has
OTHER_ENTRY_POINTS = """\
[canarist.metric_providers]
acme = acme_plugins:raising
"""

DRIVER = """
import asyncio, json, logging, sys

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")

from canarist.api import AlertProvider, CanaryMetric, MetricTemplate
from canarist.metrics.checks import evaluate_metric
from canarist.metrics.providers import ProviderSpec, create_provider
from canarist.notify.alerts import send_alert
from canarist.notify.base import NopNotifier
from tests.fixtures.canaries import canary_model

request = json.loads(sys.argv[1])
# builtins never load the plugins
create_provider(ProviderSpec(type="prometheus", address="http://127.0.0.1:1"))
print(json.dumps({"imported_early": "acme_plugins" in sys.modules}), flush=True)


def template(ptype):
    return MetricTemplate.model_validate({
        "metadata": {"name": "tpl", "namespace": "test"},
        "spec": {"provider": {"type": ptype, "address": "http://127.0.0.1:1/acme"},
                 "query": 'errors{app="{{ target }}"}'},
    })


async def main():
    canary = canary_model(
        progress_deadline_s=None, autoscaler=None, service={"port": 9898},
        analysis={"interval": "1m", "threshold": 5, "stepWeight": 10,
                  "alerts": [{"name": a, "providerRef": {"name": a}} for a in request.get("alerts", [])]},
    )
    metric = CanaryMetric.model_validate(
        {"name": "acme-errors", "templateRef": {"name": "tpl"}, "thresholdRange": {"max": 50}}
    )
    for ptype in request.get("metrics", []):
        r = await evaluate_metric(canary, metric, metrics_server="", template=template(ptype))
        print(json.dumps({"type": ptype, "ok": r.ok, "value": r.value, "message": r.message,
                          "severity": r.severity}), flush=True)
    if request.get("alerts"):
        def provider(namespace, name):
            return AlertProvider.model_validate({
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"type": name, "address": "http://127.0.0.1:1/hook", "channel": "ops"},
            })
        deliveries = await send_alert(canary, "Canary analysis failed", True, "error",
                                      global_notifier=NopNotifier(), providers=provider,
                                      secrets=lambda ns, name: None)
        for d in deliveries:
            print(json.dumps({"target": d.target, "ok": d.ok, "error": d.error}), flush=True)


asyncio.run(main())
"""


def make_dist(site: Path, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    """A real installed distribution: its modules and ``<dist>-0.1.dist-info`` in ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def plugin_site(tmp_path: Path, *, duplicate: bool = False) -> Path:
    site = tmp_path / "site"
    make_dist(site, "acme-plugins", ENTRY_POINTS, {"acme_plugins": PLUGIN_MODULE})
    if duplicate:
        make_dist(site, "other-plugins", OTHER_ENTRY_POINTS, {})
    return site


def run(
    tmp_path: Path, args: list[str], site: Path | None, *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*([str(site)] if site is not None else []), str(REPO)])
    env["ACME_OUT"] = str(tmp_path / "out.jsonl")
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def drive(tmp_path: Path, request: dict[str, Any], *, duplicate: bool = False) -> tuple[list[Any], str]:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = run(tmp_path, [str(driver), json.dumps(request)], plugin_site(tmp_path, duplicate=duplicate))
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def recorded(tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "out.jsonl"
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_metric_check_uses_the_plugin_value_loaded_lazily_once(tmp_path: Path) -> None:
    lines, stderr = drive(tmp_path, {"metrics": ["acme", "acme"]})
    assert lines[0] == {"imported_early": False}
    for line in lines[1:]:
        assert line == {"type": "acme", "ok": True, "value": 42.5, "message": "", "severity": "info"}
    assert stderr.count("metric provider plugin acme from acme-plugins loaded") == 1
    calls = recorded(tmp_path)
    assert len(calls) == 2
    assert calls[0]["query"] == 'errors{app="podinfo"}'
    assert calls[0]["address"] == "http://127.0.0.1:1/acme"
    assert calls[0]["type"] == "acme"
    assert calls[0]["secret"] is None


def test_broken_metric_plugins_fail_their_checks_with_one_warning_each(tmp_path: Path) -> None:
    lines, stderr = drive(
        tmp_path, {"metrics": ["missing", "notcallable", "raising", "exploding", "missing", "prometheus"]}
    )
    results = {line["type"]: line for line in lines[1:]}
    for ptype in ("missing", "notcallable", "raising", "exploding"):
        assert results[ptype]["ok"] is False
        assert results[ptype]["severity"] == "error"
        assert results[ptype]["value"] is None
    assert (
        "metric provider plugin missing from acme-plugins cannot be loaded (acme_missing_module:factory)"
        in (results["missing"]["message"])
    )
    assert "ModuleNotFoundError" in results["missing"]["message"]
    assert "acme_plugins:NOT_CALLABLE is a int, not a callable" in results["notcallable"]["message"]
    assert (
        "metric provider plugin raising from acme-plugins failed to build a provider: RuntimeError: "
        "no backend configured" in results["raising"]["message"]
    )
    assert (
        "metric provider plugin exploding from acme-plugins failed: ValueError: boom"
        in (results["exploding"]["message"])
    )
    # the builtin prometheus wins: it queried the (closed) address instead of calling the plugin
    assert results["prometheus"]["ok"] is False
    assert "plugin" not in results["prometheus"]["message"]
    assert recorded(tmp_path) == []
    warnings = [line for line in stderr.splitlines() if line.startswith("WARNING canarist.plugins")]
    assert len(warnings) == 3, stderr
    assert sum("plugin missing from" in w for w in warnings) == 1
    assert sum("plugin notcallable from" in w for w in warnings) == 1
    assert (
        sum("plugin prometheus from acme-plugins ignored: prometheus is a builtin" in w for w in warnings)
        == 1
    )
    assert "unknown metric provider type" not in stderr


def test_a_name_claimed_by_two_distributions_is_refused(tmp_path: Path) -> None:
    lines, stderr = drive(tmp_path, {"metrics": ["acme"]}, duplicate=True)
    message = "metric provider plugin acme from acme-plugins, other-plugins cannot be loaded: 2 distributions provide acme"
    assert lines[1]["ok"] is False
    assert lines[1]["value"] is None
    assert message in lines[1]["message"]
    assert stderr.count(message) == 1
    assert recorded(tmp_path) == []


def test_notifier_plugin_receives_the_alert(tmp_path: Path) -> None:
    lines, stderr = drive(tmp_path, {"alerts": ["recorder", "brokennotifier", "slack"]})
    deliveries = {line["target"]: line for line in lines[1:]}
    assert deliveries["recorder.test"] == {"target": "recorder.test", "ok": True, "error": ""}
    assert deliveries["brokennotifier.test"]["ok"] is False
    assert (
        "notifier plugin brokennotifier from acme-plugins cannot be loaded"
        in (deliveries["brokennotifier.test"]["error"])
    )
    assert deliveries["slack.test"]["ok"] is False  # the builtin Slack notifier, posting to a closed port
    alerts = recorded(tmp_path)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["workload"] == "podinfo"
    assert alert["namespace"] == "test"
    assert alert["message"] == "Canary analysis failed"
    assert alert["severity"] == "error"
    assert alert["url"] == "http://127.0.0.1:1/hook"
    assert alert["channel"] == "ops"
    assert ["Target", "Deployment/podinfo.test"] in alert["fields"]
    assert stderr.count("notifier plugin recorder from acme-plugins loaded") == 1
    assert (
        stderr.count("notifier plugin slack from acme-plugins ignored: slack is a builtin notifier type") == 1
    )


MANIFESTS = """\
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: acme-errors, namespace: test}
spec:
  provider: {type: acme, address: "http://acme.example:8080"}
  query: errors
---
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {name: ops, namespace: test}
spec: {type: recorder, address: "http://hooks.example/ops"}
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: typo, namespace: test}
spec:
  provider: {type: acmee}
  query: errors
"""


def test_validate_accepts_types_of_installed_plugins(tmp_path: Path) -> None:
    (tmp_path / "manifests.yaml").write_text(MANIFESTS)
    with_plugins = run(tmp_path, ["-m", "canarist", "validate", "manifests.yaml"], plugin_site(tmp_path))
    assert with_plugins.returncode != 0
    out = with_plugins.stdout + with_plugins.stderr
    assert "acme-errors" not in out
    assert "ops" not in out
    assert 'typo: spec.provider.type: unsupported value "acmee"' in out
    # the plugin module is not imported by validation
    assert "loaded" not in with_plugins.stderr

    without = run(tmp_path, ["-m", "canarist", "validate", "manifests.yaml"], None)
    assert without.returncode != 0
    out = without.stdout + without.stderr
    assert 'acme-errors: spec.provider.type: unsupported value "acme"' in out
    assert 'ops: spec.type: unsupported value "recorder"' in out
