//! Start-up profiles: the loads of one state as a tree, each module's own cost split into
//! reading (and verifying and decompressing) its bytes, Lua's load of them, and running its
//! body, with the Lua memory each one allocated; written in the formats profilers open.
//!
//! - [`StartupProfile::chrome_trace`]: Chrome's Trace Event format (JSON), which Perfetto and
//!   `chrome://tracing` open: one complete event per module load on a timeline, its three
//!   phases nested in it and the modules it required nested in its execution.
//! - [`StartupProfile::speedscope`]: speedscope's file format: the same timeline as an evented
//!   profile, and the memory as a second, sampled profile weighted in bytes.
//! - [`StartupProfile::collapsed`]: collapsed stacks (`a;b;phase microseconds` per line), which
//!   `flamegraph.pl` and inferno draw.

use std::fmt::Write;
use std::time::Duration;

use crate::stats::{LoadRecord, Origin};

/// The loads of one state, from [`crate::Installed::profile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartupProfile {
    /// What the profile is of (the bundle's label), shown by the tools.
    pub name: String,
    /// Every load in completion order, as [`crate::Installed::load_log`] gives them.
    pub loads: Vec<LoadRecord>,
}

/// A load with the loads it caused.
struct Node<'a> {
    load: &'a LoadRecord,
    children: Vec<Node<'a>>,
}

/// The phases of a module's own time, in the order they run.
const PHASES: [&str; 3] = ["read+verify", "undump", "execute"];

impl StartupProfile {
    /// Time spent loading modules: the top-level loads, with what they loaded.
    pub fn total(&self) -> Duration {
        self.loads.iter().filter(|l| l.depth == 0).map(|l| l.cumulative).sum()
    }

