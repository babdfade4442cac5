#!/usr/bin/env bash
# Runs every test: unit tests (GoogleTest) and end-to-end tests (the real aws CLI v1/v2 and boto3 against a
# real server), all through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd build
ctest --output-on-failure -j2 --timeout 900 "$@"
