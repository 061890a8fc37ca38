#!/usr/bin/env bash
# Scale table: cold build, no-change rebuild, one-file rebuild and `run` of one module, with
# wall time and peak memory, for generated trees of 1,000, 10,000 and 100,000 modules, beside
# the rebuild floor (walk and stat the tree; copy the bundle and sync the copy).
#   cargo build --release && benches/scale.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
B=$PWD/target/release/luabundle
W=${1:-target/scale}
mkdir -p "$W"
measure() { { /usr/bin/time -f "%e s %M KB" "$@" >/dev/null; } 2>&1 | tail -1; }
for n in 1000 10000 100000; do
    d=$W/tree$n
    [ -d "$d/gen" ] || cargo run --release --quiet --example generate_tree -- "$d" "$n"
    rm -rf "$W/cache$n" "$W/out$n.bundle"
    cold=$(measure "$B" build "$d" -o "$W/out$n.bundle" --cache-dir "$W/cache$n" -q)
    sleep 1.2 # let the files' times settle, so the file table vouches for them
    nochange=$(measure "$B" build "$d" -o "$W/out$n.bundle" --cache-dir "$W/cache$n" -q)
    echo "-- edited" >> "$d/gen/m00000.lua"
    onefile=$(measure "$B" build "$d" -o "$W/out$n.bundle" --cache-dir "$W/cache$n" -q)
    run=$(measure "$B" run "$W/out$n.bundle" -e "require('gen.m00001')")
    started=$(date +%s.%N)
    find "$d" -printf '%s %T@ %C@ %i\n' >/dev/null
    walked=$(date +%s.%N)
    cp "$W/out$n.bundle" "$W/floor.bundle" && sync "$W/floor.bundle"
    copied=$(date +%s.%N)
    rm "$W/floor.bundle"
    echo "$n modules: cold [$cold] no-change [$nochange] one-file [$onefile] run [$run]" \
        "floor walk $(echo "$walked - $started" | bc) s + copy $(echo "$copied - $walked" | bc) s"
done