    /// The loads as trees, top-level loads in the order they ran.
    fn trees(&self) -> Vec<Node<'_>> {
        // Completion order puts a load's nested loads, one level deeper, right before it.
        let mut stack: Vec<Node<'_>> = Vec::new();
        for load in &self.loads {
            let first_child = stack.iter().rposition(|n| n.load.depth <= load.depth).map_or(0, |at| at + 1);
            let children = stack.split_off(first_child);
            stack.push(Node { load, children });
        }
        stack
    }

    /// Chrome's Trace Event format, as one JSON object.
    pub fn chrome_trace(&self) -> String {
        let mut events = vec![
            r#"{"name":"process_name","ph":"M","pid":1,"tid":1,"args":{"name":"luabundle"}}"#.to_string(),
            format!(r#"{{"name":"thread_name","ph":"M","pid":1,"tid":1,"args":{{"name":{}}}}}"#, json(&self.name)),
        ];
        fn walk(node: &Node<'_>, events: &mut Vec<String>) {
            let load = node.load;
            let args = format!(
                r#"{{"origin":{},"self_us":{},"read_us":{},"undump_us":{},"execute_us":{},"memory_bytes":{},"ok":{}}}"#,
                json(origin_name(load.origin)),
                micros(load.self_time),
                micros(load.read),
                micros(load.undump),
                micros(load.execute()),
                load.memory,
                load.ok
            );
            events.push(complete(&load.module, "module", load.start, load.cumulative, &args));
            for (phase, start, len) in phases(load) {
                events.push(complete(phase, "phase", start, len, "{}"));
            }
            for child in &node.children {
                walk(child, events);
            }
        }
        for tree in self.trees() {
            walk(&tree, &mut events);
        }
        format!("{{\"traceEvents\":[\n{}\n],\"displayTimeUnit\":\"ms\"}}\n", events.join(",\n"))
    }

    /// speedscope's file format: an evented profile of the loads (microseconds) and a
    /// sampled one of the memory they allocated (bytes).
    pub fn speedscope(&self) -> String {
        /// What the walk over the trees builds.
        struct Out {
            frames: Vec<String>,
            events: Vec<String>,
            /// Per module load: its stack of frames and the bytes it allocated.
            samples: Vec<(Vec<usize>, i64)>,
            /// The latest time written: speedscope wants events in time order.
            last: f64,
        }
        impl Out {
            fn frame(&mut self, name: &str) -> usize {
                self.frames.iter().position(|f| f == name).unwrap_or_else(|| {
                    self.frames.push(name.to_string());
                    self.frames.len() - 1
                })
            }
            fn event(&mut self, kind: char, frame: usize, time: Duration) {
                self.last = self.last.max(time.as_secs_f64() * 1e6);
                self.events.push(evented(kind, frame, self.last));
            }
        }
        fn walk(node: &Node<'_>, stack: &mut Vec<usize>, out: &mut Out) {
            let load = node.load;
            let module = out.frame(&load.module);
            let end = load.start + load.cumulative;
            out.event('O', module, load.start);
            stack.push(module);
            out.samples.push((stack.clone(), load.memory.max(0)));
            for (phase, (_, start, len)) in phases(load).into_iter().enumerate() {
                out.event('O', phase, start);
                // The modules a module requires load while its body runs.
                if phase == 2 {
                    for child in &node.children {
                        walk(child, stack, out);
                    }
                    out.event('C', phase, end);
                } else {
                    out.event('C', phase, start + len);
                }
            }
            stack.pop();
            out.event('C', module, end);
        }
        let mut out = Out {
            frames: PHASES.iter().map(|p| p.to_string()).collect(),
            events: Vec::new(),
            samples: Vec::new(),
            last: 0.0,
        };
        let trees = self.trees();
        for tree in &trees {
            walk(tree, &mut Vec::new(), &mut out);
        }
        let Out { frames, events, samples, last } = out;
        let end = trees.last().map_or(0.0, |t| (t.load.start + t.load.cumulative).as_secs_f64() * 1e6);
        let end = end.max(last);
        let frames: Vec<String> = frames.iter().map(|f| format!("{{\"name\":{}}}", json(f))).collect();
        let stacks: Vec<String> = samples
            .iter()
            .map(|(stack, _)| format!("[{}]", stack.iter().map(usize::to_string).collect::<Vec<_>>().join(",")))
            .collect();
        let weights: Vec<String> = samples.iter().map(|(_, bytes)| bytes.to_string()).collect();
        let total_bytes: i64 = samples.iter().map(|(_, bytes)| bytes).sum();
        format!(
            concat!(
                "{{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",",
                "\"name\":{name},\"exporter\":\"luabundle {version}\",\"activeProfileIndex\":0,",
                "\"shared\":{{\"frames\":[{frames}]}},\"profiles\":[",
                "{{\"type\":\"evented\",\"name\":{time_name},\"unit\":\"microseconds\",",
                "\"startValue\":0,\"endValue\":{end},\"events\":[\n{events}\n]}},",
                "{{\"type\":\"sampled\",\"name\":{memory_name},\"unit\":\"bytes\",",
                "\"startValue\":0,\"endValue\":{total_bytes},\"samples\":[{stacks}],\"weights\":[{weights}]}}",
                "]}}\n"
            ),
            name = json(&self.name),
            version = env!("CARGO_PKG_VERSION"),
            frames = frames.join(","),
            time_name = json(&format!("{}: module loads", self.name)),
            end = number(end),
            events = events.join(",\n"),
            memory_name = json(&format!("{}: Lua memory allocated", self.name)),
            total_bytes = total_bytes,
            stacks = stacks.join(","),
            weights = weights.join(","),
        )
    }

    /// Collapsed stacks: one line per module and phase, `outer;inner;phase microseconds`,
    /// each module's own time only (nested loads are lines of their own).
    pub fn collapsed(&self) -> String {
        let mut out = String::new();
        fn walk(node: &Node<'_>, path: &mut Vec<String>, out: &mut String) {
            let load = node.load;
            path.push(load.module.replace([';', ' ', '\n'], "_"));
            let stack = path.join(";");
            for (phase, took) in PHASES.iter().zip([load.read, load.undump, load.execute()]) {
                let us = took.as_micros();
                if us > 0 {
                    let _ = writeln!(out, "{stack};{phase} {us}");
                }
            }
            for child in &node.children {
                walk(child, path, out);
            }
            path.pop();
        }
        for tree in self.trees() {
            walk(&tree, &mut Vec::new(), &mut out);
        }
        out
    }
}

