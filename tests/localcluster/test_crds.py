"""CustomResourceDefinitions: dynamic serving, schema validation and pruning, status, printer columns."""

from __future__ import annotations

import copy
import json

import aiohttp
import pytest

from tests.localcluster.crds import CANARY_CRD, canary
from tests.localcluster.helpers import request

CANARIES = "/apis/flagger.app/v1beta1/namespaces/default/canaries"
MERGE = "application/merge-patch+json"


async def _install(session: aiohttp.ClientSession, url: str) -> None:
    status, body = await request(
        session, "POST", f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CANARY_CRD
    )
    assert status == 201, body


async def test_resource_is_served_once_its_crd_exists_and_removed_when_deleted(local_cluster):
    url = local_cluster.url
    async with aiohttp.ClientSession() as session:
        status, _ = await request(session, "GET", url + CANARIES)
        assert status == 404
        await _install(session, url)
        _, crd = await request(
            session,
            "GET",
            f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/canaries.flagger.app",
        )
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions == {"NamesAccepted": "True", "Established": "True"}
        assert crd["status"]["acceptedNames"]["kind"] == "Canary"
        _, resources = await request(session, "GET", f"{url}/apis/flagger.app/v1beta1")
        entry = next(r for r in resources["resources"] if r["name"] == "canaries")
        assert entry["kind"] == "Canary"
        assert entry["shortNames"] == ["canary"]
        assert entry["categories"] == ["all"]
        assert any(r["name"] == "canaries/status" for r in resources["resources"])
        status, created = await request(session, "POST", url + CANARIES, canary())
        assert status == 201
        assert created["metadata"]["generation"] == 1
        status, listed = await request(session, "GET", url + CANARIES)
        assert listed["kind"] == "CanaryList"
        assert len(listed["items"]) == 1
        status, _ = await request(
            session,
            "DELETE",
            f"{url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/canaries.flagger.app",
        )
        assert status == 200
        status, _ = await request(session, "GET", url + CANARIES)
        assert status == 404
        _, groups = await request(session, "GET", f"{url}/apis")
        assert "flagger.app" not in {g["name"] for g in groups["groups"]}


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (
            lambda s: s["analysis"].__setitem__("stepWeight", "ten"),
            "spec.analysis.stepWeight",
            "FieldValueTypeInvalid",
        ),
        (lambda s: s.__setitem__("provider", "linkerd"), "spec.provider", "FieldValueNotSupported"),
        (lambda s: s["targetRef"].pop("name"), "spec.targetRef.name", "FieldValueRequired"),
        (
            lambda s: s["targetRef"].__setitem__("name", "Bad_Name"),
            "spec.targetRef.name",
            "FieldValueInvalid",
        ),
        (
            lambda s: s["analysis"].__setitem__("maxWeight", 120),
            "spec.analysis.maxWeight",
            "FieldValueInvalid",
        ),
        (
            lambda s: s.__setitem__("progressDeadlineSeconds", -1),
            "spec.progressDeadlineSeconds",
            "FieldValueInvalid",
        ),
        (
            lambda s: s["analysis"].__setitem__("stepWeights", [1, "x"]),
            "spec.analysis.stepWeights[1]",
            "FieldValueTypeInvalid",
        ),
        (
            lambda s: s["analysis"].__setitem__(
                "metrics", [{"name": "m", "thresholdRange": {"min": 1}, "templateRef": {"name": "t"}}]
            ),
            "spec.analysis.metrics[0]",
            "FieldValueInvalid",
        ),
        (
            lambda s: s["service"].__setitem__("targetPort", 1.5),
            "spec.service.targetPort",
            "FieldValueTypeInvalid",
        ),
    ],
)
async def test_schema_rejections_name_the_field(local_cluster, mutate, field, reason):
    async with aiohttp.ClientSession() as session:
        await _install(session, local_cluster.url)
        body = canary()
        mutate(body["spec"])
        status, error = await request(session, "POST", local_cluster.url + CANARIES, body)
        assert status == 422, error
        assert error["reason"] == "Invalid"
        assert error["kind"] == "Status"
        assert error["message"].startswith(f'Canary.flagger.app "podinfo" is invalid: {field}')
        assert error["details"]["causes"][0] == {
            **error["details"]["causes"][0],
            "field": field,
            "reason": reason,
        }
        assert error["details"]["group"] == "flagger.app"
        assert error["details"]["kind"] == "canaries"


