#!/usr/bin/env bash
# The bug catalogue against the fuzzer: for each bugs/NN-name.patch (or those
# named as arguments, by path, file name or NN prefix), in one scratch
# worktree reused for every patch: restore it, `git apply` the patch, build
# the kvraft binary (its own CARGO_TARGET_DIR, so builds stay incremental),
# then from each start seed run swarm seeds in order, in batches, stopping at
# the first batch with a failure; the first failure is its lowest failing
# seed. Prints a markdown table per bug and start (seeds to the first
# failure or "missed in N", its class, the wall time to reach it), and the
# median per bug. Progress goes to stderr.
#
#   scripts/bug-catalogue.sh                     # every patch in bugs/
#   scripts/bug-catalogue.sh 07 bugs/15-*.patch  # some of them
#   scripts/bug-catalogue.sh none                # the unpatched tree (a sanity check)
#
#   STARTS      start seeds (default "1 200000 400000 600000 800000")
#   SEEDS       most seeds per start (default 50)
#   BATCH       seeds per fuzz batch (default 10)
#   JOBS        fuzz worker threads (default 2)
#   BUILD_JOBS  cargo build jobs (default 2)
#   WALL_LIMIT  fuzz --wall-limit per run, seconds (default 60): a hung run fails as hung
#   RATE=1      go on past the first failure to the end of SEEDS and count failing seeds
#   GUIDED=1    the search that learns (fuzz --guided) instead of plain swarm: one
#               campaign per start (its corpus carries over from seed to seed),
#               stopping once a run failed (with RATE=1: running every seed)
#   JSON=FILE   also write one JSON line per bug and start to FILE
#   BASE        the commit the scratch tree is at; the patches are diffs against it (default HEAD)
#   WORK        scratch tree, its target dir and per-bug logs and runs (default target/bug-catalogue)
#   CARGO_TARGET_DIR  the scratch tree's build dir (default $WORK/target; on first use it is
#                     seeded with a copy of target/release if that exists, for a warm build)
#
# Exit status: 0 when the table is written (bugs that are missed are results,
# not errors); 1 if a patch does not apply or does not build, the harness
# fails without a failing run, or the unpatched tree ("none") fails; 2 on bad
# arguments or a missing tool.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

die() { echo "bug-catalogue: $*" >&2; exit 1; }
for tool in git cargo python3; do
    command -v "$tool" >/dev/null || { echo "bug-catalogue: needs $tool" >&2; exit 2; }
done

