#!/usr/bin/env bash
# Fails when sdk/src/gen differs from what `npm run gen` makes from proto/.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
npx buf generate proto --output "$out"
if ! diff -r "$out/sdk/src/gen" sdk/src/gen; then
  echo "generated code is stale: run 'npm run gen' and commit sdk/src/gen" >&2
  exit 1
fi
echo "generated code is fresh"
