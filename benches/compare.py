#!/usr/bin/env python3
"""Side-by-side comparison of luabundle with the Lua bundlers a user would pick instead.

Run through `benches/compare.sh`, which installs what is missing. For every corpus (Debian's
LuaRocks and Penlight, generated trees of 1,000 and 10,000 modules) it measures, in rounds
that alternate the tools so that the machine's noise hits all of them alike:

- cold build: luabundle (no cache), npm luabundle 1.7 (through its library), darklua 0.19,
  and the compile floor: Lua's own `loadfile` + `string.dump` of every file in one process;
  peak memory of each;
- rebuilds with luabundle's cache: nothing changed, one file changed;
- require everything, in a fresh process: from the sources through `package.path`, from
  loose bytecode files (debug info kept), from each tool's output;
- start and require one module (10,000-module tree): from its source file, from the bundle,
  from the peers' single-file bundles.

Every output is checked before it is timed: requiring every module from it must print what
requiring them from the sources prints. Results are medians, printed as one markdown table.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LUA = "lua5.4"


def run(cmd, env=None, cwd=None, check=True):
    """Runs `cmd`; returns (wall seconds, peak RSS in KiB, stdout)."""
    with tempfile.NamedTemporaryFile("r") as stats:
        full = ["/usr/bin/time", "-f", "%e %M", "-o", stats.name] + [str(c) for c in cmd]
        started = time.perf_counter()
        done = subprocess.run(full, env=env, cwd=cwd, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        fields = stats.read().split()
        peak = int(fields[-1]) if fields else 0
        return wall, peak, done.stdout


class Corpus:
    """A tree of modules: `root` holds `prefix/...` files (or the modules directly)."""

    def __init__(self, name, root, externals):
        self.name = name
        self.root = Path(root)
        self.externals = externals
        self.files = sorted(p for p in self.root.rglob("*.lua") if p.is_file())
        self.modules = {}
        for path in self.files:
            rel = path.relative_to(self.root).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "init" and len(parts) > 1:
                parts = parts[:-1]
            self.modules.setdefault(".".join(parts), path)
        self.source_bytes = sum(p.stat().st_size for p in self.files)

    def lua_path(self):
        return f"{self.root}/?.lua;{self.root}/?/init.lua"

    def roots_args(self):
        """luabundle root arguments: one `PREFIX=DIR` per top-level directory."""
        tops = sorted({p.relative_to(self.root).parts[0] for p in self.files})
        args = []
        for top in tops:
            if (self.root / top).is_dir():
                args.append(f"{top}={self.root / top}")
        return args


def entry_script(corpus, names, slashes=False):
    """A Lua script that requires every module (static `require` calls, so that bundlers
    that follow requires find them all) or only the one named by its first argument, and
    prints how many loaded, a checksum of their `id` fields and which failed."""
    lines = ["local loaders = {"]
    for name in names:
        target = name.replace(".", "/") if slashes else name
        lines.append(f'  [{json.dumps(name)}] = function() return require({json.dumps(target)}) end,')
    lines.append("}")
    lines.append(f"local order = {{{', '.join(json.dumps(n) for n in names)}}}")
    lines.append(
        """
