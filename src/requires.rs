//! Require extraction: every `require` call site in a syntax tree, with its module name when
//! it is known before run time, whether it runs eagerly (while the module body runs) or
//! deferred (inside a function body), and whether it is protected by `pcall`/`xpcall`.
//!
//! A call is a require when its callee is the global `require` (also as `_G.require` or
//! `_ENV.require`, or through a local alias such as `local require = require`); a local or
//! parameter of that name that is anything else shadows it. Names come from literals (escapes
//! decoded as Lua does), `..` of literals, or, when the argument uses the module's own name
//! (`...`) or top-level locals computed from constants, from a small Lua program that the
//! graph stage evaluates once the module's name is known.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use full_moon::ast::{self, Ast, Block, Expression, FunctionArgs, FunctionCall, Prefix, Suffix, Var, VarExpression};
use full_moon::node::Node;
use full_moon::tokenizer::{StringLiteralQuoteType, Symbol, TokenReference, TokenType};
use full_moon::visitors::Visitor;

use crate::lua_string;

/// When a require runs relative to the module that contains it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Timing {
    /// At the top level (including top-level `if`, `for`, `do`): runs when the module loads.
    Eager,
    /// Inside a function body: runs when (and if) the function is called.
    Deferred,
}

/// The argument of a require call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// A constant module name.
    Name(String),
    /// A name computed from the module's own name (`...`) or top-level constants: `program`
    /// is a Lua chunk that returns it when called with `(module name, path)`.
    Computed {
        /// The Lua chunk.
        program: String,
        /// The argument as written.
        expression: String,
    },
    /// An expression whose value is not known before run time.
    Dynamic {
        /// The argument as written.
        expression: String,
        /// The constant text every name it yields starts with (`"plugins."` for
        /// `"plugins." .. name`), empty if none.
        prefix: String,
    },
}

impl Target {
    fn dynamic(expression: String) -> Target {
        Target::Dynamic { expression, prefix: String::new() }
    }
}

/// One `require` call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequireSite {
    /// What is required.
    pub target: Target,
    /// Byte range of the call in the (prepared) source.
    pub range: Range<usize>,
    /// Eager or deferred.
    pub timing: Timing,
    /// Whether the call is protected (`pcall(require, "x")`), so a missing module is tolerated.
    pub optional: bool,
}

/// Every require site in `ast`, in source order.
pub fn find_requires(ast: &Ast) -> Vec<RequireSite> {
    let mut finder = RequireFinder::default();
    finder.visit_ast(ast);
    let RequireFinder { mut sites, computed_uses, assigned, .. } = finder;
    // A computed name that relies on a local assigned anywhere is not known after all.
    for (site, uses) in computed_uses {
        if uses.iter().any(|name| assigned.contains(name)) {
            if let Target::Computed { expression, .. } = &sites[site].target {
                sites[site].target = Target::dynamic(expression.clone());
            }
        }
    }
    sites.sort_by_key(|s| s.range.start);
    sites
}

/// What a local variable holds, as far as require analysis cares.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Binding {
    /// The global `require` itself (`local require = require`).
    RequireAlias,
    /// A top-level local whose value follows from constants and the module's name.
    Derivable,
    /// Anything else.
    Other,
}

/// A top-level derivable local: its defining expression and the derivable locals it uses.
#[derive(Clone, Debug)]
struct Definition {
    name: String,
    expression: String,
    uses: Vec<String>,
}

#[derive(Default)]
struct RequireFinder {
    function_depth: usize,
    /// Local names per open block, innermost last; the first is the chunk's.
    scopes: Vec<Vec<(String, Binding)>>,
    /// Names a block declares before its statements run (parameters, loop variables).
    pending: HashMap<*const Block, Vec<(String, Binding)>>,
    /// Top-level derivable locals, in definition order.
    definitions: Vec<Definition>,
    /// Names assigned with a plain assignment anywhere.
    assigned: HashSet<String>,
    /// Computed sites and the locals their program relies on.
    computed_uses: Vec<(usize, Vec<String>)>,
    sites: Vec<RequireSite>,
}

