//! Generated projects shared by the benchmarks and `examples/generate_tree.rs`.
#![allow(dead_code)] // each includer uses some of the generators

use std::path::Path;

/// Writes a project of `count` modules under `root`: `gen/mNNNNN.lua`, each requiring up to
/// two lower-numbered modules eagerly and one deferred (also lower-numbered, so that bundlers
/// that refuse cycles through deferred requires can build it), with some real code in its
/// body.
pub fn generate_project(root: &Path, count: usize) {
    generate_sized_project(root, count, 0);
}

/// Like [`generate_project`], with each module padded to about `module_bytes` bytes of
/// ordinary code (functions with loops, string formatting, tables and closures); 0 for the
/// smallest modules (about 330 bytes).
pub fn generate_sized_project(root: &Path, count: usize, module_bytes: usize) {
    let dir = root.join("gen");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..count {
        std::fs::write(dir.join(format!("m{i:05}.lua")), module_text(i, count, module_bytes)).unwrap();
    }
}

fn module_text(i: usize, count: usize, module_bytes: usize) -> String {
    let mut text = String::new();
    for dep in [i / 2, i / 3].into_iter().filter(|&d| d < i) {
        text.push_str(&format!("local d{dep} = require(\"gen.m{dep:05}\")\n"));
    }
    let later = if i == 0 { "M".to_string() } else { format!("require(\"gen.m{:05}\")", (i - 1) / 4) };
    text.push_str(&format!(
        "local M = {{ id = {i} }}\n\
         function M.work(n)\n  local t = {{}}\n  for k = 1, n do t[#t + 1] = k * {i} % 7 end\n  return #t\nend\n\
         function M.later()\n  return {later}.id\nend\n\
         function M.describe()\n  return string.format(\"module %d of %d\", M.id, {count})\nend\n"
    ));
    let mut f = 0;
    while text.len() + 10 < module_bytes {
        text.push_str(&format!(
            "-- Helper {f}: filters, maps and summarises a list of records.\n\
             function M.helper{f}(records, limit)\n\
             \x20 local kept, total = {{}}, 0\n\
             \x20 for index, record in ipairs(records) do\n\
             \x20   if record.weight ~= nil and record.weight <= (limit or {i}) then\n\
             \x20     kept[#kept + 1] = {{ name = tostring(record.name), score = record.weight * {f} + index }}\n\
             \x20     total = total + record.weight\n\
             \x20   elseif type(record.children) == \"table\" then\n\
             \x20     total = total + M.helper{f}(record.children, limit)\n\
             \x20   end\n\
             \x20 end\n\
             \x20 table.sort(kept, function(a, b) return a.score > b.score end)\n\
             \x20 local label = string.format(\"%s:%d:%d\", \"helper{f}\", #kept, total)\n\
             \x20 return total, kept, label\n\
             end\n"
        ));
        f += 1;
    }
    text.push_str("return M\n");
    text
}
