#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60).
# Exits non-zero when a target crashes; the crashing input is left in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DAUTOPIPE_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
for target in api_parsers api_router http_parser dns_query route53_xml; do
  cmake --build build-fuzz -j"$(nproc)" --target "${target}_fuzz" >/dev/null
  mkdir -p "build-fuzz/corpus/$target"
  cp -n fuzz/corpus/"$target"/* "build-fuzz/corpus/$target/" 2>/dev/null || true
  log="build-fuzz/${target}.log"
  if ! (cd build-fuzz && "./${target}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
        "corpus/$target" >"${target}.log" 2>&1); then
    tail -n 60 "$log"
    echo "fuzz: ${target}_fuzz FAILED"
    exit 1
  fi
  grep -a "^Done" "$log" || true
  echo "fuzz: ${target}_fuzz ran ${SECONDS_PER_TARGET}s without a crash"
done
