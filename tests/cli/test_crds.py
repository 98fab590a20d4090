import yaml

from canarist.api.crds import crds
from canarist.cli.main import main


def test_crds_prints_the_flagger_crds_and_canarycommands_as_multi_doc_yaml(capsys):
    assert main(["crds"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["metadata"]["name"] for d in docs] == [
        "canaries.flagger.app",
        "metrictemplates.flagger.app",
        "alertproviders.flagger.app",
        "canarycommands.canarist.dev",
    ]
    assert docs == crds()
    assert all(d["apiVersion"] == "apiextensions.k8s.io/v1" for d in docs)
