#!/usr/bin/env bash
# Runs shard I of N (0-based) of a swarm campaign: scripts/ci-shard.sh I N
#   SEED_START  first seed of the campaign (default 1)
#   SEEDS       seeds in the whole campaign, over all shards (default 200)
#   JOBS        worker threads (default 2)
#   BUG         a deliberately broken server for every run (local-get, no-dedup)
#   RAFT        the Raft every run's servers run: ours (default) or raft-rs
#   OUT_DIR     where failing specs go, as OUT_DIR/shard-I.json (default failures)
# Exit status: 0 if every run of the shard passed, 1 if any failed, 2 on bad
# arguments. Failing specs can be replayed with `kvraft run --spec` after
# copying one entry's "spec", or kept in sim-tests/regressions.json.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: $0 SHARD_INDEX SHARD_COUNT   (0 <= SHARD_INDEX < SHARD_COUNT)" >&2
    exit 2
fi
i="$1"
n="$2"
case "$i$n" in *[!0-9]*|'') echo "$0: shard index and count must be numbers, got '$i' '$n'" >&2; exit 2 ;; esac
if [ "$n" -eq 0 ] || [ "$i" -ge "$n" ]; then
    echo "$0: need 0 <= SHARD_INDEX < SHARD_COUNT, got $i $n" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
out_dir="${OUT_DIR:-failures}"
mkdir -p "$out_dir"
args=(fuzz --swarm --seeds "${SEEDS:-200}" --start "${SEED_START:-1}" --shard "$i/$n"
      --jobs "${JOBS:-2}" --save-failures "$out_dir/shard-$i.json")
if [ -n "${BUG:-}" ]; then
    args+=(--bug "$BUG")
fi
args+=(--raft "${RAFT:-ours}")
echo "swarm shard $i/$n on ${RAFT:-ours}: seeds ${SEED_START:-1}..$(( ${SEED_START:-1} + ${SEEDS:-200} - 1 )) (every ${n}th), failures to $out_dir/shard-$i.json"
cargo run --release --locked --quiet -- "${args[@]}"