async def test_pruning_defaults_and_preserved_fields(local_cluster):
    async with aiohttp.ClientSession() as session:
        await _install(session, local_cluster.url)
        body = canary()
        body["spec"]["unknownField"] = 1
        body["spec"]["analysis"]["alsoUnknown"] = {"x": 1}
        body["spec"]["service"]["headers"] = {"anything": {"goes": [1, 2]}}
        body["spec"]["analysis"]["webhooks"] = [
            {"name": "w", "url": "http://x", "metadata": {"a": "b"}, "extra": True}
        ]
        body["topLevel"] = "dropped"
        async with session.post(local_cluster.url + CANARIES, json=body) as response:
            created = await response.json()
            warnings = response.headers.getall("Warning", [])
        assert "unknownField" not in created["spec"]
        assert "topLevel" not in created
        assert "alsoUnknown" not in created["spec"]["analysis"]
        assert "extra" not in created["spec"]["analysis"]["webhooks"][0]
        assert created["spec"]["service"]["headers"] == {"anything": {"goes": [1, 2]}}
        assert created["spec"]["analysis"]["threshold"] == 1
        assert any('unknown field \\"spec.unknownField\\"' in w for w in warnings), warnings
        body["metadata"]["name"] = "strict"
        status, error = await request(
            session, "POST", local_cluster.url + CANARIES + "?fieldValidation=Strict", body
        )
        assert status == 400
        assert error["reason"] == "BadRequest"
        assert 'unknown field "spec.unknownField"' in error["message"]


async def test_status_subresource_semantics(local_cluster):
    url = local_cluster.url + CANARIES
    async with aiohttp.ClientSession() as session:
        await _install(session, local_cluster.url)
        body = canary()
        body["status"] = {"phase": "Succeeded"}
        _, created = await request(session, "POST", url, body)
        assert "status" not in created
        _, with_status = await request(
            session,
            "PATCH",
            f"{url}/podinfo/status",
            {"status": {"phase": "Progressing", "canaryWeight": 10}, "spec": {"suspend": True}},
            MERGE,
        )
        assert with_status["status"] == {"phase": "Progressing", "canaryWeight": 10}
        assert "suspend" not in with_status["spec"]
        assert with_status["metadata"]["generation"] == 1
        _, main = await request(
            session,
            "PATCH",
            f"{url}/podinfo",
            {"status": {"phase": "Failed"}, "spec": {"suspend": True}},
            MERGE,
        )
        assert main["status"]["phase"] == "Progressing"
        assert main["spec"]["suspend"] is True
        assert main["metadata"]["generation"] == 2
        _, meta_only = await request(
            session, "PATCH", f"{url}/podinfo", {"metadata": {"labels": {"a": "b"}}}, MERGE
        )
        assert meta_only["metadata"]["generation"] == 2
        status, bad = await request(
            session, "PATCH", f"{url}/podinfo/status", {"status": {"phase": "Bogus"}}, MERGE
        )
        assert status == 422
        assert bad["details"]["causes"][0]["field"] == "status.phase"
        current = meta_only
        current["status"] = {"phase": "Succeeded"}
        status, replaced = await request(session, "PUT", f"{url}/podinfo/status", current)
        assert status == 200
        assert replaced["status"] == {"phase": "Succeeded"}
        status, stale = await request(session, "PUT", f"{url}/podinfo/status", current)
        assert status == 409
        assert stale["reason"] == "Conflict"


async def test_table_output_uses_printer_columns(local_cluster):
    url = local_cluster.url + CANARIES
    async with aiohttp.ClientSession() as session:
        await _install(session, local_cluster.url)
        await request(session, "POST", url, canary())
        await request(
            session,
            "PATCH",
            f"{url}/podinfo/status",
            {
                "status": {
                    "phase": "Progressing",
                    "canaryWeight": 20,
                    "conditions": [{"type": "Promoted", "status": "Unknown"}],
                }
            },
            MERGE,
        )
        headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
        _, table = await request(session, "GET", url, headers=headers)
        assert table["kind"] == "Table"
        assert table["apiVersion"] == "meta.k8s.io/v1"
        names = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
        assert names == [
            ("Name", 0),
            ("Status", 0),
            ("Weight", 0),
            ("StepWeight", 1),
            ("Ready", 1),
            ("LastTransitionTime", 0),
        ]
        assert table["rows"][0]["cells"][:5] == ["podinfo", "Progressing", "20", "10", "Unknown"]
        assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


