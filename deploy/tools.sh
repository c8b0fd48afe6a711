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
