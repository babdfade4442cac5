#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DAUTOPIPE_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
for target in api_parsers api_router; do
  cmake --build build-fuzz -j"$(nproc)" --target "${target}_fuzz" >/dev/null
  mkdir -p "build-fuzz/corpus/$target"
  cp -n fuzz/corpus/"$target"/* "build-fuzz/corpus/$target/" 2>/dev/null || true
  "build-fuzz/${target}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    "build-fuzz/corpus/$target" 2>&1 | grep -aE "^(Done|==|SUMMARY|#[0-9]+ *DONE)" || true
  echo "fuzz: ${target}_fuzz ran ${SECONDS_PER_TARGET}s without a crash"
done
