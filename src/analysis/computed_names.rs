//! Evaluation of computed require names, such as `require(here .. "sub")` after
//! `local here = (...):match("(.-)[^%.]+$")`, once the requiring module's name is known.
//!
//! The program comes from [`crate::analysis::requires`] and uses only constants, `...` (the module's
//! name and path, as Lua's loaders pass them) and the `string` library. It runs in a Lua state
//! of its own with nothing else in its environment, under an instruction, a time and a
//! memory budget. Lua's pattern matching runs in C, where no hook can stop it, so the
//! pattern functions first bound the work a call can take and refuse a costlier one.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mlua::{Lua, LuaOptions, StdLib, Value, VmState};

/// Instructions a program may run, in units of [`HOOK_EVERY`] (Luau: interrupts, which come
/// at calls and loop iterations).
const INSTRUCTION_BUDGET: u32 = if cfg!(feature = "luau") { 100_000 } else { 1_000 };
#[cfg(not(feature = "luau"))]
const HOOK_EVERY: u32 = 1_000;
/// Memory a program may use.
const MEMORY_LIMIT: usize = 16 << 20;
/// Time a program may take.
const TIME_BUDGET: Duration = Duration::from_secs(1);

/// The pattern functions of the sandbox, each refusing a call whose worst case exceeds a
/// budget of steps: backtracking over a subject of n bytes costs up to n per `*`, `+` or `-`
/// in the pattern (and 2 per `?`), and `gsub` and `gmatch` try every position. Names and
/// paths are short, so the idioms of module-relative requires stay far below it.
const BOUNDED_PATTERNS: &str = include_str!("bounded_patterns.lua");

/// A sandboxed Lua state that evaluates computed module names.
pub struct Evaluator {
    lua: Lua,
    budget: Rc<Cell<u32>>,
    started: Rc<Cell<Instant>>,
}

impl Evaluator {
    /// A state with only the `string` library.
    ///
    /// # Errors
    /// If Lua cannot create the state.
    pub fn new() -> mlua::Result<Evaluator> {
        let lua = Lua::new_with(StdLib::STRING, LuaOptions::default())?;
        lua.load(BOUNDED_PATTERNS).set_name("=bounded patterns").exec()?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let budget = Rc::new(Cell::new(0));
        let started = Rc::new(Cell::new(Instant::now()));
        let (remaining, since) = (budget.clone(), started.clone());
        limit_instructions(&lua, move || {
            if remaining.get() == 0 {
                return Err(mlua::Error::runtime("instruction budget exhausted"));
            }
            if since.get().elapsed() > TIME_BUDGET {
                return Err(mlua::Error::runtime("time budget exhausted"));
            }
            remaining.set(remaining.get() - 1);
            Ok(VmState::Continue)
        })?;
        Ok(Evaluator { lua, budget, started })
    }

    /// Runs `program` with `...` = `(module, path)` and returns the string it yields.
    ///
    /// # Errors
    /// A message saying why no name came out (an error, or a value that is not a string).
    pub fn module_name(&self, program: &str, module: &str, path: &str) -> Result<String, String> {
        self.budget.set(INSTRUCTION_BUDGET);
        self.started.set(Instant::now());
        let environment = self.lua.create_table().map_err(|e| e.to_string())?;
        let string: Value = self.lua.globals().get("string").map_err(|e| e.to_string())?;
        environment.set("string", string).map_err(|e| e.to_string())?;
        let value: Value = self
            .lua
            .load(program)
            .set_name("=computed require")
            .set_environment(environment)
            .call((module, path))
            .map_err(|e| e.to_string())?;
        match value {
            Value::String(name) => name.to_str().map(|s| s.to_string()).map_err(|_| "not UTF-8".to_string()),
            other => Err(format!("evaluates to a {} value, not a string", other.type_name())),
        }
    }
}

/// Calls `tick` every [`HOOK_EVERY`] instructions.
#[cfg(not(feature = "luau"))]
fn limit_instructions(lua: &Lua, tick: impl Fn() -> mlua::Result<VmState> + 'static) -> mlua::Result<()> {
    lua.set_hook(mlua::HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, _| tick())
}

/// Calls `tick` on every Luau interrupt (function calls and loop iterations).
#[cfg(feature = "luau")]
fn limit_instructions(lua: &Lua, tick: impl Fn() -> mlua::Result<VmState> + 'static) -> mlua::Result<()> {
    lua.set_interrupt(move |_| tick());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_relative_idioms_evaluate_with_the_module_name() {
        let evaluator = Evaluator::new().unwrap();
        let here = "local here = (...):match(\"(.-)[^%.]+$\")\nreturn (here .. \"sub\"\n)\n";
        assert_eq!(evaluator.module_name(here, "pkg.mod", "src/pkg/mod.lua").unwrap(), "pkg.sub");
        let base = "local base = (...):gsub(\"%.init$\", \"\")\nreturn (base .. \".util\"\n)\n";
        assert_eq!(evaluator.module_name(base, "pkg.init", "src/pkg/init.lua").unwrap(), "pkg.util");
    }

    #[test]
    fn runaway_or_foreign_programs_fail_cleanly() {
        let evaluator = Evaluator::new().unwrap();
        assert!(evaluator.module_name("while true do end", "m", "m.lua").unwrap_err().contains("budget"));
        assert!(evaluator.module_name("return string.rep('x', 1 << 30)", "m", "m.lua").is_err());
        assert!(evaluator.module_name("return os.getenv('HOME')", "m", "m.lua").is_err());
        assert!(evaluator.module_name("return 42", "m", "m.lua").unwrap_err().contains("not a string"));
    }

    #[test]
    fn costly_patterns_are_refused_before_they_run() {
        let evaluator = Evaluator::new().unwrap();
        let started = Instant::now();
        let hang = "local s = string.rep('a', 100000) return s:match('.-.-.-.-.-.-b') or 'x'";
        let err = evaluator.module_name(hang, "m", "m.lua").unwrap_err();
        assert!(err.contains("pattern too costly"), "{err}");
        let gsub = "return (string.rep('a', 100000):gsub('a*b', ''))";
        assert!(evaluator.module_name(gsub, "m", "m.lua").unwrap_err().contains("pattern too costly"));
        assert!(started.elapsed() < TIME_BUDGET);
        // The idioms still work, through methods and the library alike.
        let idiom = "return string.gsub((...):match('^(.-)[^%.]+$'), '%.$', '') .. '.x'";
        assert_eq!(evaluator.module_name(idiom, "a.b.c", "a/b/c.lua").unwrap(), "a.b.x");
    }
}
