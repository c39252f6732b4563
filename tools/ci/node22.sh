#!/usr/bin/env bash
# A bounded part of the tests on Node 22 LTS, the image's runtime (Dockerfile),
# whatever node runs the rest of CI: the unit tests of the services, the
# gateway, the SDK and the CLI, and the purchase path against a real stack.
# The binary is the newest 22.x of the registry's `node` package, installed
# into .local/node22. Arguments replace the test files.
set -euo pipefail
cd "$(dirname "$0")/../.."

prefix=.local/node22
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error node@22 >/dev/null
bin="$PWD/$prefix/node_modules/node/bin"

# First on PATH, so what the tests start by name (node, npm, npx) runs on it
# too, as does what they start with process.execPath (vitest's workers are it).
export PATH="$bin:$PATH"
version=$(node --version)
if [[ $version != v22.* ]]; then
  echo "expected Node 22 from $bin, got $version" >&2
  exit 1
fi
echo "node $version ($bin/node)"

if [[ $# -eq 0 ]]; then
  set -- services/ gateway/ sdk/ cli/src/ test/purchase.test.ts
fi
exec node node_modules/vitest/vitest.mjs run "$@"
