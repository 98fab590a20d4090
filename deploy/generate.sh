#!/bin/sh
# Regenerate the committed, generated manifests. tests/deploy checks that both are up to date.
set -eu
cd "$(dirname "$0")/.."
CANARIST="${CANARIST:-.venv/bin/canarist}"
KUBECTL="${KUBECTL:-kubectl}"
"$CANARIST" crds > deploy/base/operator/crds.yaml
"$KUBECTL" kustomize deploy/overlays/istio > deploy/install.yaml
echo "wrote deploy/base/operator/crds.yaml and deploy/install.yaml"