local only = arg and arg[1]
if only then local m = loaders[only]() print("one", type(m) == "table" and m.id or "") return end
local ok, sum, failed = 0, 0, {}
for _, name in ipairs(order) do
  local loaded, m = pcall(loaders[name])
  if loaded then
    ok = ok + 1
    if type(m) == "table" and type(m.id) == "number" then sum = sum + m.id end
  else
    failed[#failed + 1] = name
  end
end
print("ok", ok, "sum", sum, "failed", table.concat(failed, ","))
"""
    )
    return "\n".join(lines) + "\n"


FLOOR = """
local files = {}
for line in io.lines(arg[1]) do files[#files + 1] = line end
local n = 0
for _, path in ipairs(files) do n = n + #string.dump(assert(loadfile(path))) end
print(n)
"""

NPM_DRIVER = """
const { bundle } = require('luabundle');
const [entry, out, paths, ignored] = process.argv.slice(2);
const text = bundle(entry, { paths: JSON.parse(paths), ignoredModuleNames: JSON.parse(ignored), luaVersion: '5.3' });
require('fs').writeFileSync(out, text);
"""


def darklua_tree(corpus, work, entry_text):
    """A copy of the corpus for darklua, whose path require mode needs `a/b` instead of `a.b`
    and a source alias for each top-level directory."""
    tree = work / "darklua"
    if tree.exists():
        shutil.rmtree(tree)
    pattern = re.compile(r"""(\brequire\s*\(?\s*)(["'])([A-Za-z0-9_.]+)\2""")
    for path in corpus.files:
        rel = path.relative_to(corpus.root)
        target = tree / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="latin-1")
        text = pattern.sub(lambda m: m.group(1) + m.group(2) + m.group(3).replace(".", "/") + m.group(2), text)
        target.write_text(text, encoding="latin-1")
    (tree / "entry.lua").write_text(entry_text)
    tops = sorted({p.relative_to(corpus.root).parts[0] for p in corpus.files if len(p.relative_to(corpus.root).parts) > 1})
    # `remove_types`: the bundler writes Luau type casts, which stock Lua does not parse.
    config = {"rules": ["remove_types"],
              "bundle": {"require_mode": {"name": "path", "sources": {t: f"./{t}" for t in tops}},
                         "excludes": corpus.externals + ["debug", "string", "table", "os", "io", "math", "coroutine", "utf8", "package"]}}
    (tree / "config.json").write_text(json.dumps(config))
    return tree


def median(values):
    return statistics.median(values) if values else None


def fmt_time(seconds):
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def fmt_ratio(a, b):
    return "—" if a is None or b is None else f"{a / b:.2f}×"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="rounds per measurement (median)")
    parser.add_argument("--corpora", default="luarocks,penlight,gen1k,gen10k")
    parser.add_argument("--skip-peers", action="store_true", help="only luabundle and the Lua baselines")
    parser.add_argument("--work", default=str(REPO / "target" / "compare"))
    args = parser.parse_args()

    work_root = Path(args.work)
    work_root.mkdir(parents=True, exist_ok=True)
    luabundle = REPO / "target" / "release" / "luabundle"
    npm_dir = work_root / "npm"
    (npm_dir / "driver.js").write_text(NPM_DRIVER)
    env_node = dict(os.environ, NODE_PATH=str(npm_dir / "node_modules"))
    have_darklua = shutil.which("darklua") is not None and not args.skip_peers
    have_npm = (npm_dir / "node_modules" / "luabundle").exists() and not args.skip_peers

    corpora = []
    for name in args.corpora.split(","):
        if name in ("luarocks", "penlight"):
            # A copy with Debian's symbolic links resolved (npm luabundle skips linked files).
            top = "luarocks" if name == "luarocks" else "pl"
            tree = work_root / f"tree-{name}"
            if not (tree / top).exists():
                shutil.copytree(f"/usr/share/lua/5.4/{top}", tree / top, symlinks=False)
            externals = {"luarocks": ["bz2", "lfs", "ltn12", "luarocks.core.hardcoded", "md5", "mimetypes", "posix",
                                      "socket.ftp", "socket.http", "ssl.https", "zlib", "socket", "ssl"],
                         "penlight": ["luabalanced", "sip"]}[name]
            corpora.append(Corpus(name, tree, externals))
        elif name.startswith("gen"):
            count = 1000 if name == "gen1k" else 10000
            tree = work_root / f"tree-{name}"
            if not (tree / "gen").exists():
                subprocess.run(["cargo", "run", "--release", "-q", "--example", "generate_tree", "--", tree, str(count)], cwd=REPO, check=True)
            corpora.append(Corpus(name, tree, []))

    rows = []
    for corpus in corpora:
        work = work_root / corpus.name
        work.mkdir(exist_ok=True)
        names = sorted(corpus.modules)
        (work / "entry.lua").write_text(entry_script(corpus, names))
        (work / "files.txt").write_text("\n".join(str(p) for p in corpus.files) + "\n")
        (work / "floor.lua").write_text(FLOOR)
        lua_env = dict(os.environ, LUA_PATH=corpus.lua_path() + ";;", LUA_CPATH="")
        externals = [a for e in corpus.externals for a in ("--external", e)]
        bundle = work / "app.bundle"
        build_cold = [luabundle, "build", *corpus.roots_args(), *externals, "--no-cache", "-q", "-o", bundle]

        # Loose bytecode files with debug info, mirroring the tree.
        loose = work / "loose"
        if loose.exists():
            shutil.rmtree(loose)
        for path in corpus.files:
            target = loose / path.relative_to(corpus.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["luac5.4", "-o", target, path], check=True)
        loose_env = dict(os.environ, LUA_PATH=f"{loose}/?.lua;{loose}/?/init.lua;;", LUA_CPATH="")

        # Reference output, then each tool's output checked against it.
        _, _, reference = run([LUA, work / "entry.lua"], env=lua_env)
        run(build_cold)
        checks = {"luabundle": run([luabundle, "run", bundle, work / "entry.lua"])[2]}
        checks["loose bytecode"] = run([LUA, work / "entry.lua"], env=loose_env)[2]
        tools = {"luabundle": build_cold, "Lua compile floor": [LUA, work / "floor.lua", work / "files.txt"]}
        outputs = {}
        if have_npm:
            npm_out = work / "npm-out.lua"
            cmd = ["node", npm_dir / "driver.js", work / "entry.lua", npm_out, json.dumps([f"{corpus.root}/?.lua", f"{corpus.root}/?/init.lua"]), json.dumps(corpus.externals)]
            try:
                run(cmd, env=env_node)
                checks["npm luabundle"] = run([LUA, npm_out], check=False)[2]
                tools["npm luabundle"] = cmd
                outputs["npm luabundle"] = npm_out
            except RuntimeError as err:
                lines = [l.strip() for l in str(err).splitlines() if "Error:" in l or "Failed to bundle" in l]
                checks["npm luabundle"] = "refused: " + (lines[-1][:120] if lines else "failed")
        if have_darklua:
            tree = darklua_tree(corpus, work, entry_script(corpus, names, slashes=True))
            cmd = ["darklua", "process", "entry.lua", "out.lua", "-c", "config.json"]
            try:
                run(cmd, cwd=tree)
                checks["darklua"] = run([LUA, tree / "out.lua"], check=False)[2]
                tools["darklua"] = cmd
                outputs["darklua"] = tree / "out.lua"
            except RuntimeError as err:
                lines = [l for l in str(err).splitlines() if "cyclic" in l or "error" in l]
                checks["darklua"] = "refused: " + (lines[-1].strip()[:120] if lines else "failed")
        verdict = {}
        for tool, output in checks.items():
            if output.startswith("refused"):
                verdict[tool] = output
            elif output == reference:
                verdict[tool] = "same output"
            else:
                verdict[tool] = "DIFFERENT output: " + " / ".join(
                    l[:80] for l in set(output.splitlines()) ^ set(reference.splitlines()))

        # Cold builds, alternating tools each round.
        times = {t: [] for t in tools}
        peaks = {t: [] for t in tools}
        for _ in range(args.runs if corpus.name != "gen10k" else max(1, min(args.runs, 3))):
            for tool, cmd in tools.items():
                if tool == "luabundle" and bundle.exists():
                    bundle.unlink()
                wall, peak, _ = run(cmd, cwd=(work / "darklua") if tool == "darklua" else None, env=env_node if tool == "npm luabundle" else None)
                times[tool].append(wall)
                peaks[tool].append(peak)

        # Rebuilds with the cache.
        cache = work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        build_cached = [luabundle, "build", *corpus.roots_args(), *externals, "--cache-dir", cache, "-q", "-o", bundle]
        edited = corpus.files[len(corpus.files) // 2]
        edit_copy = work / "edited.lua"
        rebuild_none, rebuild_one, cold_cached = [], [], []
        if corpus.name.startswith("gen"):
            shutil.copy(edited, edit_copy)
        for _ in range(args.runs):
            shutil.rmtree(cache, ignore_errors=True)
            cold_cached.append(run(build_cached)[0])
            time.sleep(1.1)  # let the files' modification times settle (see cache/file_table.rs)
            run(build_cached)
            rebuild_none.append(run(build_cached)[0])
            if corpus.name.startswith("gen"):
                text = edit_copy.read_text()
                edited.write_text(text.replace("local M = {", "local M = { edited = true,", 1))
                rebuild_one.append(run(build_cached)[0])
                shutil.copy(edit_copy, edited)
                run(build_cached)

        # Require everything in a fresh process.
        load = {"sources (package.path)": ([LUA, work / "entry.lua"], lua_env),
                "loose bytecode": ([LUA, work / "entry.lua"], loose_env),
                "luabundle": ([luabundle, "run", bundle, work / "entry.lua"], None)}
        for tool, out in outputs.items():
            load[tool] = ([LUA, out], None)
        load_times = {t: [] for t in load}
        # Short runs are noisier: more rounds where they are cheap.
        for _ in range(args.runs * (1 if corpus.name == "gen10k" else 3)):
            for tool, (cmd, env) in load.items():
                load_times[tool].append(run(cmd, env=env, check=False)[0])

        # Start and require one module.
        one_times = {}
        if corpus.name == "gen10k":
            one = "gen.m05000"
            one_cmds = {"its source file": ([LUA, "-e", f"require('{one}')"], lua_env),
                        "luabundle": ([luabundle, "run", "--hermetic", bundle, "-e", f"require('{one}')"], None)}
            for tool, out in outputs.items():
                one_cmds[tool] = ([LUA, out, one], None)
            one_times = {t: [] for t in one_cmds}
            for _ in range(args.runs * 3):
                for tool, (cmd, env) in one_cmds.items():
                    one_times[tool].append(run(cmd, env=env, check=False)[0])

        rows.append((corpus, verdict, times, peaks, cold_cached, rebuild_none, rebuild_one, load_times, one_times))

    load_avg = os.getloadavg()
    print(f"\n## luabundle vs the alternatives ({time.strftime('%Y-%m-%d')}, load average {load_avg[0]:.2f}, "
          f"{os.cpu_count()} cores; medians of {args.runs} alternating rounds, {args.runs * 3} for runs under a second)\n")
    for corpus, verdict, times, peaks, cold_cached, rebuild_none, rebuild_one, load_times, one_times in rows:
        ours = median(times.get("luabundle", []))
        floor = median(times.get("Lua compile floor", []))
        print(f"### {corpus.name}: {len(corpus.modules)} modules, {corpus.source_bytes / 1e6:.1f} MB of source\n")
        print("| cold build | median | peak memory | vs luabundle | output |")
        print("|---|---:|---:|---:|---|")
        for tool in ["luabundle", "Lua compile floor", "npm luabundle", "darklua"]:
            if tool in times:
                t, p = median(times[tool]), median(peaks[tool])
                print(f"| {tool} | {fmt_time(t)} | {p / 1024:.0f} MiB | {fmt_ratio(t, ours)} | {verdict.get(tool, 'baseline')} |")
            elif tool in verdict:
                print(f"| {tool} | — | — | — | {verdict[tool]} |")
        print(f"\nluabundle: {fmt_ratio(ours, floor)} the compile floor; peak memory "
              f"{median(peaks['luabundle']) * 1024 / corpus.source_bytes:.1f}× the source size. "
              f"With the cache: cold {fmt_time(median(cold_cached))}, no change {fmt_time(median(rebuild_none))} "
              f"({fmt_ratio(median(rebuild_none), median(cold_cached))} of cold)"
              + (f", one file changed {fmt_time(median(rebuild_one))} ({fmt_ratio(median(rebuild_one), median(cold_cached))} of cold)" if rebuild_one else "")
              + ".\n")
        base = median(load_times["sources (package.path)"])
        print("| require everything | median | vs sources |")
        print("|---|---:|---:|")
        for tool, values in load_times.items():
            print(f"| {tool} | {fmt_time(median(values))} | {fmt_ratio(median(values), base)} |")
        print()
        if one_times:
            base = median(one_times["its source file"])
            print("| start + require one module | median | vs its source file |")
            print("|---|---:|---:|")
            for tool, values in one_times.items():
                print(f"| {tool} | {median(values) * 1000:.1f} ms | {fmt_ratio(median(values), base)} |")
            print()


if __name__ == "__main__":
    sys.exit(main())
