//! Module-name patterns (`--include`, `--external`): a dotted name with `*` for any run of
//! characters, matched through `globset` (linear in the name, whatever the pattern).

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::Error;

/// A list of module-name patterns, checked and compiled once.
#[derive(Clone, Debug, Default)]
pub struct NamePatterns {
    patterns: Vec<String>,
    set: GlobSet,
}

impl NamePatterns {
    /// Compiles `patterns`, given with `flag` (for messages).
    ///
    /// # Errors
    /// [`Error::Usage`] for an empty pattern or one with glob syntax other than `*`, which
    /// would silently match nothing in a module name.
    pub fn new(flag: &str, patterns: &[String]) -> Result<NamePatterns, Error> {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            check(flag, pattern)?;
            let glob = GlobBuilder::new(pattern)
                .build()
                .map_err(|e| Error::Usage(format!("invalid {flag} pattern {pattern:?}: {e}")))?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| Error::Usage(format!("invalid {flag} patterns: {e}")))?;
        Ok(NamePatterns { patterns: patterns.to_vec(), set })
    }

    /// Whether any pattern matches the module name `name`.
    pub fn matches(&self, name: &str) -> bool {
        !self.patterns.is_empty() && self.set.is_match(name)
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// A module-name pattern is a name with `*` for any run of characters; other glob syntax is
/// refused.
fn check(flag: &str, pattern: &str) -> Result<(), Error> {
    let bad = pattern.chars().find(|c| matches!(c, '[' | ']' | '{' | '}' | '?' | '!' | '\\' | '/' | '\0'));
    match (pattern.trim().is_empty(), bad) {
        (true, _) => Err(Error::Usage(format!("invalid {flag} pattern {pattern:?}: it is empty"))),
        (false, Some(c)) => Err(Error::Usage(format!(
            "invalid {flag} pattern {pattern:?}: `{c}` has no meaning in a module name pattern, which is a dotted name with `*` for any run of characters (e.g. 'plugins.*')"
        ))),
        (false, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        NamePatterns::new("--include", &[pattern.to_string()]).unwrap().matches(name)
    }

    #[test]
    fn a_star_matches_any_run_of_characters_and_nothing_else_is_special() {
        assert!(matches("lfs", "lfs"));
        assert!(!matches("lfs", "lfs2"));
        assert!(matches("socket.*", "socket.http"));
        assert!(matches("socket.*", "socket.http.headers"));
        assert!(!matches("socket.*", "socket"));
        assert!(!matches("socket.*", "socketxhttp"), "a dot is a dot");
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(matches("pl-*", "pl-utils"));
        assert!(!NamePatterns::default().matches("x"));
    }

    #[test]
    fn a_pattern_of_many_stars_stays_linear() {
        // Backtracking would take about 40^12 steps here.
        let pattern = "*a".repeat(12) + "b";
        assert!(!matches(&pattern, &"a".repeat(40)));
    }

    #[test]
    fn other_glob_syntax_is_refused_with_the_flag() {
        for bad in ["plugins.?", "a[bc]", "{a,b}", "a/b", " "] {
            let err = NamePatterns::new("--external", &[bad.to_string()]).unwrap_err().to_string();
            assert!(err.contains("--external"), "{err}");
        }
    }
}
