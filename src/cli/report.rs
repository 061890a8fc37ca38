//! `luabundle inspect --format html`: one self-contained page about a bundle (no script, no
//! external resource): its target and summary, its modules by size, its dependency graph,
//! and which modules each profile makes requirable.

use std::fmt::Write as _;
use std::path::Path;

use luabundle_runtime::format::{BlobKind, DepKind, Index, FLAG_SIGNED};
use luabundle_runtime::Bundle;

use super::human_size;

/// Graphs with more modules than this are not drawn (the page says how to get one).
const MAX_DRAWN: usize = 300;

/// The page for `bundle`, read from `path`.
pub fn html(bundle: &Bundle, path: &Path) -> anyhow::Result<String> {
    let index = bundle.index()?;
    let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n",
        title = escape(&format!("luabundle report: {name}"))
    );
    summary(&mut page, bundle, &name)?;
    modules_by_size(&mut page, index);
    graph(&mut page, index);
    profiles(&mut page, index);
    page.push_str("</body>\n</html>\n");
    Ok(page)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;vertical-align:top}\
th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}\
.num{text-align:right;font-variant-numeric:tabular-nums}\
.bar{height:12px;background:#4a7fd4;min-width:1px}.bar.source{background:#d49a4a}\
.yes{color:#1a7f37;font-weight:bold;text-align:center}.no{color:#bbb;text-align:center}\
.legend span{margin-right:2em}code{background:#f4f4f4;padding:0 3px}";

fn summary(page: &mut String, bundle: &Bundle, name: &str) -> anyhow::Result<()> {
    let index = bundle.index()?;
    let header = bundle.header();
    let target = bundle.target();
    let total: u64 = index.modules.iter().map(|m| m.blob.len).sum();
    let rows = [
        ("bundle", name.to_string()),
        ("size", format!("{} (format {}.{})", human_size(header.file_len), header.major, header.minor)),
        ("target", format!("{} ({})", target.flavour, target.release)),
        ("modules", format!("{} ({} of code)", index.modules.len(), human_size(total))),
        ("entry", bundle.entry()?.unwrap_or("(none)").to_string()),
        ("signed", if header.flags & FLAG_SIGNED != 0 { "yes" } else { "no" }.to_string()),
        ("externals", if index.externals.is_empty() { "(none)".to_string() } else { index.externals.join(", ") }),
    ];
    page.push_str("<h2>Summary</h2>\n<table class=\"summary\">\n");
    for (key, value) in rows {
        let _ = writeln!(page, "<tr><th>{key}</th><td>{}</td></tr>", escape(&value));
    }
    page.push_str("</table>\n");
    Ok(())
}

fn modules_by_size(page: &mut String, index: &Index) {
    let mut order: Vec<usize> = (0..index.modules.len()).collect();
    order.sort_by(|&a, &b| index.modules[b].blob.len.cmp(&index.modules[a].blob.len).then(a.cmp(&b)));
    let largest = order.first().map_or(1, |&m| index.modules[m].blob.len.max(1));
    page.push_str("<h2>Modules by size</h2>\n<table class=\"modules\">\n");
    page.push_str("<tr><th>module</th><th>file</th><th class=\"num\">size</th><th>share of the largest</th><th class=\"num\">requires</th></tr>\n");
    for m in order {
        let module = &index.modules[m];
        let width = (module.blob.len as f64 / largest as f64 * 300.0).round().max(1.0);
        let class = if module.kind == BlobKind::Source { "bar source" } else { "bar" };
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td><div class=\"{class}\" style=\"width:{width}px\"></div></td><td class=\"num\">{}</td></tr>",
            escape(&module.name),
            escape(&module.path),
            human_size(module.blob.len),
            module.deps.len()
        );
    }
    page.push_str("</table>\n");
}

/// Each module's column: the length of the longest chain of eager requires below it, so a
/// module always stands right of what it loads first. Deferred requires do not place.
fn columns(index: &Index) -> Vec<usize> {
    let count = index.modules.len();
    let mut column = vec![0usize; count];
    // Relaxation, bounded by the module count so that a cycle in a damaged index cannot loop.
    for _ in 0..count {
        let mut changed = false;
        for (m, module) in index.modules.iter().enumerate() {
            for dep in module.deps.iter().filter(|d| d.kind == DepKind::Eager && (d.module as usize) < count) {
                let wanted = column[dep.module as usize] + 1;
                if wanted > column[m] && wanted < count {
                    column[m] = wanted;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    column
}

fn graph(page: &mut String, index: &Index) {
    page.push_str("<h2>Dependency graph</h2>\n");
    let count = index.modules.len();
    if count > MAX_DRAWN {
        let _ = writeln!(
            page,
            "<p>{count} modules are too many to draw here; <code>luabundle graph --format svg</code> draws the graph of the sources.</p>"
        );
        return;
    }
    let layout = GraphLayout::of(index);
    page.push_str("<p class=\"legend\"><span>── eager require</span><span>- - deferred require</span><span>··· optional (pcall)</span></p>\n");
    let _ = writeln!(
        page,
        "<svg width=\"{}\" height=\"{}\" font-family=\"system-ui,sans-serif\" font-size=\"12\">",
        layout.svg_width, layout.svg_height
    );
    page.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#666\"/></marker></defs>\n");
    for (m, module) in index.modules.iter().enumerate() {
        for dep in module.deps.iter().filter(|d| (d.module as usize) < count) {
            edge(page, &layout, m, dep);
        }
    }
    let (width, height) = (GraphLayout::BOX_WIDTH, GraphLayout::BOX_HEIGHT);
    for (m, module) in index.modules.iter().enumerate() {
        let (x, y) = layout.position(m);
        let _ = writeln!(
            page,
            "<g><rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"{height}\" rx=\"4\" fill=\"#eef3fb\" stroke=\"#4a7fd4\"/><text x=\"{}\" y=\"{}\">{}</text></g>",
            x + 8.0,
            y + 17.0,
            escape(&module.name)
        );
    }
    page.push_str("</svg>\n");
}

/// Where each module's box goes: one column per require depth, rows in module order.
struct GraphLayout {
    column: Vec<usize>,
    row: Vec<usize>,
    svg_width: f64,
    svg_height: f64,
}

impl GraphLayout {
    const BOX_WIDTH: f64 = 190.0;
    const BOX_HEIGHT: f64 = 26.0;
    const GAP_X: f64 = 70.0;
    const GAP_Y: f64 = 14.0;

    fn of(index: &Index) -> GraphLayout {
        let count = index.modules.len();
        let column = columns(index);
        let mut row = vec![0usize; count];
        let mut next_row = vec![0usize; count.max(1)];
        for m in 0..count {
            row[m] = next_row[column[m]];
            next_row[column[m]] += 1;
        }
        let columns_used = column.iter().max().map_or(1, |c| c + 1);
        let rows_used = next_row.iter().max().copied().unwrap_or(1).max(1);
        let svg_width = 40.0 + columns_used as f64 * (Self::BOX_WIDTH + Self::GAP_X);
        let svg_height = 40.0 + rows_used as f64 * (Self::BOX_HEIGHT + Self::GAP_Y);
        GraphLayout { column, row, svg_width, svg_height }
    }

    /// The top-left corner of module `m`'s box.
    fn position(&self, m: usize) -> (f64, f64) {
        (
            20.0 + self.column[m] as f64 * (Self::BOX_WIDTH + Self::GAP_X),
            20.0 + self.row[m] as f64 * (Self::BOX_HEIGHT + Self::GAP_Y),
        )
    }
}

/// The arrow from module `m` to the module `dep` names: solid for eager requires, dashed for
/// deferred ones, dotted for optional ones.
fn edge(page: &mut String, layout: &GraphLayout, m: usize, dep: &luabundle_runtime::format::Dependency) {
    let (x, y) = layout.position(m);
    let (dx, dy) = layout.position(dep.module as usize);
    let dash = match (dep.kind, dep.optional) {
        (_, true) => " stroke-dasharray=\"2,3\"",
        (DepKind::Deferred, false) => " stroke-dasharray=\"6,4\"",
        (DepKind::Eager, false) => "",
    };
    let colour = if dep.kind == DepKind::Eager { "#555" } else { "#b05a00" };
    let half = GraphLayout::BOX_HEIGHT / 2.0;
    let _ = writeln!(
        page,
        "<line x1=\"{x}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{colour}\" stroke-width=\"1.2\"{dash} marker-end=\"url(#arrow)\"/>",
        y + half,
        dx + GraphLayout::BOX_WIDTH,
        dy + half
    );
}

fn profiles(page: &mut String, index: &Index) {
    page.push_str("<h2>Profiles</h2>\n");
    if index.profiles.is_empty() {
        page.push_str("<p>This bundle has no profiles: every module is requirable.</p>\n");
        return;
    }
    page.push_str("<table class=\"profiles\">\n<tr><th>module</th>");
    for profile in &index.profiles {
        let _ = write!(page, "<th>{}</th>", escape(&profile.name));
    }
    page.push_str("</tr>\n");
    for (m, module) in index.modules.iter().enumerate() {
        let _ = write!(page, "<tr><td>{}</td>", escape(&module.name));
        for profile in &index.profiles {
            let member = profile.members.contains(&(m as u32));
            page.push_str(if member { "<td class=\"yes\">✓</td>" } else { "<td class=\"no\">·</td>" });
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n");
    if !index.groups.is_empty() {
        page.push_str("<h2>Groups</h2>\n<ul>\n");
        for group in &index.groups {
            let _ =
                writeln!(page, "<li><code>{}</code>: {}</li>", escape(&group.name), escape(&group.members.join(", ")));
        }
        page.push_str("</ul>\n");
    }
}

/// `text` with the characters HTML gives a meaning escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("<a & 'b'>\u{1}"), "&lt;a &amp; &#39;b&#39;&gt;\u{fffd}");
    }
}
