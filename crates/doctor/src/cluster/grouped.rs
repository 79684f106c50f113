//! Per-node issues grouped into one finding per check and message, naming the nodes.

use crate::report::{Finding, Severity};
use std::collections::BTreeMap;

/// Per-node issues, grouped into one finding per check and message.
/// (severity, fix, nodes) per (check, message).
type Group = (Severity, Option<String>, Vec<String>);

#[derive(Default)]
pub struct Grouped {
    groups: BTreeMap<(String, String), Group>,
}

impl Grouped {
    pub fn add(
        &mut self,
        check: &str,
        sev: Severity,
        node: &str,
        message: String,
        fix: Option<String>,
    ) {
        let e = self
            .groups
            .entry((check.to_string(), message))
            .or_insert_with(|| (sev, fix, Vec::new()));
        e.2.push(node.to_string());
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.groups
            .into_iter()
            .map(|((check, message), (sev, fix, mut nodes))| {
                nodes.sort();
                let object = if nodes.len() == 1 {
                    format!("Node {}", nodes[0])
                } else {
                    let shown: Vec<&str> = nodes.iter().take(5).map(String::as_str).collect();
                    let more = if nodes.len() > 5 { ", ..." } else { "" };
                    format!("{} nodes: {}{more}", nodes.len(), shown.join(", "))
                };
                Finding::new(&check, sev, Some(object), message, fix)
            })
            .collect()
    }
}
