#!/usr/bin/env bash
# The main job: set up, build, and run the seed's stack (`autopipe up`) until Ctrl-C.
# Run it as root: instances then run under identities of their own and cannot reach the region's data dir, the
# server or its load balancers (docs/design.md); not as root, `autopipe up` warns that they share its user.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/autopipe up --data-dir "${AUTOPIPE_DATA_DIR:-autopipe-data}" "$@"