starts=(${STARTS:-1 200000 400000 600000 800000})
seeds=${SEEDS:-50}
batch=${BATCH:-10}
jobs=${JOBS:-2}
build_jobs=${BUILD_JOBS:-2}
wall_limit=${WALL_LIMIT:-60}
rate=${RATE:-0}
guided=${GUIDED:-0}
base=${BASE:-HEAD}
work=${WORK:-$repo/target/bug-catalogue}
case "$work" in /*) ;; *) work="$repo/$work" ;; esac
tree="$work/tree"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/target}"
for n in "$seeds" "$batch" "$jobs" "$build_jobs" "$wall_limit" "${starts[@]}"; do
    case "$n" in *[!0-9]*|'') echo "bug-catalogue: not a number: '$n'" >&2; exit 2 ;; esac
done
[ "$batch" -ge 1 ] && [ "$seeds" -ge 1 ] || { echo "bug-catalogue: SEEDS and BATCH must be at least 1" >&2; exit 2; }

# The patches to run, in order ("none": the unpatched tree).
patches=()
if [ $# -eq 0 ]; then
    patches=(bugs/*.patch)
    [ -e "${patches[0]}" ] || die "no patches in bugs/"
else
    for a in "$@"; do
        if [ "$a" = none ]; then patches+=(none); continue; fi
        if [ -f "$a" ]; then patches+=("$a"); continue; fi
        m=(bugs/"$a"*.patch)
        [ -f "${m[0]}" ] || { echo "bug-catalogue: no patch matches '$a'" >&2; exit 2; }
        [ ${#m[@]} -eq 1 ] || { echo "bug-catalogue: '$a' matches ${#m[@]} patches: ${m[*]}" >&2; exit 2; }
        patches+=("${m[0]}")
    done
fi
for i in "${!patches[@]}"; do
    case "${patches[$i]}" in none|/*) ;; *) patches[$i]="$repo/${patches[$i]}" ;; esac
done

# The scratch worktree, at BASE, clean.
base_commit=$(git rev-parse --verify "$base^{commit}") || die "BASE '$base' is not a commit"
mkdir -p "$work/logs" "$work/runs"
if [ ! -e "$tree/.git" ]; then
    git worktree add --detach "$tree" "$base_commit" >&2 || die "cannot create the scratch worktree $tree"
fi
restore() { git -C "$tree" checkout -q -- . && git -C "$tree" clean -fdq; }
git -C "$tree" checkout -q --detach --force "$base_commit" || die "cannot check out $base_commit in $tree"
restore
trap 'restore 2>/dev/null || true' EXIT
if [ ! -d "$CARGO_TARGET_DIR" ] && [ -d "$repo/target/release/deps" ]; then
    echo "seeding $CARGO_TARGET_DIR with a copy of target/release (a warm first build)" >&2
    mkdir -p "$CARGO_TARGET_DIR"
    cp -a "$repo/target/release" "$CARGO_TARGET_DIR/release"
fi

now() { date +%s.%N; }
# The first failing run of a batch's JSON lines, as "seed<TAB>class", or
# nothing if every run passed; fails if the batch reported fewer runs than
# asked (a guided campaign stopped at a failure reports fewer).
first_failure() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
path, want = sys.argv[1], int(sys.argv[2])
runs = [json.loads(l) for l in open(path) if l.startswith('{')]
if len(runs) != want and (len(runs) > want or all(r['passed'] for r in runs)):
    sys.exit(f"{path}: {len(runs)} runs reported, {want} asked")
bad = sorted((r['seed'], (r.get('failure') or {}).get('class', '?')) for r in runs if not r['passed'])
print(f"{bad[0][0]}\t{bad[0][1]}\t{len(bad)}" if bad else "")
EOF
}

rows=()      # name|start|found|class|wall|failing
summary=()   # name|median|missed|build s|fuzz s
t_all=$(now)
for p in "${patches[@]}"; do
    name=$(basename "$p" .patch)
    restore
    if [ "$p" != none ]; then
        git -C "$tree" apply --check "$p" 2>"$work/logs/$name.apply.log" \
            || { cat "$work/logs/$name.apply.log" >&2; die "$p does not apply to $base_commit"; }
        git -C "$tree" apply "$p"
    fi
    echo "== $name: building" >&2
    t0=$(now)
    if ! (cd "$tree" && cargo build --release --locked --bin kvraft -j "$build_jobs") >"$work/logs/$name.build.log" 2>&1; then
        tail -30 "$work/logs/$name.build.log" >&2
        die "$name does not build (log: $work/logs/$name.build.log)"
    fi
    build_s=$(python3 -c "print(f'{$(now) - $t0:.0f}')")
    bin="$CARGO_TARGET_DIR/release/kvraft"
    # Each bug's runs (and the histories of failing ones) go to a folder of its own.
    rm -rf "$work/runs/$name"
    mkdir -p "$work/runs/$name"
    found_list=()
    missed=0
    fuzz_t0=$(now)
    for s in "${starts[@]}"; do
        t0=$(now)
        found=""; class=""; failing=""; wall=""
        done_seeds=0
        while [ "$done_seeds" -lt "$seeds" ]; do
            n=$(( seeds - done_seeds < batch ? seeds - done_seeds : batch ))
            mode=(--swarm)
            if [ "$guided" = 1 ]; then
                # One campaign for the whole start: the corpus learns across it.
                n=$seeds
                mode=(--guided)
                [ "$rate" = 1 ] || mode+=(--stop-at-failure)
            fi
            from=$(( s + done_seeds ))
            out="$work/runs/$name/start-$s-$from.jsonl"
            set +e
            (cd "$work/runs/$name" && "$bin" fuzz "${mode[@]}" --seeds "$n" --start "$from" --json --jobs "$jobs" \
                --wall-limit "$wall_limit") >"$out" 2>"$out.err"
            rc=$?
            set -e
            ff=$(first_failure "$out" "$n") || { cat "$out.err" >&2; die "$name: fuzz from $from reported no result (exit $rc)"; }
            if [ -z "$ff" ] && [ "$rc" -ne 0 ]; then
                tail -20 "$out.err" >&2
                die "$name: fuzz from $from exited $rc with every run passed"
            fi
            done_seeds=$(( done_seeds + n ))
            if [ -n "$ff" ]; then
                IFS=$'\t' read -r fseed fclass fcount <<<"$ff"
                if [ -z "$found" ]; then
                    found=$(( fseed - s + 1 )); class=$fclass; failing=$fcount
                    wall=$(python3 -c "print(f'{$(now) - $t0:.1f}')")
                    [ "$rate" = 1 ] || break
                else
                    failing=$(( failing + fcount ))
                fi
            fi
        done
        if [ -z "$found" ]; then
            missed=$(( missed + 1 ))
            wall=$(python3 -c "print(f'{$(now) - $t0:.1f}')")
            if [ "$p" = none ]; then miss="all $seeds passed"; else miss="missed in $seeds"; fi
            rows+=("$name|$s|$miss||$wall|0")
            echo "   start $s: missed in $seeds ($wall s)" >&2
        else
            found_list+=("$found")
            rows+=("$name|$s|$found|$class|$wall|$failing")
            echo "   start $s: seed $(( s + found - 1 )) (seed ${found} of the start): $class ($wall s)" >&2
        fi
        if [ -n "${JSON:-}" ]; then
            python3 -c 'import json,sys; a=sys.argv[1:]; print(json.dumps({"bug":a[0],"start":int(a[1]),"seeds":int(a[2]),"first_failure":int(a[3]) if a[3] else None,"class":a[4] or None,"wall_s":float(a[5]),"failing":int(a[6]) if a[6] else None,"rate":a[7]=="1","guided":a[8]=="1"}))' \
                "$name" "$s" "$seeds" "$found" "$class" "$wall" "$failing" "$rate" "$guided" >>"$JSON"
        fi
    done
    fuzz_s=$(python3 -c "print(f'{$(now) - $fuzz_t0:.1f}')")
    # The median over every start, a miss counting as beyond SEEDS.
    median=$(python3 -c '
import sys
seeds, missed = int(sys.argv[1]), int(sys.argv[2])
v = sorted([int(x) for x in sys.argv[3:]] + [seeds + 1] * missed)
m = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
print(f"> {seeds}" if m > seeds else (f"{m:g}"))' "$seeds" "$missed" "${found_list[@]+"${found_list[@]}"}")
    summary+=("$name|$median|$missed|$build_s|$fuzz_s")
    restore
    if [ "$p" = none ] && [ ${#found_list[@]} -gt 0 ]; then
        die "the unpatched tree fails (see $work/runs/none): the catalogue's seeds must pass without a bug"
    fi
done
t_total=$(python3 -c "print(f'{$(now) - $t_all:.0f}')")

if [ "$rate" = 1 ]; then k_head="failing of $seeds"; else k_head="failing"; fi
echo "| bug | start | seeds to first failure | class | wall s | $k_head |"
echo "|---|---|---|---|---|---|"
for r in "${rows[@]}"; do
    IFS='|' read -r n s f c w k <<<"$r"
    [ "$rate" = 1 ] || k="-"
    echo "| $n | $s | $f | ${c:--} | $w | $k |"
done
echo
echo "| bug | median seeds to first failure (${#starts[@]} starts) | starts missed | build s | fuzz s |"
echo "|---|---|---|---|---|"
for r in "${summary[@]}"; do
    IFS='|' read -r n m x b f <<<"$r"
    echo "| $n | $m | $x of ${#starts[@]} | $b | $f |"
done
echo
if [ "$guided" = 1 ]; then how="guided (fuzz --guided), one campaign per start"; else how="swarm, batches of $batch"; fi
echo "starts: ${starts[*]}; at most $seeds seeds each, $how, $jobs jobs; base $(git rev-parse --short "$base_commit"); total ${t_total} s"
