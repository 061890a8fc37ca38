//! What an installation serves now: the bundle, which of its modules the profile lets
//! `require` find, and their names. A reload replaces it whole, so every loader reads the
//! bundle through this cell and never keeps one of its own.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock, RwLock};

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::names::is_path_name;

/// Which modules of the bundle an installation makes requirable.
pub(crate) struct Visibility {
    pub(crate) profile: Option<String>,
    /// The profile's members, sorted; `None` for the whole bundle.
    members: Option<Vec<u32>>,
}

impl Visibility {
    /// The modules of profile `profile` of `bundle`, or every module without one.
    pub(crate) fn of(bundle: &Bundle, profile: Option<&str>) -> Result<Visibility> {
        let Some(name) = profile else { return Ok(Visibility { profile: None, members: None }) };
        let profiles = bundle.profiles()?;
        let Some(found) = profiles.iter().find(|p| p.name == name) else {
            return Err(Error::UnknownProfile {
                bundle: bundle.label().to_string(),
                profile: name.to_string(),
                known: profiles.iter().map(|p| p.name.clone()).collect(),
            });
        };
        let mut members = found.members.clone();
        members.sort_unstable();
        Ok(Visibility { profile: Some(name.to_string()), members: Some(members) })
    }

    pub(crate) fn allows(&self, position: usize) -> bool {
        self.members.as_ref().is_none_or(|m| m.binary_search(&(position as u32)).is_ok())
    }
}

/// One bundle as an installation serves it.
pub(crate) struct Live {
    pub(crate) bundle: Bundle,
    pub(crate) visibility: Visibility,
    /// Every requirable name, listed on first use (it costs as much as the bundle is large).
    names: OnceLock<Vec<String>>,
}

impl Live {
    pub(crate) fn new(bundle: Bundle, visibility: Visibility) -> Live {
        Live { bundle, visibility, names: OnceLock::new() }
    }

    /// The names `require` finds: bundled modules in the profile, groups, and `natives`,
    /// sorted. Reads the whole index on first use.
    pub(crate) fn names<'a>(&self, natives: impl Iterator<Item = &'a String>) -> Result<&[String]> {
        if let Some(names) = self.names.get() {
            return Ok(names);
        }
        let index = self.bundle.index()?;
        // A Luau module's second name, its path, is for path requires only.
        let modules = index
            .modules
            .iter()
            .enumerate()
            .filter(|(i, m)| self.visibility.allows(*i) && !(cfg!(feature = "luau") && is_path_name(&m.name)))
            .map(|(_, m)| m.name.clone());
        let groups = index.groups.iter().map(|g| g.name.clone());
        let names: BTreeSet<String> = modules.chain(groups).chain(natives.cloned()).collect();
        Ok(self.names.get_or_init(|| names.into_iter().collect()))
    }
}

/// The [`Live`] an installation serves, shared by its loaders and its `Installed` handle.
#[derive(Clone)]
pub(crate) struct LiveCell(Arc<RwLock<Arc<Live>>>);

impl LiveCell {
    pub(crate) fn new(live: Live) -> LiveCell {
        LiveCell(Arc::new(RwLock::new(Arc::new(live))))
    }

    /// What is served now (a reload does not change what a caller already holds).
    pub(crate) fn current(&self) -> Arc<Live> {
        match self.0.read() {
            Ok(live) => live.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `live` from now on.
    pub(crate) fn replace(&self, live: Live) {
        let live = Arc::new(live);
        match self.0.write() {
            Ok(mut slot) => *slot = live,
            Err(poisoned) => *poisoned.into_inner() = live,
        }
    }
}
