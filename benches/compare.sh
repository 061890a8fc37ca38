#!/usr/bin/env bash
# Side-by-side comparison with the other Lua bundlers; prints one markdown table per corpus.
# Installs what is missing: Debian's lua5.4, luarocks and lua-penlight (the corpora),
# darklua 0.19 (cargo install), npm luabundle 1.7 (its library, driven by a Node script).
#
#   benches/compare.sh                      # everything, 5 rounds
#   benches/compare.sh --runs 3 --corpora luarocks,gen1k
#   benches/compare.sh --skip-peers         # luabundle and the Lua baselines only
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in lua5.4 luarocks lua-penlight time; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v darklua >/dev/null || cargo install darklua --version '^0.19' --locked
mkdir -p target/compare/npm
if [ ! -d target/compare/npm/node_modules/luabundle ]; then
    (cd target/compare/npm && npm init -y >/dev/null && npm install --silent luabundle@1.7)
fi
cargo build --release --quiet
exec python3 benches/compare.py "$@"