impl RequireFinder {
    fn timing(&self) -> Timing {
        if self.function_depth == 0 {
            Timing::Eager
        } else {
            Timing::Deferred
        }
    }

    /// The binding of `name` and whether it is in the chunk's own scope, or `None` for a global.
    fn resolve(&self, name: &str) -> Option<(&Binding, bool)> {
        self.scopes
            .iter()
            .enumerate()
            .rev()
            .find_map(|(depth, scope)| scope.iter().rev().find(|(n, _)| n == name).map(|(_, b)| (b, depth == 0)))
    }

    fn is_global(&self, name: &str) -> bool {
        self.resolve(name).is_none()
    }

    /// Whether `token` names the real `require`: the global, or a local alias of it.
    fn names_require(&self, token: &TokenReference) -> bool {
        identifier(token) == Some("require")
            && matches!(self.resolve("require"), None | Some((Binding::RequireAlias, _)))
    }

    /// Whether `prefix suffixes` (before any call) is `require`, `_G.require` or
    /// `_ENV.require`; returns the suffixes after it.
    fn require_callee<'a>(&self, prefix: &Prefix, suffixes: &'a [&'a Suffix]) -> Option<&'a [&'a Suffix]> {
        let Prefix::Name(name) = prefix else { return None };
        if self.names_require(name) {
            return Some(suffixes);
        }
        let environment = matches!(identifier(name), Some("_G" | "_ENV")) && self.is_global(identifier(name)?);
        match suffixes.first() {
            Some(Suffix::Index(ast::Index::Dot { name: field, .. }))
                if environment && identifier(field) == Some("require") =>
            {
                Some(&suffixes[1..])
            }
            _ => None,
        }
    }

    /// Whether `expression` is the real `require` as a value (`pcall(require, ...)`).
    fn is_require_value(&self, expression: &Expression) -> bool {
        match expression {
            Expression::Var(Var::Name(name)) => self.names_require(name),
            Expression::Var(Var::Expression(var)) => {
                let suffixes: Vec<&Suffix> = var.suffixes().collect();
                self.require_callee(var.prefix(), &suffixes).is_some_and(<[_]>::is_empty)
            }
            _ => false,
        }
    }

    /// Handles `prefix suffix...` chains: `require(...)`, `require "x" .f`, `pcall(require, "x")`.
    fn chain(&mut self, prefix: &Prefix, suffixes: &[&Suffix]) {
        let start = span(prefix).start;
        if let Some(rest) = self.require_callee(prefix, suffixes) {
            if let Some(Suffix::Call(ast::Call::AnonymousCall(args))) = rest.first() {
                let target = self.require_target(args);
                self.push_site(target, start..span(args.as_ref()).end, false);
            }
            return;
        }
        let Prefix::Name(callee) = prefix else { return };
        let skip = match identifier(callee) {
            Some("pcall") if self.is_global("pcall") => 0,
            Some("xpcall") if self.is_global("xpcall") => 1,
            _ => return,
        };
        let Some(Suffix::Call(ast::Call::AnonymousCall(args))) = suffixes.first() else { return };
        let FunctionArgs::Parentheses { arguments, .. } = args.as_ref() else { return };
        let mut arguments = arguments.iter();
        if !arguments.next().is_some_and(|first| self.is_require_value(first)) {
            return;
        }
        let target = match arguments.nth(skip) {
            Some(name) => self.expression_target(name),
            None => (Target::dynamic(String::new()), Vec::new()),
        };
        self.push_site(target, start..span(args.as_ref()).end, true);
    }

    fn push_site(&mut self, target: (Target, Vec<String>), range: Range<usize>, optional: bool) {
        let (target, uses) = target;
        if matches!(target, Target::Computed { .. }) {
            self.computed_uses.push((self.sites.len(), uses));
        }
        self.sites.push(RequireSite { target, range, timing: self.timing(), optional });
    }

    /// The target of `require <args>`.
    fn require_target(&self, args: &FunctionArgs) -> (Target, Vec<String>) {
        match args {
            FunctionArgs::String(token) => match string_literal(token).map(String::from_utf8) {
                Some(Ok(name)) => (Target::Name(name), Vec::new()),
                _ => (Target::dynamic(written(token)), Vec::new()),
            },
            FunctionArgs::Parentheses { arguments, .. } => match arguments.iter().next() {
                Some(first) => self.expression_target(first),
                None => (Target::dynamic(String::new()), Vec::new()),
            },
            other => (Target::dynamic(written(other)), Vec::new()),
        }
    }

    fn expression_target(&self, expression: &Expression) -> (Target, Vec<String>) {
        if let Some(Ok(name)) = constant_string(expression).map(String::from_utf8) {
            return (Target::Name(name), Vec::new());
        }
        let Some(used) = self.derivable(expression) else {
            let prefix = String::from_utf8(constant_prefix(expression)).unwrap_or_default();
            return (Target::Dynamic { expression: written(expression), prefix }, Vec::new());
        };
        let uses = self.closure_of(used);
        let mut program = String::new();
        for definition in self.definitions.iter().filter(|d| uses.contains(&d.name)) {
            program.push_str(&format!("local {} = {}\n", definition.name, definition.expression));
        }
        program.push_str(&format!("return ({}\n)\n", expression));
        (Target::Computed { program, expression: written(expression) }, uses)
    }

    /// `names` and every derivable local their definitions use, transitively.
    fn closure_of(&self, mut names: Vec<String>) -> Vec<String> {
        let mut i = 0;
        while i < names.len() {
            if let Some(definition) = self.definitions.iter().rev().find(|d| d.name == names[i]) {
                for used in &definition.uses {
                    if !names.contains(used) {
                        names.push(used.clone());
                    }
                }
            }
            i += 1;
        }
        names
    }

    /// If `expression` follows from constants, `...` at the top level, the `string` library
    /// and derivable top-level locals, the locals it uses.
    fn derivable(&self, expression: &Expression) -> Option<Vec<String>> {
        let mut uses = Vec::new();
        self.collect_derivable(expression, &mut uses).then_some(uses)
    }

    fn collect_derivable(&self, expression: &Expression, uses: &mut Vec<String>) -> bool {
        match expression {
            Expression::Symbol(token) => match token.token_type() {
                TokenType::Symbol { symbol: Symbol::Ellipsis } => self.function_depth == 0,
                _ => true,
            },
            Expression::String(_) | Expression::Number(_) => true,
            Expression::Parentheses { expression, .. } | Expression::UnaryOperator { expression, .. } => {
                self.collect_derivable(expression, uses)
            }
            Expression::BinaryOperator { lhs, rhs, .. } => {
                self.collect_derivable(lhs, uses) && self.collect_derivable(rhs, uses)
            }
            Expression::FunctionCall(call) => {
                self.chain_derivable(call.prefix(), &call.suffixes().collect::<Vec<_>>(), uses)
            }
            Expression::Var(Var::Name(name)) => self.name_derivable(name, uses),
            Expression::Var(Var::Expression(var)) => {
                self.chain_derivable(var.prefix(), &var.suffixes().collect::<Vec<_>>(), uses)
            }
            _ => false,
        }
    }

    fn name_derivable(&self, token: &TokenReference, uses: &mut Vec<String>) -> bool {
        let Some(name) = identifier(token) else { return false };
        match self.resolve(name) {
            Some((Binding::Derivable, true)) => {
                if !uses.iter().any(|u| u == name) {
                    uses.push(name.to_string());
                }
                true
            }
            None => name == "string",
            Some(_) => false,
        }
    }

    fn chain_derivable(&self, prefix: &Prefix, suffixes: &[&Suffix], uses: &mut Vec<String>) -> bool {
        let prefix_ok = match prefix {
            Prefix::Name(name) => self.name_derivable(name, uses),
            Prefix::Expression(expression) => self.collect_derivable(expression, uses),
            _ => false,
        };
        prefix_ok
            && suffixes.iter().all(|suffix| match suffix {
                Suffix::Index(ast::Index::Dot { .. }) => true,
                Suffix::Index(ast::Index::Brackets { expression, .. }) => self.collect_derivable(expression, uses),
                Suffix::Call(ast::Call::AnonymousCall(args)) => self.args_derivable(args, uses),
                Suffix::Call(ast::Call::MethodCall(call)) => self.args_derivable(call.args(), uses),
                _ => false,
            })
    }

    fn args_derivable(&self, args: &FunctionArgs, uses: &mut Vec<String>) -> bool {
        match args {
            FunctionArgs::Parentheses { arguments, .. } => arguments.iter().all(|a| self.collect_derivable(a, uses)),
            FunctionArgs::String(_) => true,
            _ => false,
        }
    }

    fn declare(&mut self, name: &TokenReference, binding: Binding) {
        if let (Some(name), Some(scope)) = (identifier(name), self.scopes.last_mut()) {
            scope.push((name.to_string(), binding));
        }
    }
}

impl Visitor for RequireFinder {
    fn visit_block(&mut self, block: &Block) {
        let declared = self.pending.remove(&(block as *const Block)).unwrap_or_default();
        self.scopes.push(declared);
    }

