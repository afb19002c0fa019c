#!/usr/bin/env bash
# Installs the Debian packages that building ctformer and its tests needs. Idempotent: it installs
# only what is missing, and does nothing (no root needed) when everything is there.
# --arm64: also what scripts/arm64-check.sh needs (the AArch64 cross compiler, qemu-user, and the
# arm64 builds of the libraries that the tests and the tool link), adding dpkg's arm64 architecture.
set -euo pipefail
arm64=0
[ "${1:-}" = "--arm64" ] && arm64=1

packages=(
  g++ cmake make            # compiler and build
  libeigen3-dev             # the CPU backend's matrix library (>= 3.4)
  nlohmann-json3-dev        # config.json, safetensors headers, vocab.json
  libboost-test-dev         # the test framework
  libcurl4-openssl-dev      # ctformer download: HTTP(S) from the Hugging Face hub
  libssl-dev                # ctformer download: SHA-256 checks (OpenSSL libcrypto)
  ca-certificates           # ctformer download: trusting the hub's TLS certificate
  libcpp-httplib-dev pkgconf  # ctformer serve: the HTTP server (found through pkg-config)
  clang-14 libclang-rt-14-dev  # the fuzz targets (libFuzzer) in scripts/fuzz.sh
  python3                   # the CUDA kernel resource check (tools/kernel_resources.py)
)
if [ $arm64 -eq 1 ]; then
  packages+=(g++-aarch64-linux-gnu qemu-user libboost-test-dev:arm64 libcurl4-openssl-dev:arm64
             libssl-dev:arm64)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all build dependencies are installed (${packages[*]})"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install-deps: error: packages ${missing[*]} are missing, and installing them needs root." >&2
  echo "  Run as root:  apt-get install -y ${missing[*]}" >&2
  exit 1
fi
if [ $arm64 -eq 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  "${sudo[@]}" dpkg --add-architecture arm64
fi
if ! "${sudo[@]}" apt-get update -qq || \
   ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"; then
  echo "install-deps: error: apt-get could not install ${missing[*]}." >&2
  echo "  Check the network and the apt sources (this script expects Debian 12 or newer)." >&2
  exit 1
fi
echo "install-deps: done"
