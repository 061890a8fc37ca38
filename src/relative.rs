//! Evaluation of computed require names, such as `require(here .. "sub")` after
//! `local here = (...):match("(.-)[^%.]+$")`, once the requiring module's name is known.
//!
//! The program comes from [`crate::requires`] and uses only constants, `...` (the module's
//! name and path, as Lua's loaders pass them) and the `string` library. It runs in a Lua state
//! of its own with nothing else in its environment, under an instruction and a memory budget.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Lua, LuaOptions, StdLib, Value, VmState};

/// Instructions a program may run, in units of [`HOOK_EVERY`] (Luau: interrupts, which come
/// at calls and loop iterations).
const INSTRUCTION_BUDGET: u32 = if cfg!(feature = "luau") { 100_000 } else { 1_000 };
#[cfg(not(feature = "luau"))]
const HOOK_EVERY: u32 = 1_000;
/// Memory a program may use.
const MEMORY_LIMIT: usize = 16 << 20;

/// A sandboxed Lua state that evaluates computed module names.
pub struct Evaluator {
    lua: Lua,
    budget: Rc<Cell<u32>>,
}

impl Evaluator {
    /// A state with only the `string` library.
    ///
    /// # Errors
    /// If Lua cannot create the state.
    pub fn new() -> mlua::Result<Evaluator> {
        let lua = Lua::new_with(StdLib::STRING, LuaOptions::default())?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let budget = Rc::new(Cell::new(0));
        let remaining = budget.clone();
        limit_instructions(&lua, move || {
            if remaining.get() == 0 {
                return Err(mlua::Error::runtime("instruction budget exhausted"));
            }
            remaining.set(remaining.get() - 1);
            Ok(VmState::Continue)
        })?;
        Ok(Evaluator { lua, budget })
    }

    /// Runs `program` with `...` = `(module, path)` and returns the string it yields.
    ///
    /// # Errors
    /// A message saying why no name came out (an error, or a value that is not a string).
    pub fn module_name(&self, program: &str, module: &str, path: &str) -> Result<String, String> {
        self.budget.set(INSTRUCTION_BUDGET);
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
}
