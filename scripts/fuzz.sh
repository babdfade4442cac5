#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DAUTOPIPE_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target api_parsers_fuzz
mkdir -p build-fuzz/corpus/api_parsers
cp -n fuzz/corpus/api_parsers/* build-fuzz/corpus/api_parsers/ 2>/dev/null || true
build-fuzz/api_parsers_fuzz -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
  build-fuzz/corpus/api_parsers 2>&1 | tail -n 5
echo "fuzz: api_parsers_fuzz ran ${SECONDS_PER_TARGET}s without a crash"