def test_kubectl_apply_crd_and_get_with_printer_columns(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(CANARY_CRD), check=True)
    local_cluster.kubectl(
        "wait", "--for=condition=Established", "crd/canaries.flagger.app", "--timeout=10s", check=True
    )
    done = local_cluster.kubectl("apply", "-f", "-", input=json.dumps(canary()), check=True)
    assert "canary.flagger.app/podinfo created" in done.stdout
    local_cluster.kubectl(
        "patch",
        "canary",
        "podinfo",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Progressing", "canaryWeight": 30}}),
        check=True,
    )
    lines = local_cluster.kubectl("get", "canaries", check=True).stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert lines[1].split()[:3] == ["podinfo", "Progressing", "30"]
    wide = local_cluster.kubectl("get", "canaries", "-o", "wide", check=True).stdout.splitlines()
    assert wide[0].split() == ["NAME", "STATUS", "WEIGHT", "STEPWEIGHT", "READY", "LASTTRANSITIONTIME"]
    assert wide[1].split()[:4] == ["podinfo", "Progressing", "30", "10"]
    changed = canary()
    changed["spec"]["analysis"]["stepWeight"] = 20
    assert (
        "configured"
        in local_cluster.kubectl("apply", "-f", "-", input=json.dumps(changed), check=True).stdout
    )
    got = json.loads(local_cluster.kubectl("get", "canary", "podinfo", "-o", "json", check=True).stdout)
    assert got["spec"]["analysis"]["stepWeight"] == 20
    assert got["status"]["phase"] == "Progressing"
    assert got["metadata"]["generation"] == 2


def test_kubectl_apply_rejects_invalid_custom_resource_naming_the_field(local_cluster):
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(CANARY_CRD), check=True)
    bad = canary()
    bad["spec"]["analysis"]["stepWeight"] = "ten"
    done = local_cluster.kubectl("apply", "-f", "-", input=json.dumps(bad))
    assert done.returncode != 0
    assert "spec.analysis.stepWeight" in done.stderr
    assert "must be of type number" in done.stderr
    unknown = canary()
    unknown["spec"]["bogus"] = True
    strict = local_cluster.kubectl("apply", "-f", "-", input=json.dumps(unknown))
    assert strict.returncode != 0
    assert 'unknown field "spec.bogus"' in strict.stderr


async def test_istio_crds_serve_every_version(local_cluster):
    local_cluster.call(
        local_cluster.server.install_crds,
        __import__("canarist.localcluster", fromlist=["istio_crds"]).istio_crds(),
    )
    vs = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "podinfo"},
        "spec": {
            "hosts": ["podinfo"],
            "http": [{"route": [{"destination": {"host": "podinfo-primary"}, "weight": 100}]}],
        },
    }
    base = f"{local_cluster.url}/apis/networking.istio.io/%s/namespaces/default/virtualservices"
    async with aiohttp.ClientSession() as session:
        status, created = await request(session, "POST", base % "v1beta1", vs)
        assert status == 201
        assert created["apiVersion"] == "networking.istio.io/v1beta1"
        for version in ("v1", "v1alpha3"):
            _, got = await request(session, "GET", (base % version) + "/podinfo")
            assert got["apiVersion"] == f"networking.istio.io/{version}"
            assert got["spec"] == vs["spec"]


@pytest.mark.localcluster(install_istio_crds=True)
def test_istio_crds_option_and_kubectl(local_cluster):
    dr = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "podinfo-canary"},
        "spec": {"host": "podinfo-canary", "anything": {"x": 1}},
    }
    local_cluster.kubectl("apply", "-f", "-", input=json.dumps(dr), check=True)
    got = json.loads(local_cluster.kubectl("get", "dr", "podinfo-canary", "-o", "json", check=True).stdout)
    assert got["spec"]["anything"] == {"x": 1}
    assert "gateways.networking.istio.io" in local_cluster.kubectl("get", "crd", check=True).stdout


async def test_invalid_crd_is_rejected(local_cluster):
    bad = copy.deepcopy(CANARY_CRD)
    bad["metadata"]["name"] = "wrong.flagger.app"
    async with aiohttp.ClientSession() as session:
        status, error = await request(
            session,
            "POST",
            f"{local_cluster.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            bad,
        )
    assert status == 422
    assert error["details"]["causes"][0]["field"] == "metadata.name"


async def test_date_time_format_is_checked(local_cluster):
    url = local_cluster.url + CANARIES
    async with aiohttp.ClientSession() as session:
        await _install(session, local_cluster.url)
        await request(session, "POST", url, canary())
        good = {"status": {"lastTransitionTime": "2024-05-01T10:00:00Z"}}
        status, _ = await request(session, "PATCH", f"{url}/podinfo/status", good, MERGE)
        assert status == 200
        bad = {"status": {"lastTransitionTime": "yesterday"}}
        status, error = await request(session, "PATCH", f"{url}/podinfo/status", bad, MERGE)
        assert status == 422
        assert error["details"]["causes"][0]["field"] == "status.lastTransitionTime"
