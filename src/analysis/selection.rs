//! What the options select from the modules found: the entry, the profiles (one alone with
//! `--profile`), and the groups, each checked against the modules of the build.

use crate::analysis::graph::{self, ModuleGraph};
use crate::analysis::name_patterns::NamePatterns;
use crate::diagnostic::{Code, Diagnostic};
use crate::error::Error;
use crate::input::discover::Discovered;
use crate::plan::Options;

/// The entry and profiles as positions in the module list.
pub(crate) struct Selection {
    pub entry: Option<usize>,
    /// Each profile with its members (not yet their require closures).
    pub profiles: Vec<(String, Vec<usize>)>,
}

/// The entry and profiles the options name; a name that is not a module is an error
/// diagnostic, a `--profile` that names no profile an error.
pub(crate) fn select(
    options: &Options,
    discovered: &Discovered,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<Selection, Error> {
    let entry = find_entry(options, discovered, diagnostics);
    let mut profiles = find_profiles(options, discovered, diagnostics);
    // With `--profile NAME`, that profile alone decides what is bundled.
    if let Some(only) = &options.only_profile {
        if !profiles.iter().any(|(name, _)| name == only) {
            let known: Vec<&str> = profiles.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::Usage(format!("no profile named `{only}` (profiles: {})", known.join(", "))));
        }
        profiles.retain(|(name, _)| name == only);
    }
    Ok(Selection { entry, profiles })
}

/// The entry, if the bundle holds it: with `--profile`, an entry outside the profile is
/// dropped with a warning.
pub(crate) fn entry_in_bundle(
    options: &Options,
    discovered: &Discovered,
    graph: &ModuleGraph,
    entry: Option<usize>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<usize> {
    entry.filter(|&e| {
        let outside = !graph.bundled[e];
        if outside {
            let only = options.only_profile.as_deref().unwrap_or_default();
            diagnostics.push(Diagnostic::warning(
                Code::EntryOutsideProfile,
                format!("entry `{}` is not in profile `{only}`; the bundle has no entry", discovered.modules[e].name),
            ));
        }
        !outside
    })
}

fn find_entry(options: &Options, discovered: &Discovered, diagnostics: &mut Vec<Diagnostic>) -> Option<usize> {
    let name = options.entry.as_deref()?;
    let found = position(discovered, name);
    if found.is_none() {
        let mut d = Diagnostic::error(Code::UnknownEntry, format!("entry module `{name}` is not in any root"))
            .with_note(format!("{} modules were found", discovered.modules.len()));
        if let Some(close) = graph::closest_name(name, &discovered.modules) {
            d = d.with_note(format!("did you mean `{close}`?"));
        }
        diagnostics.push(d);
    }
    found
}

fn find_profiles(
    options: &Options,
    discovered: &Discovered,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(String, Vec<usize>)> {
    let mut profiles = Vec::new();
    for (name, modules) in &options.profiles {
        let mut members = Vec::new();
        for module in modules {
            match position(discovered, module) {
                Some(found) => members.push(found),
                None => {
                    let mut d = Diagnostic::error(
                        Code::UnknownProfileModule,
                        format!("profile `{name}` names module `{module}`, which is not in any root"),
                    );
                    if let Some(close) = graph::closest_name(module, &discovered.modules) {
                        d = d.with_note(format!("did you mean `{close}`?"));
                    }
                    diagnostics.push(d);
                }
            }
        }
        profiles.push((name.clone(), members));
    }
    profiles
}

/// Groups must not shadow a module and must give each member its own field.
pub(crate) fn check_groups(options: &Options, externals: &NamePatterns, discovered: &Discovered) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for (name, members) in &options.groups {
        if position(discovered, name).is_some() {
            problems
                .push(Diagnostic::error(Code::GroupShadowsModule, format!("group `{name}` has the name of a module")));
        }
        for member in members {
            let external = || externals.matches(member);
            if position(discovered, member).is_none() && !external() {
                problems.push(
                    Diagnostic::error(
                        Code::GroupMemberMissing,
                        format!("group `{name}`: member `{member}` is not a module of this build"),
                    )
                    .with_note(match graph::closest_name(member, &discovered.modules) {
                        Some(close) => format!("did you mean `{close}`? (requiring the group would fail when it loads the member)"),
                        None => "requiring the group would fail when it loads the member; declare it with --external if the host provides it".to_string(),
                    }),
                );
            }
        }
        let mut fields = std::collections::BTreeMap::new();
        for member in members {
            let field = member.rsplit('.').next().unwrap_or(member);
            if let Some(other) = fields.insert(field, member) {
                problems.push(Diagnostic::error(
                    Code::GroupFieldConflict,
                    format!("group `{name}`: members `{other}` and `{member}` both become field `{field}`"),
                ));
            }
        }
    }
    problems
}

pub(crate) fn position(discovered: &Discovered, name: &str) -> Option<usize> {
    discovered.modules.binary_search_by(|m| m.name.as_str().cmp(name)).ok()
}
