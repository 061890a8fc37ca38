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

use crate::syntax::literal;

/// When a require runs relative to the module that contains it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Timing {
    /// At the top level (including top-level `if`, `for`, `do`): runs when the module loads.
    Eager,
    /// Inside a function body: runs when (and if) the function is called.
    Deferred,
}

impl Timing {
    /// The dependency kind a bundle stores for a require of this timing.
    pub const fn dep_kind(self) -> luabundle_runtime::DepKind {
        match self {
            Timing::Eager => luabundle_runtime::DepKind::Eager,
            Timing::Deferred => luabundle_runtime::DepKind::Deferred,
        }
    }

    /// `eager` or `deferred`, spelled as everywhere else ([`luabundle_runtime::DepKind::as_str`]).
    pub const fn as_str(self) -> &'static str {
        self.dep_kind().as_str()
    }
}

/// The argument of a require call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
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
    /// A constant name holding bytes that are not UTF-8, written with Lua escapes. No module
    /// of a build can have it (module names come from UTF-8 file paths).
    NotUtf8 {
        /// The name with each byte that is not UTF-8 as a `\ddd` escape.
        escaped: String,
    },
    /// `require` itself taken as a value and passed on, stored or indexed out of a table
    /// (`({require})[1]("x")`, `t = { r = require }`): what it loads later is not known.
    Value {
        /// The expression that holds it, as written.
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

    /// The target for a constant name: [`Target::Name`] if it is UTF-8.
    fn constant(bytes: Vec<u8>) -> Target {
        match String::from_utf8(bytes) {
            Ok(name) => Target::Name(name),
            Err(err) => {
                let mut escaped = String::new();
                for chunk in err.as_bytes().utf8_chunks() {
                    escaped.push_str(chunk.valid());
                    for byte in chunk.invalid() {
                        escaped.push_str(&format!("\\{byte}"));
                    }
                }
                Target::NotUtf8 { escaped }
            }
        }
    }
}

/// When a site runs, if that depends on how another, protected require ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Guard {
    /// The module of the protected require (`socket.http` in `pcall(require, "socket.http")`),
    /// or its expression as written if its name is not constant.
    pub module: String,
    /// Byte range of the protected require.
    pub range: Range<usize>,
    /// Whether the site runs only if that require succeeded, or only if it failed.
    pub when: GuardWhen,
}

/// Which outcome of a protected require a guarded site needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GuardWhen {
    /// `local ok = pcall(require, "m")  if ok then ... end`: the site needs `m`, so it
    /// matters only where `m` exists; it is optional.
    Loaded,
    /// `if not ok then ... end`: a fallback that runs only if `m` failed to load, so it never
    /// runs when `m` is bundled.
    Failed,
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
    /// Whether the call is protected (`pcall(require, "x")`, or inside a function that only
    /// ever runs under `pcall`), so a missing module is tolerated.
    pub optional: bool,
    /// The protected require whose outcome decides whether this site runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<Guard>,
    /// For a Luau path require (`./x`, `@alias/x`), what Luau's navigator made of the path;
    /// the target is then the module the path names. Set after the cache, never stored.
    #[serde(skip)]
    pub luau_path: Option<LuauPath>,
}

/// What Luau's navigator made of a path require at build time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LuauPath {
    /// The path as written.
    pub written: String,
    /// The file it names (its path in the tree, `./src/util.luau`), or why it names none.
    pub resolved: Result<String, String>,
}

/// Every require site in `ast`, in source order. `source` is the file's bytes, which give
/// string literals their exact value (the tree may have been parsed from a UTF-8 view of
/// them, see [`crate::input::source::utf8_view`]).
pub fn find_requires(ast: &Ast, source: &[u8]) -> Vec<RequireSite> {
    let mut finder = RequireFinder::new(source);
    finder.visit_ast(ast);
    finder.finish()
}

/// What a local variable holds, as far as require analysis cares.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Binding {
    /// The global `require` itself (`local require = require`).
    RequireAlias,
    /// A top-level local whose value follows from constants and the module's name.
    Derivable,
    /// `pcall` (0) or `xpcall` (1): how many arguments come between the function it calls
    /// and that function's arguments.
    Protect(usize),
    /// A local function (`local function f` or `local f = function`), by its index.
    Function(usize),
    /// Anything else.
    Other,
}

