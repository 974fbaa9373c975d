#!/usr/bin/env bash
# Installs, from Debian 12's own archive, everything ModelGrid needs to build,
# generate its model zoo and run its tests. Idempotent: packages already
# present are skipped, so a second run costs one dpkg query.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache git
  libtorch-dev                       # LibTorch (CPU) for the worker, backend and graph walk
  python3-torch python3-torchvision  # model zoo generation (tools/zoo)
  python3-sklearn python3-numpy python3-yaml  # digits data set; zoo checks
  libopenblas0-pthread               # fast BLAS for LibTorch (else the reference BLAS: ~1 GFLOP/s)
  nlohmann-json3-dev libyaml-cpp-dev libcpp-httplib-dev libspdlog-dev libfmt-dev
  libcli11-dev libzip-dev libxxhash-dev
  protobuf-compiler libprotobuf-dev  # worker request payloads (src/ipc/request.proto), config.pbtxt
  libgrpc++-dev protobuf-compiler-grpc  # the KServe v2 gRPC server (src/grpc/)
  libmicrohttpd-dev zlib1g-dev       # the HTTP server (event-driven, bounded connections); gzip/deflate bodies
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  libicu-dev libpcre2-dev            # tokenizer.json: Unicode normalization and classes, split regexes
  libsentencepiece-dev               # tokenizer.model: folders whose only tokenizer is SentencePiece's
  nodejs                             # tokenizer references (@huggingface/tokenizers from npm, tools/tokenizers)
  pkg-config curl procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm: Debian's package, unless a Node.js that carries its own npm is installed.
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
