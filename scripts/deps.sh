#!/usr/bin/env bash
# Installs the Debian 12 packages tensorinit builds and tests with (as root; no-op when present).
set -euo pipefail
packages=(
  cmake ninja-build g++ pkg-config
  libboost-dev libyaml-cpp-dev nlohmann-json3-dev libfmt-dev libzstd-dev libcurl4-openssl-dev
  doctest-dev libsodium-dev libxxhash-dev zlib1g-dev libssl-dev libarchive-dev
  python3 util-linux procps
  nginx-light zstd patchelf python3-pip openssl ca-certificates
  clang-16 libclang-rt-16-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python packages the tests use (moto_server for S3 on loopback, boto3/botocore to create its
# objects and to cross-check the SigV4 signer). The machine image has them; a fresh one gets them
# from PyPI.
if ! python3 -c "import boto3, botocore, moto" 2>/dev/null || ! command -v moto_server >/dev/null; then
  python3 -m pip install --quiet "moto[server]" boto3 botocore 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "moto[server]" boto3 botocore
fi
