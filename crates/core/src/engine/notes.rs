//! The notes of one template's plan: warnings for the user, and for `explain` the profiles
//! considered and the facts the decision was based on. Every step writes here.

use super::outcome::{Considered, Grounds, ModeDecision};

#[derive(Debug, Default)]
pub(super) struct Notes {
    pub warnings: Vec<String>,
    pub considered: Vec<Considered>,
    pub facts: Vec<String>,
    pub grounds: Option<Grounds>,
    pub decisions: Vec<ModeDecision>,
}

impl Notes {
    // (cold: a warning is the unusual path; its text's formatting moves out of the way)
    #[cold]
    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }
}
