#!/usr/bin/env bash
# `make test`: the Helm chart and Dockerfile checks (deploy/helm-check.sh), then private
# Postgres and Redis on test ports (recreated empty), every test of the workspace against them
# (each test makes its own database and key prefix), then stop them.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
services="$top/deploy/local/services.sh"
# the deployment first: the image's Dockerfile and the Helm chart, rendered and validated
bash "$top/deploy/helm-check.sh"
# the OpenAPI document of JSON over HTTP (what the gateway serves at /openapi.json under the
# default policy; make lint checks it is the one the contracts give) against the OpenAPI schema
bash "$top/deploy/tools.sh" api
echo "[test] openapi-spec-validator docs/openapi.json" >&2
"$top/.tools/venv/bin/openapi-spec-validator" "$top/docs/openapi.json"
trap 'bash "$services" stop test' EXIT
bash "$services" start test
export CRM_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:${CRM_PG_PORT:-55433}/postgres
export CRM_TEST_REDIS_URL=redis://127.0.0.1:${CRM_REDIS_PORT:-56380}
log=$(mktemp)
status=0
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$log" || status=$?
bash "$services" stop test
trap - EXIT
# one closing line for the whole run, printed last: the sum of every test binary's result
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
