#!/usr/bin/env bash
# Fails when the contract in proto/ breaks compatibility with the one on main.
set -euo pipefail
cd "$(dirname "$0")/../.."
against="${BUF_BREAKING_AGAINST:-main}"
if ! git rev-parse --verify --quiet "$against" >/dev/null; then
  echo "buf breaking: no '$against' branch in this clone; nothing to compare against"
  exit 0
fi
if ! git cat-file -e "$against:proto" 2>/dev/null; then
  echo "buf breaking: '$against' has no proto/ yet; nothing to compare against"
  exit 0
fi
npx buf breaking proto --against ".git#branch=$against,subdir=proto"
echo "buf breaking: compatible with $against"
