//! The notes of one template's plan: warnings for the user, and for `explain` the profiles
//! considered and the facts the decision was based on. Every step writes here.

use super::outcome::Considered;

#[derive(Debug, Default)]
pub(super) struct Notes {
    pub warnings: Vec<String>,
    pub considered: Vec<Considered>,
    pub facts: Vec<String>,
}

impl Notes {
    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }
}
