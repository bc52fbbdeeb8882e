#!/usr/bin/env bash
# Takes a screenshot of a history's HTML timeline with headless Chromium, to
# look at the page as a person would.
#
#   scripts/timeline-shot.sh INPUT OUT.png [top|failing|all] [WIDTHxHEIGHT]
#
# INPUT is a timeline page (.html) or a history file (JSON or EDN, as
# `kvraft check` reads); a history is drawn with `kvraft check --timeline`,
# which draws only histories that are not linearizable. The view is where
# the shot starts: the top of the page (default), the failing key's detail
# view (`failing`) or the overview of all ops (`all`). The size defaults to
# 1600x1200.
#
# Installs nothing: it says what is missing. The kvraft binary is
# $KVRAFT if set, else target/release/kvraft (build it with
# `cargo build --release`); Chromium is $CHROMIUM if set, else chromium or
# chromium-browser on the PATH (Debian: `apt-get install chromium`).
set -euo pipefail

usage() {
    sed -n '4,5p' "$0" | sed 's/^# *//' >&2
    exit 2
}
[ $# -ge 2 ] && [ $# -le 4 ] || usage
input=$1
out=$2
view=${3:-top}
size=${4:-1600x1200}
case "$view" in top | failing | all) ;; *) echo "view must be top, failing or all, not '$view'" >&2; exit 2 ;; esac
[[ "$size" =~ ^[0-9]+x[0-9]+$ ]] || { echo "size must be WIDTHxHEIGHT, e.g. 1600x1200, not '$size'" >&2; exit 2; }
[ -f "$input" ] || { echo "no such file: $input" >&2; exit 2; }

browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
    for b in chromium chromium-browser; do
        if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
    done
fi
if [ -z "$browser" ] || ! command -v "$browser" >/dev/null 2>&1; then
    echo "missing: Chromium (set CHROMIUM, or install it: apt-get install chromium)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "$input" in
*.html | *.htm) page=$(realpath "$input") ;;
*)
    root=$(cd "$(dirname "$0")/.." && pwd)
    kvraft=${KVRAFT:-$root/target/release/kvraft}
    if [ ! -x "$kvraft" ]; then
        echo "missing: the kvraft binary at $kvraft (run cargo build --release, or set KVRAFT)" >&2
        exit 2
    fi
    # Exit 1 = not linearizable (the case with a timeline); 2 = cannot read.
    set +e
    "$kvraft" check --timeline "$work" "$input" >"$work/check.txt"
    code=$?
    set -e
    cat "$work/check.txt"
    page=$(find "$work" -name '*.html' | head -n 1)
    if [ -z "$page" ]; then
        if [ "$code" -eq 0 ]; then
            echo "$input is linearizable: kvraft check draws no timeline for it" >&2
        else
            echo "kvraft check could not draw $input (exit $code)" >&2
        fi
        exit 1
    fi
    ;;
esac

url="file://$page"
if [ "$view" != top ]; then
    # A headless screenshot ignores where a #fragment scrolls the page, but
    # not where it scrolls a frame: show the page in one, at the view.
    url="$url#$view"
    printf '%s\n' '<!DOCTYPE html><html><head><meta charset="utf-8"><style>html,body{margin:0;height:100%;overflow:hidden}' \
        'iframe{border:0;width:100%;height:100%;display:block}</style></head><body>' \
        "<iframe src=\"$url\"></iframe></body></html>" >"$work/view.html"
    url="file://$work/view.html"
fi
mkdir -p "$(dirname "$out")"
out_abs=$(realpath -m "$out")
rm -f "$out_abs"
# Chromium prints its own chatter on stderr; keep it unless it fails.
if ! "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --allow-file-access-from-files --virtual-time-budget=3000 \
    --window-size="${size/x/,}" --screenshot="$out_abs" "$url" >"$work/chromium.log" 2>&1 || [ ! -s "$out_abs" ]; then
    cat "$work/chromium.log" >&2
    echo "Chromium took no screenshot of $url" >&2
    exit 1
fi
echo "screenshot: $out ($view view of $input)"
