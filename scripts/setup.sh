#!/usr/bin/env bash
# Set-up on a fresh machine: check the toolchain and fetch every dependency,
# so that later builds need no network.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null; then
    echo "setup: cargo not found; install Rust (rustup) first" >&2
    exit 1
fi
cargo --version
cargo fetch --locked
