//! Require extraction: every `require` call site in a syntax tree, with its module name when
//! it is a constant, whether it runs eagerly (while the module body runs) or deferred (inside
//! a function body), and whether it is protected by `pcall`/`xpcall`.

use std::ops::Range;

use full_moon::ast::{self, Ast, Expression, FunctionArgs, FunctionCall, Prefix, Suffix, Var, VarExpression};
use full_moon::node::Node;
use full_moon::tokenizer::{StringLiteralQuoteType, TokenReference, TokenType};
use full_moon::visitors::Visitor;

use crate::lua_string;

/// When a require runs relative to the module that contains it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// At the top level (including top-level `if`, `for`, `do`): runs when the module loads.
    Eager,
    /// Inside a function body: runs when (and if) the function is called.
    Deferred,
}

/// The argument of a require call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A constant module name.
    Name(String),
    /// An expression whose value is not known before run time, as written.
    Dynamic(String),
}

/// One `require` call.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    finder.sites.sort_by_key(|s| s.range.start);
    finder.sites
}

#[derive(Default)]
struct RequireFinder {
    function_depth: usize,
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

    /// Handles `prefix suffix...` chains: `require(...)`, `require "x" .f`, `pcall(require, "x")`.
    fn chain<'a>(&mut self, prefix: &Prefix, mut suffixes: impl Iterator<Item = &'a Suffix>) {
        let Prefix::Name(callee) = prefix else { return };
        let Some(Suffix::Call(ast::Call::AnonymousCall(args))) = suffixes.next() else {
            return;
        };
        let range = span(prefix).start..span(args.as_ref()).end;
        let (target, optional) = match identifier(callee) {
            Some("require") => (require_target(args), false),
            Some("pcall") => match protected_target(args, 0) {
                Some(target) => (target, true),
                None => return,
            },
            Some("xpcall") => match protected_target(args, 1) {
                Some(target) => (target, true),
                None => return,
            },
            _ => return,
        };
        self.sites.push(RequireSite { target, range, timing: self.timing(), optional });
    }
}

impl Visitor for RequireFinder {
    fn visit_function_body(&mut self, _: &ast::FunctionBody) {
        self.function_depth += 1;
    }

    fn visit_function_body_end(&mut self, _: &ast::FunctionBody) {
        self.function_depth -= 1;
    }

    fn visit_function_call(&mut self, call: &FunctionCall) {
        self.chain(call.prefix(), call.suffixes());
    }

    fn visit_var_expression(&mut self, var: &VarExpression) {
        self.chain(var.prefix(), var.suffixes());
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

/// The target of `require <args>`.
fn require_target(args: &FunctionArgs) -> Target {
    match args {
        FunctionArgs::String(token) => string_target(token),
        FunctionArgs::Parentheses { arguments, .. } => match arguments.iter().next() {
            Some(first) => expression_target(first),
            None => Target::Dynamic(String::new()),
        },
        other => Target::Dynamic(other.to_string().trim().to_string()),
    }
}

/// The target of `pcall(require, "x")` (`skip` = 0) or `xpcall(require, handler, "x")`
/// (`skip` = 1), or `None` if the call does not protect `require`.
fn protected_target(args: &FunctionArgs, skip: usize) -> Option<Target> {
    let FunctionArgs::Parentheses { arguments, .. } = args else {
        return None;
    };
    let mut arguments = arguments.iter();
    match arguments.next()? {
        Expression::Var(Var::Name(name)) if identifier(name) == Some("require") => {}
        _ => return None,
    }
    match arguments.nth(skip) {
        Some(name) => Some(expression_target(name)),
        None => Some(Target::Dynamic(String::new())),
    }
}

fn expression_target(expression: &Expression) -> Target {
    match constant_string(expression).map(String::from_utf8) {
        Some(Ok(name)) => Target::Name(name),
        _ => Target::Dynamic(expression.to_string().trim().to_string()),
    }
}

fn string_target(token: &TokenReference) -> Target {
    match string_literal(token).map(String::from_utf8) {
        Some(Ok(name)) => Target::Name(name),
        _ => Target::Dynamic(token.to_string().trim().to_string()),
    }
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

/// The bytes a string literal token denotes, escapes decoded as Lua does.
fn string_literal(token: &TokenReference) -> Option<Vec<u8>> {
    let TokenType::StringLiteral { literal, quote_type, .. } = token.token_type() else {
        return None;
    };
    match quote_type {
        StringLiteralQuoteType::Brackets => Some(lua_string::long_bracket_value(literal.as_str())),
        _ => lua_string::decode_escapes(literal.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(code: &str) -> Vec<(Target, Timing, bool)> {
        let ast = full_moon::parse_fallible(code, full_moon::LuaVersion::lua54()).into_ast();
        find_requires(&ast).into_iter().map(|s| (s.target, s.timing, s.optional)).collect()
    }

    fn name(n: &str) -> Target {
        Target::Name(n.to_string())
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
        "#;
        let found: Vec<Target> = sites(code).into_iter().map(|s| s.0).collect();
        assert_eq!(found, vec![name("a"), name("b"), name("c"), name("d"), name("e"), name("f"), name("g.h")]);
    }

    #[test]
    fn sites_inside_functions_are_deferred() {
        let code = "if x then require('top') end\nlocal function f() return require('inner') end\nt = { g = function() require('anon') end }";
        let timings: Vec<Timing> = sites(code).into_iter().map(|s| s.1).collect();
        assert_eq!(timings, vec![Timing::Eager, Timing::Deferred, Timing::Deferred]);
    }

    #[test]
    fn protected_requires_are_optional() {
        let found = sites("local ok, m = pcall(require, 'lfs')\nxpcall(require, print, 'socket')\npcall(print, 'x')");
        assert_eq!(found, vec![(name("lfs"), Timing::Eager, true), (name("socket"), Timing::Eager, true)]);
    }

    #[test]
    fn escapes_are_decoded_and_variables_are_dynamic() {
        let found = sites(r#"require("a\46b") require(name) require("p" .. suffix)"#);
        assert_eq!(found[0].0, name("a.b"));
        assert_eq!(found[1].0, Target::Dynamic("name".into()));
        assert_eq!(found[2].0, Target::Dynamic("\"p\" .. suffix".into()));
    }
}