/// How a local function is used, to tell when and how the requires in its body run.
#[derive(Default)]
struct LocalFunctionUses {
    /// Every mention of its name after its definition.
    mentions: usize,
    /// The mentions that call it: when, whether protected (`pcall(f)` or inside a
    /// protected function), and the place of the call.
    calls: Vec<(Timing, bool, SitePlace)>,
}

/// An open function body.
struct Frame {
    /// Called in place by `pcall(function() ... end)`: its body runs when the call does.
    in_place: bool,
    /// The local function it is the body of.
    local_function: Option<usize>,
}

/// Where a site sits, for the decisions taken once the whole file is seen.
#[derive(Clone, Copy)]
struct SitePlace {
    /// The local function whose body holds it, with no other function in between.
    owner: Option<usize>,
    /// Whether that function is the only thing that defers it.
    owner_defers_alone: bool,
}

/// A top-level derivable local: its defining expression and the derivable locals it uses.
#[derive(Clone, Debug)]
struct Definition {
    name: String,
    expression: String,
    uses: Vec<String>,
}

struct RequireFinder<'s> {
    /// The file's bytes.
    source: &'s [u8],
    /// Open function bodies, innermost last.
    frames: Vec<Frame>,
    /// Open function bodies that defer what they hold (all but those called in place).
    deferred_depth: usize,
    /// Open function bodies called in place under `pcall`.
    protected_depth: usize,
    /// Anonymous function bodies about to be visited that `pcall` calls in place.
    in_place: HashSet<*const ast::FunctionBody>,
    /// Function bodies about to be visited that belong to a local function.
    local_bodies: HashMap<*const ast::FunctionBody, usize>,
    local_functions: Vec<LocalFunctionUses>,
    /// Status variables of protected requires (`ok` in `local ok, m = pcall(require, "m")`),
    /// with the guard they give; `None` once assigned anything else.
    statuses: HashMap<String, Option<Guard>>,
    /// Byte ranges that run only under a guard.
    guarded: Vec<(Range<usize>, Guard)>,
    places: Vec<SitePlace>,
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
    /// Where the uses of `require` that a site or an alias accounts for start: any other use
    /// of it as a value is reported, so that nothing called as `require` goes unseen.
    explained: HashSet<usize>,
    sites: Vec<RequireSite>,
}

