#!/usr/bin/env bash
# The main job: set up, build, and run the seed's stack (`autopipe up`) until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/autopipe up --data-dir "${AUTOPIPE_DATA_DIR:-autopipe-data}" "$@"
