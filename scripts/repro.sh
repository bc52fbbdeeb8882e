#!/usr/bin/env bash
# Reproduces one campaign run bit for bit: scripts/repro.sh SCENARIO SEED
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 SCENARIO SEED" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
cargo run --release --locked --quiet -- run "$1" --seed "$2"
