#!/usr/bin/env bash
# `make helm-check` (part of `make test`): the Dockerfile through hadolint; the chart through
# helm lint and helm template, with the default values and with every optional feature on
# (helm/crm/ci/*.yaml), each rendered manifest validated against the Kubernetes schemas
# (kubernetes-validate --strict); the collector config, alert rules and dashboard against the
# metrics the code defines; and values that break the schema must be refused. That the
# chart's services are the binary's is checked by a Rust test (tests/platform.rs).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash deploy/tools.sh helm
helm="$top/.tools/bin/helm"
venv="$top/.tools/venv/bin"
k8s_version=${CRM_K8S_VERSION:-1.31.0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "[helm-check] hadolint deploy/Dockerfile"
"$venv/hadolint" deploy/Dockerfile
"$venv/python" deploy/observability/check.py

for values in helm/crm/ci/*.yaml; do
  name=$(basename "$values" .yaml)
  echo "[helm-check] $name: helm lint, helm template, kubernetes-validate (Kubernetes $k8s_version)"
  "$helm" lint helm/crm --strict --quiet -f "$values" >/dev/null
  "$helm" template crm helm/crm -f "$values" --kube-version "$k8s_version" >"$out/$name.yaml"
  "$venv/kubernetes-validate" --strict --quiet -k "$k8s_version" "$out/$name.yaml"
  kinds=$(grep -c '^kind:' "$out/$name.yaml")
  echo "[helm-check] $name: $kinds objects valid"
done

# values the schema must refuse, and a combination the templates must refuse
refuse() {
  if "$helm" template crm helm/crm -f helm/crm/ci/default-values.yaml "$@" >/dev/null 2>&1; then
    echo "[helm-check] accepted what must be refused: $*" >&2
    exit 1
  fi
}
refuse --set port=0
refuse --set services.billing.replicas=1
refuse --set migrations.mode=sometimes
refuse --set trial.postgres.enabled=true
# the ops guide documents every top-level value of the chart
"$venv/python" - <<'PY'
import pathlib, sys, yaml
top = pathlib.Path.cwd()
values = yaml.safe_load((top / "helm/crm/values.yaml").read_text())
guide = (top / "docs/operations.md").read_text()
missing = [k for k in values if f"`{k}" not in guide]
if missing:
    sys.exit(f"[helm-check] docs/operations.md does not document the values {missing}")
print(f"[helm-check] docs/operations.md documents all {len(values)} top-level values")
PY
echo "[helm-check] ok"