/// The three phases of `load` as (name, start, length), each after the one before.
fn phases(load: &LoadRecord) -> [(&'static str, Duration, Duration); 3] {
    let read_end = load.start + load.read;
    let undump_end = read_end + load.undump;
    let end = (load.start + load.cumulative).max(undump_end);
    [(PHASES[0], load.start, load.read), (PHASES[1], read_end, load.undump), (PHASES[2], undump_end, end - undump_end)]
}

fn origin_name(origin: Origin) -> &'static str {
    match origin {
        Origin::Bundle => "bundle",
        Origin::EmbeddedSource => "embedded source",
        Origin::Native => "native",
    }
}

/// A Trace Event "complete" event.
fn complete(name: &str, category: &str, start: Duration, len: Duration, args: &str) -> String {
    format!(
        r#"{{"name":{},"cat":"{category}","ph":"X","ts":{},"dur":{},"pid":1,"tid":1,"args":{args}}}"#,
        json(name),
        number(start.as_secs_f64() * 1e6),
        number(len.as_secs_f64() * 1e6)
    )
}

/// A speedscope open (`O`) or close (`C`) event.
fn evented(kind: char, frame: usize, at: f64) -> String {
    format!(r#"{{"type":"{kind}","frame":{frame},"at":{}}}"#, number(at))
}

fn micros(took: Duration) -> String {
    number(took.as_secs_f64() * 1e6)
}

/// A JSON number with at most three decimals.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// A JSON string.
fn json(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(module: &str, depth: usize, start: u64, cumulative: u64, self_time: u64) -> LoadRecord {
        LoadRecord {
            module: module.into(),
            origin: Origin::Bundle,
            depth,
            start: Duration::from_micros(start),
            self_time: Duration::from_micros(self_time),
            cumulative: Duration::from_micros(cumulative),
            read: Duration::from_micros(2),
            undump: Duration::from_micros(3),
            memory: 100 * depth as i64 + 50,
            ok: true,
        }
    }

    /// `main` (0..100 µs) requires `a` (10..40), which requires `b` (15..25), then `c` (50..60).
    fn profile() -> StartupProfile {
        StartupProfile {
            name: "app \"x\"".into(),
            loads: vec![
                load("b", 2, 15, 10, 10),
                load("a", 1, 10, 30, 20),
                load("c", 1, 50, 10, 10),
                load("main", 0, 0, 100, 60),
            ],
        }
    }

    #[test]
    fn loads_become_trees_in_the_order_they_ran() {
        let p = profile();
        let trees = p.trees();
        assert_eq!(trees.len(), 1);
        let names: Vec<&str> = trees[0].children.iter().map(|n| n.load.module.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(trees[0].children[0].children[0].load.module, "b");
        assert_eq!(p.total(), Duration::from_micros(100));
    }

    #[test]
    fn collapsed_stacks_hold_each_phase_of_each_module() {
        let text = profile().collapsed();
        assert!(text.contains("main;read+verify 2\nmain;undump 3\nmain;execute 55\n"), "{text}");
        assert!(text.contains("main;a;b;execute 5\n"), "{text}");
        assert!(text.lines().all(|l| l.rsplit_once(' ').is_some_and(|(_, n)| n.parse::<u64>().is_ok())), "{text}");
    }

    #[test]
    fn speedscope_events_open_and_close_in_order() {
        let text = profile().speedscope();
        assert!(text.starts_with("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\""));
        assert!(text.contains("\"name\":\"app \\\"x\\\"\""), "{text}");
        let mut open = Vec::new();
        let mut last = 0.0;
        for line in text.lines().filter(|l| l.starts_with("{\"type\":\"O\"") || l.starts_with("{\"type\":\"C\"")) {
            let frame: usize = line.split("\"frame\":").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
            let at: f64 = line.split("\"at\":").nth(1).unwrap().trim_end_matches([',', '}']).parse().unwrap();
            assert!(at >= last, "{line}");
            last = at;
            if line.contains("\"O\"") {
                open.push(frame);
            } else {
                assert_eq!(open.pop(), Some(frame), "{line}");
            }
        }
        assert!(open.is_empty());
    }

    #[test]
    fn numbers_and_strings_are_valid_json() {
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.0001), "0");
        assert_eq!(json("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