impl<'s> RequireFinder<'s> {
    fn new(source: &'s [u8]) -> RequireFinder<'s> {
        RequireFinder {
            source,
            frames: Vec::new(),
            deferred_depth: 0,
            protected_depth: 0,
            in_place: HashSet::new(),
            local_bodies: HashMap::new(),
            local_functions: Vec::new(),
            statuses: HashMap::new(),
            guarded: Vec::new(),
            places: Vec::new(),
            function_depth: 0,
            scopes: Vec::new(),
            pending: HashMap::new(),
            definitions: Vec::new(),
            assigned: HashSet::new(),
            computed_uses: Vec::new(),
            explained: HashSet::new(),
            sites: Vec::new(),
        }
    }

    /// The sites, with what only the whole file tells: computed names that rely on reassigned
    /// locals, local functions that run at load time or only under `pcall`, and guards.
    fn finish(mut self) -> Vec<RequireSite> {
        // A computed name that relies on a local assigned anywhere is not known after all.
        for (site, uses) in std::mem::take(&mut self.computed_uses) {
            if uses.iter().any(|name| self.assigned.contains(name)) {
                if let Target::Computed { expression, .. } = &self.sites[site].target {
                    self.sites[site].target = Target::dynamic(expression.clone());
                }
            }
        }
        let eager = self.local_functions_run_at_load_time();
        for (site, place) in self.sites.iter_mut().zip(&self.places) {
            let Some((f, uses)) = place.owner.map(|f| (f, &self.local_functions[f])) else { continue };
            // Only a function whose every mention is a call is known to run where it is called.
            if uses.calls.is_empty() || uses.calls.len() != uses.mentions {
                continue;
            }
            if place.owner_defers_alone && eager[f] {
                site.timing = Timing::Eager;
            }
            if uses.calls.iter().all(|&(_, protected, _)| protected) {
                site.optional = true;
            }
        }
        for site in &mut self.sites {
            // The innermost guard is the last one recorded that holds the site.
            let guard = self
                .guarded
                .iter()
                .rev()
                .find(|(range, _)| range.start <= site.range.start && site.range.end <= range.end);
            if let Some((_, guard)) = guard {
                site.optional |= guard.when == GuardWhen::Loaded;
                site.guard = Some(guard.clone());
            }
        }
        self.sites.sort_by_key(|s| s.range.start);
        self.sites
    }

    /// Which local functions run while the module loads: those called at load time, and
    /// those called from the body of one that does (`local function outer() inner() end
    /// outer()`), however deep. A function mentioned other than by calls is not followed.
    fn local_functions_run_at_load_time(&self) -> Vec<bool> {
        let known = |uses: &LocalFunctionUses| !uses.calls.is_empty() && uses.calls.len() == uses.mentions;
        let mut eager: Vec<bool> = self
            .local_functions
            .iter()
            .map(|uses| known(uses) && uses.calls.iter().any(|&(timing, _, _)| timing == Timing::Eager))
            .collect();
        // Each round settles at least one more function, or nothing changes.
        loop {
            let mut changed = false;
            for (f, uses) in self.local_functions.iter().enumerate() {
                if eager[f] || !known(uses) {
                    continue;
                }
                let through_caller = uses.calls.iter().any(|&(_, _, place)| {
                    place.owner_defers_alone && place.owner.is_some_and(|caller| caller != f && eager[caller])
                });
                if through_caller {
                    eager[f] = true;
                    changed = true;
                }
            }
            if !changed {
                return eager;
            }
        }
    }

    /// Where a site or call here sits: the local function whose body holds it, if any.
    fn place(&self) -> SitePlace {
        let owner = self.frames.iter().rposition(|frame| !frame.in_place);
        SitePlace {
            owner: owner.and_then(|i| self.frames[i].local_function),
            owner_defers_alone: self.deferred_depth == 1,
        }
    }

    fn timing(&self) -> Timing {
        if self.deferred_depth == 0 {
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
        let Some(name) = identifier(token) else { return false };
        match self.resolve(name) {
            None => name == "require",
            Some((binding, _)) => *binding == Binding::RequireAlias,
        }
    }

    /// The field `prefix` names when it is `_G.field` or `_ENV.field` (the real environment,
    /// not a local of that name), and the suffixes after it.
    /// `_G["require"]` counts as `_G.require`.
    fn environment_field<'a>(
        &self,
        prefix: &Prefix,
        suffixes: &'a [&'a Suffix],
    ) -> Option<(std::borrow::Cow<'a, str>, &'a [&'a Suffix])> {
        let Prefix::Name(name) = prefix else { return None };
        let environment = matches!(identifier(name), Some("_G" | "_ENV")) && self.is_global(identifier(name)?);
        if !environment {
            return None;
        }
        match suffixes.first() {
            Some(Suffix::Index(ast::Index::Dot { name: field, .. })) => {
                Some((identifier(field)?.into(), &suffixes[1..]))
            }
            Some(Suffix::Index(ast::Index::Brackets { expression, .. })) => {
                let field = String::from_utf8(self.constant_string(expression)?).ok()?;
                Some((field.into(), &suffixes[1..]))
            }
            _ => None,
        }
    }

    /// Whether `prefix suffixes` (before any call) is `require`, `_G.require` or
    /// `_ENV.require`; returns the suffixes after it.
    /// `(require)` in parentheses is `require` too.
    fn require_callee<'a>(&self, prefix: &Prefix, suffixes: &'a [&'a Suffix]) -> Option<&'a [&'a Suffix]> {
        match prefix {
            Prefix::Name(name) if self.names_require(name) => return Some(suffixes),
            Prefix::Expression(expression) => {
                if let Expression::Parentheses { expression, .. } = expression.as_ref() {
                    if self.is_require_value(expression) {
                        return Some(suffixes);
                    }
                }
            }
            _ => {}
        }
        match self.environment_field(prefix, suffixes) {
            Some((field, rest)) if field == "require" => Some(rest),
            _ => None,
        }
    }

    /// Notes that the use of `require` at the start of `node` is accounted for (and, for
    /// `(require)`, the one inside the parentheses).
    fn explain(&mut self, node: &impl Node) {
        let start = span(node).start;
        self.explained.insert(start);
        // `(require)`: the name starts one byte (or some blanks) later.
        if self.source.get(start) == Some(&b'(') {
            let inner = self.source[start + 1..].iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.explained.insert(start + 1 + inner);
        }
    }

    /// Whether `prefix suffixes` calls `pcall` or `xpcall` (global, through `_G`/`_ENV`, or a
    /// local alias): how many arguments it takes before the called function's own, and the
    /// arguments of the call.
    fn protected_call<'a>(&self, prefix: &Prefix, suffixes: &'a [&'a Suffix]) -> Option<(usize, &'a FunctionArgs)> {
        let protect = |name: &str| match name {
            "pcall" => Some(0),
            "xpcall" => Some(1),
            _ => None,
        };
        let (skip, rest) = match (prefix, self.environment_field(prefix, suffixes)) {
            (_, Some((field, rest))) => (protect(&field)?, rest),
            (Prefix::Name(name), None) => match self.resolve(identifier(name)?) {
                None => (protect(identifier(name)?)?, suffixes),
                Some((Binding::Protect(skip), _)) => (*skip, suffixes),
                Some(_) => return None,
            },
            _ => return None,
        };
        match rest.first() {
            Some(Suffix::Call(ast::Call::AnonymousCall(args))) => Some((skip, args)),
            _ => None,
        }
    }

    /// What `expression` holds when it is `pcall`, `xpcall` or an alias of them.
    fn protect_value(&self, expression: &Expression) -> Option<usize> {
        let name = match expression {
            Expression::Var(Var::Name(name)) => identifier(name)?,
            Expression::Var(Var::Expression(var)) => {
                let suffixes: Vec<&Suffix> = var.suffixes().collect();
                match self.environment_field(var.prefix(), &suffixes) {
                    Some((field, [])) => return self.protect_value_named(&field, true),
                    _ => return None,
                }
            }
            _ => return None,
        };
        self.protect_value_named(name, false)
    }

    fn protect_value_named(&self, name: &str, field: bool) -> Option<usize> {
        let global = match name {
            "pcall" => Some(0),
            "xpcall" => Some(1),
            _ => None,
        };
        if field {
            return global;
        }
        match self.resolve(name) {
            None => global,
            Some((Binding::Protect(skip), _)) => Some(*skip),
            Some(_) => None,
        }
    }

    /// The local function a name refers to, if it does.
    fn local_function(&self, token: &TokenReference) -> Option<usize> {
        match self.resolve(identifier(token)?) {
            Some((Binding::Function(id), _)) => Some(*id),
            _ => None,
        }
    }

    /// The guard a protected require gives when `expression` is one
    /// (`pcall(require, "m")`), for the status variable it is assigned to.
    fn status_guard(&self, expression: &Expression) -> Option<Guard> {
        let Expression::FunctionCall(call) = expression else { return None };
        let suffixes: Vec<&Suffix> = call.suffixes().collect();
        if suffixes.len() != 1 {
            return None;
        }
        let (skip, args) = self.protected_call(call.prefix(), &suffixes)?;
        let FunctionArgs::Parentheses { arguments, .. } = args else { return None };
        let mut arguments = arguments.iter();
        if !arguments.next().is_some_and(|first| self.is_require_value(first)) {
            return None;
        }
        let module = match self.constant_string(arguments.nth(skip)?).map(Target::constant) {
            Some(Target::Name(name)) => name,
            _ => return None,
        };
        Some(Guard { module, range: span(call), when: GuardWhen::Loaded })
    }

    /// Whether `expression` is the real `require` as a value (`pcall(require, ...)`).
    fn is_require_value(&self, expression: &Expression) -> bool {
        match expression {
            Expression::Var(Var::Name(name)) => self.names_require(name),
            Expression::Var(Var::Expression(var)) => {
                let suffixes: Vec<&Suffix> = var.suffixes().collect();
                self.require_callee(var.prefix(), &suffixes).is_some_and(<[_]>::is_empty)
            }
            Expression::Parentheses { expression, .. } => self.is_require_value(expression),
            _ => false,
        }
    }

    /// Handles `prefix suffix...` chains: `require(...)`, `require "x" .f`, `pcall(require, "x")`.
    fn chain(&mut self, prefix: &Prefix, suffixes: &[&Suffix]) {
        let start = span(prefix).start;
        if let Some(rest) = self.require_callee(prefix, suffixes) {
            if let Some(Suffix::Call(ast::Call::AnonymousCall(args))) = rest.first() {
                self.explain(prefix);
                let target = self.require_target(args);
                self.push_site(target, start..span(args.as_ref()).end, false);
            }
            return;
        }
        if let Prefix::Name(name) = prefix {
            if let Some(id) = self.local_function(name) {
                self.local_functions[id].mentions += 1;
                if let Some(Suffix::Call(ast::Call::AnonymousCall(_))) = suffixes.first() {
                    let call = (self.timing(), self.protected_depth > 0, self.place());
                    self.local_functions[id].calls.push(call);
                }
                return;
            }
        }
        let Some((skip, args)) = self.protected_call(prefix, suffixes) else { return };
        let FunctionArgs::Parentheses { arguments, .. } = args else { return };
        let mut arguments = arguments.iter();
        match arguments.next() {
            Some(first) if self.is_require_value(first) => {
                self.explain(first);
                let target = match arguments.nth(skip) {
                    Some(name) => self.expression_target(name),
                    None => (Target::dynamic(String::new()), Vec::new()),
                };
                self.push_site(target, start..span(args).end, true);
            }
            // `pcall(function() ... end)`: the body runs now, protected.
            Some(Expression::Function(function)) => {
                self.in_place.insert(function.body() as *const ast::FunctionBody);
            }
            // `pcall(f)` of a local function: a protected call of it (the mention itself is
            // counted when the visitor reaches the argument).
            Some(Expression::Var(Var::Name(name))) => {
                if let Some(id) = self.local_function(name) {
                    let call = (self.timing(), true, self.place());
                    self.local_functions[id].calls.push(call);
                }
            }
            _ => {}
        }
    }

    fn push_site(&mut self, target: (Target, Vec<String>), range: Range<usize>, optional: bool) {
        let (target, uses) = target;
        if matches!(target, Target::Computed { .. }) {
            self.computed_uses.push((self.sites.len(), uses));
        }
        let place = self.place();
        self.places.push(place);
        let optional = optional || self.protected_depth > 0;
        self.sites.push(RequireSite { target, range, timing: self.timing(), optional, guard: None, luau_path: None });
    }

    /// The target of `require <args>`.
    fn require_target(&self, args: &FunctionArgs) -> (Target, Vec<String>) {
        match args {
            FunctionArgs::String(token) => match self.string_literal(token) {
                Some(name) => (Target::constant(name), Vec::new()),
                None => (Target::dynamic(written(token)), Vec::new()),
            },
            FunctionArgs::Parentheses { arguments, .. } => match arguments.iter().next() {
                Some(first) => self.expression_target(first),
                None => (Target::dynamic(String::new()), Vec::new()),
            },
            other => (Target::dynamic(written(other)), Vec::new()),
        }
    }

    fn expression_target(&self, expression: &Expression) -> (Target, Vec<String>) {
        if let Some(name) = self.constant_string(expression) {
            return (Target::constant(name), Vec::new());
        }
        let Some(used) = self.derivable(expression).filter(|_| self.is_utf8(span(expression))) else {
            let prefix = String::from_utf8(self.constant_prefix(expression)).unwrap_or_default();
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

    /// Whether the file's bytes in `range` are UTF-8 (the tree shows them as they are).
    fn is_utf8(&self, range: Range<usize>) -> bool {
        self.source.get(range).is_some_and(|bytes| std::str::from_utf8(bytes).is_ok())
    }

    /// The value of a constant string expression: a literal, a parenthesised one, or a `..`
    /// concatenation of such.
    fn constant_string(&self, expression: &Expression) -> Option<Vec<u8>> {
        match expression {
            Expression::String(token) => self.string_literal(token),
            Expression::Parentheses { expression, .. } => self.constant_string(expression),
            Expression::BinaryOperator { lhs, binop: ast::BinOp::TwoDots(_), rhs } => {
                let mut value = self.constant_string(lhs)?;
                value.extend(self.constant_string(rhs)?);
                Some(value)
            }
            _ => None,
        }
    }

    /// The constant bytes every value of `expression` starts with.
    fn constant_prefix(&self, expression: &Expression) -> Vec<u8> {
        match expression {
            Expression::Parentheses { expression, .. } => self.constant_prefix(expression),
            Expression::BinaryOperator { lhs, binop: ast::BinOp::TwoDots(_), rhs } => match self.constant_string(lhs) {
                Some(mut head) => {
                    head.extend(self.constant_prefix(rhs));
                    head
                }
                None => self.constant_prefix(lhs),
            },
            _ => Vec::new(),
        }
    }

    /// The bytes a string literal token denotes, escapes decoded as Lua does, read from the
    /// file's own bytes at the token's place.
    fn string_literal(&self, token: &TokenReference) -> Option<Vec<u8>> {
        let TokenType::StringLiteral { literal, quote_type, multi_line_depth } = token.token_type() else {
            return None;
        };
        let open = match quote_type {
            StringLiteralQuoteType::Brackets => multi_line_depth + 2,
            _ => 1,
        };
        let start = token.token().start_position().bytes() + open;
        let raw = self.source.get(start..start + literal.len())?;
        match quote_type {
            StringLiteralQuoteType::Brackets => Some(literal::long_bracket_value(raw)),
            _ => literal::decode_escapes(raw),
        }
    }

    fn new_local_function(&mut self, body: &ast::FunctionBody) -> usize {
        let id = self.local_functions.len();
        self.local_functions.push(LocalFunctionUses::default());
        self.local_bodies.insert(body as *const ast::FunctionBody, id);
        id
    }

    /// Records `names = expressions`: a name that receives the status of a protected require
    /// becomes a status variable, and any other value ends a name's being one.
    fn record_statuses(&mut self, names: &[&str], expressions: &[&Expression]) {
        for (i, name) in names.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            let guard = expressions.get(i).and_then(|e| self.status_guard(e));
            match guard {
                Some(guard) => {
                    self.statuses.insert(name.to_string(), Some(guard));
                }
                None => self.forget_status(name),
            }
        }
    }

    fn forget_status(&mut self, name: &str) {
        if let Some(status) = self.statuses.get_mut(name) {
            *status = None;
        }
    }

    /// The guard of an `if` condition that is a status variable (`ok`) or its negation
    /// (`not ok`), and whether it is negated.
    fn condition_guard(&self, condition: &Expression) -> Option<(Guard, bool)> {
        match condition {
            Expression::Var(Var::Name(name)) => Some((self.statuses.get(identifier(name)?)?.clone()?, false)),
            Expression::Parentheses { expression, .. } => self.condition_guard(expression),
            Expression::UnaryOperator { unop: ast::UnOp::Not(_), expression } => {
                self.condition_guard(expression).map(|(guard, negated)| (guard, !negated))
            }
            _ => None,
        }
    }

    fn declare(&mut self, name: &TokenReference, binding: Binding) {
        if let (Some(name), Some(scope)) = (identifier(name), self.scopes.last_mut()) {
            scope.push((name.to_string(), binding));
        }
    }
}

impl Visitor for RequireFinder<'_> {
    fn visit_block(&mut self, block: &Block) {
        let declared = self.pending.remove(&(block as *const Block)).unwrap_or_default();
        self.scopes.push(declared);
    }

    fn visit_block_end(&mut self, _: &Block) {
        self.scopes.pop();
    }

    fn visit_function_body(&mut self, body: &ast::FunctionBody) {
        self.function_depth += 1;
        let key = body as *const ast::FunctionBody;
        let frame =
            Frame { in_place: self.in_place.remove(&key), local_function: self.local_bodies.get(&key).copied() };
        if frame.in_place {
            self.protected_depth += 1;
        } else {
            self.deferred_depth += 1;
        }
        self.frames.push(frame);
        let parameters: Vec<(String, Binding)> = body
            .parameters()
            .iter()
            .filter_map(|p| match p {
                ast::Parameter::Name(name) => identifier(name).map(|n| (n.to_string(), Binding::Other)),
                _ => None,
            })
            .collect();
        for (name, _) in &parameters {
            self.forget_status(name);
        }
        self.pending.insert(body.block() as *const Block, parameters);
    }

    fn visit_function_body_end(&mut self, _: &ast::FunctionBody) {
        self.function_depth -= 1;
        match self.frames.pop() {
            Some(Frame { in_place: true, .. }) => self.protected_depth -= 1,
            _ => self.deferred_depth -= 1,
        }
    }

    fn visit_local_function(&mut self, function: &ast::LocalFunction) {
        let id = self.new_local_function(function.body());
        // In scope inside its own body, for recursion.
        self.declare(function.name(), Binding::Function(id));
    }

    fn visit_local_assignment(&mut self, local: &ast::LocalAssignment) {
        // `local r = require`: an alias, whose calls are sites of their own.
        let aliases: Vec<&Expression> = local.expressions().iter().filter(|e| self.is_require_value(e)).collect();
        for alias in aliases {
            self.explain(alias);
        }
        // `local f = function() ... end` is a local function too; its body is visited next.
        if local.expressions().len() == local.names().len() {
            for expression in local.expressions() {
                if let Expression::Function(function) = expression {
                    self.new_local_function(function.body());
                }
            }
        }
    }

    fn visit_expression(&mut self, expression: &Expression) {
        if let Expression::Var(Var::Name(name)) = expression {
            if let Some(id) = self.local_function(name) {
                self.local_functions[id].mentions += 1;
            }
        }
        // Any other use of `require` as a value: reported, since what it loads is unseen.
        if matches!(expression, Expression::Var(_)) && self.is_require_value(expression) {
            let range = span(expression);
            if !self.explained.contains(&range.start) {
                self.explained.insert(range.start);
                self.push_site((Target::Value { expression: written(expression) }, Vec::new()), range, false);
            }
        }
    }

    fn visit_if(&mut self, node: &ast::If) {
        let Some((guard, negated)) = self.condition_guard(node.condition()) else { return };
        let position = |token: &TokenReference, end: bool| {
            let token = token.token();
            if end {
                token.end_position().bytes()
            } else {
                token.start_position().bytes()
            }
        };
        let then_start = position(node.then_token(), true);
        let rest_start = match (node.else_if().and_then(|list| list.first()), node.else_token()) {
            (Some(else_if), _) => position(else_if.else_if_token(), false),
            (None, Some(else_token)) => position(else_token, false),
            (None, None) => position(node.end_token(), false),
        };
        let end = position(node.end_token(), false);
        let (then_when, rest_when) =
            if negated { (GuardWhen::Failed, GuardWhen::Loaded) } else { (GuardWhen::Loaded, GuardWhen::Failed) };
        self.guarded.push((then_start..rest_start, Guard { when: then_when, ..guard.clone() }));
        if rest_start < end {
            self.guarded.push((rest_start..end, Guard { when: rest_when, ..guard }));
        }
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
                Some(value) if self.protect_value(value).is_some() => {
                    Binding::Protect(self.protect_value(value).unwrap_or_default())
                }
                Some(Expression::Function(function)) => {
                    match self.local_bodies.get(&(function.body() as *const ast::FunctionBody)) {
                        Some(&id) => Binding::Function(id),
                        None => Binding::Other,
                    }
                }
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
        let names: Vec<&str> = local.names().iter().filter_map(identifier).collect();
        self.record_statuses(&names, &expressions);
    }

    fn visit_numeric_for(&mut self, numeric: &ast::NumericFor) {
        if let Some(name) = identifier(numeric.index_variable()) {
            self.forget_status(name);
        }
        let variable = identifier(numeric.index_variable()).map(|n| (n.to_string(), Binding::Other));
        self.pending.insert(numeric.block() as *const Block, variable.into_iter().collect());
    }

    fn visit_generic_for(&mut self, generic: &ast::GenericFor) {
        for name in generic.names().iter().filter_map(identifier) {
            self.forget_status(name);
        }
        let names = generic.names().iter().filter_map(|n| identifier(n).map(|n| (n.to_string(), Binding::Other)));
        self.pending.insert(generic.block() as *const Block, names.collect());
    }

    fn visit_assignment(&mut self, assignment: &ast::Assignment) {
        let mut names = Vec::new();
        for variable in assignment.variables() {
            match variable {
                Var::Name(name) => {
                    if let Some(name) = identifier(name) {
                        self.assigned.insert(name.to_string());
                        names.push(name);
                    }
                }
                _ => names.push(""),
            }
        }
        let expressions: Vec<&Expression> = assignment.expressions().iter().collect();
        self.record_statuses(&names, &expressions);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sites(code: &str) -> Vec<RequireSite> {
        let ast = full_moon::parse_fallible(code, crate::flavour::syntax()).into_ast();
        find_requires(&ast, code.as_bytes())
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

    fn summary(code: &str) -> Vec<(Target, Timing, bool)> {
        sites(code).into_iter().map(|s| (s.target, s.timing, s.optional)).collect()
    }

    #[test]
    fn every_wrapper_of_require_is_seen_with_its_timing() {
        use Timing::{Deferred, Eager};
        let code = r#"
            local a = _G.pcall(_G.require, "a")
            local b = _ENV.pcall(require, "b")
            local c = select(2, pcall(require, "c"))
            local d = xpcall(require, debug.traceback, "d")
            local ok_e = pcall(function() return require "e" end)
            local function load_f() return require "f" end
            local ok_f = pcall(load_f)
            local g = package.loaded["g"] or require "g"
            local t = { h = require "h", [1] = require("i") }
            print(require "j", tostring(require "k"))
            local function never_called() return require "l" end
            local function called() return require "m" end
            called()
            local function later() return require "n" end
            return { later = later }
        "#;
        assert_eq!(
            summary(code),
            [
                (name("a"), Eager, true),
                (name("b"), Eager, true),
                (name("c"), Eager, true),
                (name("d"), Eager, true),
                (name("e"), Eager, true),
                (name("f"), Eager, true),
                (name("g"), Eager, false),
                (name("h"), Eager, false),
                (name("i"), Eager, false),
                (name("j"), Eager, false),
                (name("k"), Eager, false),
                (name("l"), Deferred, false),
                (name("m"), Eager, false),
                // Escapes into a table: called who knows when.
                (name("n"), Deferred, false),
            ]
        );
    }

    #[test]
    fn local_aliases_of_require_and_pcall_are_followed() {
        use Timing::{Deferred, Eager};
        let code = r#"
            local pcall, require = pcall, require
            local r = require; r "a"
            local p = _G.pcall
            p(require, "b")
            local ok = pcall(require, "c")
            local function f() return pcall(function() return r "d" end) end
            local not_pcall = print
            not_pcall(require, "e")
        "#;
        assert_eq!(
            summary(code),
            [
                (name("a"), Eager, false),
                (name("b"), Eager, true),
                (name("c"), Eager, true),
                (name("d"), Deferred, true),
                // Handed to a function that is not `pcall`: whatever it does with it is unseen.
                (Target::Value { expression: "require".into() }, Eager, false),
            ]
        );
    }

    #[test]
    fn every_use_of_require_is_a_site_or_reported() {
        let code = r#"
            local a = (require)("a")
            local b = _G["require"]("b")
            local alias = require
            local c = (alias)("c")
            local d = _ENV["require"]("d")
            local e = ({require})[1]("e")
            local t = { r = require }
        "#;
        assert_eq!(
            targets(code),
            [
                name("a"),
                name("b"),
                name("c"),
                name("d"),
                Target::Value { expression: "require".into() },
                Target::Value { expression: "require".into() },
            ]
        );
    }

    #[test]
    fn requires_guarded_by_an_optional_require_know_their_guard() {
        let code = r#"
            local socket_ok, http
            if cfg then socket_ok, http = pcall(require, "socket.http") end
            if socket_ok then
                local ltn12 = require("ltn12")
            else
                local fallback = require("plain")
            end
            local status, lb = pcall(require, "pl.luabalanced")
            if not status then lb = require 'luabalanced' end
            local ok = pcall(require, "x")
            ok = true
            if ok then require "unguarded" end
        "#;
        let found = sites(code);
        type Row = (String, Option<(String, GuardWhen)>, bool);
        let guards: Vec<Row> = found
            .iter()
            .map(|s| {
                let Target::Name(n) = &s.target else { panic!() };
                (n.clone(), s.guard.as_ref().map(|g| (g.module.clone(), g.when)), s.optional)
            })
            .collect();
        let g = |m: &str, w| Some((m.to_string(), w));
        assert_eq!(
            guards,
            [
                ("socket.http".into(), None, true),
                ("ltn12".into(), g("socket.http", GuardWhen::Loaded), true),
                ("plain".into(), g("socket.http", GuardWhen::Failed), false),
                ("pl.luabalanced".into(), None, true),
                ("luabalanced".into(), g("pl.luabalanced", GuardWhen::Failed), false),
                ("x".into(), None, true),
                ("unguarded".into(), None, false),
            ]
        );
        let guard = found[1].guard.as_ref().unwrap();
        assert_eq!(&code[guard.range.clone()], "pcall(require, \"socket.http\")");
    }

    #[test]
    fn literal_values_come_from_the_file_bytes() {
        // The tree is parsed from the UTF-8 view; the names from the bytes themselves.
        let bytes = b"local a = require 'caf\xe9'\nlocal b = require '\xc3\xa9t\xc3\xa9' -- \xff\n".to_vec();
        let view = crate::input::source::utf8_view(&bytes);
        let ast = full_moon::parse_fallible(&view, crate::flavour::syntax()).into_ast();
        let targets: Vec<Target> = find_requires(&ast, &bytes).into_iter().map(|s| s.target).collect();
        assert_eq!(targets, [Target::NotUtf8 { escaped: "caf\\233".into() }, name("\u{e9}t\u{e9}")]);
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
