#!/usr/bin/env bash
# Runs a fuzz campaign over every default scenario.
#   SEEDS   seeds per scenario (default 3)
#   START   first seed (default 1)
# Extra arguments go to `kvraft fuzz` (e.g. --scenario unreliable --jobs 2).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --locked --quiet -- fuzz --seeds "${SEEDS:-3}" --start "${START:-1}" "$@"
