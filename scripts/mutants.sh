#!/usr/bin/env bash
# Mutation score of src/raft/ and src/kv/ with cargo-mutants (configuration
# in .cargo/mutants.toml; install it with scripts/install-mutants.sh).
#
#   scripts/mutants.sh fuzzer   the fuzzer alone: the only test is
#                               sim-tests/fuzz_gate.rs (a short default
#                               campaign plus a swarm campaign)
#   scripts/mutants.sh suite    the whole test suite (`cargo test`: every
#                               test binary, the fuzz gate included)
#   scripts/mutants.sh missed   the whole suite, on the mutants the fuzzer
#                               run missed (or timed out on) only: the suite
#                               contains the fuzz gate, so it catches every
#                               mutant the fuzzer caught
#
# Results go to mutants-<mode>/mutants.out (caught.txt, missed.txt,
# timeout.txt, unviable.txt, outcomes.json). SHARD=k/n runs one shard of
# the mutants, every n-th from the k-th (as the nightly workflow does);
# JOBS=n builds n at once.
# Further arguments go to cargo-mutants.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
shift || true
args=(--output "mutants-$mode" --no-shuffle)
if [ -n "${JOBS:-}" ]; then
    args+=(--jobs "$JOBS")
fi
if [ -n "${SHARD:-}" ]; then
    args+=(--shard "$SHARD" --sharding round-robin)
fi
case "$mode" in
    # Build and run the fuzz gate's test binary only (not the suite).
    fuzzer) exec cargo mutants "${args[@]}" --cargo-arg=--test=fuzz_gate "$@" ;;
    suite) exec cargo mutants "${args[@]}" "$@" ;;
    missed)
        from=mutants-fuzzer/mutants.out
        if [ ! -f "$from/missed.txt" ]; then
            echo "$0: run '$0 fuzzer' first (no $from/missed.txt)" >&2
            exit 2
        fi
        # One exact-match regex per mutant the fuzzer did not catch (its
        # full name, file and position included).
        res=()
        while IFS= read -r line; do
            [ -n "$line" ] || continue
            res+=(--re "^$(printf '%s' "$line" | sed 's/[][\.*^$()+?{}|]/\\&/g')\$")
        done < <(cat "$from/missed.txt" "$from/timeout.txt" 2>/dev/null)
        if [ ${#res[@]} -eq 0 ]; then
            echo "the fuzzer missed no mutant"
            exit 0
        fi
        exec cargo mutants "${args[@]}" "${res[@]}" "$@"
        ;;
    *)
        echo "usage: $0 fuzzer|suite|missed [cargo-mutants arguments]" >&2
        exit 2
        ;;
esac