    fn visit_block_end(&mut self, _: &Block) {
        self.scopes.pop();
    }

    fn visit_function_body(&mut self, body: &ast::FunctionBody) {
        self.function_depth += 1;
        let parameters = body
            .parameters()
            .iter()
            .filter_map(|p| match p {
                ast::Parameter::Name(name) => identifier(name).map(|n| (n.to_string(), Binding::Other)),
                _ => None,
            })
            .collect();
        self.pending.insert(body.block() as *const Block, parameters);
    }

    fn visit_function_body_end(&mut self, _: &ast::FunctionBody) {
        self.function_depth -= 1;
    }

    fn visit_local_function(&mut self, function: &ast::LocalFunction) {
        // In scope inside its own body, for recursion.
        self.declare(function.name(), Binding::Other);
    }

    fn visit_local_assignment_end(&mut self, local: &ast::LocalAssignment) {
        let expressions: Vec<&Expression> = local.expressions().iter().collect();
        let one_each = expressions.len() == local.names().len();
        let top_level = self.scopes.len() == 1 && self.function_depth == 0;
        let mut bindings = Vec::new();
        for (i, name) in local.names().iter().enumerate() {
            let value = expressions.get(i).filter(|_| one_each || i + 1 < expressions.len());
            let binding = match value {
                Some(value) if self.is_require_value(value) => Binding::RequireAlias,
                Some(value) if top_level => match self.derivable(value) {
                    Some(uses) => {
                        let name = identifier(name).unwrap_or_default().to_string();
                        self.definitions.push(Definition { name, expression: value.to_string(), uses });
                        Binding::Derivable
                    }
                    None => Binding::Other,
                },
                _ => Binding::Other,
            };
            bindings.push((name, binding));
        }
        for (name, binding) in bindings {
            self.declare(name, binding);
        }
    }

