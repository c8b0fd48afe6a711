#!/usr/bin/env bash
# The checks CI runs before the tests: formatting, clippy with warnings as errors, buf lint,
# and the generated API documents compared with what the contracts give.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
echo "[lint] cargo fmt --check" >&2
cargo fmt --all -- --check
echo "[lint] cargo clippy -D warnings" >&2
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
bash deploy/tools.sh
echo "[lint] buf lint (STANDARD + COMMENTS)" >&2
(cd proto && ../.tools/node_modules/.bin/buf lint)
echo "[lint] the API documents (docs/openapi.json, docs/api/) in step with proto/" >&2
cargo run --quiet -p crm -- api-docs --check
echo "[lint] ok" >&2
