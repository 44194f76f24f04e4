#!/usr/bin/env bash
# Prints the SHA-256 of everything a package build reads: the compiled daemon, the manifest and lock, the
# unit, the default config and this directory (names and contents). build.sh stores it next to the
# artifacts; the package tests (test/package/artifacts.ts) rebuild when it differs, so they never test
# a stale package and never rebuild an unchanged one.
set -euo pipefail
cd "$(dirname "$0")/../.."
find dist package.json package-lock.json systemd config scripts/package -type f -print0 |
  LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