    fn visit_numeric_for(&mut self, numeric: &ast::NumericFor) {
        let variable = identifier(numeric.index_variable()).map(|n| (n.to_string(), Binding::Other));
        self.pending.insert(numeric.block() as *const Block, variable.into_iter().collect());
    }

    fn visit_generic_for(&mut self, generic: &ast::GenericFor) {
        let names = generic.names().iter().filter_map(|n| identifier(n).map(|n| (n.to_string(), Binding::Other)));
        self.pending.insert(generic.block() as *const Block, names.collect());
    }

    fn visit_assignment(&mut self, assignment: &ast::Assignment) {
        for variable in assignment.variables() {
            if let Var::Name(name) = variable {
                if let Some(name) = identifier(name) {
                    self.assigned.insert(name.to_string());
                }
            }
        }
    }

    fn visit_function_call(&mut self, call: &FunctionCall) {
        self.chain(call.prefix(), &call.suffixes().collect::<Vec<_>>());
    }

    fn visit_var_expression(&mut self, var: &VarExpression) {
        self.chain(var.prefix(), &var.suffixes().collect::<Vec<_>>());
    }
}

fn span(node: &impl Node) -> Range<usize> {
    match node.range() {
        Some((start, end)) => start.bytes()..end.bytes(),
        None => 0..0,
    }
}

fn identifier(token: &TokenReference) -> Option<&str> {
    match token.token_type() {
        TokenType::Identifier { identifier } => Some(identifier.as_str()),
        _ => None,
    }
}

/// A node as written, without surrounding whitespace and comments.
fn written(node: &impl std::fmt::Display) -> String {
    node.to_string().trim().to_string()
}

/// The value of a constant string expression: a literal, a parenthesised one, or a `..`
/// concatenation of such.
fn constant_string(expression: &Expression) -> Option<Vec<u8>> {
    match expression {
        Expression::String(token) => string_literal(token),
        Expression::Parentheses { expression, .. } => constant_string(expression),
        Expression::BinaryOperator { lhs, binop: ast::BinOp::TwoDots(_), rhs } => {
            let mut value = constant_string(lhs)?;
            value.extend(constant_string(rhs)?);
            Some(value)
        }
        _ => None,
    }
}

/// The constant bytes every value of `expression` starts with.
fn constant_prefix(expression: &Expression) -> Vec<u8> {
    match expression {
        Expression::Parentheses { expression, .. } => constant_prefix(expression),
        Expression::BinaryOperator { lhs, binop: ast::BinOp::TwoDots(_), rhs } => match constant_string(lhs) {
            Some(mut head) => {
                head.extend(constant_prefix(rhs));
                head
            }
            None => constant_prefix(lhs),
        },
        _ => Vec::new(),
    }
}

/// The bytes a string literal token denotes, escapes decoded as Lua does.
fn string_literal(token: &TokenReference) -> Option<Vec<u8>> {
    let TokenType::StringLiteral { literal, quote_type, .. } = token.token_type() else { return None };
    match quote_type {
        StringLiteralQuoteType::Brackets => Some(lua_string::long_bracket_value(literal.as_str())),
        _ => lua_string::decode_escapes(literal.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(code: &str) -> Vec<RequireSite> {
        let ast = full_moon::parse_fallible(code, crate::flavour::syntax()).into_ast();
        find_requires(&ast)
    }

    fn targets(code: &str) -> Vec<Target> {
        sites(code).into_iter().map(|s| s.target).collect()
    }

    fn name(n: &str) -> Target {
        Target::Name(n.to_string())
    }

    fn dynamic(expression: &str, prefix: &str) -> Target {
        Target::Dynamic { expression: expression.into(), prefix: prefix.into() }
    }

    #[test]
    fn every_literal_call_form_is_found() {
        let code = r#"
            local a = require "a"
            local b = require 'b'
            local c = require [[c]]
            local d = require("d")
            local e = require("e").field
            require("f"):method()
            local g = require("g" .. ".h")
            local i = _G.require("i")
            local j = _ENV.require "j"
            if x then local k = require("k") end
        "#;
        let expected = ["a", "b", "c", "d", "e", "f", "g.h", "i", "j", "k"].map(name);
        assert_eq!(targets(code), expected);
    }

    #[test]
    fn sites_inside_functions_are_deferred() {
        let code = "if x then require('top') end\nlocal function f() return require('inner') end\nt = { g = function() require('anon') end }";
        let timings: Vec<Timing> = sites(code).into_iter().map(|s| s.timing).collect();
        assert_eq!(timings, vec![Timing::Eager, Timing::Deferred, Timing::Deferred]);
    }

    #[test]
    fn protected_requires_are_optional() {
        let found = sites("local ok, m = pcall(require, 'lfs')\nxpcall(require, print, 'socket')\npcall(print, 'x')\npcall(_G.require, 'y')");
        let summary: Vec<(Target, bool)> = found.into_iter().map(|s| (s.target, s.optional)).collect();
        assert_eq!(summary, vec![(name("lfs"), true), (name("socket"), true), (name("y"), true)]);
    }

    #[test]
    fn escapes_are_decoded_and_variables_are_dynamic() {
        let found = targets(r#"require("a\46b") require(name) require("p" .. suffix) require("x." .. "y." .. more)"#);
        assert_eq!(found[0], name("a.b"));
        assert_eq!(found[1], dynamic("name", ""));
        assert_eq!(found[2], dynamic("\"p\" .. suffix", "p"));
        assert_eq!(found[3], dynamic("\"x.\" .. \"y.\" .. more", "x.y."));
    }

    #[test]
    fn a_local_or_parameter_named_require_shadows_the_global() {
        let code = r#"
            local function load(require) return require("param") end
            do local require = function() end; require("local") end
            local function require(x) end
            require("after_local_function")
        "#;
        assert_eq!(targets(code), Vec::<Target>::new());
        assert_eq!(targets("require('before') local require = print require('after')"), vec![name("before")]);
        assert_eq!(
            targets("for _, require in ipairs(t) do require('loop') end require('outside')"),
            vec![name("outside")]
        );
    }

    #[test]
    fn an_alias_of_require_is_still_require() {
        let code =
            "local require = require\nlocal r2 = _G.require\nrequire('a')\nlocal function f() return require('b') end";
        assert_eq!(targets(code), vec![name("a"), name("b")]);
    }

    #[test]
    fn module_relative_names_become_programs() {
        let code = r#"
            local here = (...):match("(.-)[^%.]+$")
            local sub = require(here .. "sub")
            local function later() return require(here .. "other") end
        "#;
        let found = sites(code);
        assert_eq!(found.len(), 2);
        let Target::Computed { program, expression } = &found[0].target else { panic!("{:?}", found[0]) };
        assert_eq!(expression, "here .. \"sub\"");
        assert!(program.starts_with("local here = (...):match(\"(.-)[^%.]+$\")"), "{program}");
        assert!(program.trim_end().ends_with("return (here .. \"sub\"\n)"), "{program}");
        assert_eq!(found[1].timing, Timing::Deferred);
        assert!(matches!(found[1].target, Target::Computed { .. }));
    }

    #[test]
    fn names_that_are_not_derivable_stay_dynamic() {
        // `...` inside a function is that function's arguments, not the module name.
        let inner = targets("local function f(...) return require((...) .. '.x') end");
        assert!(matches!(inner[0], Target::Dynamic { .. }), "{inner:?}");
        // A top-level local assigned later may change before the require runs.
        let assigned = targets("local base = 'a.'\nbase = os.getenv('X')\nrequire(base .. 'b')");
        assert!(matches!(assigned[0], Target::Dynamic { .. }), "{assigned:?}");
        // A parameter with the same name as a top-level local shadows it.
        let shadowed = targets("local base = 'a.'\nlocal function f(base) return require(base .. 'b') end");
        assert!(matches!(shadowed[0], Target::Dynamic { .. }), "{shadowed:?}");
        // Constants through locals are computed.
        let constant = targets("local base = 'pl.'\nrequire(base .. 'utils')");
        assert!(matches!(constant[0], Target::Computed { .. }), "{constant:?}");
    }
}
