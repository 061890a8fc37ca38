#!/usr/bin/env bash
# Scale table: cold build, no-change rebuild, one-file rebuild and `run` of one module, with
# wall time and peak memory, for generated trees of 1,000, 10,000 and 100,000 modules, beside
# the rebuild floor (walk and stat the tree; copy the bundle and sync the copy), measured
# round by round in the same run.
#   cargo build --release && benches/scale.sh [WORKDIR] [ROUNDS] [SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
B=$PWD/target/release/luabundle
W=${1:-target/scale}
ROUNDS=${2:-5}
shift $(($# < 2 ? $# : 2))
SIZES=("${@:-1000 10000 100000}")
mkdir -p "$W"
measure() { { /usr/bin/time -f "%e s %M KB" "$@" >/dev/null; } 2>&1 | tail -1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for n in ${SIZES[*]}; do
    d=$W/tree$n
    [ -d "$d/gen" ] || cargo run --release --quiet --example generate_tree -- "$d" "$n"
    rm -rf "$W/cache$n" "$W/out$n.bundle"
    cold=$(measure "$B" build "$d" -o "$W/out$n.bundle" --cache-dir "$W/cache$n" -q)
    sleep 1.2 # let the files' times settle, so the file table vouches for them
    nochange=$(measure "$B" build "$d" -o "$W/out$n.bundle" --cache-dir "$W/cache$n" -q)
    builds="" floors="" walks="" copies=""
    for round in $(seq "$ROUNDS"); do
        # A line of code, so the module's bytecode (not only its source) changes.
        sed -i "1i local _edit_$round = $round" "$d/gen/m00000.lua"
        started=$(now_ms)
        "$B" build "$d" -o "$W/out$n.bundle" --cache-dir "$W/cache$n" -q
        built=$(now_ms)
        find "$d" -printf '%s %T@ %C@ %i\n' >/dev/null
        walked=$(now_ms)
        cp "$W/out$n.bundle" "$W/floor.bundle" && sync "$W/floor.bundle"
        copied=$(now_ms)
        rm "$W/floor.bundle"
        builds+=" $((built - started))" walks+=" $((walked - built))" copies+=" $((copied - walked))"
        floors+=" $((copied - built))"
    done
    onefile=$(echo "$builds" | median) floor=$(echo "$floors" | median)
    sed -i "1i local _edit_peak = 0" "$d/gen/m00000.lua"
    peak=$(measure "$B" build "$d" -o "$W/out$n.bundle" --cache-dir "$W/cache$n" -q | cut -d' ' -f3-)
    run=$(measure "$B" run "$W/out$n.bundle" -e "require('gen.m00001')")
    echo "$n modules: cold [$cold] no-change [$nochange] run [$run]"
    echo "  one file changed, median of $ROUNDS: ${onefile} ms (rounds:$builds)"
    echo "  floor, median of $ROUNDS: ${floor} ms (walk:$walks; copy+sync:$copies)" \
        "-> $(echo "scale=2; $onefile / $floor" | bc)x the floor; one-file rebuild peak $peak"
done
