#!/usr/bin/env bash
# Fails when sdk/src/gen differs from what `npm run gen` makes from proto/, or
# sdk-python/gen from what `npm run python:gen` makes.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
npx buf generate proto --output "$out"
if ! diff -r "$out/sdk/src/gen" sdk/src/gen; then
  echo "generated code is stale: run 'npm run gen' and commit sdk/src/gen" >&2
  exit 1
fi
npx tsx tools/python/gen.ts "$out/python"
if ! diff -r -x __pycache__ "$out/python" sdk-python/gen; then
  echo "generated Python code is stale: run 'npm run python:gen' and commit sdk-python/gen" >&2
  exit 1
fi
echo "generated code is fresh"
