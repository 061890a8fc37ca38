//! Generated projects shared by the benchmarks.

use std::path::Path;

/// Writes a project of `count` modules under `root`: `gen/mNNNNN.lua`, each requiring up to
/// two lower-numbered modules eagerly and one deferred, with some real code in its body.
pub fn generate_project(root: &Path, count: usize) {
    let dir = root.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..count {
        let mut text = String::new();
        for dep in [i / 2, i / 3].into_iter().filter(|&d| d < i) {
            text.push_str(&format!("local d{dep} = require(\"gen.m{dep:05}\")\n"));
        }
        text.push_str(&format!(
            "local M = {{ id = {i} }}\n\
             function M.work(n)\n  local t = {{}}\n  for k = 1, n do t[#t + 1] = k * {i} % 7 end\n  return #t\nend\n\
             function M.later()\n  return require(\"gen.m{:05}\").id\nend\n\
             function M.describe()\n  return string.format(\"module %d of %d\", M.id, {count})\nend\n\
             return M\n",
            (i + 1) % count
        ));
        std::fs::write(dir.join(format!("m{i:05}.lua")), text).unwrap();
    }
}
