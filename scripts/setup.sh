#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks (when something is missing) and builds build/autopipe.
# Usage: scripts/setup.sh            (release-ish build in build/)
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: compiler, CMake, and the libraries the code is made of (docs/dependencies.md says why each is there).
# Tests: GoogleTest, clang's libFuzzer runtime, the aws CLI v2 and boto3 from Debian, curl.
# Engines the region runs (RDS: MariaDB and mariadb-backup; ElastiCache: redis-server) and their own clients.
PACKAGES=(
  g++ make cmake pkg-config
  libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libsqlite3-dev libssl-dev libjemalloc-dev
  libmariadb-dev libhiredis-dev libcurl4-openssl-dev python3-cryptography zlib1g-dev libldns-dev libexpat1-dev
  libgtest-dev libbenchmark-dev clang libclang-rt-14-dev
  awscli python3 python3-boto3 curl procps dnsutils
  mariadb-server mariadb-backup mariadb-client redis-server redis-tools python3-pymysql python3-redis
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
# Run as root, the server starts each instance under a uid of its own (docs/design.md, "What an instance can and
# cannot touch"); that uid execs this binary, so it must be executable by others whatever the umask was. Nothing
# else needs setting up: port 80 comes from an ambient capability, not from a sysctl.
chmod a+rx build/autopipe
