//! The registry of diagnostic codes: every code a diagnostic can carry, each with the
//! stable name that `--json` prints and `docs/GRAPH.md` explains (a test holds the two
//! lists equal).

/// Declares [`Code`] with its names, in the order `docs/GRAPH.md` lists them.
macro_rules! codes {
    ($($variant:ident => $name:literal,)*) => {
        /// A diagnostic's stable code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Code {
            /// Every code, in the order of the documentation's table.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code's stable name, e.g. `parse-error`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    ParseError => "parse-error",
    NestingTooDeep => "nesting-too-deep",
    CompileError => "compile-error",
    IoError => "io-error",
    FileTooLarge => "file-too-large",
    BytecodeFile => "bytecode-file",
    FileChangedDuringBuild => "file-changed-during-build",
    OutputIsInput => "output-is-input",
    GroupMemberMissing => "group-member-missing",
    GroupShadowsModule => "group-shadows-module",
    GroupFieldConflict => "group-field-conflict",
    UnknownProfileModule => "unknown-profile-module",
    EntryOutsideProfile => "entry-outside-profile",
    NotAFile => "not-a-file",
    LinkNotFollowed => "link-not-followed",
    DuplicateModule => "duplicate-module",
    UnresolvedRequire => "unresolved-require",
    RequireCycle => "require-cycle",
    UnknownEntry => "unknown-entry",
    ShadowedModule => "shadowed-module",
    CaseConflict => "case-conflict",
    DynamicRequire => "dynamic-require",
    UnreachableFile => "unreachable-file",
    UnrequirableFile => "unrequirable-file",
    LuauConfig => "luau-config",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documentation_lists_every_code_in_order() {
        let doc = include_str!("../../docs/GRAPH.md");
        let table = &doc[doc.find("## Diagnostic codes").expect("the section")..];
        // The rows after the header's `|---|` line, up to the blank line that ends the table.
        let listed: Vec<&str> = table
            .lines()
            .skip_while(|line| !line.starts_with("|---"))
            .skip(1)
            .take_while(|line| line.starts_with('|'))
            .map(|line| line.trim_start_matches("| `").split('`').next().unwrap_or_default())
            .collect();
        let registered: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, registered, "docs/GRAPH.md's table and the registry differ");
    }
}
